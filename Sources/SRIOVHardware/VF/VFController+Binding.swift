import Glibc
import SRIOVCore

/// The driver a VF should be bound to.
public enum VFDriverTarget: Hashable, Sendable, CustomStringConvertible {
    /// This driver, through `driver_override`.
    case named(DriverName)
    /// Whatever the kernel binds with no override: the VF's own driver (iavf, igbvf, mlx5_core, ...).
    case kernelDefault

    /// vfio-pci, for VMs and DPDK.
    public static let vfioPCI = VFDriverTarget.named(.vfioPCI)

    public var description: String {
        switch self {
        case .named(let name): name.rawValue
        case .kernelDefault: "default"
        }
    }
}

/// How a consumer reaches a VF once it is bound.
public struct VFBinding: Hashable, Sendable {
    /// The VF as scanned after the bind.
    public var vf: VirtualFunction
    /// `/dev/vfio/<iommu_group>` when vfio-pci has the VF; what a VMM or DPDK opens.
    public var vfioDevice: String?

    public init(vf: VirtualFunction) {
        self.vf = vf
        vfioDevice =
            vf.driver == DriverName.vfioPCI.rawValue ? vf.iommuGroup.map { "/dev/vfio/\($0)" } : nil
    }

    /// The bound driver; nil when unbound.
    public var driver: String? { vf.driver }
    /// The VF's netdev, when its driver registered one (the default network drivers do).
    public var interface: String? { vf.interface }
}

extension VFController {
    /// The VF as it is now, with its access paths; nil when it is gone.
    public func binding(of vf: PCIAddress) -> VFBinding? {
        HostScanner(sysfs: host.sysfs).virtualFunction(vf).map(VFBinding.init)
    }

    /// Binds the VF to `target` the way the kernel allows: unbind the current driver, write `driver_override`,
    /// write the address to `bus/pci/drivers_probe`, then poll until the driver shows (up to `timeout`). `new_id`
    /// is never used: it would make the driver claim every device with that id, the PF's other VFs included.
    ///
    /// `driver_override` policy. The lab showed the kernel ignores the override while a driver is bound and that an
    /// empty line clears it, so the override only matters at the next probe:
    /// - `.kernelDefault` clears it before probing, so the id tables pick the VF's own driver.
    /// - vfio-pci keeps it after the bind. A VF handed to a VM must never fall back to a host driver if something
    ///   re-probes it (vfio-pci reloaded, a stray `drivers_probe`): with the override in place it can only go back
    ///   to vfio-pci or stay unbound. It is cleared when the VF is bound back to its default driver.
    /// - Any other named driver (a restore to `igbvf` by name) clears it after the bind is seen, leaving nothing
    ///   pinned; clearing it does not unbind.
    ///
    /// When the VF already has the target (for `.kernelDefault`: a driver other than vfio-pci bound with no
    /// override) nothing is written, except that a vfio-pci VF without the override gets it. On any failure,
    /// including the timeout (`ETIMEDOUT`), the previous driver and override are put back and `.bindFailed` lists
    /// what could not be. For a network VF bound to its default driver, the call also waits (within the timeout,
    /// at most 2 s) for its netdev, which the returned binding then names.
    @discardableResult
    public func bind(
        _ vf: VirtualFunction, to target: VFDriverTarget, timeout: Duration = .seconds(10),
        onWrite: (HardwareWrite) -> Void
    ) throws(VFHardwareError) -> VFBinding {
        let address = vf.address
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        let previous = try currentDriver(address)
        let previousOverride = try? writer.driverOverride(of: address)

        if isSatisfied(target, driver: previous, override: previousOverride) {
            if target == .vfioPCI && previousOverride != .vfioPCI,
                let failure = writeOverride(.vfioPCI, vf: address, target: target, onWrite: onWrite)
            {
                throw .bindFailed(failure, revertFailures: [])
            }
            return binding(of: address) ?? VFBinding(vf: vf)
        }

        if let failure = attach(address, to: target, deadline: deadline, onWrite: onWrite) {
            let revertFailures = revert(
                address, to: previous, override: previousOverride, timeout: timeout, onWrite: onWrite)
            throw .bindFailed(failure, revertFailures: revertFailures)
        }
        if target == .kernelDefault, isNetworkDevice(address) {
            let netdevDeadline = min(deadline, clock.now + .seconds(2))
            _ = poll(until: netdevDeadline) { (try? host.sysfs.interfaces(of: address))?.isEmpty == false }
        }
        return binding(of: address) ?? VFBinding(vf: vf)
    }

