import Foundation
import Glibc
import HTTPServer
import SRIOVCore
import SRIOVService
import SRIOVStore
import Testing

/// Tokens, roles and the access policy: the pieces alone, then every route × every kind of caller over real
/// sockets, then Unix-socket peers.
@Suite(.serialized) struct SecurityTests {
    // MARK: - Pieces

    @Test func tokenFileParsesAndRejectsWithTheLine() throws {
        let hash = String(repeating: "ab", count: 32)
        let entries = try TokenFile.parse(
            """
            # comment

            ci-bot operator \(hash)
            \tkubelet@node-1\treader   \(String(repeating: "0", count: 64))
            """)
        #expect(entries.map(\.name) == ["ci-bot", "kubelet@node-1"])
        #expect(entries.map(\.role) == [.operator, .reader])
        #expect(entries[0].line == "ci-bot operator \(hash)")

        let bad: [(String, String)] = [
            ("a reader", "expected NAME ROLE SHA256"),
            ("a root \(hash)", "is not one of reader, operator, admin"),
            ("a reader sriovd_notahash", "must be 64 hex digits"),
            ("a reader \(hash.dropLast(2))", "must be 64 hex digits"),
            ("bad/name reader \(hash)", "must be 1 to 64"),
            ("a reader \(hash)\na admin \(String(repeating: "1", count: 64))", "appears twice"),
            ("a reader \(hash)\nb admin \(hash)", "the same token hash appears twice"),
        ]
        for (text, reason) in bad {
            #expect(throws: TokenFileError.self, "\(text)") { try TokenFile.parse(text, path: "t") }
            do {
                _ = try TokenFile.parse("# first line\n" + text, path: "t")
            } catch {
                #expect(error.description.contains(reason), "\(error)")
                #expect(error.description.hasPrefix("t:2:") || error.description.hasPrefix("t:3:"), "\(error)")
            }
        }
    }

    @Test func tokensFilesOthersMayWriteAreRefused() throws {
        #expect(TokenFile.writableByOthers(mode: 0o600) == nil)
        #expect(TokenFile.writableByOthers(mode: 0o644) == nil)
        #expect(TokenFile.writableByOthers(mode: 0o100444) == nil, "file type bits are not permissions")
        #expect(TokenFile.writableByOthers(mode: 0o664)?.hasPrefix("is writable by its group (mode 0664)") == true)
        #expect(TokenFile.writableByOthers(mode: 0o642)?.hasPrefix("is writable by others (mode 0642)") == true)
        #expect(TokenFile.writableByOthers(mode: 0o666)?.hasPrefix("is writable by its group and by others") == true)

        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tokens-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let entry = TokenEntry(name: "a", role: .reader, digest: TokenStore.digest(of: "t"))
        try (entry.line + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(chmod(path, 0o620) == 0)
        let error = #expect(throws: TokenFileError.self) { try TokenStore(path: path) }
        let reason = try #require(TokenFile.writableByOthers(mode: 0o620))
        #expect(error?.description == "\(path): \(reason); run: chmod go-w \(path)")
        #expect(chmod(path, 0o640) == 0)
        #expect(try TokenStore(path: path).authenticate("t") == entry)
    }

    @Test func generatedTokensAuthenticateAndOthersDoNot() {
        let first = GeneratedToken(name: "one", role: .admin)
        let second = GeneratedToken(name: "two", role: .reader)
        #expect(first.token != second.token)
        #expect(first.token.hasPrefix("sriovd_") && first.token.count == 7 + 43)
        #expect(!first.entry.line.contains(first.token), "the line holds the hash, never the token")
        let store = TokenStore(entries: [first.entry, second.entry])
        #expect(store.authenticate(first.token)?.name == "one")
        #expect(store.authenticate(second.token)?.role == .reader)
        #expect(store.authenticate(first.token + "x") == nil)
        #expect(store.authenticate("") == nil)
        #expect(store.authenticate(first.entry.line) == nil)
    }

    @Test func unixRoleMapRules() throws {
        let map = try UnixRoleMap(parsing: "uid:1000=operator, gid:44=reader,gid:45=admin,group:root=reader")
        #expect(map.role(uid: 1000, gid: 45) == .operator, "a uid rule decides alone")
        #expect(map.role(uid: 0, gid: 0) == .admin, "root is admin unless a uid rule says otherwise")
        #expect(map.role(uid: 1001, gid: 44) == .reader)
        #expect(map.role(uid: 1001, gid: 1001, supplementaryGroups: [44, 45]) == .admin, "the best group wins")
        #expect(map.role(uid: 1001, gid: 1001) == nil, "no rule, no role")
        #expect(try UnixRoleMap(parsing: "uid:0=reader").role(uid: 0, gid: 0) == .reader)
        #expect(try UnixRoleMap(parsing: "user:root=operator").role(uid: 0, gid: 0) == .operator)
        for bad in ["uid:0", "uid:0=root", "pid:1=admin", "user:no-such-user-here=admin", "gid:x=admin"] {
            #expect(throws: UnixRoleMap.ParseError.self, "\(bad)") { try UnixRoleMap(parsing: bad) }
        }
    }

    @Test func certificateRoleMapRules() throws {
        let map = try CertificateRoleMap(
            parsing: "cn:node-agent=operator, dns:ops.example.com=admin\n# a comment\nuri:spiffe://c/ns/x=reader")
        let agent = ClientCertificate(commonName: "node-agent", subjectAlternativeNames: ["dns:agent.example"])
        #expect(map.identity(for: agent) == Identity(actor: "cert:cn:node-agent", role: .operator, hasCredential: true))
        let ops = ClientCertificate(commonName: "node-agent", subjectAlternativeNames: ["dns:ops.example.com"])
        #expect(map.identity(for: ops).role == .admin, "the best rule naming any of its names wins")
        #expect(map.identity(for: ops).actor == "cert:dns:ops.example.com", "the actor is the name that granted it")
        let stranger = ClientCertificate(commonName: nil, subjectAlternativeNames: ["email:x@example.com"])
        #expect(
            map.identity(for: stranger) == Identity(actor: "cert:email:x@example.com", role: nil, hasCredential: true))
        for bad in ["cn:node-agent", "cn:x=root", "subject:x=admin", "cn:=admin", "=admin"] {
            #expect(throws: CertificateRoleMap.ParseError.self, "\(bad)") { try CertificateRoleMap(parsing: bad) }
        }
    }

