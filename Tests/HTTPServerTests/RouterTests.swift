import Testing

@testable import HTTPServer

struct RouterTests {
    static let context = RequestContext(requestID: "r1", peer: "unix")

    static func respond(_ router: Router, _ method: HTTPMethod, _ target: String) -> HTTPResponse? {
        guard
            case .response(let response) = router.handle(HTTPRequest(method: method, target: target), context: context)
        else { return nil }
        return response
    }

    static func makeRouter() -> Router {
        var router = Router()
        router.add(.GET, "/") { _, _, _ in .response(HTTPResponse(status: .ok, body: Array("root".utf8))) }
        router.add(.GET, "/pfs/{address}") { _, _, parameters in
            .response(HTTPResponse(status: .ok, body: Array("pf \(parameters["address"] ?? "")".utf8)))
        }
        router.add(.GET, "/pfs/stats") { _, _, _ in .response(HTTPResponse(status: .ok, body: Array("stats".utf8))) }
        router.add(.GET, "/pfs/{address}/vfs") { _, _, parameters in
            .response(HTTPResponse(status: .ok, body: Array("vfs of \(parameters["address"] ?? "")".utf8)))
        }
        router.add(.POST, "/pfs/{address}/vfs") { _, _, _ in .response(HTTPResponse(status: .created)) }
        router.add(.DELETE, "/pfs/{pf}/vfs") { _, _, parameters in
            .response(HTTPResponse(status: .noContent, body: Array((parameters["pf"] ?? "").utf8)))
        }
        router.add(.DELETE, "/pfs/{address}") { _, _, _ in .response(HTTPResponse(status: .noContent)) }
        router.add(.POST, "/later") { _, _, _ in .deferred { HTTPResponse(status: .accepted) } }
        return router
    }

    @Test func matchesLiteralsAndCapturesRaw() {
        let router = Self.makeRouter()
        #expect(Self.respond(router, .GET, "/")?.body == Array("root".utf8))
        #expect(Self.respond(router, .GET, "/pfs/0000:3b:00.0?x=1")?.body == Array("pf 0000:3b:00.0".utf8))
        #expect(Self.respond(router, .GET, "/pfs/a%2Fb/vfs")?.body == Array("vfs of a%2Fb".utf8))
        #expect(Self.respond(router, .POST, "/pfs/x/vfs")?.status == .created)
    }

    @Test func prefersALiteralSegmentToACapture() {
        let router = Self.makeRouter()
        #expect(Self.respond(router, .GET, "/pfs/stats")?.body == Array("stats".utf8))
        // A method only the capture route has still reaches it.
        #expect(Self.respond(router, .DELETE, "/pfs/stats")?.status == .noContent)
    }

    @Test func registeringAgainUnderAnotherCaptureNameAddsTheMethod() {
        let router = Self.makeRouter()
        #expect(Self.respond(router, .DELETE, "/pfs/p1/vfs")?.body == Array("p1".utf8))
    }

    @Test func answersUnknownPathsWith404Problem() throws {
        let router = Self.makeRouter()
        for target in ["/nope", "/pfs", "/pfs/a/vfs/b", "/pfs//vfs", "/pfs/a/"] {
            let response = try #require(Self.respond(router, .GET, target))
            #expect(response.status == .notFound, "\(target)")
            #expect(response.headers["content-type"] == "application/problem+json")
        }
    }

    @Test func answersWrongMethodsWith405AndAllow() throws {
        let router = Self.makeRouter()
        let response = try #require(Self.respond(router, .PUT, "/pfs/a/vfs"))
        #expect(response.status == .methodNotAllowed)
        #expect(response.headers["Allow"] == "DELETE, GET, HEAD, POST")
        let text = String(decoding: response.body, as: UTF8.self)
        #expect(text.contains(#""instance":"/pfs/a/vfs""#))
        #expect(text.contains(#""status":405"#))
        let postOnly = try #require(Self.respond(router, .GET, "/later"))
        #expect(postOnly.headers["allow"] == "POST")
    }

    @Test func runsGetForHead() {
        let router = Self.makeRouter()
        #expect(Self.respond(router, .HEAD, "/pfs/x")?.body == Array("pf x".utf8))
    }

