import Foundation
import HTTPServer
import Logging
import SRIOVService
import Synchronization
import Testing

/// `GET /metrics` is valid Prometheus text exposition and moves when the daemon does; logs are one logfmt line.
@Suite(.serialized) struct MetricsTests {
    /// One sample: name, labels, value.
    struct Sample: Hashable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    /// A strict reader of the text format 0.0.4: HELP and TYPE before a family's samples, names and labels
    /// well formed, values numbers, no series twice, histograms with cumulative buckets ending in +Inf = count.
    static func parseExposition(_ text: String) throws -> [Sample] {
        struct Invalid: Error, CustomStringConvertible { var description: String }
        let name = #/[a-zA-Z_:][a-zA-Z0-9_:]*/#
        var types: [String: String] = [:]
        var helped: Set<String> = []
        var seen: Set<String> = []
        var samples: [Sample] = []
        guard text.hasSuffix("\n") else { throw Invalid(description: "the exposition must end with a newline") }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ", maxSplits: 3)
                guard parts.count >= 3, (try? name.wholeMatch(in: parts[2])) != nil else {
                    throw Invalid(description: "bad comment: \(line)")
                }
                let family = String(parts[2])
                if parts[1] == "TYPE" {
                    guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]),
                        types[family] == nil
                    else { throw Invalid(description: "bad or repeated TYPE: \(line)") }
                    types[family] = String(parts[3])
                } else {
                    guard helped.insert(family).inserted else { throw Invalid(description: "HELP twice: \(line)") }
                }
                continue
            }
            guard !line.hasPrefix("#"), !line.isEmpty else { throw Invalid(description: "unexpected line: \(line)") }
            guard let match = try #/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/#.wholeMatch(in: line) else {
                throw Invalid(description: "bad sample: \(line)")
            }
            let sampleName = String(match.1)
            var labels: [String: String] = [:]
            if let body = match.3 {
                var rest = Substring(body)
                while !rest.isEmpty {
                    guard
                        let pair = try #/^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/#.prefixMatch(
                            in: rest)
                    else { throw Invalid(description: "bad labels: \(line)") }
                    guard labels[String(pair.1)] == nil else { throw Invalid(description: "label twice: \(line)") }
                    labels[String(pair.1)] = String(pair.2)
                    rest = rest[pair.range.upperBound...]
                }
            }
            let valueText = String(match.4)
            guard
                let value = ["+Inf": Double.infinity, "-Inf": -Double.infinity, "NaN": Double.nan][valueText]
                    ?? Double(valueText)
            else { throw Invalid(description: "bad value: \(line)") }
            let family = ["_bucket", "_sum", "_count", "_total"].reduce(sampleName) { name, suffix in
                types[name] == nil && name.hasSuffix(suffix) && types[String(name.dropLast(suffix.count))] != nil
                    ? String(name.dropLast(suffix.count)) : name
            }
            guard types[family] != nil else { throw Invalid(description: "sample before its TYPE: \(line)") }
            let series = sampleName + labels.sorted { $0.key < $1.key }.description
            guard seen.insert(series).inserted else { throw Invalid(description: "series twice: \(line)") }
            samples.append(Sample(name: sampleName, labels: labels, value: value))
        }
        // Histograms: buckets cumulative, +Inf present and equal to _count.
        for (family, type) in types where type == "histogram" {
            let buckets = samples.filter { $0.name == family + "_bucket" }
            let groups = Dictionary(grouping: buckets) { $0.labels.filter { $0.key != "le" } }
            for (labels, group) in groups {
                let ordered = group.sorted {
                    Double($0.labels["le"]!.replacingOccurrences(of: "+Inf", with: "inf"))! < Double(
                        $1.labels["le"]!.replacingOccurrences(of: "+Inf", with: "inf"))!
                }
                guard ordered.last?.labels["le"] == "+Inf" else {
                    throw Invalid(description: "\(family): no +Inf bucket")
                }
                guard zip(ordered, ordered.dropFirst()).allSatisfy({ $0.value <= $1.value }) else {
                    throw Invalid(description: "\(family): buckets not cumulative")
                }
                let count = samples.first { $0.name == family + "_count" && $0.labels == labels }
                guard count?.value == ordered.last?.value else {
                    throw Invalid(description: "\(family): +Inf != count")
                }
            }
        }
        return samples
    }

    static func value(_ samples: [Sample], _ name: String, _ labels: [String: String] = [:]) -> Double {
        samples.first { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }?
            .value ?? 0
    }

    @Test func exposionParsesAndCountsMoveAfterAnAllocation() async throws {
        let daemon = try await SecuredDaemon()
        let client = try daemon.client()
        let reader = SecuredDaemon.bearer(.reader)
        let before = try await client.request("GET", "/metrics", headers: reader)
        #expect(before.status == 200)
        #expect(before.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
        let first = try Self.parseExposition(before.text)
        #expect(Self.value(first, "sriovd_pfs") == 4)
        #expect(Self.value(first, "sriovd_ready") == 1)
        #expect(Self.value(first, "sriovd_pf_total_vfs", ["pf": "0000:5e:00.0"]) == 128)
        #expect(Self.value(first, "sriovd_vfs", ["pf": "0000:3b:00.0", "state": "free"]) == 4)

        let created = try await client.request(
            "POST", "/allocations", json: ["owner": "vm:metrics", "pf": "0000:3b:00.0"],
            headers: SecuredDaemon.bearer(.operator))
        #expect(created.status == 201)
        let id = try #require(created.object["id"] as? String)
        let middle = try Self.parseExposition(try await client.request("GET", "/metrics", headers: reader).text)
        #expect(Self.value(middle, "sriovd_vfs", ["pf": "0000:3b:00.0", "state": "allocated"]) == 1)
        #expect(Self.value(middle, "sriovd_vfs", ["pf": "0000:3b:00.0", "state": "free"]) == 3)
        #expect(
            Self.value(middle, "sriovd_allocations_created_total")
                == Self.value(first, "sriovd_allocations_created_total") + 1)
        let posted = ["method": "POST", "route": "/allocations", "status": "201"]
        #expect(
            Self.value(middle, "sriovd_http_requests_total", posted)
                == Self.value(first, "sriovd_http_requests_total", posted) + 1)
        let latency = ["method": "POST", "route": "/allocations", "le": "+Inf"]
        #expect(
            Self.value(middle, "sriovd_http_request_duration_seconds_bucket", latency)
                == Self.value(first, "sriovd_http_request_duration_seconds_bucket", latency) + 1)

        let released = try await client.request(
            "DELETE", "/allocations/\(id)", headers: SecuredDaemon.bearer(.operator))
        #expect(released.status == 204)
        // Raw paths never become labels: the route pattern does.
        _ = try await client.request("GET", "/allocations/\(id)", headers: reader)
        let last = try await client.request("GET", "/metrics", headers: reader)
        let after = try Self.parseExposition(last.text)
        #expect(
            Self.value(after, "sriovd_allocations_released_total")
                == Self.value(first, "sriovd_allocations_released_total") + 1)
        #expect(!last.text.contains(id))
        #expect(Self.value(after, "sriovd_http_requests_total", ["route": "/allocations/{id}", "method": "GET"]) >= 1)
        #expect(Self.value(after, "sriovd_vfs", ["pf": "0000:3b:00.0", "state": "allocated"]) == 0)
        #expect(try await daemon.client().get("/metrics").status == 401, "metrics need a reader")
        try Self.checkWithPrometheusClient(last.text)
        await daemon.stop()
    }

    @Test func hardwareAndReconcileHooksAppear() throws {
        let metrics = Metrics()
        metrics.recordHardwareWrite(errno: 0)
        metrics.recordHardwareWrite(errno: 16)
        metrics.recordHardwareWrite(errnoName: "ETIMEDOUT")
        metrics.recordHardwareWrite(errno: 16)
        metrics.setReconcileDuration(0.25)
        metrics.recordAllocationReleased(count: 2)
        let text = metrics.exposition()
        let samples = try Self.parseExposition(text)
        #expect(Self.value(samples, "sriovd_hardware_writes_total") == 4)
        #expect(Self.value(samples, "sriovd_hardware_write_errors_total", ["errno": "EBUSY"]) == 2)
        #expect(Self.value(samples, "sriovd_hardware_write_errors_total", ["errno": "ETIMEDOUT"]) == 1)
        #expect(Self.value(samples, "sriovd_reconcile_duration_seconds") == 0.25)
        #expect(Self.value(samples, "sriovd_reconcile_runs_total") == 1)
        #expect(Self.value(samples, "sriovd_allocations_released_total") == 2)
        try Self.checkWithPrometheusClient(text)
    }

    @Test func theHTTPServersClientLimitsAppear() throws {
        let metrics = Metrics()
        metrics.attachServerStatistics {
            HTTPServerStatistics(
                openConnections: 7, bufferedBodyBytes: 1024, refusals: [.peerConnections: 3, .slowClient: 1])
        }
        let text = metrics.exposition()
        let samples = try Self.parseExposition(text)
        #expect(Self.value(samples, "sriovd_http_open_connections") == 7)
        #expect(Self.value(samples, "sriovd_http_buffered_body_bytes") == 1024)
        #expect(Self.value(samples, "sriovd_http_limit_refusals_total", ["limit": "peer_connections"]) == 3)
        #expect(Self.value(samples, "sriovd_http_limit_refusals_total", ["limit": "slow_client"]) == 1)
        #expect(Self.value(samples, "sriovd_http_limit_refusals_total", ["limit": "body_memory"]) == 0)
        try Self.checkWithPrometheusClient(text)
    }

    @Test func theParserRejectsBadExposition() {
        for bad in [
            "sriovd_x 1\n", "# TYPE a counter\na{b=\"c} 1\n", "# TYPE a gauge\na one\n", "# TYPE a gauge\na 1",
            "# TYPE a gauge\na 1\na 2\n",
        ] {
            #expect(throws: (any Error).self, "\(bad)") { try Self.parseExposition(bad) }
        }
    }

    /// When Python's prometheus_client is installed (CI installs it), it must read the exposition too.
    static func checkWithPrometheusClient(_ text: String) throws {
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        probe.arguments = ["python3", "-c", "import prometheus_client"]
        probe.standardError = FileHandle.nullDevice
        try probe.run()
        probe.waitUntilExit()
        guard probe.terminationStatus == 0 else { return }
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        check.arguments = [
            "python3", "-c",
            "import sys; from prometheus_client.parser import text_string_to_metric_families as p; "
                + "print(len(list(p(sys.stdin.read()))))",
        ]
        let input = Pipe()
        check.standardInput = input
        let output = Pipe()
        check.standardOutput = output
        check.standardError = output
        try check.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        check.waitUntilExit()
        #expect(check.terminationStatus == 0, "prometheus_client: \(said)")
    }

    // MARK: - Logs

    @Test func logLinesAreLogfmt() {
        let lines = Mutex<[String]>([])
        var handler = LogfmtLogHandler(label: "sriovd", level: .info) { line in lines.withLock { $0.append(line) } }
        handler[metadataKey: "pid"] = "1"
        let logger = Logger(label: "sriovd") { _ in handler }
        logger.debug("hidden")
        logger.info(
            "request", metadata: ["http.path": "/a b", "quote": "say \"hi\"", "empty": "", "line": "a\nb"])
        let written = lines.withLock { $0 }
        #expect(written.count == 1)
        let line = written[0]
        #expect(line.hasSuffix("\n") && line.dropLast().allSatisfy { $0 != "\n" })
        #expect(line.hasPrefix("ts=") && line.contains(" level=info logger=sriovd msg=request "))
        #expect(line.contains(#"http.path="/a b""#))
        #expect(line.contains(#"quote="say \"hi\"""#))
        #expect(line.contains(#"empty="""#))
        #expect(line.contains(#"line="a\nb""#))
        #expect(line.contains(" pid=1"))
    }

    @Test func accessLogNamesRouteStatusDurationAndRequestID() async throws {
        let pipe = try LogPipe()
        let writer = try AccessLogWriter.start(fd: pipe.writeEnd)
        let metrics = Metrics()
        let hook = AccessLog.makeHook(writer: writer, metrics: metrics)
        let context = RequestContext(requestID: "req-1", peer: "127.0.0.1:5")
        context.annotations.route = "/pfs/{address}"
        _ = context.replacingPeer("ci-bot")
        hook(
            HTTPRequest(method: .GET, target: "/pfs/0000:3b:00.0"), HTTPResponse(status: .ok), context,
            .milliseconds(3))
        let quiet = AccessLog.makeHook(writer: nil, metrics: metrics)
        quiet(
            HTTPRequest(method: .GET, target: "/x"), HTTPResponse(status: .notFound),
            RequestContext(requestID: "r", peer: "p"), .zero)
        let lines = try await pipe.closeAndReadAll(after: writer).split(separator: "\n")
        #expect(lines.count == 1, "--no-access-log logs nothing but still counts")
        let line = lines.first ?? ""
        for part in [
            "request_id=req-1", "http.route=/pfs/{address}", "http.status=200", "duration_ms=3.000", "actor=ci-bot",
            "http.path=/pfs/0000:3b:00.0", "peer=127.0.0.1:5",
        ] {
            #expect(line.contains(part), "\(part) in \(line)")
        }
        #expect(metrics.exposition().contains(#"route="/pfs/{address}",status="200""#))
        #expect(metrics.exposition().contains(#"route="unmatched",status="404""#))
    }

    @Test(arguments: [
        (Duration.zero, "0.000"), (.nanoseconds(999), "0.000"), (.microseconds(42), "0.042"),
        (.microseconds(1_005), "1.005"), (.milliseconds(3), "3.000"), (.microseconds(1_234_567), "1234.567"),
    ])
    func accessLogDurationHasThreeDecimals(elapsed: Duration, expected: String) {
        #expect(AccessLog.milliseconds(elapsed) == expected)
    }

    @Test func logTimestampIsRFC3339InUTCWithMilliseconds() {
        let stamp = LogfmtLogHandler.timestamp()
        #expect(stamp.wholeMatch(of: #/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/#) != nil, "\(stamp)")
        let year = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: Date()).year!
        #expect(stamp.hasPrefix(String(year)) || stamp.hasPrefix(String(year - 1)))
    }
}