    func isSatisfied(_ target: VFDriverTarget, driver: DriverName?, override: DriverName?) -> Bool {
        switch target {
        case .named(let name): return driver == name
        case .kernelDefault: return driver != nil && driver != .vfioPCI && override == nil
        }
    }

    /// Unbind, override, probe, wait; then the override policy. The first failure, or nil.
    private func attach(
        _ address: PCIAddress, to target: VFDriverTarget, deadline: ContinuousClock.Instant,
        onWrite: (HardwareWrite) -> Void
    ) -> VFStepFailure? {
        let wanted: DriverName?
        if case .named(let name) = target { wanted = name } else { wanted = nil }
        if let failure = detach(address, target: target, onWrite: onWrite) { return failure }
        if let failure = writeOverride(wanted, vf: address, target: target, onWrite: onWrite) { return failure }
        if let failure = probe(address, target: target, onWrite: onWrite) { return failure }
        let bound = poll(until: deadline) {
            let now = try? host.sysfs.driver(of: address)
            return wanted.map { now == $0 } ?? (now != nil)
        }
        guard bound else {
            let now = (try? host.sysfs.driver(of: address))??.rawValue ?? "no driver"
            return VFStepFailure(
                setting: "driver", driver: target.description, errno: ETIMEDOUT, errnoName: "ETIMEDOUT",
                detail: "\(address) not bound to \(target.description) in time; now \(now)")
        }
        if let wanted, wanted != .vfioPCI {
            return writeOverride(nil, vf: address, target: target, onWrite: onWrite)
        }
        return nil
    }

    /// Puts the previous driver and override back after a failed bind; what could not be.
    private func revert(
        _ address: PCIAddress, to previous: DriverName?, override: DriverName?, timeout: Duration,
        onWrite: (HardwareWrite) -> Void
    ) -> [VFStepFailure] {
        let target = previous.map(VFDriverTarget.named) ?? .kernelDefault
        var failures: [VFStepFailure] = []
        let now = try? host.sysfs.driver(of: address)
        if now != previous {
            if let failure = detach(address, target: target, onWrite: onWrite) { failures.append(failure) }
            if let previous {
                if let failure = writeOverride(previous, vf: address, target: target, onWrite: onWrite) {
                    failures.append(failure)
                }
                if let failure = probe(address, target: target, onWrite: onWrite) { failures.append(failure) }
                let deadline = ContinuousClock().now + timeout
                if !poll(until: deadline, { (try? host.sysfs.driver(of: address)) == previous }) {
                    failures.append(
                        VFStepFailure(
                            setting: "driver", driver: previous.rawValue, errno: ETIMEDOUT, errnoName: "ETIMEDOUT",
                            detail: "\(address) not back on \(previous) in time"))
                }
            }
        }
        if (try? writer.driverOverride(of: address)) != override,
            let failure = writeOverride(override, vf: address, target: target, onWrite: onWrite)
        {
            failures.append(failure)
        }
        return failures
    }

    private func detach(_ address: PCIAddress, target: VFDriverTarget, onWrite: (HardwareWrite) -> Void)
        -> VFStepFailure?
    {
        guard let bound = (try? host.sysfs.driver(of: address)) ?? nil else { return nil }
        return sysfsStep("unbind", value: bound.rawValue, vf: address, driver: target.description, onWrite: onWrite) {
            () throws(SysfsError) in try host.sysfs.write(.unbind, of: bound, device: address)
        }
    }

    private func writeOverride(
        _ name: DriverName?, vf address: PCIAddress, target: VFDriverTarget, onWrite: (HardwareWrite) -> Void
    ) -> VFStepFailure? {
        sysfsStep(
            "driver_override", value: name?.rawValue ?? "", vf: address, driver: target.description,
            onWrite: onWrite
        ) { () throws(SysfsError) in try writer.setDriverOverride(address, name) }
    }

    private func probe(_ address: PCIAddress, target: VFDriverTarget, onWrite: (HardwareWrite) -> Void)
        -> VFStepFailure?
    {
        sysfsStep(
            "drivers_probe", value: address.description, vf: address, driver: target.description, onWrite: onWrite
        ) { () throws(SysfsError) in try writer.probe(address) }
    }

    func isNetworkDevice(_ address: PCIAddress) -> Bool {
        (try? host.sysfs.read(.pciClass, of: address))?.hasPrefix("0x02") ?? false
    }

    /// Checks `condition` every 10 ms until it holds (true) or the deadline passes (false, after one last check).
    func poll(until deadline: ContinuousClock.Instant, _ condition: () -> Bool) -> Bool {
        let clock = ContinuousClock()
        while clock.now < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }
}