    @Test func policyDefaultsAreSafe() {
        let policy = AccessPolicy.sriovd
        #expect(policy.access(.GET, "/healthz") == .open)
        #expect(policy.access(.HEAD, "/readyz") == .open)
        #expect(policy.access(.GET, "/some/new/route") == .role(.reader))
        #expect(policy.access(.POST, "/some/new/route") == .role(.admin), "unknown mutations need admin")
        #expect(policy.access(.GET, nil) == .role(.reader), "404s and 405s need a caller")
        #expect(policy.access(.POST, "/reconcile") == .role(.admin))
    }

    // MARK: - The matrix

    /// Every registered route × no token, a bad token, and each role's token.
    @Test func authMatrix() async throws {
        let daemon = try await SecuredDaemon()
        let admin = try daemon.client()
        let vfs = try await admin.request("GET", "/vfs", headers: SecuredDaemon.bearer(.admin))
        let vf = try #require(vfs.items.first?["address"] as? String)
        let policy = AccessPolicy.sriovd
        let explicit = Set(policy.entries.map { "\($0.method) \($0.pattern)" })
        let routes = daemon.router.registeredRoutes
        #expect(routes.count >= 17)

        var checked = 0
        for (method, pattern) in routes {
            #expect(explicit.contains("\(method.rawValue) \(pattern)"), "\(method.rawValue) \(pattern) has no policy")
            let path =
                pattern
                .replacingOccurrences(of: "/pfs/{address}", with: "/pfs/0000:5e:00.0")
                .replacingOccurrences(of: "/vfs/{address}", with: "/vfs/\(vf)")
                .replacingOccurrences(of: "{id}", with: "no-such-allocation")
                .replacingOccurrences(of: "{owner_prefix}", with: "no-such-prefix")
                .replacingOccurrences(of: "{network}", with: "no-such-network")
                .replacingOccurrences(of: "{endpoint}", with: "no-such-endpoint")
            // Bodies the handlers refuse, so allowed calls change nothing (DELETE of the E810's VFs: it has none).
            let body: String? = method == .POST || method == .PATCH || method == .PUT ? "{}" : nil
            let access = policy.access(method, pattern)
            let callers: [(String, [String: String], Role?)] =
                [("no token", [:], nil), ("bad token", ["Authorization": "Bearer not-a-token"], nil)]
                + Role.allCases.map { ("\($0)", SecuredDaemon.bearer($0), $0) }
            for (label, headers, role) in callers {
                let client = try daemon.client()
                let lastEvent = try daemon.lastAuditID()
                let response = try await client.request(method.rawValue, path, body: body, headers: headers)
                let what = "\(method.rawValue) \(path) as \(label): \(response.status) \(response.text)"
                if response.status == 401 || response.status == 403 {
                    // A refused mutation is audited once under its route's action; a refused read is not.
                    let events = try daemon.auditEvents(after: lastEvent)
                    if method == .GET {
                        #expect(events.isEmpty, "\(what): \(events)")
                    } else {
                        #expect(events.count == 1, "\(what): \(events)")
                        #expect(events.first?.outcome == .failure, "\(what)")
                        #expect(events.first?.action.hasPrefix("http.") == false, "\(what): \(events)")
                        let slug = response.status == 401 ? "unauthenticated: " : "forbidden: "
                        #expect(events.first?.error?.hasPrefix(slug) == true, "\(what): \(events)")
                    }
                }
                switch access {
                case .open:
                    checked += 1
                    #expect(response.status != 401 && response.status != 403, "\(what)")
                case .role(let required):
                    guard let role else {
                        checked += 1
                        #expect(response.status == 401, "\(what)")
                        #expect(response.header("Content-Type") == "application/problem+json", "\(what)")
                        #expect(response.header("WWW-Authenticate")?.hasPrefix("Bearer realm=\"sriovd\"") == true)
                        if label == "bad token" {
                            #expect(response.header("WWW-Authenticate")?.contains("invalid_token") == true)
                        }
                        continue
                    }
                    checked += 1
                    if role >= required {
                        #expect(response.status != 401 && response.status != 403, "\(what)")
                    } else {
                        #expect(response.status == 403, "\(what)")
                        #expect(response.object["type"] as? String == "urn:sriovd:problem:forbidden", "\(what)")
                        #expect(response.object["required_role"] as? String == required.rawValue, "\(what)")
                    }
                }
            }
        }
        #expect(checked == routes.count * 5)

        // Unknown paths and methods need a caller too, so anonymous callers learn nothing.
        let anonymous = try daemon.client()
        #expect(try await anonymous.get("/no/such/path").status == 401)
        #expect(try await anonymous.request("PUT", "/pfs").status == 401)
        #expect(try await admin.request("PUT", "/pfs", headers: SecuredDaemon.bearer(.admin)).status == 405)
        #expect(try await admin.request("GET", "/pfs", headers: ["Authorization": "Basic YTpi"]).status == 401)
        await daemon.stop()
    }

