// libFuzzer target: the admission ledger (Sources/HTTPServer/AdmissionLedger.swift), the state machine behind the
// per-client limits, the reserved slots and the body memory bound.
//
// The first bytes pick small limits; each later byte is one operation (open a TCP or Unix connection, authenticate
// one, begin or end a request, close one), applied both to the ledger and to a plain model of what is open. After
// every operation the ledger's books must match the model and respect every limit; once everything is closed they
// must be empty.

struct OpenConnection {
    var key: PeerKey
    var slot: ConnectionClass
    var requests: [(key: PeerKey, bytes: Int)] = []
}

struct Model {
    var ledger: AdmissionLedger
    var open: [OpenConnection] = []

    mutating func apply(_ byte: UInt8, _ next: UInt8) {
        let index = open.isEmpty ? 0 : Int(next) % open.count
        switch byte % 6 {
        case 0, 1:
            let isUnix = byte % 6 == 1
            let key: PeerKey = isUnix ? .uid(UInt32(byte >> 6)) : .address("10.0.0.\(byte >> 6)")
            if case .success(let slot) = ledger.openConnection(key, isUnix: isUnix) {
                open.append(OpenConnection(key: key, slot: slot))
            }
        case 2 where !open.isEmpty:
            open[index].slot = ledger.authenticate(open[index].slot, key: open[index].key)
        case 3 where !open.isEmpty:
            let connection = open[index]
            let requestKey: PeerKey = connection.slot == .authenticated ? .principal("p\(byte >> 6)") : connection.key
            if ledger.beginRequest(requestKey, bodyBytes: Int(next)) == nil {
                open[index].requests.append((requestKey, Int(next)))
            }
        case 4 where !open.isEmpty:
            if let request = open[index].requests.popLast() {
                ledger.endRequest(request.key, bodyBytes: request.bytes)
            }
        case 5 where !open.isEmpty:
            close(at: index)
        default:
            break
        }
    }

    mutating func close(at index: Int) {
        let connection = open.remove(at: index)
        for request in connection.requests { ledger.endRequest(request.key, bodyBytes: request.bytes) }
        ledger.closeConnection(connection.slot, key: connection.key)
    }

    func check() {
        let limits = ledger.limits
        let reserve = min(limits.reservedConnections, ledger.maxConnections)
        precondition(ledger.total == open.count, "total \(ledger.total) != \(open.count) open")
        precondition(ledger.total <= ledger.maxConnections, "over maxConnections")
        let anonymous = open.filter { $0.slot == .anonymous }.count
        let probation = open.filter { if case .probation = $0.slot { true } else { false } }.count
        precondition(ledger.anonymous == anonymous && anonymous <= max(0, ledger.maxConnections - reserve))
        precondition(ledger.probation == probation && probation <= reserve / 2, "probation \(probation)")
        let requests = open.flatMap(\.requests)
        precondition(ledger.bodyBytes == requests.reduce(0) { $0 + $1.bytes }, "body bytes")
        precondition(ledger.bodyBytes <= limits.bodyMemory, "over bodyMemory")
        for (key, usage) in ledger.peers {
            precondition(!usage.isEmpty, "an empty entry kept for \(key)")
            precondition(usage.inFlight == requests.filter { $0.key == key }.count, "in flight of \(key)")
            precondition(usage.inFlight <= limits.peerRequests && usage.bufferedBytes <= limits.peerBufferedBytes)
            let counted = open.filter { $0.key == key && ($0.slot == .anonymous || $0.slot == .unix) }.count
            precondition(usage.connections == counted && counted <= limits.peerConnections, "connections of \(key)")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    guard size >= 4 else { return 0 }
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    var limits = HTTPServerConfiguration.ClientLimits()
    limits.peerConnections = Int(bytes[0] % 4) + 1
    limits.peerRequests = Int((bytes[0] >> 4) % 4) + 1
    limits.reservedConnections = Int(bytes[1] % 8)
    limits.peerBufferedBytes = Int(bytes[2]) * 2
    limits.bodyMemory = Int(bytes[3]) * 4
    var model = Model(ledger: AdmissionLedger(limits: limits, maxConnections: Int(bytes[1] >> 3) + 1))
    var index = 4
    while index + 1 < bytes.count {
        model.apply(bytes[index], bytes[index + 1])
        model.check()
        index += 2
    }
    while !model.open.isEmpty {
        model.close(at: model.open.count - 1)
        model.check()
    }
    precondition(model.ledger.total == 0 && model.ledger.peers.isEmpty && model.ledger.bodyBytes == 0, "books left")
    return 0
}
