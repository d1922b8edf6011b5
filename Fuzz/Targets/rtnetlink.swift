// libFuzzer target: the rtnetlink reply parser (Sources/Netlink RTNetlinkCodec.parse), which reads what the
// kernel (or anything able to send on the netlink socket) answers. Any input must parse or throw a
// NetlinkError; never trap, read out of bounds or loop.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: data, count: size))
    if let messages = try? NetlinkMessage.split(bytes) {
        for message in messages { _ = try? RTNetlinkCodec.interpret(message) }
    }
    _ = try? RTNetlinkCodec.parse(bytes)
    return 0
}
