import FoundationEssentials
import Glibc
import HTTPServer
import Logging
import SRIOVCore
import Synchronization

/// A swift-log handler that writes one logfmt line per message to standard error:
/// `ts=2026-11-25T09:00:00.123Z level=info logger=sriovd msg="HTTP server listening" http.address=127.0.0.1:8080`.
/// Values with spaces, quotes, `=` or control characters are quoted and escaped; each line is one `write`.
public struct LogfmtLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let output: @Sendable (String) -> Void

    /// Writes to standard error.
    public init(label: String, level: Logger.Level) {
        self.init(label: label, level: level, output: LogfmtLogHandler.writeToStandardError)
    }

    /// Writes each line to `output` (tests).
    public init(label: String, level: Logger.Level, output: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.logLevel = level
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line =
            "ts=\(Self.timestamp()) level=\(event.level) logger=\(Self.quote(label)) msg=\(Self.quote(event.message.description))"
        var merged = metadata
        if let explicit = event.metadata { merged.merge(explicit) { $1 } }
        if let error = event.error { merged["error"] = "\(error)" }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            line += " \(Self.key(key))=\(Self.quote(Self.text(value)))"
        }
        output(line + "\n")
    }

    /// Held while a line or a batch of lines is written to standard error, so that no two interleave.
    static let writeLock = Mutex(())

    @Sendable static func writeToStandardError(_ line: String) {
        writeLock.withLock { _ in Console.write(line, to: 2) }
    }

    public static func timestamp() -> String { Timestamp.now() }

    static func text(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let string): string
        case .stringConvertible(let convertible): convertible.description
        case .array(let values): values.map { text($0) }.joined(separator: ",")
        case .dictionary(let values):
            values.sorted { $0.key < $1.key }.map { "\($0.key):\(text($0.value))" }.joined(separator: ",")
        }
    }

    /// A key keeps letters, digits and `._-`; anything else becomes `_`.
    static func key(_ key: String) -> String {
        String(key.map { $0.isLetter || $0.isNumber || "._-".contains($0) ? $0 : "_" })
    }

    /// A value as is when it is a plain token, otherwise in double quotes with `\\`, `"` and control characters
    /// escaped.
    static func quote(_ value: String) -> String {
        let plain =
            !value.isEmpty
            && value.unicodeScalars.allSatisfy {
                $0.value > 0x20 && $0 != "\"" && $0 != "=" && $0 != "\\" && $0.value != 0x7f
            }
        if plain { return value }
        var out = ""
        value.appendQuoted(to: &out, escapingDelete: true)
        return out
    }
}
