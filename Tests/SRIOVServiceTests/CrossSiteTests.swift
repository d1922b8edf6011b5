import Foundation
import HTTPServer
import SRIOVCore
import Testing

@testable import SRIOVService

/// Issue 12 §3: a web page cannot act for the user. The pieces alone (Host, Origin, Content-Type), then the forged
/// requests of the issue against the whole daemon in tokenless loopback mode over TCP, each refused, audited, and
/// changing nothing.
@Suite(.serialized) struct CrossSiteTests {
    @Test func loopbackHostsAreTheLoopbackNamesAndAddresses() {
        let loopback = [
            "localhost", "LOCALHOST:8080", "127.0.0.1", "127.0.0.1:8080", "127.1.2.3:1", "[::1]", "[::1]:8080",
            "[0:0:0:0:0:0:0:1]:65535",
        ]
        for host in loopback {
            #expect(LoopbackOrigin.Authority(host)?.isLoopback == true, "\(host)")
        }
        let other = [
            "evil.example", "evil.example:8080", "localhost.evil.example", "127.0.0.1.evil.example", "128.0.0.1",
            "127.1", "0x7f.0.0.1", "[::2]", "[::ffff:127.0.0.1]", "10.0.0.1:8080",
        ]
        for host in other {
            #expect(LoopbackOrigin.Authority(host)?.isLoopback != true, "\(host)")
        }
        let malformed = ["", ":8080", "localhost:", "localhost:65536", "localhost:80a", "[::1", "[::1]x", "a:1:2"]
        for host in malformed {
            #expect(LoopbackOrigin.Authority(host) == nil, "\(host)")
        }
    }

    @Test func anOriginIsOwnWhenSchemeHostAndPortMatchTheHost() throws {
        let host = try #require(LoopbackOrigin.Authority("127.0.0.1:8080"))
        #expect(LoopbackOrigin.isOwnOrigin("http://127.0.0.1:8080", host: host))
        #expect(LoopbackOrigin.isOwnOrigin("HTTP://127.0.0.1:8080", host: host))
        for origin in [
            "http://evil.example", "http://127.0.0.1", "http://127.0.0.1:8081", "https://127.0.0.1:8080",
            "http://localhost:8080", "null", "http://127.0.0.1:8080/path", "http://", "",
        ] {
            #expect(!LoopbackOrigin.isOwnOrigin(origin, host: host), "\(origin)")
        }
        let portless = try #require(LoopbackOrigin.Authority("localhost"))
        #expect(LoopbackOrigin.isOwnOrigin("http://localhost:80", host: portless), "port 80 is http's default")
        #expect(LoopbackOrigin.isOwnOrigin("http://localhost", host: portless))
    }