    /// A POST refused for want of a token, for a bad token, and for a reader's token: each leaves exactly one
    /// failure event naming whoever asked as far as is known, and nothing else changes.
    @Test func refusedMutationsAreAuditedWithTheirActor() async throws {
        let daemon = try await SecuredDaemon()
        let cases: [(label: String, headers: [String: String], status: Int, actor: String, error: String)] = [
            ("no token", [:], 401, "anonymous", "unauthenticated: "),
            ("bad token", ["Authorization": "Bearer not-a-token"], 401, "anonymous", "unauthenticated: "),
            ("malformed header", ["Authorization": "Basic YTpi"], 401, "anonymous", "unauthenticated: "),
            ("reader token", SecuredDaemon.bearer(.reader), 403, "reader-bot", "forbidden: "),
        ]
        let allocationsBefore = try daemon.allAllocations()
        for (label, headers, status, actor, error) in cases {
            let lastEvent = try daemon.lastAuditID()
            let response = try await daemon.client().request(
                "POST", "/allocations", json: ["owner": "vm:refused", "pf": "0000:3b:00.0"], headers: headers)
            #expect(response.status == status, "\(label): \(response.text)")
            let events = try daemon.auditEvents(after: lastEvent)
            #expect(events.count == 1, "\(label): \(events)")
            let event = try #require(events.first)
            #expect(event.actor == actor, "\(label)")
            #expect(event.action == "allocation.create", "\(label)")
            #expect(event.target == "/allocations", "\(label)")
            #expect(event.outcome == .failure, "\(label)")
            #expect(event.error?.hasPrefix(error) == true, "\(label): \(event.error ?? "nil")")
            #expect(event.requestID == response.header("X-Request-Id"), "\(label)")
            #expect(event.details.contains(#""peer":"127.0.0.1:"#), "\(label): \(event.details)")
            #expect(event.details.contains(#""status":\#(status)"#), "\(label): \(event.details)")
        }
        #expect(try daemon.allAllocations() == allocationsBefore, "no refused request allocated anything")

        // The target is the resource the route names; a path that matches no route is audited as itself.
        let lastEvent = try daemon.lastAuditID()
        let resize = try await daemon.client().request(
            "POST", "/pfs/0000%3A5e%3A00.0/vfs", json: ["count": 2], headers: SecuredDaemon.bearer(.operator))
        #expect(resize.status == 403)
        let unknown = try await daemon.client().request("POST", "/no/such/path", body: "{}")
        #expect(unknown.status == 401)
        let read = try await daemon.client().get("/pfs")
        #expect(read.status == 401)
        let events = try daemon.auditEvents(after: lastEvent)
        #expect(events.map(\.action) == ["pf.vfs.set", "http.POST"], "refused reads are not audited: \(events)")
        #expect(events.map(\.target) == ["0000:5e:00.0", "/no/such/path"])
        #expect(events.map(\.actor) == ["operator-bot", "anonymous"])
        let pf = try await daemon.client().request(
            "GET", "/pfs/0000:5e:00.0", headers: SecuredDaemon.bearer(.reader))
        #expect(pf.object["num_vfs"] as? Int == 0, "the refused resize changed nothing")
        await daemon.stop()
    }

