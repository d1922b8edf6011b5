import HTTPServer
import SRIOVCore
import SRIOVStore

/// The one place where a domain error becomes an HTTP answer.
///
/// Every problem type is `urn:sriovd:problem:<slug>`, so clients can switch on it without parsing prose.
extension SRIOVError {
    var httpStatus: HTTPStatus {
        switch self {
        case .malformedAddress, .malformedBody, .invalidParameter: .badRequest
        case .pfNotFound, .vfNotFound, .allocationNotFound, .operationNotFound, .quotaNotFound, .dockerNetworkNotFound,
            .dockerEndpointNotFound:
            .notFound
        case .dockerOption: .unprocessableContent
        case .dockerNetworkInUse: .conflict
        case .invalidField, .countOutOfRange, .settingUnsupported, .idempotencyKeyReused: .unprocessableContent
        case .noFreeVF, .vfsHeld, .vfHeld, .noSRIOVDriver, .pfBusy, .kernelBusy, .idempotentRequestInProgress,
            .idempotentRequestInterrupted, .antiAffinityUnsatisfiable, .quotaExceeded, .leaseExpired, .pfCordoned,
            .vfExternal, .noMoveDestination, .pfPartlyManaged, .allocationAttached, .generationMismatch:
            .conflict
        case .hardwareTimeout: .gatewayTimeout
        case .kernel, .storage, .storageAfterWrite, .interrupted: .internalServerError
        case .notReady, .tooManySubscribers: .serviceUnavailable
        }
    }

    var problemSlug: String {
        switch self {
        case .malformedAddress: "malformed-address"
        case .malformedBody: "malformed-body"
        case .pfNotFound: "pf-not-found"
        case .vfNotFound: "vf-not-found"
        case .allocationNotFound: "allocation-not-found"
        case .operationNotFound: "operation-not-found"
        case .quotaNotFound: "quota-not-found"
        case .tooManySubscribers: "too-many-subscribers"
        case .interrupted: "interrupted"
        case .invalidField: "invalid-field"
        case .invalidParameter: "invalid-parameter"
        case .noFreeVF, .noMoveDestination: "no-free-vf"
        case .antiAffinityUnsatisfiable: "anti-affinity-unsatisfiable"
        case .quotaExceeded: "quota-exceeded"
        case .leaseExpired: "lease-expired"
        case .vfsHeld: "vfs-held"
        case .vfHeld: "vf-held"
        case .countOutOfRange: "count-out-of-range"
        case .noSRIOVDriver: "no-sriov-driver"
        case .pfBusy, .kernelBusy: "pf-busy"
        case .hardwareTimeout: "hardware-timeout"
        case .settingUnsupported: "setting-unsupported"
        case .kernel: "kernel-error"
        case .idempotencyKeyReused: "idempotency-key-reused"
        case .storage, .storageAfterWrite: "storage-error"
        case .idempotentRequestInProgress: "idempotent-request-in-progress"
        case .idempotentRequestInterrupted: "idempotent-request-interrupted"
        case .notReady: "not-ready"
        case .pfCordoned: "pf-cordoned"
        case .vfExternal: "vf-external"
        case .pfPartlyManaged: "pf-partly-managed"
        case .allocationAttached: "allocation-attached"
        case .generationMismatch: "generation-mismatch"
        case .dockerNetworkNotFound: "docker-network-not-found"
        case .dockerEndpointNotFound: "docker-endpoint-not-found"
        case .dockerNetworkInUse: "docker-network-in-use"
        case .dockerOption: "docker-option"
        }
    }

