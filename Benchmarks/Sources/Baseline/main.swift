// Baseline: Hummingbird 2 serving a fixed JSON body at GET /pfs (and GET /readyz), so that bench/compare.sh
// can compare sriovd's hand-written server against a mainstream Swift server on the same machine and run.
//
// Usage: Baseline --body FILE [--host 127.0.0.1] [--port 0]
// FILE holds the bytes of sriovd's `GET /pfs` response (compare.sh fetches them from a running sriovd).
// Prints "baseline listening on http://HOST:PORT" once the socket is bound.
import Foundation
import Hummingbird
import Logging

var bodyPath: String?
var host = "127.0.0.1"
var port = 0
var args = CommandLine.arguments.dropFirst().makeIterator()
while let arg = args.next() {
    switch arg {
    case "--body": bodyPath = args.next()
    case "--host": host = args.next() ?? host
    case "--port": port = Int(args.next() ?? "") ?? port
    default:
        FileHandle.standardError.write(Data("unknown argument \(arg)\n".utf8))
        exit(2)
    }
}
guard let bodyPath, let body = FileManager.default.contents(atPath: bodyPath) else {
    FileHandle.standardError.write(Data("usage: Baseline --body FILE [--host H] [--port P]\n".utf8))
    exit(2)
}

let listenHost = host
let listenPort = port
let pfs = ByteBuffer(bytes: body)
let ready = ByteBuffer(string: #"{"status":"ready"}"#)
let router = Router()
router.get("/pfs") { _, _ -> Response in
    Response(
        status: .ok,
        headers: [.contentType: "application/json"],
        body: .init(byteBuffer: pfs)
    )
}
router.get("/readyz") { _, _ -> Response in
    Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ready))
}

let app = Application(
    router: router,
    configuration: .init(address: .hostname(listenHost, port: listenPort), serverName: nil),
    onServerRunning: { channel in
        let bound = channel.localAddress?.port ?? listenPort
        FileHandle.standardOutput.write(Data("baseline listening on http://\(listenHost):\(bound)\n".utf8))
    },
    logger: {
        var logger = Logger(label: "baseline")
        logger.logLevel = .error
        return logger
    }()
)
try await app.runService()
