import Glibc
import SRIOVCore

/// The sysfs writes that change SR-IOV state, each one kernel write through `Sysfs`.
///
/// Synchronous: each call blocks for as long as the kernel takes (enabling VFs can take seconds). Timeouts and
/// per-PF serialization belong to the caller.
public struct SRIOVWriter: Sendable {
    public let sysfs: Sysfs

    public init(sysfs: Sysfs) {
        self.sysfs = sysfs
    }

    /// Writes `count` to the PF's `sriov_numvfs`.
    ///
    /// The kernel answers ERANGE above `sriov_totalvfs`, ENOENT with no PF driver bound, EBUSY when changing a
    /// non-zero count to another non-zero count, and succeeds without change for the current count. A driver may
    /// enable fewer VFs than asked: read the count back with `readNumVFs`.
    public func setNumVFs(_ pf: PCIAddress, _ count: Int) throws(SysfsError) {
        try sysfs.write(.sriovNumVFs, of: pf, String(count))
    }

    /// The PF's `sriov_numvfs`.
    public func readNumVFs(_ pf: PCIAddress) throws(SysfsError) -> Int {
        let text = try sysfs.read(.sriovNumVFs, of: pf)
        guard let count = Int(text) else {
            throw SysfsError(errno: EINVAL, operation: .read, path: Sysfs.path(.sriovNumVFs, of: pf))
        }
        return count
    }

    /// Writes `sriov_drivers_autoprobe`: whether VFs created from now on bind to their default driver.
    public func setDriversAutoprobe(_ pf: PCIAddress, _ enabled: Bool) throws(SysfsError) {
        try sysfs.write(.sriovDriversAutoprobe, of: pf, enabled ? "1" : "0")
    }

    /// The device's bound driver, nil when unbound.
    public func driver(of device: PCIAddress) throws(SysfsError) -> DriverName? {
        try sysfs.driver(of: device)
    }

    /// Unbinds the device from its driver (the address written to `bus/pci/drivers/<driver>/unbind`). Does nothing
    /// when no driver is bound. Unbinding a PF's driver removes its VFs.
    public func unbind(_ device: PCIAddress) throws(SysfsError) {
        guard let driver = try sysfs.driver(of: device) else { return }
        try sysfs.write(.unbind, of: driver, device: device)
    }

    /// Writes `driver_override`; nil writes an empty line, which clears it. The kernel ignores the override while a
    /// driver is bound: unbind first, then `probe`.
    public func setDriverOverride(_ device: PCIAddress, _ driver: DriverName?) throws(SysfsError) {
        try sysfs.write(.driverOverride, of: device, (driver?.rawValue ?? "") + "\n")
    }

    /// `driver_override`, nil when unset (the kernel shows `(null)`).
    public func driverOverride(of device: PCIAddress) throws(SysfsError) -> DriverName? {
        let text = try sysfs.read(.driverOverride, of: device)
        return text == "(null)" || text.isEmpty ? nil : DriverName(text)
    }

    /// Asks the kernel to probe the device (its address written to `bus/pci/drivers_probe`): it binds to the
    /// `driver_override` driver when set, else to a matching driver. Succeeds even when no driver takes it.
    public func probe(_ device: PCIAddress) throws(SysfsError) {
        try sysfs.probe(device)
    }

    /// Writes the address to `bus/pci/drivers/<driver>/bind` (ENODEV when the driver does not match the device).
    public func bind(_ device: PCIAddress, to driver: DriverName) throws(SysfsError) {
        try sysfs.write(.bind, of: driver, device: device)
    }
}
