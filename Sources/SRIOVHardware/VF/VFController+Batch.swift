import Netlink
import SRIOVCore

extension VFController {
    /// The states of many VFs of one PF from a single `RTM_GETLINK`, for reconciliation, with each VF's driver as
    /// the scan that found it saw it. VFs the kernel does not report are left out rather than failing the PF.
    public func states(of vfs: [VirtualFunction], pf: PhysicalFunction) throws(VFHardwareError) -> [PCIAddress: VFState]
    {
        var infos: [Int: VFLinkInfo] = [:]
        let netdev = netdev(of: pf)
        if let netdev {
            do {
                for info in try host.netlink.vfs(ofInterface: netdev) { infos[info.index] = info }
            } catch {
                throw .readFailed(
                    VFStepFailure(
                        setting: "state", driver: pfDriver(pf), errno: error.errno, errnoName: error.name,
                        detail: "RTM_GETLINK \(netdev): \(error.context)"))
            }
        }
        var states: [PCIAddress: VFState] = [:]
        for vf in vfs {
            var state = VFState()
            if netdev != nil {
                guard let info = infos[vf.index] else { continue }
                state = VFState(info, driver: nil)
            }
            // The scan that produced `vf` read its driver moments ago; no second read per VF.
            state.driver = vf.driver
            states[vf.address] = state
        }
        return states
    }
}