    @Test func passesDeferredResultsThrough() async {
        let router = Self.makeRouter()
        guard
            case .deferred(let work) = router.handle(
                HTTPRequest(method: .POST, target: "/later"), context: Self.context)
        else {
            Issue.record("expected .deferred")
            return
        }
        #expect(await work().status == .accepted)
    }
}

struct HTTPTypesTests {
    @Test func methodsValidateTokens() {
        #expect(HTTPMethod(rawValue: "GET") == .GET)
        #expect(HTTPMethod(rawValue: "PROPFIND")?.rawValue == "PROPFIND")
        #expect(HTTPMethod(rawValue: "") == nil)
        #expect(HTTPMethod(rawValue: "GE T") == nil)
        #expect(HTTPMethod(rawValue: "GET\r\n") == nil)
    }

    @Test func headersAreOrderedAndCaseInsensitive() {
        var headers: HTTPHeaders = ["Accept": "a"]
        headers.add("X-Tag", "1")
        headers.add("x-tag", "2")
        #expect(headers["X-TAG"] == "1")
        #expect(headers.values(for: "x-Tag") == ["1", "2"])
        headers.replaceOrAdd("X-Tag", "3")
        #expect(headers.values(for: "x-tag") == ["3"])
        headers.replaceOrAdd("New", "n")
        #expect(headers.map(\.name) == ["Accept", "X-Tag", "New"])
        headers.remove("accept")
        #expect(headers["Accept"] == nil)
        #expect(headers.count == 2)
    }

    @Test func statusCarriesCodeAndReason() {
        #expect(HTTPStatus.contentTooLarge.code == 413)
        #expect(HTTPStatus.uriTooLong.code == 414)
        #expect(HTTPStatus.unprocessableContent == HTTPStatus(code: 422))
        #expect(HTTPStatus.requestHeaderFieldsTooLarge.code == 431)
        #expect(HTTPStatus(code: 299).reason == "Unknown")
        #expect(HTTPStatus(code: 599, reason: "Custom").reason == "Custom")
    }

    @Test func jsonResponseSetsContentType() {
        let response = HTTPResponse.json(.created, Array("{}".utf8))
        #expect(response.status == .created)
        #expect(response.headers["Content-Type"] == "application/json")
    }

    @Test func problemDetailsEncodeWithSortedKeysAndExtensions() {
        let problem = ProblemDetails(
            type: "urn:x:busy",
            title: "PF busy",
            status: 409,
            detail: "say \"hi\"\n\u{1}",
            instance: "/pfs/a",
            extensions: [
                "zeta": .bool(true), "alpha": .int(-3), "list": .strings(["a", "b"]),
                "nested": .object(["y": .string("1"), "x": .int(2)]), "status": .int(999),
            ]
        )
        let text = String(decoding: problem.jsonBytes(), as: UTF8.self)
        #expect(
            text
                == #"{"alpha":-3,"detail":"say \"hi\"\n\u0001","instance":"/pfs/a","list":["a","b"],"#
                + #""nested":{"x":2,"y":"1"},"status":409,"title":"PF busy","type":"urn:x:busy","zeta":true}"#
        )
        let response = HTTPResponse.problem(problem)
        #expect(response.status == .conflict)
        #expect(response.headers["content-type"] == "application/problem+json")
    }

    @Test func problemDetailsOmitAMissingInstance() {
        let text = String(decoding: ProblemDetails(title: "T", status: 400, detail: "d").jsonBytes(), as: UTF8.self)
        #expect(text == #"{"detail":"d","status":400,"title":"T","type":"about:blank"}"#)
    }

    @Test func requestSplitsPathAndQuery() {
        let request = HTTPRequest(method: .GET, target: "/a/b%20c?x=%41&y")
        #expect(request.path == "/a/b%20c")
        #expect(request.queryValue("x") == "A")
        #expect(request.queryValue("y") == "")
        #expect(request.queryValue("z") == nil)
    }

    @Test func dateIsIMFFixdate() {
        #expect(
            String(decoding: ResponseEncoder.imfFixdate(784_111_777), as: UTF8.self) == "Sun, 06 Nov 1994 08:49:37 GMT")
    }

    @Test func socketAddressDescribesIPv4AndIPv6() {
        #expect(SocketAddress(host: "127.0.0.1", port: 80).description == "127.0.0.1:80")
        #expect(SocketAddress(host: "::1", port: 80).description == "[::1]:80")
    }
}
