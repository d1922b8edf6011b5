import Glibc
import Netlink
import SRIOVCore

/// What `VFController.apply` leaves: the VF's state read back after every step, and how to reach the VF.
public struct VFApplyResult: Hashable, Sendable {
    public var state: VFState
    /// nil when the VF could not be re-read after the change.
    public var binding: VFBinding?
}

/// Reads, changes and restores a VF's settings and driver, over a `HardwareHost`.
///
/// Every change goes to the kernel one setting per rtnetlink request (the kernel stops at the first refusal in a
/// multi-attribute message and keeps what it applied before it), and each write is reported through `onWrite`
/// before the call returns, whether it succeeded or not. Calls block for as long as the kernel takes; callers
/// serialize work per PF and bound it with their own timeouts.
public struct VFController: Sendable {
    public let host: HardwareHost

    public init(host: HardwareHost) {
        self.host = host
    }

    var writer: SRIOVWriter { SRIOVWriter(sysfs: host.sysfs) }

    // MARK: - Reading

    /// The VF's state: its settings from `RTM_GETLINK` on the PF's netdev, and its driver from sysfs. For a PF
    /// without a netdev (NVMe) only `driver` is filled in.
    public func state(of vf: VirtualFunction, pf: PhysicalFunction) throws(VFHardwareError) -> VFState {
        var state = VFState()
        if let netdev = netdev(of: pf) {
            let vfs: [VFLinkInfo]
            do {
                vfs = try host.netlink.vfs(ofInterface: netdev)
            } catch {
                throw .readFailed(
                    VFStepFailure(
                        setting: "state", driver: pfDriver(pf), errno: error.errno, errnoName: error.name,
                        detail: "RTM_GETLINK \(netdev): \(error.context)"))
            }
            guard let info = vfs.first(where: { $0.index == vf.index }) else {
                throw .readFailed(
                    VFStepFailure(
                        setting: "state", driver: pfDriver(pf), errno: ENODEV, errnoName: "ENODEV",
                        detail: "\(netdev) reports \(vfs.count) VFs, none numbered \(vf.index)"))
            }
            state = VFState(info, driver: nil)
        }
        state.driver = try currentDriver(vf.address)?.rawValue
        return state
    }

    /// The PF's netdev: the first sysfs lists now, else the first the snapshot had; nil for a non-network PF.
    func netdev(of pf: PhysicalFunction) -> String? {
        if let live = try? host.sysfs.interfaces(of: pf.address), let first = live.first { return first.rawValue }
        return pf.interfaces.first
    }

    func pfDriver(_ pf: PhysicalFunction) -> String {
        pf.driver ?? (try? host.sysfs.driver(of: pf.address))?.rawValue ?? "none"
    }

    func currentDriver(_ device: PCIAddress) throws(VFHardwareError) -> DriverName? {
        do {
            return try host.sysfs.driver(of: device)
        } catch {
            throw .readFailed(
                VFStepFailure(
                    setting: "driver", driver: "none", errno: error.errno, errnoName: error.name,
                    detail: error.description))
        }
    }

    // MARK: - Applying

    /// Applies the config's non-nil fields to the VF, then checks that the kernel reports them.
    ///
    /// Order: VLAN (with QoS and protocol) and spoof check, MAC, trust, rates, link state, each in its own
    /// `RTM_NEWLINK` with its ack checked; the driver rebind last. A field already at the wanted value is not
    /// written. If any step is refused, or the state read back afterwards differs from what was asked, every step
    /// this call made is undone (to the values read before the call, driver included) and `.applyFailed` names the
    /// setting, the PF's driver and the errno; its `rollbackFailures` lists what could not be undone.
    ///
    /// Rules checked before any write, beyond `VFConfig.validate`: QoS and the 802.1ad protocol need a VLAN other
    /// than 0, and network settings need a PF with a netdev.
    @discardableResult
    public func apply(
        _ config: VFConfig, to vf: VirtualFunction, pf: PhysicalFunction, bindTimeout: Duration = .seconds(10),
        onWrite: (HardwareWrite) -> Void
    ) throws(VFHardwareError) -> VFApplyResult {
        try Self.check(config)
        let wanted = VFState(settingsOf: config)
        let netdev = netdev(of: pf)
        if wanted.hasNetworkSettings && netdev == nil { throw .noNetdev(pf: pf.address) }
        let before = try state(of: vf, pf: pf)
        let driverName = pfDriver(pf)

        var touched: Set<VFField> = []
        var driverTouched = false
        func undo() -> [VFStepFailure] {
            var restoreTo = before.masked(to: touched)
            restoreTo.driver = before.driver
            return restoreFields(
                restoreTo, fields: touched, driver: driverTouched, vf: vf, pf: pf, timeout: bindTimeout,
                onWrite: onWrite)
        }

        if let netdev {
            for step in VFSettingPlan.steps(to: wanted, from: before, force: false) {
                touched.insert(step.field)
                if let failure = send(step, vf: vf, netdev: netdev, pfDriver: driverName, onWrite: onWrite) {
                    throw .applyFailed(failure, rollbackFailures: undo())
                }
            }
        }
        if let choice = config.driver {
            driverTouched = true
            do {
                try bind(vf, to: choice == .vfioPCI ? .vfioPCI : .kernelDefault, timeout: bindTimeout, onWrite: onWrite)
            } catch {
                switch error {
                case .bindFailed(let step, let revertFailures):
                    driverTouched = false  // the bind already put the previous driver back
                    throw .applyFailed(step, rollbackFailures: revertFailures + undo())
                default:
                    throw error
                }
            }
        }

        let after: VFState
        do {
            after = try state(of: vf, pf: pf)
        } catch {
            guard case .readFailed(let step) = error else { throw error }
            throw .applyFailed(step, rollbackFailures: undo())
        }
        if let mismatch = after.differences(from: wanted).first {
            let failure = VFStepFailure(
                setting: mismatch.field.rawValue, driver: driverName, errno: nil, errnoName: nil,
                detail: "wrote \(mismatch.expected), read back \(mismatch.actual)")
            throw .applyFailed(failure, rollbackFailures: undo())
        }
        return VFApplyResult(state: after, binding: binding(of: vf.address))
    }

