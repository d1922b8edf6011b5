import Netlink
import SRIOVCore

extension VFController {
    /// The states of many VFs of one PF from a single `RTM_GETLINK`, for reconciliation. VFs the kernel does not
    /// report (or whose driver cannot be read) are left out rather than failing the whole PF.
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
            do {
                state.driver = try currentDriver(vf.address)?.rawValue
            } catch {
                continue
            }
            states[vf.address] = state
        }
        return states
    }
}
