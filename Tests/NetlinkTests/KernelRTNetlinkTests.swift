import Testing

@testable import Netlink

/// The real socket against this machine's kernel. No SR-IOV here, but the loopback device answers.
@Suite struct KernelRTNetlinkTests {
    @Test func readsLoopback() throws {
        let client = RTNetlinkClient(transport: try KernelRTNetlink())
        let link = try client.link(.name("lo"))
        #expect(link.name == "lo")
        #expect(link.index > 0)
        #expect(link.vfs.isEmpty)
        #expect(try client.link(.index(link.index)).name == "lo")
    }

    @Test func missingInterfaceIsENODEV() throws {
        let client = RTNetlinkClient(transport: try KernelRTNetlink())
        do {
            _ = try client.vfs(ofInterface: "nosuchdev0")
            Issue.record("nosuchdev0 was found")
        } catch {
            #expect(error.name == "ENODEV")
        }
    }

    @Test func settingVFsOnADeviceWithoutThemFails() throws {
        let client = RTNetlinkClient(transport: try KernelRTNetlink())
        do {
            try client.apply(.trust(true), vf: 0, interface: "lo")
            Issue.record("lo accepted a VF setting")
        } catch {
            // lo has no ndo_set_vf_trust and no parent device: the kernel says EOPNOTSUPP (or EINVAL).
            #expect(["EOPNOTSUPP", "EINVAL", "EPERM"].contains(error.name))
        }
    }

    @Test func sequenceNumbersAdvance() throws {
        let kernel = try KernelRTNetlink()
        for _ in 0..<50 {
            let replies = try kernel.request(RTNetlinkCodec.makeGetLink(.name("lo")))
            #expect(replies.count == 2)
        }
    }
}

extension KernelRTNetlinkTests {
    /// A control message without NLM_F_ACK gets no answer from the kernel: the receive timeout ends the wait,
    /// and the socket stays usable afterwards.
    @Test func silentKernelTimesOut() throws {
        let kernel = try KernelRTNetlink(receiveTimeout: .milliseconds(200))
        let noop = hex("10 00 00 00 | 01 00 | 01 00 | 00 00 00 00 | 00 00 00 00")
        let start = ContinuousClock.now
        do {
            _ = try kernel.request(noop)
            Issue.record("a reply came to NLMSG_NOOP")
        } catch {
            #expect(error.name == "ETIMEDOUT")
        }
        #expect(ContinuousClock.now - start < .seconds(2))
        #expect(try RTNetlinkClient(transport: kernel).link(.name("lo")).name == "lo")
    }
}
