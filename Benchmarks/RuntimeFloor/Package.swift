// swift-tools-version:6.0
// The least a daemon built like sriovd can occupy: the same runtime pieces (the static Swift standard library,
// FoundationEssentials' JSON, Swift concurrency, the system libsqlite3 in WAL mode, a dictionary), linked the
// same way, and nothing else. bench/rss-floor.sh prints its idle RSS beside sriovd's.
import PackageDescription

let package = Package(
    name: "RuntimeFloor",
    targets: [
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite"),
        .executableTarget(
            name: "RuntimeFloor",
            dependencies: ["CSQLite"],
            linkerSettings: [
                .unsafeFlags(
                    ["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"],
                    .when(configuration: .release))
            ]
        ),
    ]
)