    var title: String {
        switch self {
        case .malformedAddress: "Malformed PCI address"
        case .malformedBody: "Malformed request body"
        case .pfNotFound: "Physical function not found"
        case .vfNotFound: "Virtual function not found"
        case .allocationNotFound: "Allocation not found"
        case .operationNotFound: "Operation not found"
        case .quotaNotFound: "Quota not found"
        case .tooManySubscribers: "Too many event subscribers"
        case .interrupted: "Interrupted by a restart"
        case .invalidField: "Invalid field"
        case .invalidParameter: "Invalid query parameter"
        case .noFreeVF, .noMoveDestination: "No free virtual function"
        case .antiAffinityUnsatisfiable: "Anti-affinity cannot be met"
        case .quotaExceeded: "Quota exceeded"
        case .leaseExpired: "Lease expired"
        case .vfsHeld: "Virtual functions are allocated"
        case .vfHeld: "Virtual function is allocated"
        case .countOutOfRange: "VF count out of range"
        case .noSRIOVDriver: "No SR-IOV capable driver bound"
        case .pfBusy, .kernelBusy: "Physical function busy"
        case .hardwareTimeout: "Hardware write timed out"
        case .settingUnsupported: "Setting not supported by the driver"
        case .kernel: "Kernel error"
        case .idempotencyKeyReused: "Idempotency key reused"
        case .storage, .storageAfterWrite: "Storage error"
        case .idempotentRequestInProgress: "Request in progress"
        case .idempotentRequestInterrupted: "Request interrupted"
        case .notReady: "Not ready"
        case .pfCordoned: "Physical function cordoned"
        case .vfExternal: "Virtual function managed externally"
        case .pfPartlyManaged: "Physical function managed in part"
        case .allocationAttached: "Allocation attached"
        case .generationMismatch: "Generation mismatch"
        case .dockerNetworkNotFound: "Docker network not found"
        case .dockerEndpointNotFound: "Docker endpoint not found"
        case .dockerNetworkInUse: "Docker network in use"
        case .dockerOption: "Invalid Docker network option"
        }
    }

