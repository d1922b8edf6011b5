import FoundationEssentials
import Glibc
import SRIOVCore
import SRIOVHardware

/// A kernel played over a folder that has the shape of sysfs (see `SimulatedHost`).
///
/// Reads are the same file I/O `KernelSysfs` does over the folder. Writes to the attributes the kernel owns are
/// interpreted as Linux 6.1 does, checked in the kernel's order, and their effect is reflected into the tree:
/// - `sriov_numvfs`: EINVAL for a non-number, ERANGE above `sriov_totalvfs` (or above 65535), success without change
///   for the current count, ENOENT with no PF driver bound, EBUSY for N while M > 0 VFs exist; 0 removes the VFs
///   (bound or not); N from 0 creates N VFs and, when `sriov_drivers_autoprobe` is 1, binds each to the VF driver.
/// - `sriov_drivers_autoprobe`: a boolean (`1`/`0`/`y`/`n`/`on`/`off`), else EINVAL.
/// - `driver_override`: any name, an empty line clears it (reads back as `(null)`); ignored while a driver is bound.
/// - `bus/pci/drivers/<d>/unbind`: ENODEV unless the device is bound to `d`. Unbinding a PF removes its VFs.
/// - `bus/pci/drivers/<d>/bind`: ENODEV unless `d` matches (the override names it, or no override and `d` is the
///   device's driver) and the device may probe; EBUSY when bound. A profile's failing VF probe (QEMU's NVMe VFs) fails
///   as nvme's does, after the write returned: the write succeeds and the VF stays unbound.
/// - `bus/pci/drivers_probe`: ENODEV for an unknown device; otherwise binds the override or matching driver when the
///   device may probe, and succeeds even when nothing binds.
/// - Any other file: written as is when it has a write permission bit, else EACCES; ENOENT when absent.
///
/// Fault injection: when `.simulator/faults.json` exists in the tree it is read at each `sriov_numvfs` write:
/// ```
/// {"write_delay_ms": {"0000:3b:00.0": 30000}, "numvfs_cap": {"0000:af:00.0": 3}}
/// ```
/// `write_delay_ms` makes that PF's `sriov_numvfs` writes block that long before they take effect (a slow driver);
/// `numvfs_cap` makes that PF's driver enable at most that many VFs while the write still succeeds (callers must read
/// `sriov_numvfs` back). Both keys are optional.
///
/// Writes are serialized with an exclusive `flock` on `.simulator/lock`, across backends and processes.
public struct SimulatedKernel: SysfsBackend {
    public let root: String
    let reader: KernelSysfs
    let tree: SimulatedTree

    public init(root: String) {
        reader = KernelSysfs(root: root)
        self.root = reader.root
        tree = SimulatedTree(root: reader.root)
    }

    public init(root: URL) {
        self.init(root: root.path)
    }

    public func readFile(_ path: String) throws(SysfsError) -> String { try reader.readFile(path) }
    public func listDirectory(_ path: String) throws(SysfsError) -> [String] { try reader.listDirectory(path) }
    public func readLink(_ path: String) throws(SysfsError) -> String { try reader.readLink(path) }
    public func kind(of path: String) -> SysfsEntryKind? { reader.kind(of: path) }
    public func fileExists(_ path: String) -> Bool { reader.fileExists(path) }
    public func openFolder(_ path: String) throws(SysfsError) -> SysfsFolderHandle? { try reader.openFolder(path) }

    public func writeFile(_ path: String, _ value: String) throws(SysfsError) {
        guard KernelSysfs.isSafeRelative(path), !path.isEmpty else {
            throw SysfsError(errno: EINVAL, operation: .write, path: path)
        }
        let parts = path.split(separator: "/").map(String.init)
        let fail = { (code: Int32) in SysfsError(errno: code, operation: .write, path: path) }

        if parts == ["bus", "pci", "drivers_probe"] {
            return try locked(path) { machine throws(SysfsError) in try probeStore(value, machine, fail) }
        }
        if parts.count == 5, parts[0...2] == ["bus", "pci", "drivers"], parts[4] == "bind" || parts[4] == "unbind" {
            guard tree.isDirectory("bus/pci/drivers/" + parts[3]) else { throw fail(ENOENT) }
            return try locked(path) { machine throws(SysfsError) in
                if parts[4] == "bind" {
                    try bindStore(parts[3], value, machine, fail)
                } else {
                    try unbindStore(parts[3], value, machine, fail)
                }
            }
        }
        if parts.count >= 2, let device = PCIAddress(parts[parts.count - 2]),
            let attribute = Sysfs.DeviceAttribute(rawValue: parts[parts.count - 1]),
            Self.kernelOwned.contains(attribute), sameFolder(parts.dropLast().joined(separator: "/"), device)
        {
            switch attribute {
            case .sriovNumVFs:
                return try numVFsStore(device, value, fail)
            case .sriovDriversAutoprobe:
                return try locked(path) { machine throws(SysfsError) in
                    try autoprobeStore(device, value, machine, fail)
                }
            default:
                return try locked(path) { machine throws(SysfsError) in
                    try overrideStore(device, value, machine, fail)
                }
            }
        }
        // Anything else behaves as a plain attribute: writable only with a write permission bit.
        guard let mode = tree.mode(path) else { throw fail(ENOENT) }
        if tree.isDirectory(path) { throw fail(EISDIR) }
        guard mode & 0o222 != 0 else { throw fail(EACCES) }
        try locked(path) { _ throws(SysfsError) in try reader.writeFile(path, value) }
    }

