import SRIOVCore

/// One write sriovd made to the kernel while changing a VF: an rtnetlink request or a sysfs write. The service
/// turns each into an audit event, so every change to hardware is on record, refused ones included.
public struct HardwareWrite: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable {
        /// An `RTM_NEWLINK` on the PF's netdev carrying one VF attribute.
        case netlink
        /// A sysfs file write (`unbind`, `driver_override`, `drivers_probe`).
        case sysfs
    }

    public var kind: Kind
    /// The VF the write was about.
    public var target: PCIAddress
    /// `vf.vlan`, `vf.spoofchk`, `vf.mac`, `vf.trust`, `vf.rate`, `vf.link_state`; `unbind`, `driver_override`,
    /// `drivers_probe`.
    public var operation: String
    /// What was written, as text: `02:00:00:00:00:01`, `vlan=100 qos=3 proto=802.1Q`, `min=0 max=500`, `vfio-pci`.
    public var value: String
    /// The errno name the kernel answered with; nil when the write succeeded.
    public var errno: String?
    /// How long the kernel took to answer.
    public var duration: Duration

    public init(
        kind: Kind, target: PCIAddress, operation: String, value: String, errno: String?, duration: Duration
    ) {
        self.kind = kind
        self.target = target
        self.operation = operation
        self.value = value
        self.errno = errno
        self.duration = duration
    }

    /// True when the kernel accepted the write.
    public var succeeded: Bool { errno == nil }
}

/// One step that did not take: a refused write, a value that read back different, or a bind that did not happen.
public struct VFStepFailure: Hashable, Sendable, CustomStringConvertible {
    /// The setting in API terms: `mac`, `vlan`, `vlan_proto`, `spoof_check`, `trust`, `min_tx_rate`, `max_tx_rate`,
    /// `link_state`, `driver`; or the state read (`state`).
    public var setting: String
    /// For settings, the PF's driver (the one that refused); for binding, the driver the VF was to be bound to.
    public var driver: String
    /// The errno value; nil when no call failed but the value read back was not the one written.
    public var errno: Int32?
    /// The errno's symbolic name (`EOPNOTSUPP`, `EPROTONOSUPPORT`, `EINVAL`, `ETIMEDOUT`, ...); nil as for `errno`.
    public var errnoName: String?
    /// What happened, for logs: the kernel's extended-ack text, the path, or expected and actual values.
    public var detail: String

    public init(setting: String, driver: String, errno: Int32?, errnoName: String?, detail: String) {
        self.setting = setting
        self.driver = driver
        self.errno = errno
        self.errnoName = errnoName
        self.detail = detail
    }

    public var description: String {
        "\(setting) (\(driver)): \(errnoName ?? "read back different") \(detail)"
    }
}

/// What went wrong while reading or changing a VF.
public enum VFHardwareError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The config cannot be applied as asked (checked before any write): the field and why.
    case invalidConfig(field: String, reason: String)
    /// Network settings were asked of a VF whose PF has no netdev (an NVMe PF).
    case noNetdev(pf: PCIAddress)
    /// Reading the VF's state failed; nothing was written.
    case readFailed(VFStepFailure)
    /// A step of `apply` failed (refused, or read back different). Every step the call had made was then rolled
    /// back; `rollbackFailures` lists those that could not be, empty when the VF is exactly as before.
    case applyFailed(VFStepFailure, rollbackFailures: [VFStepFailure])
    /// `restore` could not bring back these fields (it went on with the others).
    case restoreIncomplete([VFStepFailure])
    /// Binding failed; the previous driver was put back, except for what `revertFailures` lists.
    case bindFailed(VFStepFailure, revertFailures: [VFStepFailure])

    /// True when the VF may have been left in neither the old nor the asked-for state: the service should mark
    /// the allocation `dirty`.
    public var leavesVFChanged: Bool {
        switch self {
        case .invalidConfig, .noNetdev, .readFailed: return false
        case .applyFailed(_, let rest), .bindFailed(_, let rest): return !rest.isEmpty
        case .restoreIncomplete(let failures): return !failures.isEmpty
        }
    }

    /// The domain error for the API: a driver's refusal becomes `settingUnsupported`, a bind timeout
    /// `hardwareTimeout`, anything else `kernel`.
    public func domainError(vf: PCIAddress) -> SRIOVError {
        switch self {
        case .invalidConfig(let field, let reason):
            return .invalidField(field, reason)
        case .noNetdev(let pf):
            return .invalidField("config", "the PF \(pf) has no netdev: only the driver can be set")
        case .readFailed(let step):
            return .kernel(operation: "read VF state", errno: step.errno ?? 0, name: step.errnoName ?? "EIO")
        case .applyFailed(let step, _), .bindFailed(let step, _):
            return Self.domainError(step, vf: vf)
        case .restoreIncomplete(let steps):
            guard let step = steps.first else { return .kernel(operation: "restore", errno: 0, name: "EIO") }
            return Self.domainError(step, vf: vf)
        }
    }

    private static func domainError(_ step: VFStepFailure, vf: PCIAddress) -> SRIOVError {
        guard let name = step.errnoName, let errno = step.errno else {
            return .kernel(operation: step.setting + " read back: " + step.detail, errno: 0, name: "EIO")
        }
        if name == "ETIMEDOUT" { return .hardwareTimeout(vf, step.detail) }
        if step.setting != "driver" && ["EOPNOTSUPP", "EPROTONOSUPPORT", "EINVAL", "ERANGE"].contains(name) {
            return .settingUnsupported(setting: step.setting, driver: step.driver, errno: name)
        }
        return .kernel(operation: step.setting, errno: errno, name: name)
    }

    public var description: String {
        switch self {
        case .invalidConfig(let field, let reason): return "invalid config: \(field) \(reason)"
        case .noNetdev(let pf): return "PF \(pf) has no netdev for VF settings"
        case .readFailed(let step): return "reading VF state failed: \(step)"
        case .applyFailed(let step, let rest):
            return "applying \(step) failed; rollback " + (rest.isEmpty ? "complete" : "incomplete: \(rest)")
        case .restoreIncomplete(let steps): return "restore incomplete: \(steps)"
        case .bindFailed(let step, let rest):
            return "binding failed: \(step); revert " + (rest.isEmpty ? "complete" : "incomplete: \(rest)")
        }
    }
}