    /// `VFConfig.validate` and the combinations no driver can take.
    static func check(_ config: VFConfig) throws(VFHardwareError) {
        do {
            try config.validate()
        } catch {
            if case .invalidField(let field, let reason) = error { throw .invalidConfig(field: field, reason: reason) }
            throw .invalidConfig(field: "config", reason: "\(error)")
        }
        if config.vlan == 0 {
            if let qos = config.qos, qos != 0 {
                throw .invalidConfig(field: "config.qos", reason: "needs a VLAN other than 0")
            }
            if config.vlanProto == .dot1AD {
                throw .invalidConfig(field: "config.vlan_proto", reason: "802.1ad needs a VLAN other than 0")
            }
        }
        for (field, rate) in [("config.min_tx_rate", config.minTxRate), ("config.max_tx_rate", config.maxTxRate)] {
            if let rate, rate > Int(UInt32.max) { throw .invalidConfig(field: field, reason: "is too large") }
        }
    }

    // MARK: - Restoring

    /// Puts every field of `original` back, whether this process changed it or not: VLAN (with QoS and protocol)
    /// and spoof check, MAC, trust, rates, link state, then the driver (nil: left unbound). Each field is written
    /// even when it already reads as the original, so a change made behind sriovd's back is undone too; fields the
    /// driver did not report (nil) are skipped.
    ///
    /// If the rebind changed the MAC (a VF driver that picks a random MAC at probe when the PF set none, as
    /// igbvf does), the MAC is written once more after it.
    ///
    /// It does not stop at a failure. At the end it reads the state back: a field counts as restored when it reads
    /// as the original, so a driver that refuses to write a value the VF already has (igb answers `EOPNOTSUPP` to
    /// any link state, `auto` included) does not make the restore fail. Every field that does not read back as the
    /// original is reported in `.restoreIncomplete`, with the errno of its refused write if there was one.
    public func restore(
        _ original: VFState, vf: VirtualFunction, pf: PhysicalFunction, bindTimeout: Duration = .seconds(10),
        onWrite: (HardwareWrite) -> Void
    ) throws(VFHardwareError) {
        let fields: Set<VFField> = netdev(of: pf) == nil ? [] : Set(VFField.allCases)
        let failures = restoreFields(
            original, fields: fields, driver: true, vf: vf, pf: pf, timeout: bindTimeout, onWrite: onWrite)
        if !failures.isEmpty { throw .restoreIncomplete(failures) }
    }