    static let kernelOwned: Set<Sysfs.DeviceAttribute> = [.sriovNumVFs, .sriovDriversAutoprobe, .driverOverride]

    /// Whether `folder` is the device's folder (through `bus/pci/devices` or the `devices/` path itself).
    private func sameFolder(_ folder: String, _ device: PCIAddress) -> Bool {
        guard let devicePath = SimulatedMachine(tree: tree, profiles: []).devicePath(device) else { return false }
        return folder == "bus/pci/devices/\(device)" || folder == devicePath
    }

    // MARK: - Stores, in the kernel's order of checks

    private func numVFsStore(_ pf: PCIAddress, _ value: String, _ fail: (Int32) -> SysfsError) throws(SysfsError) {
        // sriov_numvfs_store: kstrtou16, then the total, then (under the device lock) the rest.
        let count = try Self.parseU16(value, fail)
        let path = "bus/pci/devices/\(pf)/sriov_numvfs"
        guard let total = tree.readInt("bus/pci/devices/\(pf)/sriov_totalvfs") else { throw fail(ENOENT) }
        guard count <= total else { throw fail(ERANGE) }
        let faults = loadFaults()
        if let delay = faults.writeDelayMs?[pf.description], delay > 0 {
            usleep(useconds_t(min(delay, 3_600_000)) * 1000)
        }
        try locked(path) { machine throws(SysfsError) in
            guard let current = tree.readInt(path) else { throw fail(ENOENT) }
            if count == current { return }
            guard machine.driver(of: pf) != nil else { throw fail(ENOENT) }
            let enabled = count == 0 ? 0 : min(count, faults.numVFsCap?[pf.description] ?? count)
            guard count == 0 || current == 0 else { throw fail(EBUSY) }
            // The real kernel finishes a VF count change even when the writer is killed; this simulation runs in
            // the writer's process, so it journals the change first and the next start finishes it
            // (`finishInterruptedChanges`). Without that, a kill -9 in the middle leaves half the VFs made.
            try tree.putFile(Self.journal, "\(pf) \(enabled)\n", mode: 0o644)
            if count == 0 {
                try machine.disableVFs(pf)
            } else {
                // A slow driver takes its time per VF while it holds the device (see `SimulatedHost.vfCreationDelays`).
                let perVF = machine.driver(of: pf).flatMap { SimulatedHost.vfCreationDelays(in: tree)[$0] } ?? 0
                if perVF > 0 { usleep(useconds_t(min(perVF * enabled, 3_600_000)) * 1000) }
                try machine.enableVFs(pf, count: enabled)
            }
            tree.remove(Self.journal)
        }
    }

    /// Where a VF count change in progress is recorded: "PF COUNT".
    static let journal = ".simulator/numvfs-in-progress"

    /// Completes a VF count change that a killed process left half done, as the real kernel would have: the PF's
    /// VFs are removed and, for a change to N, N are made. Called when a simulated host is opened.
    public func finishInterruptedChanges() throws(SysfsError) {
        guard let text = tree.readLine(Self.journal) else { return }
        let fields = text.split(whereSeparator: \.isWhitespace)
        try locked(Self.journal) { machine throws(SysfsError) in
            if fields.count == 2, let pf = PCIAddress(String(fields[0])), let count = Int(fields[1]), count >= 0 {
                try machine.disableVFs(pf)
                if count > 0 { try machine.enableVFs(pf, count: count) }
            }
            tree.remove(Self.journal)
        }
    }

    private func autoprobeStore(
        _ pf: PCIAddress, _ value: String, _ machine: SimulatedMachine, _ fail: (Int32) -> SysfsError
    ) throws(SysfsError) {
        guard let path = machine.devicePath(pf), tree.exists(path + "/sriov_drivers_autoprobe") else {
            throw fail(ENOENT)
        }
        // kstrtobool
        let text = Self.line(value).lowercased()
        let enabled: Bool
        switch text {
        case "1", "y", "yes", "on", "t", "true": enabled = true
        case "0", "n", "no", "off", "f", "false": enabled = false
        default: throw fail(EINVAL)
        }
        try tree.replaceFile(path + "/sriov_drivers_autoprobe", enabled ? "1\n" : "0\n")
    }

