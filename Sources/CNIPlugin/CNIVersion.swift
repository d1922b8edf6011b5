/// The specification versions this plugin speaks. It answers every request in the version the request's
/// configuration names.
public enum CNIVersion {
    public static let supported = ["0.4.0", "1.0.0", "1.1.0"]
    public static let latest = "1.1.0"

    /// Whether `version` is at least `other` (both `MAJOR.MINOR.PATCH`).
    static func isAtLeast(_ version: String, _ other: String) -> Bool {
        let a = version.split(separator: ".").map { Int($0) ?? 0 }
        let b = other.split(separator: ".").map { Int($0) ?? 0 }
        for i in 0..<3 {
            let x = i < a.count ? a[i] : 0
            let y = i < b.count ? b[i] : 0
            if x != y { return x > y }
        }
        return true
    }

    /// Refuses a version this plugin does not speak (code 1).
    static func check(_ version: String) throws(CNIError) {
        guard supported.contains(version) else {
            throw CNIError(
                .incompatibleVersion, "cniVersion \(version) is not supported",
                details: "sriovd-cni speaks \(supported.joined(separator: ", ")); set cniVersion to one of them")
        }
    }
}
