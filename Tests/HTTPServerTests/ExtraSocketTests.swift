import Glibc
import Logging
import Testing

@testable import HTTPServer

/// A second Unix socket with a handler of its own (sriovd's Docker plugin socket): its requests reach only its
/// handler, the main listeners' only theirs, and its file goes when the server stops.
struct ExtraSocketTests {
    @Test func eachSocketIsAnsweredByItsOwnHandler() async throws {
        let base = "/tmp/sriovd-extra-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var other = Router()
        other.add(.POST, "/Plugin.Activate") { _, context, _ in
            .response(.json(.ok, Array(#"{"Implements":["NetworkDriver"],"unix":\#(context.isUnixPeer)}"#.utf8)))
        }
        var configuration = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
        configuration.unixSocket = .init(path: base + "-main.sock", mode: 0o600)
        let server = HTTPServer(
            configuration: configuration, handler: makeTestRouter(), logger: Logger(label: "test"),
            extraSockets: [.init(socket: .init(path: base + "-plugin.sock", mode: 0o600), handler: other)])
        let port = try server.start().port
        do {
            let plugin = try TestClient(unixPath: base + "-plugin.sock")
            try plugin.send("POST /Plugin.Activate HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            let activated = try await plugin.readResponse()
            #expect(activated.status == 200)
            #expect(String(decoding: activated.body, as: UTF8.self).contains(#""unix":true"#))
            try plugin.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try await plugin.readResponse().status == 404, "the main routes are not on the plugin socket")
            for client in [try TestClient(unixPath: base + "-main.sock"), try TestClient(port: port)] {
                try client.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try await client.readResponse().status == 200)
                try client.send("POST /Plugin.Activate HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
                #expect(try await client.readResponse().status == 404, "the plugin route is only on its socket")
            }
        } catch {
            await server.shutdown()
            throw error
        }
        await server.shutdown()
        #expect(access(base + "-plugin.sock", F_OK) != 0, "the plugin socket's file is removed")
        #expect(access(base + "-main.sock", F_OK) != 0)
    }

    @Test func theExtraSocketAloneIsEnough() async throws {
        let path = "/tmp/sriovd-extra-only-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        var configuration = HTTPServerConfiguration()
        configuration.listensOnTCP = false
        let server = HTTPServer(
            configuration: configuration, handler: makeTestRouter(), logger: Logger(label: "test"),
            extraSockets: [.init(socket: .init(path: path), handler: makeTestRouter())])
        try server.start()
        let client = try TestClient(unixPath: path)
        try client.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        let answer = try await client.readResponse()
        await server.shutdown()
        #expect(answer.status == 200)
    }
}