    private func overrideStore(
        _ device: PCIAddress, _ value: String, _ machine: SimulatedMachine, _ fail: (Int32) -> SysfsError
    ) throws(SysfsError) {
        guard let path = machine.devicePath(device) else { throw fail(ENOENT) }
        // driver_set_override: at most a page, a trailing newline stripped, empty clears.
        guard value.utf8.count < 4095 else { throw fail(EINVAL) }
        let name = Self.line(value)
        try tree.replaceFile(path + "/driver_override", (name.isEmpty ? "(null)" : name) + "\n")
    }

    private func unbindStore(
        _ driver: String, _ value: String, _ machine: SimulatedMachine, _ fail: (Int32) -> SysfsError
    ) throws(SysfsError) {
        guard let device = PCIAddress(Self.line(value)), machine.driver(of: device) == driver else {
            throw fail(ENODEV)
        }
        try machine.unbind(device)
    }

    private func bindStore(
        _ driver: String, _ value: String, _ machine: SimulatedMachine, _ fail: (Int32) -> SysfsError
    ) throws(SysfsError) {
        guard let device = PCIAddress(Self.line(value)), machine.devicePath(device) != nil else { throw fail(ENODEV) }
        // pci_bus_match: an override names the only driver that matches; without one, the id table decides.
        let matches =
            machine.driverOverride(of: device).map { $0 == driver } ?? (machine.defaultDriver(of: device) == driver)
        guard matches else { throw fail(ENODEV) }
        guard machine.driver(of: device) == nil else { throw fail(EBUSY) }
        guard machine.canProbe(device) else { throw fail(ENODEV) }
        // A probe that fails does so asynchronously (nvme's reset work): the write succeeds, the device ends unbound.
        if machine.probeFails(device, driver: driver) { return }
        try machine.bind(device, to: driver)
    }

    private func probeStore(_ value: String, _ machine: SimulatedMachine, _ fail: (Int32) -> SysfsError)
        throws(SysfsError)
    {
        guard let device = PCIAddress(Self.line(value)), machine.devicePath(device) != nil else { throw fail(ENODEV) }
        try machine.probe(device)
    }

    // MARK: - Helpers

    /// The value without one trailing newline, as most sysfs stores take it.
    static func line(_ value: String) -> String {
        value.hasSuffix("\n") ? String(value.dropLast()) : value
    }

    /// `kstrtou16(buf, 0, ...)`: decimal, `0x` hex or leading-0 octal, one trailing newline; EINVAL for anything
    /// else, ERANGE above 65535.
    static func parseU16(_ value: String, _ fail: (Int32) -> SysfsError) throws(SysfsError) -> Int {
        var text = Substring(line(value))
        if text.hasPrefix("+") { text = text.dropFirst() }
        var radix = 10
        if text.lowercased().hasPrefix("0x") {
            radix = 16
            text = text.dropFirst(2)
        } else if text.count > 1 && text.hasPrefix("0") {
            radix = 8
            text = text.dropFirst()
        }
        guard !text.isEmpty, text.allSatisfy({ $0.isHexDigit }) else { throw fail(EINVAL) }
        guard let number = Int(text, radix: radix) else {
            throw fail(text.allSatisfy { $0.isNumber && radix >= 10 } ? ERANGE : EINVAL)
        }
        guard number <= 0xffff else { throw fail(ERANGE) }
        return number
    }

    struct Faults: Decodable {
        var writeDelayMs: [String: Int]?
        var numVFsCap: [String: Int]?

        enum CodingKeys: String, CodingKey {
            case writeDelayMs = "write_delay_ms"
            case numVFsCap = "numvfs_cap"
        }
    }

    func loadFaults() -> Faults {
        guard let text = tree.readText(".simulator/faults.json"),
            let faults = try? JSONDecoder().decode(Faults.self, from: Data(text.utf8))
        else { return Faults() }
        return faults
    }

    /// Runs `body` holding the simulator's write lock (an exclusive flock on `.simulator/lock`).
    private func locked(_ path: String, _ body: (SimulatedMachine) throws(SysfsError) -> Void) throws(SysfsError) {
        try tree.makeDirectories(".simulator")
        let fd = open(tree.absolute(".simulator/lock"), O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SysfsError(errno: errno, operation: .write, path: path) }
        defer { close(fd) }
        guard retryingEINTR({ flock(fd, LOCK_EX) }) == 0 else {
            throw SysfsError(errno: errno, operation: .write, path: path)
        }
        try body(SimulatedMachine(tree: tree))
    }
}
