import HTTPServer
import SRIOVCore

/// `GET /ui/`: the dashboard, served from files embedded in the binary (`ui/`, see `EmbeddedUI`).
///
/// The files are open (no role): they hold no data about the host, only the page that asks for it, and a browser
/// must be able to load the page before it has a token to send. Every request the page makes for data goes to
/// the API's own routes and needs the role they need (`reader`).
extension SRIOVAPI {
    func addUIRoutes(to router: inout Router) {
        router.add(.GET, "/ui") { _, _, _ in
            .response(
                HTTPResponse(
                    status: HTTPStatus(code: 308, reason: "Permanent Redirect"), headers: ["Location": "/ui/"], body: []
                ))
        }
        router.add(.GET, "/ui/") { request, _, _ in .response(Self.uiFile("index.html", request)) }
        router.add(.GET, "/ui/{file}") { request, _, params in .response(Self.uiFile(params["file"] ?? "", request)) }
    }

    /// One embedded file with its type, or 404. `ETag` is the file's SHA-256, so a reload revalidates cheaply.
    static func uiFile(_ name: String, _ request: HTTPRequest) -> HTTPResponse {
        guard let file = EmbeddedUI.files[name] else {
            return .problem(
                ProblemDetails(
                    type: "urn:sriovd:problem:not-found", title: "Not Found", status: 404,
                    detail: "The dashboard has no file \(name).", instance: request.path))
        }
        var headers = HTTPHeaders()
        headers.add("Content-Type", file.contentType)
        headers.add("Cache-Control", "no-cache")
        headers.add("ETag", "\"\(file.etag)\"")
        headers.add("X-Content-Type-Options", "nosniff")
        // Everything comes from this origin; no inline script, no frames.
        headers.add(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
        headers.add("Referrer-Policy", "no-referrer")
        if request.headers["If-None-Match"] == "\"\(file.etag)\"" {
            return HTTPResponse(status: .notModified, headers: headers, body: [])
        }
        return HTTPResponse(status: .ok, headers: headers, body: file.body)
    }
}

/// A file of the dashboard, as served.
struct UIFile: Sendable {
    var contentType: String
    var body: [UInt8]
    var etag: String

    init(contentType: String, text: String) {
        self.contentType = contentType
        // The embedded literal drops the file's final newline; put it back so the bytes are the file's.
        self.body = Array((text + "\n").utf8)
        self.etag = String(SHA256.hex(body).prefix(32))
    }
}