    /// A sentence for the operator, and structured members for programs.
    var detailAndExtensions: (String, [String: ProblemValue]) {
        switch self {
        case .malformedAddress(let text):
            return (
                "'\(text.prefix(64))' is not a PCI address of the form DDDD:BB:DD.F (hex)",
                ["field": .string("address")]
            )
        case .malformedBody(let why):
            return ("The request body is not valid: \(why)", [:])
        case .pfNotFound(let address):
            return ("No SR-IOV physical function at \(address)", [:])
        case .vfNotFound(let address):
            return ("No virtual function at \(address)", [:])
        case .allocationNotFound(let id):
            return ("No active allocation with id '\(id.prefix(64))'", [:])
        case .operationNotFound(let id):
            return ("No operation with id '\(id.prefix(64))'", [:])
        case .quotaNotFound(let prefix):
            return ("No quota for owner prefix '\(prefix.prefix(64))'", [:])
        case .tooManySubscribers(let limit):
            return ("The event stream serves at most \(limit) subscribers; retry later", ["limit": .int(limit)])
        case .interrupted(let what):
            return ("sriovd restarted before this finished, and the hardware does not show it done: \(what)", [:])
        case .invalidField(let field, let why):
            return ("\(field) \(why)", ["field": .string(field)])
        case .invalidParameter(let name, let why):
            return ("\(name) \(why)", ["parameter": .string(name)])
        case .noFreeVF(let total, let held):
            return (
                "All \(total) matching virtual functions are held (\(held) held)",
                ["total_vfs": .int(total), "held_vfs": .int(held), "free_vfs": .int(total - held)]
            )
        case .antiAffinityUnsatisfiable(let label, let value, let pfs):
            let names = pfs.map(\.description)
            return (
                "Every PF with a free matching VF (\(names.joined(separator: ", "))) already holds an allocation "
                    + "labelled \(label)=\(value.prefix(64)); anti_affinity keeps them on different PFs",
                ["label": .string(label), "value": .string(value), "pfs": .strings(names)]
            )
        case .quotaExceeded(let refusal):
            var extensions: [String: ProblemValue] = [
                "quota": .string(refusal.ownerPrefix), "limit": .int(refusal.limit), "used": .int(refusal.used),
            ]
            let scope: String
            if let node = refusal.numaNode {
                extensions["numa_node"] = .int(node)
                scope = " on NUMA node \(node)"
            } else {
                scope = ""
            }
            return (
                "Quota '\(refusal.ownerPrefix)' allows \(refusal.limit) VFs\(scope) and its owners hold "
                    + "\(refusal.used); release one or raise the quota (PUT /quotas/{owner_prefix})",
                extensions
            )
        case .leaseExpired(let id, let expiredAt):
            return (
                "The lease of allocation \(id.prefix(64)) expired at \(expiredAt); sriovd releases it",
                ["expires_at": .string(expiredAt)]
            )
        case .vfsHeld(let pf, let vfs):
            let names = vfs.map(\.description)
            return (
                "\(pf) has allocated VFs: \(names.joined(separator: ", ")); release them first",
                ["allocated_vfs": .strings(names)]
            )
        case .vfHeld(let vf, let id):
            return ("\(vf) is held by allocation \(id)", ["allocation_id": .string(id)])
        case .countOutOfRange(let requested, let total):
            return (
                "\(requested) VFs requested but the PF supports at most \(total) (ERANGE)",
                ["total_vfs": .int(total), "field": .string("count"), "errno": .string("ERANGE")]
            )
        case .noSRIOVDriver(let pf):
            return (
                "\(pf) has no bound driver that can enable SR-IOV (ENOENT); bind its PF driver first",
                ["errno": .string("ENOENT")]
            )
        case .pfBusy(let pf, let why):
            return ("\(pf) is busy: \(why)", [:])
        case .kernelBusy(let pf):
            return (
                "The kernel answered EBUSY for \(pf): another writer changed its VFs; re-read and retry",
                ["errno": .string("EBUSY")]
            )
        case .hardwareTimeout(let pf, let outcome):
            return ("A hardware write to \(pf) did not finish in time; \(outcome)", [:])
        case .settingUnsupported(let setting, let driver, let errno):
            return (
                "The \(driver) driver refused \(setting) (\(errno)); nothing of this request was left applied",
                ["setting": .string(setting), "driver": .string(driver), "errno": .string(errno)]
            )
        case .kernel(let operation, let errno, let name):
            return ("\(operation) failed: \(name) (\(errno))", ["errno": .string(name)])
        case .idempotencyKeyReused(let key):
            return (
                "Idempotency-Key '\(key.prefix(64))' was already used with a different request",
                ["field": .string("Idempotency-Key")]
            )
        case .storage(let why):
            return (
                "The database refused the change, which was not made; the hardware was not touched: \(why)",
                ["hardware": .string("untouched")]
            )
        case .storageAfterWrite(let why, restored: true):
            return (
                "The database refused to record the change after the hardware was written; every write was undone "
                    + "and the hardware is as before: \(why)",
                ["hardware": .string("restored")]
            )
        case .storageAfterWrite(let why, restored: false):
            return (
                "The database refused to record the change, and undoing its hardware writes failed; the VF is kept "
                    + "out of the pool until a reconcile repairs it (POST /reconcile once the database accepts writes): "
                    + why,
                ["hardware": .string("changed")]
            )
        case .idempotentRequestInProgress(let key):
            return (
                "The first request with Idempotency-Key '\(key.prefix(64))' is still being carried out; retry shortly",
                ["field": .string("Idempotency-Key")]
            )
        case .idempotentRequestInterrupted(let key):
            return (
                "The first request with Idempotency-Key '\(key.prefix(64))' was cut off by a restart and rolled back; "
                    + "retry with a new key",
                ["field": .string("Idempotency-Key")]
            )
        case .notReady:
            return ("Startup reconciliation has not finished yet; retry shortly", [:])
        case .pfCordoned(let pf):
            return (
                "\(pf) is cordoned for maintenance and takes no new allocation; choose another PF (or a selector), "
                    + "or lift the cordon with DELETE /pfs/\(pf)/cordon",
                ["pf": .string(pf.description)]
            )
        case .vfExternal(let vf, let pf, let managed):
            return (
                "\(vf) is outside the VF range \(managed) that sriovd manages on \(pf): another owner's; choose a VF "
                    + "in the range or widen it with PUT /pfs/\(pf)/managed",
                ["pf": .string(pf.description), "managed": .string(managed)]
            )
        case .pfPartlyManaged(let pf, let managed):
            return (
                "sriovd manages only VFs \(managed) of \(pf), so its VF count is not sriovd's to change; clear the "
                    + "range first (PUT /pfs/\(pf)/managed with {\"vfs\": null})",
                ["managed": .string(managed)]
            )
        case .allocationAttached(let id, let netns):
            return (
                "Allocation \(id.prefix(64)) is attached in network namespace \(netns.prefix(256)): its consumer holds "
                    + "the VF's netdev, so it cannot move; detach it first (CNI DEL, or remove the Docker container), then move "
                    + "and attach again",
                ["netns": .string(String(netns.prefix(256)))]
            )
        case .noMoveDestination(let id, let vf):
            return (
                "No free VF that sriovd manages on a PF that is not cordoned can take allocation \(id.prefix(64)) "
                    + "(on \(vf)); it stays. Create VFs on another PF (POST /pfs/{address}/vfs) or lift a cordon",
                ["from_vf": .string(vf.description)]
            )
        case .generationMismatch(let id, let given, let current):
            return (
                "Allocation \(id.prefix(64)) is at generation \(current), not \(given): it moved to another VF since; "
                    + "nothing was done. Read it again (GET /allocations/\(id.prefix(64)))",
                ["generation": .int(current)]
            )
        case .dockerNetworkNotFound(let id):
            return (
                "sriovd has no Docker network '\(id.prefix(64))'; create it with docker network create -d sriovd", [:]
            )
        case .dockerEndpointNotFound(let network, let endpoint):
            return ("Docker network '\(network.prefix(64))' has no endpoint '\(endpoint.prefix(64))'", [:])
        case .dockerNetworkInUse(let id, let endpoints):
            return (
                "Docker network '\(id.prefix(64))' still has \(endpoints) endpoint(s) holding VFs; remove their "
                    + "containers first", ["endpoints": .int(endpoints)]
            )
        case .dockerOption(let option, let why):
            return ("--opt \(option): \(why)", ["field": .string(option)])
        }
    }

