import HTTPServer
import SRIOVCore

/// The HTTP server's access-log hook: counts every response in `Metrics`, and, unless the access log is off,
/// hands it to an `AccessLogWriter`, which logs it as one line with the request id, method, route pattern, path,
/// status, duration, peer and actor.
public enum AccessLog {
    /// What `HTTPServer` calls for each response, on the event loop thread.
    public typealias Hook = @Sendable (HTTPRequest, HTTPResponse, RequestContext, Duration) -> Void

    /// The hook; `writer` nil turns the per-request lines off (`--no-access-log`), the metrics still count.
    public static func makeHook(writer: AccessLogWriter?, metrics: Metrics = .shared) -> Hook {
        guard let writer else {
            return { request, response, context, elapsed in metrics.observe(request, response, context, elapsed) }
        }
        return { request, response, context, elapsed in
            metrics.observe(request, response, context, elapsed)
            writer.record(request, response, context, elapsed)
        }
    }

    /// `elapsed` in milliseconds with three decimals ("0.042").
    public static func milliseconds(_ elapsed: Duration) -> String {
        let micros = microseconds(elapsed)
        return "\(micros / 1000)." + (micros % 1000).zeroPadded(toWidth: 3)
    }

    /// `elapsed` in whole microseconds, 0 when negative.
    static func microseconds(_ elapsed: Duration) -> Int {
        let (seconds, attoseconds) = elapsed.components
        return Int(max(0, seconds) * 1_000_000 + max(0, attoseconds) / 1_000_000_000_000)
    }
}