    /// Issue 12, "Memory before authentication": a caller without a token announces a 1 MiB body and sends none
    /// of it; the 401 comes at once from the head, the refusal is audited, nothing is buffered and the connection
    /// closes. A token holder's body is still read.
    @Test func aRefusedMutationIsAnsweredAtItsHeadWithoutItsBody() async throws {
        let daemon = try await SecuredDaemon()
        let lastEvent = try daemon.lastAuditID()
        let client = try daemon.client()
        let head =
            "POST /allocations HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            + "Content-Length: 1048576\r\n\r\n"
        try await onThread { try client.send(Array(head.utf8)) }
        let response = try await onThread { try client.readResponse(method: "POST") }
        #expect(response.status == 401)
        #expect(response.header("Connection") == "close")
        #expect(daemon.server.statistics.bufferedBodyBytes == 0)
        let events = try daemon.auditEvents(after: lastEvent)
        #expect(events.map(\.action) == ["allocation.create"])
        #expect(events.first?.error?.hasPrefix("unauthenticated: ") == true)

        let admitted = try await daemon.client().request(
            "POST", "/allocations", json: ["owner": "vm:head", "pf": "0000:3b:00.0"],
            headers: SecuredDaemon.bearer(.operator))
        #expect(admitted.status == 201, "\(admitted.text)")
        await daemon.stop()
    }

    @Test func auditRecordsTheTokenName() async throws {
        let daemon = try await SecuredDaemon()
        let client = try daemon.client()
        let created = try await client.request(
            "POST", "/allocations", json: ["owner": "vm:audit", "pf": "0000:3b:00.0"],
            headers: SecuredDaemon.bearer(.operator))
        #expect(created.status == 201, "\(created.text)")
        let audit = try await client.request(
            "GET", "/audit?action=allocation.create", headers: SecuredDaemon.bearer(.reader))
        #expect(audit.items.last?["actor"] as? String == "operator-bot")
        await daemon.stop()
    }

    // MARK: - Unix socket

