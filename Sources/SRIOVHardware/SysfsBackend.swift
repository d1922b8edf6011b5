/// What a sysfs path names, as `lstat` sees it (a symlink is reported as such, not followed).
public enum SysfsEntryKind: Hashable, Sendable {
    case file
    case directory
    case symlink
}

/// The layer that plays the kernel beneath the sysfs boundary.
///
/// Every path is relative to the sysfs root (`bus/pci/devices/0000:02:00.0/sriov_numvfs`), never absolute and never
/// containing `..`; implementations reject anything else with `EINVAL`. Callers do not build these paths themselves:
/// `Sysfs` is the one place that does.
public protocol SysfsBackend: Sendable {
    /// The whole content of a file, as the kernel returns it (usually with a trailing newline).
    func readFile(_ path: String) throws(SysfsError) -> String
    /// Writes `value` with a single `write()`, as `echo -n value > path` would. The kernel's answer is the error.
    func writeFile(_ path: String, _ value: String) throws(SysfsError)
    /// Names in a directory (following symlinks to it), without `.` and `..`, in no particular order.
    func listDirectory(_ path: String) throws(SysfsError) -> [String]
    /// The raw target of a symlink, e.g. `../../../../bus/pci/drivers/igbvf`.
    func readLink(_ path: String) throws(SysfsError) -> String
    /// What the path names without following a final symlink; nil when nothing is there.
    func kind(of path: String) -> SysfsEntryKind?
    /// Whether the path exists, following symlinks (a dangling link does not exist).
    func fileExists(_ path: String) -> Bool
    /// The folder at `path` opened for reads relative to it; nil when the backend reads by whole paths only.
    func openFolder(_ path: String) throws(SysfsError) -> SysfsFolderHandle?
}

extension SysfsBackend {
    /// Reads by whole paths.
    public func openFolder(_ path: String) throws(SysfsError) -> SysfsFolderHandle? { nil }
}
