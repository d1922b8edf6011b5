import Foundation
import Testing

@testable import HostSimulator
@testable import Netlink

/// `IFLA_VF_STATS`: parsed from the kernel's bytes, nil where absent, and reported by the simulated drivers as
/// the real ones do.
@Suite struct VFStatsTests {
    @Test func settingsReadsCarryNoStats() throws {
        let host = SimulatedHost()
        defer { host.remove() }
        // RTEXT_FILTER_SKIP_STATS: the kernel leaves IFLA_VF_STATS out, so there is nothing to report.
        #expect(try host.client.link(.name("ens1f0")).vfs.allSatisfy { $0.stats == nil })
    }

    @Test func aVFInUseSeesDeterministicTraffic() throws {
        let host = SimulatedHost()
        defer { host.remove() }
        let client = host.client
        try client.apply(.mac([0x02, 0, 0, 0, 0, 0x09]), vf: 2, interface: "ens1f0")
        let first = try client.linkWithStats(.name("ens1f0")).vfs
        let second = try client.linkWithStats(.name("ens1f0")).vfs
        // A VF with no MAC is idle: every counter reported, all 0.
        #expect(
            first[0].stats
                == VFStats(
                    rxPackets: 0, txPackets: 0, rxBytes: 0, txBytes: 0, broadcast: 0, multicast: 0, rxDropped: 0,
                    txDropped: 0))
        // VF 2: 1,020 packets received per read, 816 sent, 600 and 700 bytes each.
        #expect(first[2].stats?.rxPackets == 1020 && second[2].stats?.rxPackets == 2040)
        #expect(second[2].stats?.txPackets == 1632 && second[2].stats?.rxBytes == 2040 * 600)
        #expect(second[2].stats?.txBytes == 1632 * 700)
        #expect(second[2].stats?.broadcast == 6 && second[2].stats?.multicast == 24)
        #expect(second[2].stats?.rxDropped == 0 && second[2].stats?.txDropped == 0)
        // A fresh simulated kernel given the same reads reports the same numbers.
        let again = SimulatedHost()
        defer { again.remove() }
        try again.client.apply(.mac([0x02, 0, 0, 0, 0, 0x09]), vf: 2, interface: "ens1f0")
        _ = try again.client.linkWithStats(.name("ens1f0"))
        #expect(try again.client.linkWithStats(.name("ens1f0")).vfs[2].stats == second[2].stats)
    }

    @Test func igbHasNoVFStatsSoTheKernelReportsZeros() throws {
        let host = SimulatedHost()
        defer { host.remove() }
        try host.client.apply(.mac([0x02, 0, 0, 0, 0, 0x01]), vf: 0, interface: "eth0")
        let stats = try #require(try host.client.linkWithStats(.name("eth0")).vfs[0].stats)
        #expect(stats.rxPackets == 0 && stats.txBytes == 0 && stats.multicast == 0)
    }

    @Test func membersMissingOrShortAreNil() throws {
        var stats = ByteWriter()
        var value = ByteWriter()
        value.u64(0x1_0000_0001)
        stats.attribute(ABI.IFLA_VF_STATS_RX_BYTES, value.bytes)
        stats.attribute(ABI.IFLA_VF_STATS_MULTICAST, [1, 2, 3])  // shorter than a u64
        stats.attribute(6, value.bytes)  // IFLA_VF_STATS_PAD
        let parsed = RTNetlinkCodec.parseVFStats(try NetlinkAttribute.parse(stats.bytes[...]))
        #expect(parsed == VFStats(rxBytes: 0x1_0000_0001))
    }
}