    /// Writes the given fields of `original` (forced, in plan order; the plan skips a link state in place), then
    /// the driver when `driver` is set, reads back and returns the fields that do not match. Used by `restore` and
    /// by `apply`'s rollback.
    func restoreFields(
        _ original: VFState, fields: Set<VFField>, driver: Bool, vf: VirtualFunction, pf: PhysicalFunction,
        timeout: Duration, onWrite: (HardwareWrite) -> Void
    ) -> [VFStepFailure] {
        let driverName = pfDriver(pf)
        let target = original.masked(to: fields)
        var refused: [VFField: VFStepFailure] = [:]
        if !fields.isEmpty, let netdev = netdev(of: pf) {
            // Forced from the original, except the link state, which the plan compares with what the VF reads
            // (nil when it cannot be read: then it is written too).
            var from = original
            from.linkState = target.linkState == nil ? nil : (try? state(of: vf, pf: pf))?.linkState
            for step in VFSettingPlan.steps(to: target, from: from, force: true) {
                if let failure = send(step, vf: vf, netdev: netdev, pfDriver: driverName, onWrite: onWrite) {
                    refused[step.field] = refused[step.field] ?? failure
                }
            }
        }
        var failures: [VFStepFailure] = []
        if driver {
            failures += restoreDriver(original.driver, vf: vf, timeout: timeout, onWrite: onWrite)
            // A VF driver probing a VF whose MAC the PF has not set picks a random one and the PF records it (the
            // lab's igbvf on igb 6.1: 00:00:00:00:00:00 became 0e:45:56:5c:42:9c after a rebind). The MAC went
            // before the rebind, so it is written once more if the rebind changed it.
            if fields.contains(.mac), let mac = target.mac, let bytes = parseMAC(mac), let netdev = netdev(of: pf),
                let now = try? state(of: vf, pf: pf), now.mac?.lowercased() != mac.lowercased()
            {
                let step = SettingStep(field: .mac, setting: "mac", request: .mac(bytes))
                if let failure = send(step, vf: vf, netdev: netdev, pfDriver: driverName, onWrite: onWrite) {
                    refused[.mac] = failure
                }
            }
        }
        guard !fields.isEmpty else { return failures }
        let now: VFState
        do {
            now = try state(of: vf, pf: pf)
        } catch {
            if case .readFailed(let step) = error { failures.append(step) }
            return failures + VFField.allCases.compactMap { refused[$0] }
        }
        for mismatch in now.differences(from: target, fields: VFField.settings(of: fields)) {
            let write = VFField(carrying: mismatch.field).flatMap { refused[$0] }
            failures.append(
                VFStepFailure(
                    setting: mismatch.field.rawValue, driver: driverName, errno: write?.errno,
                    errnoName: write?.errnoName,
                    detail: "wanted \(mismatch.expected), reads \(mismatch.actual)"
                        + (write.map { ": " + $0.detail } ?? "")))
        }
        return failures
    }

    /// Puts the VF back on `driver` (nil: unbound, override cleared); the failures, empty on success.
    func restoreDriver(
        _ driver: String?, vf: VirtualFunction, timeout: Duration, onWrite: (HardwareWrite) -> Void
    ) -> [VFStepFailure] {
        if let driver {
            guard let name = DriverName(driver) else {
                return [
                    VFStepFailure(
                        setting: "driver", driver: driver, errno: EINVAL, errnoName: "EINVAL",
                        detail: "not a driver name")
                ]
            }
            do {
                try bind(vf, to: .named(name), timeout: timeout, onWrite: onWrite)
                return []
            } catch {
                if case .bindFailed(let step, let rest) = error { return [step] + rest }
                if case .readFailed(let step) = error { return [step] }
                return [
                    VFStepFailure(
                        setting: "driver", driver: driver, errno: nil, errnoName: nil, detail: error.description)
                ]
            }
        }
        var failures: [VFStepFailure] = []
        if let bound = try? host.sysfs.driver(of: vf.address) {
            failures +=
                sysfsStep("unbind", value: bound.rawValue, vf: vf.address, driver: "none", onWrite: onWrite) {
                    () throws(SysfsError) in try writer.unbind(vf.address)
                }.map { [$0] } ?? []
        }
        if (try? writer.driverOverride(of: vf.address)) != nil {
            failures +=
                sysfsStep("driver_override", value: "", vf: vf.address, driver: "none", onWrite: onWrite) {
                    () throws(SysfsError) in try writer.setDriverOverride(vf.address, nil)
                }.map { [$0] } ?? []
        }
        return failures
    }

    // MARK: - One write

    /// Sends one setting and reports it; the failure, or nil when the kernel acked.
    func send(
        _ step: SettingStep, vf: VirtualFunction, netdev: String, pfDriver: String, onWrite: (HardwareWrite) -> Void
    ) -> VFStepFailure? {
        let clock = ContinuousClock()
        let start = clock.now
        do {
            try host.netlink.apply(step.request, vf: vf.index, interface: netdev)
            onWrite(
                HardwareWrite(
                    kind: .netlink, target: vf.address, operation: step.operation, value: step.value, errno: nil,
                    duration: clock.now - start))
            return nil
        } catch {
            onWrite(
                HardwareWrite(
                    kind: .netlink, target: vf.address, operation: step.operation, value: step.value,
                    errno: error.name, duration: clock.now - start))
            return VFStepFailure(
                setting: step.setting(refusedWith: error.name), driver: pfDriver, errno: error.errno,
                errnoName: error.name, detail: error.context)
        }
    }

    /// Runs one sysfs write and reports it; the failure, or nil.
    func sysfsStep(
        _ operation: String, value: String, vf: PCIAddress, driver: String, onWrite: (HardwareWrite) -> Void,
        _ body: () throws(SysfsError) -> Void
    ) -> VFStepFailure? {
        let clock = ContinuousClock()
        let start = clock.now
        do {
            try body()
            onWrite(
                HardwareWrite(
                    kind: .sysfs, target: vf, operation: operation, value: value, errno: nil,
                    duration: clock.now - start))
            return nil
        } catch {
            onWrite(
                HardwareWrite(
                    kind: .sysfs, target: vf, operation: operation, value: value, errno: error.name,
                    duration: clock.now - start))
            return VFStepFailure(
                setting: "driver", driver: driver, errno: error.errno, errnoName: error.name,
                detail: error.description)
        }
    }
}
