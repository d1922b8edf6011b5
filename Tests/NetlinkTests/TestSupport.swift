import Foundation

@testable import HostSimulator
@testable import Netlink

/// Bytes from a hex string; spaces, newlines and `|` separators are ignored.
func hex(_ text: String) -> [UInt8] {
    let digits = text.filter { $0.isHexDigit }
    var bytes: [UInt8] = []
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        bytes.append(UInt8(digits[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}

/// A fresh folder under the system temp directory, removed by the caller.
func makeTemporaryDirectory() -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("netlink-tests-\(UUID().uuidString)", isDirectory: true)
    try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// A simulated kernel with an igb PF `eth0` (7 VFs possible, `numVFs` enabled) and an ice PF `ens1f0`.
struct SimulatedHost {
    let directory: URL
    let kernel: SimulatedRTNetlink
    var client: RTNetlinkClient { RTNetlinkClient(transport: kernel) }

    init(igbVFs: Int = 2, iceVFs: Int = 4, directory: URL = makeTemporaryDirectory()) {
        self.directory = directory
        self.kernel = SimulatedRTNetlink(
            stateDirectory: directory.appendingPathComponent("vf-settings"),
            links: [
                .init(
                    name: "eth0", index: 2, driver: "igb", numVFs: igbVFs, address: [0x52, 0x54, 0, 0x12, 0x34, 0x56]),
                .init(name: "ens1f0", index: 3, driver: "ice", numVFs: iceVFs, mtu: 9000),
            ])
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

/// A small deterministic generator, so a failing fuzz case can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
