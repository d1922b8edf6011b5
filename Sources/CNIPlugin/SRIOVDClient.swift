import FoundationEssentials
import SRIOVCore

/// sriovd's API as the plugin uses it, over the Unix socket. Answers that mean "later" (sriovd unreachable,
/// starting, busy) are code 11; refusals carry sriovd's problem detail.
public struct SRIOVDClient: Sendable {
    public let http: UnixHTTPClient
    /// Where each request's time is added (a phase per method and route).
    let timing: PhaseTiming?

    public init(socket: String, timeout: Duration = .seconds(30), timing: PhaseTiming? = nil) {
        http = UnixHTTPClient(path: socket, timeout: timeout)
        self.timing = timing
    }

    /// An allocation as `GET /allocations/{id}` shows it.
    public struct Allocation: Sendable {
        public var json: JSON
        public var id: String { json["id"]?.string ?? "" }
        public var vf: String { json["vf"]?.string ?? "" }
        public var state: String { json["state"]?.string ?? "" }
        public var owner: String { json["owner"]?.string ?? "" }
        public var labels: [String: String] { json["labels"]?.object?.compactMapValues(\.string) ?? [:] }
        /// The VF's netdev in the host namespace, as sysfs lists it now.
        public var interface: String? { json["device"]?["interface"]?.string }
        public var driver: String? { json["device"]?["driver"]?.string }
        public var attachment: JSON? { json["attachment"].flatMap { $0.isNull ? nil : $0 } }
        /// Whether it still holds its VF (every state but `released`).
        public var holdsVF: Bool { state != "released" && !state.isEmpty }
    }

    public func exchange(
        _ method: String, _ target: String, body: JSON? = nil, headers: [(String, String)] = []
    ) throws(CNIError) -> UnixHTTPClient.Response {
        do {
            let request = { () throws(UnixHTTPClient.Failure) in
                try http.request(method, target, body: body?.bytes, headers: headers)
            }
            guard let timing else { return try request() }
            return try timing.measure(Self.phase(method, target), request)
        } catch {
            throw CNIError(
                .tryAgainLater, "sriovd is unreachable at \(http.path)",
                details: "\(error); is sriovd running (systemctl status sriovd), and is the socket key right?")
        }
    }

    /// A 2xx body as JSON, or the problem as a CNI error.
    func json(_ response: UnixHTTPClient.Response, _ what: String) throws(CNIError) -> JSON {
        guard (200..<300).contains(response.status) else { throw problem(response, what) }
        guard let document = try? JSON.parse(response.body) else {
            throw CNIError(.tryAgainLater, "sriovd answered \(what) with a body that is not JSON")
        }
        return document
    }

    /// sriovd's problem+json as a CNI error: code 11 for what passes by itself, 7 for a config sriovd refuses,
    /// 100 for other refusals.
    func problem(_ response: UnixHTTPClient.Response, _ what: String) -> CNIError {
        let document = try? JSON.parse(response.body)
        let type = document?["type"]?.string ?? ""
        let slug = type.split(separator: ":").last.map(String.init) ?? ""
        let title = document?["title"]?.string ?? "HTTP \(response.status)"
        var detail = document?["detail"]?.string ?? String(decoding: response.body.prefix(512), as: UTF8.self)
        if let field = document?["field"]?.string { detail += " (field \(field))" }
        let message = "sriovd refused \(what): \(title)"
        switch (response.status, slug) {
        case (503, _), (504, _), (_, "pf-busy"), (_, "idempotent-request-in-progress"):
            return CNIError(.tryAgainLater, message, details: detail)
        case (400, _), (422, _):
            return CNIError(.invalidConfig, message, details: detail)
        case (401, _), (403, _):
            return CNIError(
                .refusedBySRIOVD, message,
                details: detail + "; the plugin needs the operator role on sriovd's socket (--unix-role)")
        default:
            return CNIError(.refusedBySRIOVD, message, details: detail)
        }
    }

