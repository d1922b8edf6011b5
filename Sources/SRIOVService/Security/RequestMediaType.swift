import HTTPServer

/// The media type a request body must have. A request that declares a body (a `Content-Length` other than 0, or a
/// `Transfer-Encoding`) must say `Content-Type: application/json`; a PATCH may also say
/// `application/merge-patch+json` (RFC 7396). Type and subtype are case-insensitive; the one parameter allowed is
/// `charset=utf-8` (RFC 8259 §8.1: JSON is UTF-8). Anything else, a missing Content-Type included, is 415.
/// A request without a body (`POST /reconcile`, `DELETE`) needs no Content-Type.
///
/// Besides telling clients what sriovd reads, this keeps web pages out: a browser sends a cross-site request
/// without asking first only when its body is `text/plain`, `application/x-www-form-urlencoded` or
/// `multipart/form-data` (a "simple" request); for a JSON body it asks with a CORS preflight, which sriovd never
/// grants. The check reads only the header section, so it can run before the body is read.
enum RequestMediaType {
    static let json = "application/json"
    static let mergePatch = "application/merge-patch+json"

    /// The media types a body of `method` may have.
    static func accepted(for method: HTTPMethod) -> [String] {
        method == .PATCH ? [json, mergePatch] : [json]
    }

    /// Why the request's body is refused (415), or nil when it has none or its type is accepted.
    static func refusal(for request: HTTPRequest) -> Refusal? {
        guard declaresBody(request.headers) else { return nil }
        let accepted = accepted(for: request.method)
        let types = request.headers.values(for: "Content-Type")
        if types.count == 1, let type = mediaType(types[0]), accepted.contains(type) { return nil }
        let sent = types.isEmpty ? "no Content-Type" : "Content-Type: " + types.joined(separator: ", ")
        var refusal = Refusal(
            status: 415, slug: "unsupported-media-type",
            detail: "A request body must be JSON, sent with Content-Type: "
                + accepted.joined(separator: " or ") + "; this request has \(sent).",
            challengeError: nil)
        refusal.extensions["accepted_media_types"] = .strings(accepted)
        if let field = acceptField(for: request.method) {
            refusal.headers.append((field, accepted.joined(separator: ", ")))
        }
        return refusal
    }

    /// Whether the header section announces a body (RFC 9112 §6.3): chunked or any other transfer coding, or a
    /// Content-Length other than 0.
    static func declaresBody(_ headers: HTTPHeaders) -> Bool {
        if headers.contains("Transfer-Encoding") { return true }
        guard let length = headers["Content-Length"] else { return false }
        return length.trimmingWhitespace() != "0"
    }

    /// The lower-cased `type/subtype` of a Content-Type value whose only parameter, if any, is `charset=utf-8`;
    /// nil when it has another parameter or charset.
    static func mediaType(_ value: String) -> String? {
        let parts = value.split(separator: ";", omittingEmptySubsequences: false)
        let type = parts[0].trimmingWhitespace().lowercased()
        for parameter in parts.dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingWhitespace().lowercased() == "charset" else { return nil }
            var charset = pair[1].trimmingWhitespace().lowercased()
            if charset.count >= 2 && charset.hasPrefix("\"") && charset.hasSuffix("\"") {
                charset = String(charset.dropFirst().dropLast())
            }
            guard charset == "utf-8" else { return nil }
        }
        return type
    }

    /// The field that lists what a method's body may be: `Accept-Patch` (RFC 5789 §3.1) or `Accept-Post`.
    private static func acceptField(for method: HTTPMethod) -> String? {
        switch method {
        case .PATCH: "Accept-Patch"
        case .POST: "Accept-Post"
        default: nil
        }
    }
}
