import ArgumentParser
import Foundation
import SRIOVHardware

/// Where the hardware is: the real sysfs, or a simulated host in a folder.
struct HostOptions: ParsableArguments {
    @Option(help: "The sysfs root to manage.")
    var sysfs: String = "/sys"

    @Option(help: "Serve a simulated host kept in this folder (created with a default host if absent).")
    var simulate: String?

    /// The layer that plays the kernel: the real one, or the simulation.
    func makeBackend() throws -> any SysfsBackend {
        if let simulate {
            let folder = URL(fileURLWithPath: simulate)
            try SimulatedHost.ensureDefault(at: folder)
            return SimulatedKernel(root: folder)
        }
        return KernelSysfs(root: URL(fileURLWithPath: sysfs))
    }
}