    @Test func unixPeersGetTheirRoleAndTheAuditNamesThem() async throws {
        let daemon = try await SecuredDaemon()
        var status = stat()
        #expect(lstat(daemon.socketPath, &status) == 0)
        #expect(status.st_mode & 0o777 == 0o660)
        #expect(status.st_mode & S_IFMT == S_IFSOCK)

        let resized = try await UnixTestClient.request(
            daemon.socketPath, "POST", "/pfs/0000:5e:00.0/vfs", body: #"{"count": 1}"#)
        guard getuid() == 0 else {
            #expect(resized.status == 403, "a non-root peer has no role by default")
            await daemon.stop()
            return
        }
        #expect(resized.status == 201, "root is admin: \(String(decoding: resized.body, as: UTF8.self))")
        let audit = try await UnixTestClient.request(daemon.socketPath, "GET", "/audit?action=pf.vfs.set")
        let actor = try #require(audit.items.last?["actor"] as? String)
        #expect(actor.hasPrefix("uid=0,pid=\(getpid()),comm="), "\(actor)")
        #expect(actor.count > "uid=0,pid=\(getpid()),comm=".count)

        // A token on the Unix socket speaks for itself, not for the peer's uid.
        let asReader = try await UnixTestClient.request(
            daemon.socketPath, "POST", "/pfs/0000:5e:00.0/vfs", body: #"{"count": 0}"#,
            headers: SecuredDaemon.bearer(.reader))
        #expect(asReader.status == 403)
        let badToken = try await UnixTestClient.request(
            daemon.socketPath, "GET", "/pfs", headers: ["Authorization": "Bearer nope"])
        #expect(badToken.status == 401)
        // Probes stay open on both listeners.
        #expect(try await UnixTestClient.request(daemon.socketPath, "GET", "/healthz").status == 200)
        #expect(try await daemon.client().get("/healthz").status == 200)
        await daemon.stop()
    }

    @Test func aMappingCanMakeRootAnOperator() async throws {
        let uid = getuid()
        let daemon = try await SecuredDaemon(unixRoles: try UnixRoleMap(parsing: "uid:\(uid)=operator"))
        let resize = try await UnixTestClient.request(
            daemon.socketPath, "POST", "/pfs/0000:5e:00.0/vfs", body: #"{"count": 1}"#)
        #expect(resize.status == 403)
        #expect(resize.object["required_role"] as? String == "admin")
        #expect(resize.object["role"] as? String == "operator")
        #expect((resize.object["detail"] as? String)?.contains("uid=\(uid),pid=\(getpid())") == true)
        let allocate = try await UnixTestClient.request(
            daemon.socketPath, "POST", "/allocations", body: #"{"owner": "cni:x", "pf": "0000:3b:00.0"}"#)
        #expect(allocate.status == 201, "\(String(decoding: allocate.body, as: UTF8.self))")
        #expect(try await UnixTestClient.request(daemon.socketPath, "GET", "/pfs").status == 200)

        let readerOnly = try await SecuredDaemon(unixRoles: try UnixRoleMap(parsing: "uid:\(uid)=reader"))
        let lastEvent = try readerOnly.lastAuditID()
        let denied = try await UnixTestClient.request(
            readerOnly.socketPath, "POST", "/allocations", body: #"{"owner": "cni:y", "pf": "0000:3b:00.0"}"#)
        #expect(denied.status == 403)
        // A bad token on the socket is still the peer's uid in the audit.
        let badToken = try await UnixTestClient.request(
            readerOnly.socketPath, "DELETE", "/allocations/abc", headers: ["Authorization": "Bearer nope"])
        #expect(badToken.status == 401)
        let refusals = try readerOnly.auditEvents(after: lastEvent)
        #expect(refusals.map(\.action) == ["allocation.create", "allocation.release"])
        #expect(refusals.map(\.target) == ["/allocations", "abc"])
        #expect(refusals.allSatisfy { $0.outcome == .failure && $0.actor.hasPrefix("uid=\(uid),pid=\(getpid()),") })
        #expect(refusals.map { $0.error?.prefix(while: { $0 != ":" }) } == ["forbidden", "unauthenticated"])
        #expect(try readerOnly.allAllocations().isEmpty)
        #expect(try await UnixTestClient.request(readerOnly.socketPath, "GET", "/metrics").status == 200)
        await daemon.stop()
        await readerOnly.stop()
    }

    @Test func socketModeIsConfigurableAndTheFileGoesAtShutdown() async throws {
        let daemon = try await SecuredDaemon(unixMode: 0o600)
        var status = stat()
        #expect(lstat(daemon.socketPath, &status) == 0)
        #expect(status.st_mode & 0o777 == 0o600)
        await daemon.stop()
        #expect(lstat(daemon.socketPath, &status) != 0, "the socket file is removed at shutdown")
    }

    @Test func aLiveSocketIsNotStolenAndAStaleOneIsReplaced() async throws {
        let daemon = try await SecuredDaemon()
        var configuration = HTTPServerConfiguration()
        configuration.listensOnTCP = false
        configuration.unixSocket = .init(path: daemon.socketPath)
        let second = HTTPServer(configuration: configuration, handler: daemon.router, logger: .init(label: "t"))
        #expect(throws: SocketError.self) { try second.start() }
        #expect(try await UnixTestClient.request(daemon.socketPath, "GET", "/healthz").status == 200)

        // A socket file no one serves (a crashed daemon's) is replaced.
        let stalePath = "/tmp/sriovd-stale-\(UUID().uuidString.prefix(8)).sock"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: Array(stalePath.utf8))
        }
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        close(fd)
        configuration.unixSocket = .init(path: stalePath)
        let third = HTTPServer(configuration: configuration, handler: daemon.router, logger: .init(label: "t"))
        try third.start()
        #expect(try await UnixTestClient.request(stalePath, "GET", "/healthz").status == 200)
        await third.shutdown()
        await daemon.stop()
    }
}