    /// Every allocation this owner ever had, oldest first.
    public func allocations(owner: String) throws(CNIError) -> [Allocation] {
        let target = "/allocations?state=all&limit=500&owner=" + Self.percentEncoded(owner)
        let document = try json(try exchange("GET", target), "the allocation list")
        return (document["items"]?.array ?? []).map(Allocation.init)
    }

    /// Every active allocation, all pages.
    public func activeAllocations() throws(CNIError) -> [Allocation] {
        var items: [Allocation] = []
        var cursor: String?
        repeat {
            var target = "/allocations?state=active&limit=500"
            if let cursor { target += "&cursor=" + cursor }
            let document = try json(try exchange("GET", target), "the allocation list")
            items += (document["items"]?.array ?? []).map(Allocation.init)
            cursor = document["next"]?.string
        } while cursor != nil
        return items
    }

    public func allocation(id: String) throws(CNIError) -> Allocation? {
        let response = try exchange("GET", "/allocations/" + id)
        if response.status == 404 { return nil }
        return Allocation(json: try json(response, "GET /allocations/\(id)"))
    }

    /// What `POST /allocations` under an Idempotency-Key answered.
    public enum AllocationAnswer: Sendable {
        /// A new allocation.
        case created(Allocation)
        /// The first answer under this key, replayed (`Idempotent-Replayed: true`): as it was then, not now.
        case replayed(Allocation)
        /// The key was first used with another body (422 idempotency-key-reused).
        case keyReused
    }

    public func allocate(_ body: JSON, idempotencyKey: String) throws(CNIError) -> AllocationAnswer {
        let response = try exchange("POST", "/allocations", body: body, headers: [("Idempotency-Key", idempotencyKey)])
        if response.status == 422,
            (try? JSON.parse(response.body))?["type"]?.string == "urn:sriovd:problem:idempotency-key-reused"
        {
            return .keyReused
        }
        let allocation = Allocation(json: try json(response, "the allocation"))
        return response.header("Idempotent-Replayed") == "true" ? .replayed(allocation) : .created(allocation)
    }

    public func setAttachment(id: String, _ body: JSON) throws(CNIError) {
        _ = try json(try exchange("PUT", "/allocations/\(id)/attachment", body: body), "the attachment")
    }

    /// Releases; an allocation already released (404) is success.
    public func release(id: String) throws(CNIError) {
        let response = try exchange("DELETE", "/allocations/" + id)
        guard response.status == 204 || response.status == 404 else {
            throw problem(response, "the release of allocation \(id)")
        }
    }

    public func isReady() throws(CNIError) -> (Bool, String) {
        let response = try exchange("GET", "/readyz")
        let detail = (try? JSON.parse(response.body))?["detail"]?.string ?? "HTTP \(response.status)"
        return (response.status == 200, detail)
    }

    public func vfs(pf: String?) throws(CNIError) -> [JSON] {
        let target = pf.map { "/vfs?pf=" + $0 } ?? "/vfs"
        return try json(try exchange("GET", target), "the VF list")["items"]?.array ?? []
    }

    public func pfs() throws(CNIError) -> [JSON] {
        try json(try exchange("GET", "/pfs"), "the PF list")["items"]?.array ?? []
    }

    public func vf(_ address: String) throws(CNIError) -> JSON? {
        let response = try exchange("GET", "/vfs/" + address)
        if response.status == 404 { return nil }
        return try json(response, "GET /vfs/\(address)")
    }

    /// `GET/allocations`, `PUT/attachment`: the method and route of a request, for `PhaseTiming`.
    static func phase(_ method: String, _ target: String) -> String {
        let path = target.split(separator: "?").first.map(String.init) ?? target
        let last = path.hasSuffix("/attachment") ? "attachment" : path.split(separator: "/").first.map(String.init)
        return method + "/" + (last ?? "")
    }

    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            let scalar = Unicode.Scalar(byte)
            if scalar.isASCIIAlphanumeric || "-._~:".unicodeScalars.contains(scalar) {
                out.unicodeScalars.append(scalar)
            } else {
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }
}

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