    /// For errors that pass: how long a client should wait before it retries.
    var retryAfterSeconds: Int? {
        switch self {
        case .notReady, .tooManySubscribers, .idempotentRequestInProgress, .pfBusy, .kernelBusy: 2
        default: nil
        }
    }

    /// The answer on the Docker plugin socket: the status of the problem, and Docker's `{"Err": "..."}` body with
    /// the problem's detail (libnetwork shows it to whoever ran the docker command).
    func dockerPluginResponse() -> HTTPResponse {
        let (detail, _) = detailAndExtensions
        return .json(httpStatus, JSONBody.encode(["Err": "sriovd: " + detail]))
    }

    /// The complete problem+json response for this error.
    func response(instance: String) -> HTTPResponse {
        let (detail, extensions) = detailAndExtensions
        var problem = ProblemDetails(
            type: "urn:sriovd:problem:" + problemSlug, title: title, status: httpStatus.code, detail: detail,
            instance: instance)
        problem.extensions = extensions
        var response = HTTPResponse.problem(problem)
        // RFC 9110 §10.2.3: when to try again.
        if let seconds = retryAfterSeconds { response.headers.add("Retry-After", String(seconds)) }
        return response
    }
}

/// What a request under an Idempotency-Key answered, kept for replays: its status is picked here, with the rest of
/// the mapping to HTTP.
enum IdempotentAnswer {
    static func created(key: String, requestHash: String, body: [UInt8], location: String) -> IdempotencyRecord {
        IdempotencyRecord(
            key: key, requestHash: requestHash, status: HTTPStatus.created.code, body: body, location: location,
            createdAt: Timestamp.now())
    }

    static func failed(_ error: SRIOVError, key: String, requestHash: String, instance: String) -> IdempotencyRecord {
        IdempotencyRecord(
            key: key, requestHash: requestHash, status: error.httpStatus.code,
            body: error.response(instance: instance).body,
            location: nil, createdAt: Timestamp.now())
    }
}
