import Foundation
import Testing

@testable import HostSimulator
@testable import Netlink

/// Whatever the bytes, parsing returns what the bytes say or throws `EBADMSG` (the codec's contract); it never
/// traps, and never throws anything else.
@Suite struct RobustnessTests {
    static func sampleMessages() throws -> [[UInt8]] {
        let host = SimulatedHost(igbVFs: 2, iceVFs: 3)
        defer { host.remove() }
        var samples = [ParsingTests.oneVFReply]
        samples += try host.kernel.request(RTNetlinkCodec.makeGetLink(.name("ens1f0")))
        samples += try host.kernel.request(RTNetlinkCodec.makeSetVF(.linkState(.enable), vf: 9, on: .name("eth0")))
        samples.append(
            try RTNetlinkCodec.makeSetVF(.vlan(vlan: 3, qos: 1, proto: .ieee8021AD), vf: 1, on: .name("eth0")))
        return samples
    }

    /// Parses `bytes`: the replies, or the errno of the error thrown.
    static func outcome(_ bytes: [UInt8]) -> Result<[NetlinkReply], NetlinkError> {
        Result(catching: { () throws(NetlinkError) in try RTNetlinkCodec.parse(bytes) })
    }

    /// A netlink message: a 16-byte header with `nlmsg_len` (the real length unless given), then `payload`.
    static func message(type: UInt16, flags: UInt16 = 0, length: UInt32? = nil, _ payload: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        append(length ?? UInt32(16 + payload.count))
        append(type)
        append(flags)
        append(UInt32(1))
        append(UInt32(0))
        return bytes + payload
    }

    static func int32(_ value: Int32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }

    /// A sample cut anywhere parses to the messages that are whole (a cut in the last one's padding is whole),
    /// and is `EBADMSG` when it ends inside a header or a message.
    @Test func truncatedMessagesParseTheWholeOnesOrThrowEBADMSG() throws {
        for sample in try Self.sampleMessages() {
            let full = try RTNetlinkCodec.parse(sample)
            let messages = try NetlinkMessage.split(sample)
            #expect(full.count == messages.count && !full.isEmpty)
            // Where each message ends, without and with its alignment padding.
            var ends: [(Int, Int)] = []
            var start = 0
            for message in messages {
                let length = Int(message.header.length)
                ends.append((start + length, min(start + (length + 3) & ~3, sample.count)))
                start += (length + 3) & ~3
            }
            for length in 0...sample.count {
                let whole = length == 0 ? 0 : ends.firstIndex { $0.0 <= length && length <= $0.1 }.map { $0 + 1 }
                switch (Self.outcome(Array(sample.prefix(length))), whole) {
                case (.success(let replies), let count?):
                    #expect(replies == Array(full.prefix(count)), "cut at \(length) of \(sample.count)")
                case (.failure(let error), nil):
                    #expect(error.errno == EBADMSG, "cut at \(length): \(error)")
                case (let outcome, let count):
                    Issue.record(
                        "cut at \(length) of \(sample.count): \(outcome), expected \(count.map { "\($0) replies" } ?? "EBADMSG")"
                    )
                }
            }
        }
    }

