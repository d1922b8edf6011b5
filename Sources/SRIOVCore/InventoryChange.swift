/// A change of the host seen between two readings of the inventory: a PF or VF appearing or vanishing, a PF's link
/// going up or down, a driver bound or unbound.
public struct InventoryChange: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable {
        case pfAppeared = "pf.appeared"
        case pfVanished = "pf.vanished"
        case vfAppeared = "vf.appeared"
        case vfVanished = "vf.vanished"
        case linkUp = "link.up"
        case linkDown = "link.down"
        case driverChanged = "driver.changed"
    }

    public var kind: Kind
    /// The device it happened to.
    public var device: PCIAddress
    /// Its PF (the device itself for a PF).
    public var pf: PCIAddress
    /// What it was and what it is, as text: a link state, a driver name; nil when none.
    public var from: String?
    public var to: String?

    public init(_ kind: Kind, device: PCIAddress, pf: PCIAddress, from: String? = nil, to: String? = nil) {
        self.kind = kind
        self.device = device
        self.pf = pf
        self.from = from
        self.to = to
    }

    /// The changes from `old` to `new`, for the PFs either names, in address order.
    public static func between(_ old: [PFSnapshot], _ new: [PFSnapshot]) -> [InventoryChange] {
        let before = Dictionary(old.map { ($0.pf.address, $0) }, uniquingKeysWith: { $1 })
        let after = Dictionary(new.map { ($0.pf.address, $0) }, uniquingKeysWith: { $1 })
        var changes: [InventoryChange] = []
        for address in Set(before.keys).union(after.keys).sorted() {
            switch (before[address], after[address]) {
            case (nil, let added?):
                changes.append(InventoryChange(.pfAppeared, device: address, pf: address, to: added.pf.driver))
            case (let removed?, nil):
                changes.append(InventoryChange(.pfVanished, device: address, pf: address, from: removed.pf.driver))
            case (let was?, let now?):
                changes += compare(was, now)
            case (nil, nil):
                break
            }
        }
        return changes
    }

    /// One PF read twice: its link, its driver, its VFs and theirs.
    private static func compare(_ was: PFSnapshot, _ now: PFSnapshot) -> [InventoryChange] {
        let pf = now.pf.address
        var changes: [InventoryChange] = []
        let (oldLink, newLink) = (was.pf.link?.state, now.pf.link?.state)
        if oldLink != newLink, let newLink, newLink == "up" || newLink == "down" {
            changes.append(
                InventoryChange(newLink == "up" ? .linkUp : .linkDown, device: pf, pf: pf, from: oldLink, to: newLink))
        }
        if was.pf.driver != now.pf.driver {
            changes.append(InventoryChange(.driverChanged, device: pf, pf: pf, from: was.pf.driver, to: now.pf.driver))
        }
        let oldVFs = Dictionary(was.vfs.map { ($0.address, $0) }, uniquingKeysWith: { $1 })
        let newVFs = Dictionary(now.vfs.map { ($0.address, $0) }, uniquingKeysWith: { $1 })
        for address in Set(oldVFs.keys).union(newVFs.keys).sorted() {
            switch (oldVFs[address], newVFs[address]) {
            case (nil, _?): changes.append(InventoryChange(.vfAppeared, device: address, pf: pf))
            case (_?, nil): changes.append(InventoryChange(.vfVanished, device: address, pf: pf))
            case (let a?, let b?) where a.driver != b.driver:
                changes.append(InventoryChange(.driverChanged, device: address, pf: pf, from: a.driver, to: b.driver))
            default: break
            }
        }
        return changes
    }
}
