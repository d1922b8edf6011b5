import FoundationEssentials
import Glibc
import HTTPServer
import SRIOVStore
import Synchronization

/// The daemon's counters, gauges and histograms, rendered in the Prometheus text format by `GET /metrics`.
///
/// Requests are observed through the HTTP server's access-log hook (`observe(_:_:_:_:)`), labelled by the matched
/// route pattern, never the raw path, so the number of series stays bounded. Allocations created and released
/// are counted from the API's answers (201 to `POST /allocations` that is not an idempotent replay; 204 to
/// `DELETE /allocations/{id}`); other code that creates or releases (the reconciler) calls the `record…` methods.
/// Inventory gauges are read at scrape time, so they are never stale.
public final class Metrics: Sendable {
    /// The process's metrics. One daemon runs per process; tests that run several read differences.
    public static let shared = Metrics()

    /// Upper bounds, in seconds, of the request latency histogram's buckets (then +Inf).
    public static let latencyBuckets: [Double] = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]

    struct RequestKey: Hashable {
        var method: String
        var route: String
        var status: Int
    }

    struct LatencyKey: Hashable {
        var method: String
        var route: String
    }

    struct Histogram {
        var buckets = [Int](repeating: 0, count: Metrics.latencyBuckets.count)
        var count = 0
        var sum = 0.0

        /// Counts one observation of `seconds`, in bucket `slot` (nil: above the last bound, only in `+Inf`).
        mutating func record(_ seconds: Double, slot: Int?) {
            if let slot { buckets[slot] += 1 }
            count += 1
            sum += seconds
        }
    }

    struct State {
        var requests: [RequestKey: Int] = [:]
        var latency: [LatencyKey: Histogram] = [:]
        var allocationsCreated = 0
        var allocationsReleased = 0
        var reconcileDuration: Double?
        var reconcileRuns = 0
        var reconcileLastSuccess: Double?
        var hardwareWrites = 0
        var hardwareWriteErrors: [String: Int] = [:]
    }

    private let state = Mutex(State())
    /// Reads the HTTP server's connection and client-limit figures at scrape time; nil until a server is attached.
    private let serverStatistics = Mutex<(@Sendable () -> HTTPServerStatistics)?>(nil)

    public init() {}

    // MARK: - Hooks

    /// Records one answered request: its count by method, route and status, its latency, and what it did to
    /// allocations. Call it from the HTTP server's access-log hook.
    public func observe(
        _ request: HTTPRequest, _ response: HTTPResponse, _ context: RequestContext, _ elapsed: Duration
    ) {
        let method = Self.methodLabel(request.method)
        let route = context.annotations.route ?? "unmatched"
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let status = response.status.code
        let createdAllocation =
            method == "POST" && route == "/allocations" && status == 201
            && response.headers["Idempotent-Replayed"] == nil
        let releasedAllocation = method == "DELETE" && route == "/allocations/{id}" && status == 204
        state.withLock { state in
            state.requests[RequestKey(method: method, route: route, status: status), default: 0] += 1
            // Mutated in place: copying the histogram out and back would copy its bucket array on every request.
            state.latency[LatencyKey(method: method, route: route), default: Histogram()].record(
                seconds, slot: Self.latencyBuckets.firstIndex(where: { seconds <= $0 }))
            if createdAllocation { state.allocationsCreated += 1 }
            if releasedAllocation { state.allocationsReleased += 1 }
        }
    }

    /// Exposes `read()`'s figures (open connections, buffered body bytes, refusals per client limit) at each scrape.
    public func attachServerStatistics(_ read: @escaping @Sendable () -> HTTPServerStatistics) {
        serverStatistics.withLock { $0 = read }
    }

    /// Counts an allocation created other than through `POST /allocations`.
    public func recordAllocationCreated() { state.withLock { $0.allocationsCreated += 1 } }

    /// Counts allocations released other than through `DELETE /allocations/{id}` (by the reconciler, say).
    public func recordAllocationReleased(count: Int = 1) { state.withLock { $0.allocationsReleased += count } }

    /// Sets how long the latest reconcile pass took; `succeeded` also stamps the time of the last good pass.
    public func setReconcileDuration(_ seconds: Double, succeeded: Bool = true) {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        let now = Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
        state.withLock { state in
            state.reconcileDuration = seconds
            state.reconcileRuns += 1
            if succeeded { state.reconcileLastSuccess = now }
        }
    }

    /// Counts one hardware write (sysfs or netlink): `errno` 0 for success, else the kernel's errno.
    public func recordHardwareWrite(errno: Int32) {
        recordHardwareWrite(errnoName: errno == 0 ? nil : ErrnoName.of(errno))
    }

    /// Counts one hardware write by errno name ("EBUSY", "ETIMEDOUT" for a write that timed out); nil for success.
    public func recordHardwareWrite(errnoName: String?) {
        state.withLock { state in
            state.hardwareWrites += 1
            if let errnoName { state.hardwareWriteErrors[errnoName, default: 0] += 1 }
        }
    }

    // MARK: - Reading

    /// Allocations created and released so far, for tests and the exposition.
    public var allocationCounts: (created: Int, released: Int) {
        state.withLock { ($0.allocationsCreated, $0.allocationsReleased) }
    }

    static func methodLabel(_ method: HTTPMethod) -> String {
        switch method {
        case .GET, .HEAD, .POST, .PUT, .PATCH, .DELETE, .OPTIONS: method.rawValue
        default: "other"
        }
    }

    /// This object's metrics alone, as Prometheus text (`GET /metrics` adds the inventory gauges first).
    public func exposition() -> String {
        var text = PrometheusText()
        render(into: &text)
        return text.text
    }

    /// Appends this process's metrics to `text`.
    func render(into text: inout PrometheusText) {
        let state = self.state.withLock { $0 }
        text.family(
            "sriovd_http_requests_total", "HTTP requests answered, by method, route pattern and status.", .counter)
        for (key, count) in state.requests.sorted(by: {
            ($0.key.route, $0.key.method, $0.key.status) < ($1.key.route, $1.key.method, $1.key.status)
        }) {
            text.sample(
                "sriovd_http_requests_total",
                ["method": key.method, "route": key.route, "status": String(key.status)], Double(count))
        }
        text.family(
            "sriovd_http_request_duration_seconds",
            "Time from a request's last byte to its response being queued, by method and route pattern.", .histogram)
        for (key, histogram) in state.latency.sorted(by: {
            ($0.key.route, $0.key.method) < ($1.key.route, $1.key.method)
        }) {
            var cumulative = 0
            let labels = ["method": key.method, "route": key.route]
            for (bound, count) in zip(Self.latencyBuckets, histogram.buckets) {
                cumulative += count
                text.sample(
                    "sriovd_http_request_duration_seconds_bucket",
                    labels.merging(["le": PrometheusText.format(bound)]) { $1 },
                    Double(cumulative))
            }
            text.sample(
                "sriovd_http_request_duration_seconds_bucket", labels.merging(["le": "+Inf"]) { $1 },
                Double(histogram.count))
            text.sample("sriovd_http_request_duration_seconds_sum", labels, histogram.sum)
            text.sample("sriovd_http_request_duration_seconds_count", labels, Double(histogram.count))
        }
        text.family("sriovd_allocations_created_total", "Allocations created since the daemon started.", .counter)
        text.sample("sriovd_allocations_created_total", [:], Double(state.allocationsCreated))
        text.family("sriovd_allocations_released_total", "Allocations released since the daemon started.", .counter)
        text.sample("sriovd_allocations_released_total", [:], Double(state.allocationsReleased))
        text.family("sriovd_reconcile_duration_seconds", "How long the latest reconcile pass took.", .gauge)
        if let duration = state.reconcileDuration { text.sample("sriovd_reconcile_duration_seconds", [:], duration) }
        text.family("sriovd_reconcile_runs_total", "Reconcile passes since the daemon started.", .counter)
        text.sample("sriovd_reconcile_runs_total", [:], Double(state.reconcileRuns))
        text.family(
            "sriovd_reconcile_last_success_timestamp_seconds", "When the latest successful reconcile pass ended.",
            .gauge)
        if let last = state.reconcileLastSuccess {
            text.sample("sriovd_reconcile_last_success_timestamp_seconds", [:], last)
        }
        text.family("sriovd_hardware_writes_total", "Hardware writes (sysfs and netlink) attempted.", .counter)
        text.sample("sriovd_hardware_writes_total", [:], Double(state.hardwareWrites))
        text.family("sriovd_hardware_write_errors_total", "Hardware writes that failed, by errno.", .counter)
        for (name, count) in state.hardwareWriteErrors.sorted(by: { $0.key < $1.key }) {
            text.sample("sriovd_hardware_write_errors_total", ["errno": name], Double(count))
        }
        if let read = serverStatistics.withLock({ $0 }) { Self.render(read(), into: &text) }
        Self.render(PhaseLatencies.shared, into: &text)
    }

    /// The HTTP server's figures: open connections, buffered body bytes and refusals by client limit.
    static func render(_ server: HTTPServerStatistics, into text: inout PrometheusText) {
        text.family("sriovd_http_open_connections", "HTTP connections open.", .gauge)
        text.sample("sriovd_http_open_connections", [:], Double(server.openConnections))
        text.family(
            "sriovd_http_buffered_body_bytes", "Body bytes of HTTP requests in progress (--body-memory-mib bounds it).",
            .gauge)
        text.sample("sriovd_http_buffered_body_bytes", [:], Double(server.bufferedBodyBytes))
        text.family(
            "sriovd_http_limit_refusals_total",
            "Connections and requests refused (429, 503) or timed out (408) by a client limit, by limit.", .counter)
        for kind in LimitKind.allCases {
            text.sample(
                "sriovd_http_limit_refusals_total", ["limit": kind.rawValue], Double(server.refusals[kind] ?? 0))
        }
    }
}

/// Errno names for the values sysfs and netlink writes fail with.
enum ErrnoName {
    static let names: [Int32: String] = [
        1: "EPERM", 2: "ENOENT", 5: "EIO", 6: "ENXIO", 11: "EAGAIN", 12: "ENOMEM", 13: "EACCES", 16: "EBUSY",
        17: "EEXIST", 19: "ENODEV", 22: "EINVAL", 28: "ENOSPC", 34: "ERANGE", 95: "EOPNOTSUPP", 110: "ETIMEDOUT",
    ]

    static func of(_ errno: Int32) -> String { names[errno] ?? "errno_\(errno)" }
}
