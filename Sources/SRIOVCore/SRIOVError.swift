/// The errors of the domain. They say what went wrong in SR-IOV terms; the service layer maps each to HTTP
/// in exactly one place.
public enum SRIOVError: Error, Hashable, Sendable {
    /// Text that should have been a PCI address.
    case malformedAddress(String)
    case pfNotFound(PCIAddress)
    case vfNotFound(PCIAddress)
    case allocationNotFound(String)
    /// No quota has this owner prefix.
    case quotaNotFound(String)
    /// A request field with a bad value: the field's JSON path and what is wrong.
    case invalidField(String, String)
    /// A query parameter with a bad value: its name and what is wrong.
    case invalidParameter(String, String)
    /// The body is not the JSON expected.
    case malformedBody(String)
    /// No free VF matched; counts of VFs considered and how many of them are held.
    case noFreeVF(total: Int, held: Int)
    /// Free VFs match, but only on PFs that already hold an allocation with this label value (`anti_affinity`).
    case antiAffinityUnsatisfiable(label: String, value: String, pfs: [PCIAddress])
    /// One more VF would pass the owner's quota.
    case quotaExceeded(QuotaRefusal)
    /// The allocation's lease ran out; it is being (or has been) released and cannot be renewed.
    case leaseExpired(String, expiredAt: String)
    /// The PF's VFs cannot change while these VFs are held.
    case vfsHeld(pf: PCIAddress, vfs: [PCIAddress])
    /// The VF is held by another allocation.
    case vfHeld(PCIAddress, allocationID: String)
    /// More VFs than `sriov_totalvfs` (ERANGE).
    case countOutOfRange(requested: Int, totalVFs: Int)
    /// The PF has no driver bound that can do SR-IOV (ENOENT).
    case noSRIOVDriver(PCIAddress)
    /// Another change to this PF (or allocation) is under way in sriovd.
    case pfBusy(PCIAddress, String)
    /// The kernel answered EBUSY: something else changed the PF's VFs meanwhile.
    case kernelBusy(PCIAddress)
    /// A hardware write did not finish in time; what was read back afterwards.
    case hardwareTimeout(PCIAddress, String)
    /// A driver refused a setting: the setting, the driver and the errno name.
    case settingUnsupported(setting: String, driver: String, errno: String)
    /// Any other kernel error: the operation, the errno value and its name.
    case kernel(operation: String, errno: Int32, name: String)
    /// The same Idempotency-Key with a different request.
    case idempotencyKeyReused(String)
    /// The database failed; the change was not made and the hardware was not touched.
    case storage(String)
    /// The database refused to record a change after its hardware writes: they were put back (`restored`), or
    /// putting them back failed too and the VF is kept out of the pool until a reconcile repairs it.
    case storageAfterWrite(String, restored: Bool)
    /// A request with this Idempotency-Key is still being carried out.
    case idempotentRequestInProgress(String)
    /// The first request with this Idempotency-Key was cut off by a restart and rolled back.
    case idempotentRequestInterrupted(String)
    case operationNotFound(String)
    /// The event stream has as many subscribers as it takes.
    case tooManySubscribers(Int)
    /// The operation was cut off by a restart before it finished, and the hardware does not show it done.
    case interrupted(String)
    /// The daemon is not ready for mutations yet (startup reconciliation).
    case notReady
    /// The PF is cordoned: it takes no new allocation (nor a moved one) until `DELETE /pfs/{address}/cordon`.
    case pfCordoned(PCIAddress)
    /// The VF is outside its PF's managed range (`PUT /pfs/{address}/managed`): another owner's.
    case vfExternal(PCIAddress, pf: PCIAddress, managed: String)
    /// The PF's VF count is not sriovd's to change: only part of its VFs are managed.
    case pfPartlyManaged(PCIAddress, managed: String)
    /// The allocation's netdev is attached (by the CNI plugin) in a network namespace: it cannot move until
    /// detached, since the consumer holds the old VF's netdev.
    case allocationAttached(String, netns: String)
    /// No free, managed VF on a PF that is not cordoned can take the allocation being moved (from this VF).
    case noMoveDestination(String, from: PCIAddress)
    /// A request named an allocation's generation that is not its current one (it moved since).
    case generationMismatch(String, given: Int, current: Int)
    /// No Docker network of the sriovd driver with this id.
    case dockerNetworkNotFound(String)
    /// No endpoint with this id on this Docker network.
    case dockerEndpointNotFound(network: String, endpoint: String)
    /// The Docker network still has endpoints (each holding a VF).
    case dockerNetworkInUse(String, endpoints: Int)
    /// A Docker network option that is wrong: its name and what to give instead.
    case dockerOption(String, String)
}
