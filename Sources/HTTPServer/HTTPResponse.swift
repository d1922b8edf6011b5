/// A response to send. The server adds `Content-Length`, `Date`, `X-Request-Id` and, when closing,
/// `Connection: close`; values of those names set here are replaced.
public struct HTTPResponse: Sendable {
    public var status: HTTPStatus
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: HTTPStatus, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A response with an `application/json` body.
    public static func json(_ status: HTTPStatus, _ body: [UInt8]) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": "application/json"], body: body)
    }

    /// An RFC 9457 problem response (`application/problem+json`) whose status is the problem's.
    public static func problem(_ problem: ProblemDetails) -> HTTPResponse {
        HTTPResponse(
            status: HTTPStatus(code: problem.status),
            headers: ["Content-Type": "application/problem+json"],
            body: problem.jsonBytes()
        )
    }

    /// The problem response the server itself sends for `status`: type `urn:sriovd:problem:<slug>` (the slug
    /// named after the status, `not-found`), the reason phrase as title, and `instance` when a path was read.
    /// 429 and 503 say when to retry.
    public static func serverProblem(
        _ status: HTTPStatus, detail: String, instance: String?, retryAfter: Int? = nil
    ) -> HTTPResponse {
        var response = HTTPResponse.problem(
            ProblemDetails(
                type: ProblemDetails.typePrefix + status.problemSlug, title: status.reason, status: status.code,
                detail: detail, instance: instance))
        if let retryAfter { response.headers.add("Retry-After", String(retryAfter)) }
        return response
    }
}
