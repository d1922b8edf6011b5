import ArgumentParser
import FoundationEssentials
import Glibc
import HostSimulator
import SRIOVHardware

/// Where the hardware is: the real sysfs, or a simulated host in a folder.
struct HostOptions: ParsableArguments {
    @Option(help: "The sysfs root to manage.")
    var sysfs: String = "/sys"

    @Option(help: "Serve a simulated host kept in this folder (created with a default host if absent).")
    var simulate: String?

    @Flag(help: "With --simulate: drivers create VFs as slowly as real ones (i40e: about 22 s for 64 VFs).")
    var simulateSlowDrivers = false

    /// The layer that plays the kernel (sysfs and rtnetlink): the real one, or the simulation.
    func makeHost() throws -> HardwareHost {
        if let simulate {
            let folder = URL(fileURLWithPath: simulate)
            try SimulatedHost.ensureDefault(at: folder)
            try SimulatedHost.setVFCreationDelays(
                simulateSlowDrivers ? SimulatedHost.realDriverDelays : [:], at: folder)
            return HardwareHost.simulated(at: folder)
        }
        return try HardwareHost.kernel(sysfsRoot: sysfs)
    }
}
