// libFuzzer target: PCI-address parsing, request-target splitting and query percent-decoding, and
// timestamp normalisation (the `since`/`until` query parameters).
//
// Invariants: a parsed PCI address prints in canonical form and parses back to itself, and only
// 12-byte inputs parse; the path never contains '?'; percent-decoding of text without '%' or '+' is
// the identity; normalising a timestamp twice gives the same text.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    let text = String(decoding: bytes, as: UTF8.self)

    if let address = PCIAddress(text) {
        precondition(text.utf8.count == 12)
        let canonical = address.description
        precondition(canonical == text.lowercased(), "\(text) printed as \(canonical)")
        precondition(PCIAddress(canonical) == address)
        precondition(!canonical.utf8.contains(UInt8(ascii: "/")))
    }

    let target = "/" + text
    let (path, query) = HTTPRequest.split(target: target)
    precondition(!path.utf8.contains(UInt8(ascii: "?")), "path holds a '?'")
    precondition(path.utf8.first == UInt8(ascii: "/"))
    for (name, value) in query {
        _ = PCIAddress(name)
        _ = PCIAddress(value)
    }
    if !text.utf8.contains(UInt8(ascii: "%")) && !text.utf8.contains(UInt8(ascii: "+")) {
        precondition(HTTPRequest.percentDecode(Substring(text)) == text)
    }
    _ = HTTPRequest.split(target: text)

    if let normalized = Timestamp.normalize(text) {
        precondition(Timestamp.normalize(normalized) == normalized, "\(text) -> \(normalized) is not stable")
    }
    return 0
}