    @Test func aBodyMustBeJSON() {
        #expect(RequestMediaType.mediaType("application/json") == "application/json")
        #expect(RequestMediaType.mediaType("Application/JSON; charset=UTF-8") == "application/json")
        #expect(RequestMediaType.mediaType("application/json;charset=\"utf-8\"") == "application/json")
        #expect(RequestMediaType.mediaType("application/json; charset=iso-8859-1") == nil)
        #expect(RequestMediaType.mediaType("application/json; boundary=x") == nil)
        #expect(RequestMediaType.mediaType("text/plain") == "text/plain")

        func refusal(_ method: HTTPMethod, _ headers: [(String, String)]) -> Refusal? {
            RequestMediaType.refusal(for: HTTPRequest(method: method, target: "/x", headers: HTTPHeaders(headers)))
        }
        let json = ("Content-Type", "application/json")
        let mergePatch = ("Content-Type", "application/merge-patch+json")
        #expect(refusal(.POST, [("Content-Length", "2"), json]) == nil)
        #expect(refusal(.PATCH, [("Content-Length", "2"), mergePatch]) == nil)
        #expect(refusal(.POST, [("Content-Length", "2"), mergePatch])?.status == 415, "merge patch is for PATCH")
        #expect(refusal(.POST, []) == nil, "no body needs no type")
        #expect(refusal(.POST, [("Content-Length", "0"), ("Content-Type", "text/plain")]) == nil)
        #expect(refusal(.POST, [("Content-Length", "2")])?.status == 415, "a body without a type")
        #expect(refusal(.DELETE, [("Transfer-Encoding", "chunked"), ("Content-Type", "text/plain")])?.status == 415)
        #expect(refusal(.POST, [("Content-Length", "2"), json, json])?.status == 415, "two types are ambiguous")
        let form = refusal(.POST, [("Content-Length", "2"), ("Content-Type", "application/x-www-form-urlencoded")])
        #expect(form?.slug == "unsupported-media-type")
        #expect(form?.headers.first { $0.name == "Accept-Post" }?.value == "application/json")
        let patch = refusal(.PATCH, [("Content-Length", "2"), ("Content-Type", "text/plain")])
        #expect(
            patch?.headers.first { $0.name == "Accept-Patch" }?.value
                == "application/json, application/merge-patch+json")
    }

    /// The three forged requests of the issue, as a browser sends them to a daemon without a tokens file: each is
    /// refused with its problem, audited once as a failure, and allocates nothing.
    @Test func forgedRequestsAreRefusedAuditedAndChangeNothing() async throws {
        let daemon = try await SecuredDaemon(anonymousTCPRole: .admin, withTokens: false)
        let own = "127.0.0.1:\(daemon.port)"
        let body = #"{"owner":"vm:forged","pf":"0000:3b:00.0"}"#
        let forged: [(label: String, head: String, status: Int, type: String)] = [
            (
                "text/plain", "POST /allocations HTTP/1.1\r\nHost: \(own)\r\nContent-Type: text/plain\r\n", 415,
                "unsupported-media-type"
            ),
            (
                "cross-site form",
                "POST /allocations HTTP/1.1\r\nHost: \(own)\r\nOrigin: http://evil.example\r\n"
                    + "Content-Type: application/x-www-form-urlencoded\r\n", 403, "cross-origin-request"
            ),
            (
                "rebound Host",
                "POST /allocations HTTP/1.1\r\nHost: evil.example:8080\r\nContent-Type: application/json\r\n", 403,
                "non-loopback-host"
            ),
        ]
        for (label, head, status, type) in forged {
            let lastEvent = try daemon.lastAuditID()
            let response = try await daemon.client().raw(head, body: body)
            #expect(response.status == status, "\(label): \(response.text)")
            #expect(response.object["type"] as? String == "urn:sriovd:problem:\(type)", "\(label)")
            #expect(response.object["instance"] as? String == "/allocations", "\(label)")
            #expect(response.header("Access-Control-Allow-Origin") == nil, "\(label): CORS stays off")
            let events = try daemon.auditEvents(after: lastEvent)
            #expect(events.count == 1, "\(label): \(events)")
            #expect(events.first?.action == "allocation.create", "\(label)")
            #expect(events.first?.outcome == .failure, "\(label)")
            #expect(events.first?.error?.hasPrefix(type + ": ") == true, "\(label): \(events.first?.error ?? "-")")
            #expect(events.first?.details.contains(#""status":\#(status)"#) == true, "\(label)")
        }
        #expect(try daemon.allAllocations().isEmpty, "no forged request allocated a VF")

        let resize = try await daemon.client().raw(
            "POST /pfs/0000:5e:00.0/vfs HTTP/1.1\r\nHost: \(own)\r\nContent-Type: text/plain\r\n", body: #"{"count":4}"#
        )
        #expect(resize.status == 415)
        #expect(resize.header("Accept-Post") == "application/json")
        let rebound = try await daemon.client().raw("GET /pfs/0000:5e:00.0 HTTP/1.1\r\nHost: evil.example:8080\r\n")
        #expect(rebound.status == 403, "a rebound page cannot read either")
        let pf = try await daemon.client().raw("GET /pfs/0000:5e:00.0 HTTP/1.1\r\nHost: \(own)\r\n")
        #expect(pf.status == 200)
        #expect(pf.object["num_vfs"] as? Int == 0, "the forged resize changed nothing")
        await daemon.stop()
    }

    /// What sriovd's own clients send still works in tokenless mode: loopback names with any port, its own
    /// origin, a charset parameter, merge patch for PATCH, and a POST without a body.
    @Test func sriovdsOwnOriginAndJSONClientsAreServed() async throws {
        let daemon = try await SecuredDaemon(anonymousTCPRole: .admin, withTokens: false)
        let port = daemon.port
        let client = try daemon.client()
        for host in ["localhost:\(port)", "127.0.0.1", "[::1]:\(port)", "LocalHost"] {
            let response = try await client.raw("GET /pfs HTTP/1.1\r\nHost: \(host)\r\n")
            #expect(response.status == 200, "Host: \(host)")
        }
        #expect(
            try await daemon.client().raw("GET /healthz HTTP/1.1\r\nHost: evil.example\r\n").status == 200,
            "the probes stay open")
        let created = try await client.raw(
            "POST /allocations HTTP/1.1\r\nHost: localhost:\(port)\r\nOrigin: http://localhost:\(port)\r\n"
                + "Content-Type: application/json; charset=UTF-8\r\n",
            body: #"{"owner":"vm:own","pf":"0000:3b:00.0"}"#)
        #expect(created.status == 201, "\(created.text)")
        let id = try #require(created.object["id"] as? String)
        let patched = try await client.raw(
            "PATCH /allocations/\(id) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
                + "Content-Type: application/merge-patch+json\r\n", body: #"{"vlan":7}"#)
        #expect(patched.status == 200, "\(patched.text)")
        let reconcile = try await client.raw("POST /reconcile HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n")
        #expect(reconcile.status == 200, "\(reconcile.text)")
        let released = try await client.raw("DELETE /allocations/\(id) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n")
        #expect(released.status == 204)
        await daemon.stop()
    }

    /// With a tokens file, a token's holder is not held to loopback names (a page cannot attach the token), but
    /// its bodies must still be JSON.
    @Test func tokenCallersAreNotHeldToLoopbackButToJSON() async throws {
        let daemon = try await SecuredDaemon()
        let token = "Authorization: Bearer \(SecuredDaemon.tokens[.admin]!)\r\n"
        let remote = try await daemon.client().raw("GET /pfs HTTP/1.1\r\nHost: node-7.example:8080\r\n" + token)
        #expect(remote.status == 200)
        let plain = try await daemon.client().raw(
            "POST /pfs/0000:5e:00.0/vfs HTTP/1.1\r\nHost: node-7.example\r\nContent-Type: text/plain\r\n" + token,
            body: #"{"count":2}"#)
        #expect(plain.status == 415)
        #expect(plain.object["accepted_media_types"] as? [String] == ["application/json"])
        let anonymous = try await daemon.client().raw(
            "POST /pfs/0000:5e:00.0/vfs HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n", body: #"{"count":2}"#)
        #expect(anonymous.status == 401, "who is asking comes before what the body is")
        await daemon.stop()
    }
}
