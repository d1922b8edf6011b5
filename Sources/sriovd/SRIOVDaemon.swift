import ArgumentParser

@main
struct SRIOVDaemon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sriovd",
        abstract: "Manages PCI SR-IOV on this host and serves it as a REST/JSON API.",
        version: "0.1.0",
        subcommands: [Serve.self, Inventory.self, Simulate.self],
        defaultSubcommand: Serve.self
    )
}