    /// Flipped bytes either still parse, to as many replies as there are messages, or throw `EBADMSG`; both
    /// happen.
    @Test func bitFlippedMessagesParseOrThrowEBADMSG() throws {
        var random = SplitMix64(state: 0x5eed)
        var parsed = 0
        var refused = 0
        for sample in try Self.sampleMessages() {
            for _ in 0..<3000 {
                var mutated = sample
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    let index = Int.random(in: 0..<mutated.count, using: &random)
                    mutated[index] = UInt8.random(in: 0...255, using: &random)
                }
                switch Self.outcome(mutated) {
                case .success(let replies):
                    parsed += 1
                    #expect(replies.count == (try NetlinkMessage.split(mutated)).count)
                case .failure(let error):
                    refused += 1
                    #expect(error.errno == EBADMSG, "\(error)")
                }
            }
        }
        #expect(parsed > 0 && refused > 0, "parsed \(parsed), refused \(refused)")
    }

    @Test func randomBuffersParseOrThrowEBADMSG() {
        var random = SplitMix64(state: 42)
        for _ in 0..<20000 {
            let count = Int.random(in: 0...96, using: &random)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
            if count >= 4 {  // a plausible nlmsg_len makes the fuzzing reach the payload parsers
                bytes[0] = UInt8(count)
                bytes[1] = 0
                bytes[2] = 0
                bytes[3] = 0
            }
            if count >= 6 { bytes[4] = [2, 3, 16, 16][Int.random(in: 0...3, using: &random)] }
            switch Self.outcome(bytes) {
            case .success(let replies):
                // One message fills the buffer, or nothing at all was given.
                #expect(replies.count == (count >= 16 ? 1 : 0), "\(bytes)")
            case .failure(let error):
                #expect(error.errno == EBADMSG, "\(error)")
            }
            // Random bytes with no "@" in their first field are no uevent.
            if let first = bytes.split(separator: 0).first, !first.contains(UInt8(ascii: "@")) {
                #expect(parseUEvent(bytes) == nil)
            }
        }
    }

    /// Malformed messages of each kind, with the answer each must get.
    @Test func malformedMessagesGetTheirSpecificAnswer() throws {
        let badMessage: [(String, [UInt8])] = [
            ("a header cut short", Array(Self.message(type: ABI.NLMSG_DONE, []).prefix(15))),
            ("nlmsg_len under the header size", Self.message(type: ABI.NLMSG_DONE, length: 15, [])),
            ("nlmsg_len past the end", Self.message(type: ABI.NLMSG_DONE, length: 24, Self.int32(0))),
            ("NLMSG_ERROR without its error code", Self.message(type: ABI.NLMSG_ERROR, [0, 0])),
            ("NLMSG_ERROR with a positive error", Self.message(type: ABI.NLMSG_ERROR, Self.int32(5))),
            ("NLMSG_ERROR with Int32.min", Self.message(type: ABI.NLMSG_ERROR, Self.int32(Int32.min))),
            (
                "RTM_NEWLINK shorter than ifinfomsg",
                Self.message(type: ABI.RTM_NEWLINK, [UInt8](repeating: 0, count: 15))
            ),
            (
                "an attribute with nla_len 2",
                Self.message(type: ABI.RTM_NEWLINK, [UInt8](repeating: 0, count: 16) + [2, 0, 3, 0])
            ),
            (
                "an attribute past the end",
                Self.message(type: ABI.RTM_NEWLINK, [UInt8](repeating: 0, count: 16) + [12, 0, 3, 0, 0x65, 0x30, 0, 0])
            ),
        ]
        for (what, bytes) in badMessage {
            #expect(throws: NetlinkError.self, "\(what)") { try RTNetlinkCodec.parse(bytes) }
            if case .failure(let error) = Self.outcome(bytes) {
                #expect(error.errno == EBADMSG, "\(what): \(error)")
                #expect(error.context.hasPrefix("malformed netlink message: "), "\(what): \(error)")
            }
        }

        #expect(try RTNetlinkCodec.parse([]) == [])
        #expect(try RTNetlinkCodec.parse(Self.message(type: ABI.NLMSG_ERROR, Self.int32(0))) == [.ack])
        #expect(
            try RTNetlinkCodec.parse(Self.message(type: ABI.NLMSG_ERROR, Self.int32(-95)))
                == [.error(NetlinkError(errno: 95))])
        #expect(try RTNetlinkCodec.parse(Self.message(type: ABI.NLMSG_DONE, [])) == [.done])
        #expect(
            try RTNetlinkCodec.parse(Self.message(type: ABI.NLMSG_DONE, Self.int32(-16)))
                == [.error(NetlinkError(errno: 16, context: "dump"))])
        #expect(try RTNetlinkCodec.parse(Self.message(type: 0x1234, [1, 2, 3])) == [.other(type: 0x1234)])
        // A link message whose only attribute is its name, padding included.
        let named = try RTNetlinkCodec.parse(
            Self.message(
                type: ABI.RTM_NEWLINK,
                [0, 0, 0, 0] + Self.int32(7) + [UInt8](repeating: 0, count: 8) + [7, 0, 3, 0, 0x65, 0x30, 0, 0]))
        #expect(named == [.link(LinkInfo(index: 7, name: "e0"))])
    }

    /// The simulated kernel is fed cut and mutated requests: a cut one is `EBADMSG`; a mutated one is refused
    /// with `EBADMSG` or answered, and every answer it gives parses.
    @Test func simulatedKernelSurvivesMutatedRequests() throws {
        let host = SimulatedHost()
        defer { host.remove() }
        var random = SplitMix64(state: 7)
        let requests = [
            try RTNetlinkCodec.makeSetVF(.mac([2, 0, 0, 0, 0, 1]), vf: 0, on: .name("eth0")),
            try RTNetlinkCodec.makeSetVF(.vlan(vlan: 3, qos: 1, proto: .ieee8021AD), vf: 1, on: .name("ens1f0")),
            try RTNetlinkCodec.makeSetVF(.rate(min: 1, max: 2), vf: 1, on: .name("ens1f0")),
            RTNetlinkCodec.makeGetLink(.name("eth0")),
        ]
        var answered = 0
        for request in requests {
            for length in 0..<request.count {
                let cut = Array(request.prefix(length))
                switch Result(catching: { () throws(NetlinkError) in try host.kernel.request(cut) }) {
                case .success(let replies):
                    Issue.record("cut at \(length) of \(request.count) was answered: \(replies)")
                case .failure(let error): #expect(error.errno == EBADMSG, "cut at \(length): \(error)")
                }
            }
            for _ in 0..<400 {
                var mutated = request
                let index = Int.random(in: 0..<mutated.count, using: &random)
                mutated[index] = UInt8.random(in: 0...255, using: &random)
                switch Result(catching: { () throws(NetlinkError) in try host.kernel.request(mutated) }) {
                case .success(let replies):
                    answered += 1
                    // Like the kernel, a change that succeeds is answered only when it asked for an ack.
                    let flags = try NetlinkMessage.split(mutated)[0].header.flags
                    #expect(!replies.isEmpty || flags & ABI.NLM_F_ACK == 0, "\(mutated)")
                    for reply in replies {
                        #expect(throws: Never.self) { try RTNetlinkCodec.parse(reply) }
                    }
                case .failure(let error):
                    #expect(error.errno == EBADMSG, "\(error)")
                }
            }
        }
        #expect(answered > 0)
    }
}
