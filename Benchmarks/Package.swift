// swift-tools-version: 6.0
// A minimal Hummingbird 2 server serving the same JSON inventory as sriovd's `GET /pfs`, as a baseline
// for bench/compare.sh. Separate from the product: sriovd's own build never depends on this package.
import PackageDescription

let package = Package(
    name: "sriovd-benchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
    ],
    targets: [
        .executableTarget(
            name: "Baseline",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        )
    ],
    swiftLanguageModes: [.v6]
)
