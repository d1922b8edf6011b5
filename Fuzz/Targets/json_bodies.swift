// libFuzzer target: strict decoding of the JSON request bodies (RequestBodies.swift through JSONBody.decode).
//
// Any input must either decode or throw an SRIOVError (400 malformed body / 422 invalid field); a decoded
// body must satisfy the documented rules. The first byte picks the body type.
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    let body = Array(bytes[1...])
    switch bytes[0] % 3 {
    case 0:
        if let request = try? JSONBody.decode(VFCountRequest.self, from: body) {
            precondition(request.count >= 0 && request.count <= 65_535)
        }
    case 1:
        if let request = try? JSONBody.decode(AllocationRequest.self, from: body) {
            precondition(!request.owner.isEmpty && request.owner.utf8.count <= AllocationRequest.maxOwnerLength)
            precondition(request.labels.count <= AllocationRequest.maxLabels)
            switch request.selection {
            case .pf(let address), .vf(let address):
                precondition(PCIAddress(address.description) == address)
            case .selector: break
            }
        }
    default:
        // The free-form JSON value (labels, config echoes) round-trips through its own encoder.
        if let value = try? JSONValue.parse(String(decoding: body, as: UTF8.self)) {
            _ = value.text
        }
    }
    return 0
}
