import CNIPlugin
import Glibc

// sriovd-cni: a CNI plugin (specification 1.1.0, also 1.0.0 and 0.4.0) whose state lives in sriovd. The runtime
// sets CNI_* in the environment and writes the configuration on stdin; the result or error goes to stdout, logs
// to stderr.

var environment: [String: String] = [:]
var pointer = environ
while let entry = pointer.pointee {
    let text = String(cString: entry)
    if let equals = text.firstIndex(of: "=") {
        environment[String(text[..<equals])] = String(text[text.index(after: equals)...])
    }
    pointer += 1
}

var input: [UInt8] = []
if environment["CNI_COMMAND"] != "VERSION" || isatty(0) == 0 {
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
        if count < 0 && errno == EINTR { continue }
        if count <= 0 { break }
        input.append(contentsOf: buffer[0..<count])
    }
}

let output = Plugin.run(environment: environment, stdin: input)
/// Writes all of `bytes` to a descriptor (the runtime reads stdout until its end).
func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    bytes.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let written = write(fd, raw.baseAddress! + offset, raw.count - offset)
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { break }
            offset += written
        }
    }
}

writeAll(2, Array(output.log.map { $0 + "\n" }.joined().utf8))
writeAll(1, output.stdout)
exit(output.exitStatus)
