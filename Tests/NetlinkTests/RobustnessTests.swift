import Foundation
import Testing

@testable import HostSimulator
@testable import Netlink

/// Whatever the bytes, parsing returns or throws; it never traps.
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

    @Test func truncatedAndBitFlippedReplies() throws {
        var random = SplitMix64(state: 0x5eed)
        for sample in try Self.sampleMessages() {
            for length in 0...sample.count {
                _ = try? RTNetlinkCodec.parse(Array(sample.prefix(length)))
            }
            for _ in 0..<3000 {
                var mutated = sample
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    let index = Int.random(in: 0..<mutated.count, using: &random)
                    mutated[index] = UInt8.random(in: 0...255, using: &random)
                }
                _ = try? RTNetlinkCodec.parse(mutated)
            }
        }
    }

    @Test func randomBuffers() {
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
            _ = try? RTNetlinkCodec.parse(bytes)
            _ = parseUEvent(bytes)
        }
    }

    /// The simulated kernel is fed mutated requests: it answers or refuses, and never traps.
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
        for request in requests {
            for length in 0...request.count {
                _ = try? host.kernel.request(Array(request.prefix(length)))
            }
            for _ in 0..<400 {
                var mutated = request
                let index = Int.random(in: 0..<mutated.count, using: &random)
                mutated[index] = UInt8.random(in: 0...255, using: &random)
                if let replies = try? host.kernel.request(mutated) {
                    for reply in replies { _ = try? RTNetlinkCodec.parse(reply) }
                }
            }
        }
    }
}
