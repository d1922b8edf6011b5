import FoundationEssentials
import Glibc
import Netlink
import Synchronization

/// Plays the kernel's rtnetlink for the simulated host. It reads the same request bytes `KernelRTNetlink`
/// would send and answers in the kernel's reply format, so `RTNetlinkClient` runs unchanged on both. VF
/// settings live in one JSON file per PF netdev under `stateDirectory`; removing that folder is a simulated
/// reboot. Each PF's driver name picks a `DriverProfile` that refuses what that driver refuses.
public final class SimulatedRTNetlink: RTNetlinkTransport {
    /// A PF netdev as the simulated kernel knows it.
    public struct Link: Sendable, Hashable {
        public var name: String
        public var index: Int32
        /// The PF's driver (`igb`, `ice`, `mlx5_core`, `netdevsim`...), which selects the profile.
        public var driver: String
        /// `sriov_numvfs` now: VF numbers at or above it are `EINVAL`.
        public var numVFs: Int
        public var mtu: UInt32
        public var address: [UInt8]
        public var isUp: Bool

        public init(
            name: String, index: Int32, driver: String, numVFs: Int, mtu: UInt32 = 1500,
            address: [UInt8] = [0x02, 0, 0, 0, 0, 1], isUp: Bool = true
        ) {
            self.name = name
            self.index = index
            self.driver = driver
            self.numVFs = numVFs
            self.mtu = mtu
            self.address = address
            self.isUp = isUp
        }
    }

    /// What a driver refuses. Rules every profile shares: a VF number at or above `numVFs`, a multicast MAC,
    /// a VLAN above 4095, a QoS above 7 or a link state above 2 are `EINVAL`; a VLAN protocol other than
    /// 802.1Q/802.1ad is `EPROTONOSUPPORT`.
    public struct DriverProfile: Sendable, Hashable {
        public var name: String
        /// false: `min_tx_rate != 0` is `EINVAL` (igb, also i40e on real hardware).
        public var acceptsMinTxRate: Bool
        /// false: `IFLA_VF_LINK_STATE` is `EOPNOTSUPP` (no `ndo_set_vf_link_state`).
        public var acceptsLinkState: Bool
        /// false: an 802.1ad port VLAN is `EPROTONOSUPPORT`.
        public var accepts8021AD: Bool
        /// A `max_tx_rate` above this (Mbit/s, the link speed) is `EINVAL`; nil for no check.
        public var linkSpeed: UInt32?
        /// false: no `ndo_get_vf_stats`, so the kernel reports every VF counter as 0 (igb).
        public var reportsVFStats = true

        /// Intel 82576 as the 6.1 kernel's igb treats it (observed in the lab): mac, vlan + qos, spoofchk,
        /// trust and max rate (up to the 1000 Mbit/s link) accepted; min rate `EINVAL`, link state
        /// `EOPNOTSUPP`, 802.1ad `EPROTONOSUPPORT`.
        public static let igb = DriverProfile(
            name: "igb", acceptsMinTxRate: false, acceptsLinkState: false, accepts8021AD: false, linkSpeed: 1000,
            reportsVFStats: false)

        /// A driver that implements every VF setting (ice, mlx5, netdevsim).
        public static let permissive = DriverProfile(
            name: "permissive", acceptsMinTxRate: true, acceptsLinkState: true, accepts8021AD: true)

        /// The profile for a driver name: `igb` gets `.igb`, every other driver `.permissive`.
        public static func forDriver(_ driver: String) -> DriverProfile {
            driver == "igb" ? .igb : .permissive
        }
    }

    /// The settings of one VF as stored in the JSON file; the defaults are a VF never configured.
    struct VFState: Codable, Hashable {
        var mac = "00:00:00:00:00:00"
        var vlan: UInt16 = 0
        var qos: UInt8 = 0
        var vlanProtocol: UInt16 = VLANProtocol.ieee8021Q.rawValue
        var spoofCheck = true
        var trust = false
        var linkState: UInt32 = VFLinkState.auto.rawValue
        var minTxRate: UInt32 = 0
        var maxTxRate: UInt32 = 0
    }

    struct FileState: Codable {
        var vfs: [String: VFState] = [:]
    }

    public let stateDirectory: URL
    private let resolve: @Sendable (LinkSelector) -> Link?
    private let lock = Mutex(())
    /// Encoded `IFLA_VF_INFO` entries by what they encode: most VFs look alike, and a PF with 256 VFs would
    /// otherwise be re-encoded attribute by attribute on every `RTM_GETLINK`.
    private let encodedVFs = Mutex<[EncodedVFKey: [UInt8]]>([:])

    private struct EncodedVFKey: Hashable {
        var vf: UInt32
        var state: VFState
        var addressLength: Int
        var withStats: Bool
        var counters: [UInt64]
    }

    /// Traffic counters by netdev and VF number. A VF with a MAC set is taken to be in use and sees traffic: each
    /// read of its stats advances its counters by fixed steps (see `advanceTraffic`), so a given sequence of reads
    /// always gives the same numbers. A VF with no MAC stays at 0, as do a driver's VFs without
    /// `ndo_get_vf_stats`. Counters live in memory only, as a driver's do: a restart starts them again at 0.
    private let traffic = Mutex<[String: [UInt64]]>([:])

    /// - Parameters:
    ///   - stateDirectory: the folder of the per-netdev JSON files (created on first write).
    ///   - resolve: finds a PF netdev by name or ifindex, with its driver and current number of VFs; nil is
    ///     `ENODEV`. Called on every request, so it can read a live (simulated) sysfs.
    public init(stateDirectory: URL, resolve: @escaping @Sendable (LinkSelector) -> Link?) {
        self.stateDirectory = stateDirectory
        self.resolve = resolve
    }

    /// A fixed set of netdevs.
    public convenience init(stateDirectory: URL, links: [Link]) {
        self.init(stateDirectory: stateDirectory) { selector in
            links.first { link in
                switch selector {
                case .index(let index): link.index == index
                case .name(let name): link.name == name
                }
            }
        }
    }

    /// The netdev the resolver finds for `selector`.
    func resolveLink(_ selector: LinkSelector) -> Link? { resolve(selector) }

    /// Forgets the VF settings of one netdev, as a real driver does when its VFs are destroyed.
    public func forgetVFSettings(ofInterface name: String) {
        lock.withLock { _ in
            try? FileManager.default.removeItem(at: fileURL(name))
        }
    }

    // MARK: The kernel side

    public func request(_ message: [UInt8]) throws(NetlinkError) -> [[UInt8]] {
        let messages = try NetlinkMessage.split(message)
        guard let request = messages.first else { throw .malformed("empty request") }
        do {
            return try lock.withLock { _ throws(NetlinkError) -> [[UInt8]] in try answer(request) }
        } catch {
            return [makeError(error, to: request.header)]
        }
    }

    private func answer(_ request: NetlinkMessage) throws(NetlinkError) -> [[UInt8]] {
        let header = request.header
        guard header.flags & ABI.NLM_F_REQUEST != 0 else {
            throw NetlinkError(errno: EINVAL, context: "not a request")
        }
        guard header.type == ABI.RTM_GETLINK || header.type == ABI.RTM_NEWLINK else {
            throw NetlinkError(errno: EOPNOTSUPP, context: "simulated rtnetlink: message type \(header.type)")
        }
        let reader = ByteReader(request.payload)
        guard let index = reader.i32(at: 4), let attributeBytes = reader.slice(16, reader.count - 16) else {
            throw NetlinkError(errno: EINVAL, context: "request shorter than struct ifinfomsg")
        }
        let attributes: [NetlinkAttribute]
        do {
            attributes = try NetlinkAttribute.parse(attributeBytes)
        } catch {
            throw NetlinkError(errno: EINVAL, context: error.context)
        }
        let selector: LinkSelector
        if index > 0 {
            selector = .index(index)
        } else if let name = attributes.first(where: { $0.type == ABI.IFLA_IFNAME })?.string() {
            selector = .name(name)
        } else {
            throw NetlinkError(errno: EINVAL, context: "neither ifi_index nor IFLA_IFNAME")
        }
        guard let link = resolve(selector) else { throw NetlinkError(errno: ENODEV, context: "no such device") }
        let profile = DriverProfile.forDriver(link.driver)

        var replies: [[UInt8]] = []
        if header.type == ABI.RTM_GETLINK {
            let mask = attributes.first { $0.type == ABI.IFLA_EXT_MASK }?.u32() ?? 0
            replies.append(makeLinkReply(link, extMask: mask, to: header))
        } else if let list = attributes.first(where: { $0.type == ABI.IFLA_VFINFO_LIST }) {
            var state = load(link.name)
            defer { save(state, for: link.name) }  // what was applied before an error stays applied
            for entry in try parseRequestAttributes(list.payload) {
                guard entry.type == ABI.IFLA_VF_INFO else {
                    throw NetlinkError(errno: EINVAL, context: "IFLA_VFINFO_LIST member is not IFLA_VF_INFO")
                }
                try applyVFInfo(entry.payload, link: link, profile: profile, state: &state)
            }
        }
        if header.flags & ABI.NLM_F_ACK != 0 {
            replies.append(makeError(nil, to: header))
        }
        return replies
    }

    private func parseRequestAttributes(_ bytes: ArraySlice<UInt8>) throws(NetlinkError) -> [NetlinkAttribute] {
        do {
            return try NetlinkAttribute.parse(bytes)
        } catch {
            throw NetlinkError(errno: EINVAL, context: error.context)
        }
    }

    /// One `IFLA_VF_INFO`, applied in the order the kernel's `do_setvf` uses (not the message's order),
    /// stopping at the first refusal.
    private func applyVFInfo(
        _ bytes: ArraySlice<UInt8>, link: Link, profile: DriverProfile, state: inout FileState
    ) throws(NetlinkError) {
        let members = try parseRequestAttributes(bytes)
        func member(_ type: UInt16, size: Int) throws(NetlinkError) -> ByteReader? {
            guard let attribute = members.first(where: { $0.type == type }) else { return nil }
            guard attribute.payload.count >= size else {
                throw NetlinkError(errno: EINVAL, context: "attribute \(type) shorter than its struct")
            }
            return attribute.reader
        }
        func vfNumber(_ reader: ByteReader) throws(NetlinkError) -> String {
            let vf = Int(reader.u32(at: 0) ?? UInt32.max)
            guard vf < link.numVFs else {
                throw NetlinkError(errno: EINVAL, context: "\(profile.name): VF \(vf) of \(link.numVFs)")
            }
            return String(vf)
        }
        let fail = { (errno: Int32, what: String) in NetlinkError(errno: errno, context: "\(profile.name): \(what)") }

        if let r = try member(ABI.IFLA_VF_MAC, size: ABI.vfMACSize) {
            let key = try vfNumber(r)
            let mac = Array(r.slice(4, link.address.count) ?? [])
            guard mac.first.map({ $0 & 1 == 0 }) ?? false else { throw fail(EINVAL, "multicast MAC") }
            state.vfs[key, default: VFState()].mac = formatMAC(mac)
        }
        if let r = try member(ABI.IFLA_VF_VLAN, size: ABI.vfVLANSize) {
            let key = try vfNumber(r)
            try setVLAN(&state.vfs[key, default: VFState()], r, proto: VLANProtocol.ieee8021Q.rawValue, profile)
        }
        if let list = members.first(where: { $0.type == ABI.IFLA_VF_VLAN_LIST }) {
            let infos = try parseRequestAttributes(list.payload).filter { $0.type == ABI.IFLA_VF_VLAN_INFO }
            guard let info = infos.first, infos.count == 1, info.payload.count >= ABI.vfVLANInfoSize - 2 else {
                throw fail(EINVAL, "IFLA_VF_VLAN_LIST needs one IFLA_VF_VLAN_INFO")
            }
            let key = try vfNumber(info.reader)
            let proto = info.reader.be16(at: 12) ?? 0
            try setVLAN(&state.vfs[key, default: VFState()], info.reader, proto: proto, profile)
        }
        if let r = try member(ABI.IFLA_VF_TX_RATE, size: ABI.vfPairSize) {
            let key = try vfNumber(r)
            let current = state.vfs[key, default: VFState()]
            try setRate(&state.vfs[key, default: VFState()], min: current.minTxRate, max: r.u32(at: 4)!, profile)
        }
        if let r = try member(ABI.IFLA_VF_RATE, size: ABI.vfRateSize) {
            let key = try vfNumber(r)
            try setRate(&state.vfs[key, default: VFState()], min: r.u32(at: 4)!, max: r.u32(at: 8)!, profile)
        }
        if let r = try member(ABI.IFLA_VF_SPOOFCHK, size: ABI.vfPairSize) {
            let key = try vfNumber(r)
            state.vfs[key, default: VFState()].spoofCheck = r.u32(at: 4)! != 0
        }
        if let r = try member(ABI.IFLA_VF_LINK_STATE, size: ABI.vfPairSize) {
            let key = try vfNumber(r)
            guard profile.acceptsLinkState else { throw fail(EOPNOTSUPP, "link state not supported") }
            guard let value = r.u32(at: 4), VFLinkState(rawValue: value) != nil else {
                throw fail(EINVAL, "link state")
            }
            state.vfs[key, default: VFState()].linkState = value
        }
        if let r = try member(ABI.IFLA_VF_TRUST, size: ABI.vfPairSize) {
            let key = try vfNumber(r)
            state.vfs[key, default: VFState()].trust = r.u32(at: 4)! != 0
        }
    }

    private func setVLAN(
        _ vf: inout VFState, _ r: ByteReader, proto: UInt16, _ profile: DriverProfile
    ) throws(NetlinkError) {
        let vlan = r.u32(at: 4) ?? UInt32.max
        let qos = r.u32(at: 8) ?? UInt32.max
        guard vlan <= 4095, qos <= 7 else {
            throw NetlinkError(errno: EINVAL, context: "\(profile.name): vlan \(vlan) qos \(qos)")
        }
        let supported =
            proto == VLANProtocol.ieee8021Q.rawValue
            || (proto == VLANProtocol.ieee8021AD.rawValue && profile.accepts8021AD)
        guard supported else {
            let name = VLANProtocol(rawValue: proto).description
            throw NetlinkError(errno: EPROTONOSUPPORT, context: "\(profile.name): VLAN protocol \(name)")
        }
        vf.vlan = UInt16(vlan)
        vf.qos = UInt8(qos)
        vf.vlanProtocol = proto
    }

    private func setRate(
        _ vf: inout VFState, min: UInt32, max: UInt32, _ profile: DriverProfile
    ) throws(NetlinkError) {
        if min != 0 && !profile.acceptsMinTxRate {
            throw NetlinkError(errno: EINVAL, context: "\(profile.name): min_tx_rate not supported")
        }
        if let speed = profile.linkSpeed, max > speed {
            throw NetlinkError(errno: EINVAL, context: "\(profile.name): max_tx_rate above the link speed")
        }
        if max != 0 && min > max {
            throw NetlinkError(errno: EINVAL, context: "\(profile.name): min_tx_rate above max_tx_rate")
        }
        vf.minTxRate = min
        vf.maxTxRate = max
    }

    // MARK: Replies

    /// `RTM_NEWLINK` describing `link`, with the attributes in the kernel's order; VF data only when the
    /// request's `IFLA_EXT_MASK` has `RTEXT_FILTER_VF`, per-VF statistics unless it has
    /// `RTEXT_FILTER_SKIP_STATS` (and then, like the kernel, the list's 16-bit length can wrap).
    func makeLinkReply(_ link: Link, extMask: UInt32, to request: NetlinkHeader) -> [UInt8] {
        var w = ByteWriter()
        NetlinkHeader(length: 0, type: ABI.RTM_NEWLINK, flags: 0, sequence: request.sequence, portID: request.portID)
            .write(to: &w)
        let up: UInt32 = link.isUp ? 0x1 | 0x40 | 0x10000 : 0  // IFF_UP | IFF_RUNNING | IFF_LOWER_UP
        w.u8(0)  // AF_UNSPEC
        w.u8(0)
        w.u16(1)  // ARPHRD_ETHER
        w.i32(link.index)
        w.u32(0x2 | 0x1000 | up)  // IFF_BROADCAST | IFF_MULTICAST
        w.u32(0)
        w.attribute(ABI.IFLA_IFNAME, string: link.name)
        w.attribute(ABI.IFLA_MTU, u32: link.mtu)
        w.attribute(ABI.IFLA_OPERSTATE, [link.isUp ? 6 : 2])  // IF_OPER_UP / IF_OPER_DOWN
        w.attribute(ABI.IFLA_ADDRESS, link.address)
        if extMask & ABI.RTEXT_FILTER_VF != 0 {
            let state = load(link.name)
            let withStats = extMask & ABI.RTEXT_FILTER_SKIP_STATS == 0
            w.attribute(ABI.IFLA_NUM_VF, u32: UInt32(link.numVFs))
            w.nested(ABI.IFLA_VFINFO_LIST) { list in
                let profile = DriverProfile.forDriver(link.driver)
                for vf in 0..<link.numVFs {
                    let settings = state.vfs[String(vf)] ?? VFState()
                    let inUse = withStats && profile.reportsVFStats && settings.mac != VFState().mac
                    let counters = inUse ? advanceTraffic(link.name, vf: vf) : Self.idleCounters
                    let key = EncodedVFKey(
                        vf: UInt32(vf), state: settings, addressLength: link.address.count, withStats: withStats,
                        counters: counters)
                    if let encoded = encodedVFs.withLock({ $0[key] }) {
                        list.append(encoded)
                        continue
                    }
                    var one = ByteWriter()
                    writeVFInfo(
                        &one, vf: key.vf, settings, addressLength: key.addressLength, withStats ? counters : nil)
                    list.append(one.bytes)
                    encodedVFs.withLock { cache in
                        if cache.count >= 8192 { cache.removeAll(keepingCapacity: true) }
                        cache[key] = one.bytes
                    }
                }
            }
        }
        w.patchU32(at: 0, UInt32(w.count))
        return w.bytes
    }

    /// The `IFLA_VF_STATS` members in the kernel's order: rx/tx packets, rx/tx bytes, broadcast, multicast, then
    /// (after the unused `IFLA_VF_STATS_PAD`, 6) rx and tx dropped.
    static let statsTypes: [UInt16] = [0, 1, 2, 3, 4, 5, 7, 8]
    static let idleCounters = [UInt64](repeating: 0, count: statsTypes.count)

    /// Advances one VF's counters by one read's worth of traffic and returns them. The steps differ by VF number,
    /// so VFs are told apart; every 5th VF drops one received packet per read.
    private func advanceTraffic(_ name: String, vf: Int) -> [UInt64] {
        let packets = UInt64(1000 + 10 * vf)
        let step: [UInt64] = [
            packets, packets * 4 / 5, packets * 600, packets * 4 / 5 * 700, 3, 12, vf % 5 == 0 ? 1 : 0, 0,
        ]
        return traffic.withLock { all in
            var counters = all["\(name)/\(vf)"] ?? Self.idleCounters
            for i in counters.indices { counters[i] &+= step[i] }
            all["\(name)/\(vf)"] = counters
            return counters
        }
    }

    private func writeVFInfo(
        _ w: inout ByteWriter, vf: UInt32, _ s: VFState, addressLength: Int, _ counters: [UInt64]?
    ) {
        func pair(_ w: inout ByteWriter, _ type: UInt16, _ value: UInt32) {
            var p = ByteWriter()
            p.u32(vf)
            p.u32(value)
            w.attribute(type, p.bytes)
        }
        w.nested(ABI.IFLA_VF_INFO) { w in
            var mac = ByteWriter()
            mac.u32(vf)
            mac.append(parseMAC(s.mac) ?? [0, 0, 0, 0, 0, 0])
            mac.zeros(ABI.vfMACSize - mac.count)
            w.attribute(ABI.IFLA_VF_MAC, mac.bytes)
            w.attribute(
                ABI.IFLA_VF_BROADCAST,
                Array(repeating: 0xff, count: addressLength) + Array(repeating: 0, count: 32 - addressLength))
            var vlan = ByteWriter()
            vlan.u32(vf)
            vlan.u32(UInt32(s.vlan))
            vlan.u32(UInt32(s.qos))
            w.attribute(ABI.IFLA_VF_VLAN, vlan.bytes)
            var rate = ByteWriter()
            rate.u32(vf)
            rate.u32(s.minTxRate)
            rate.u32(s.maxTxRate)
            w.attribute(ABI.IFLA_VF_RATE, rate.bytes)
            pair(&w, ABI.IFLA_VF_TX_RATE, s.maxTxRate)
            pair(&w, ABI.IFLA_VF_SPOOFCHK, s.spoofCheck ? 1 : 0)
            pair(&w, ABI.IFLA_VF_LINK_STATE, s.linkState)
            pair(&w, ABI.IFLA_VF_RSS_QUERY_EN, UInt32.max)
            pair(&w, ABI.IFLA_VF_TRUST, s.trust ? 1 : 0)
            w.nested(ABI.IFLA_VF_VLAN_LIST) { list in
                vlan.be16(s.vlanProtocol)
                vlan.zeros(2)
                list.attribute(ABI.IFLA_VF_VLAN_INFO, vlan.bytes)
            }
            if let counters {
                w.nested(ABI.IFLA_VF_STATS) { stats in
                    for (type, value) in zip(Self.statsTypes, counters) {
                        var counter = ByteWriter()
                        counter.u64(value)
                        stats.attribute(type, counter.bytes)
                    }
                }
            }
        }
    }

    /// `NLMSG_ERROR`: the error (0 for an ack) and the request's header (`NLM_F_CAPPED`), plus the reason as
    /// an extended-ack message for errors.
    func makeError(_ error: NetlinkError?, to request: NetlinkHeader) -> [UInt8] {
        var w = ByteWriter()
        let hasText = !(error?.context.isEmpty ?? true)
        let flags = ABI.NLM_F_CAPPED | (hasText ? ABI.NLM_F_ACK_TLVS : 0)
        NetlinkHeader(
            length: 0, type: ABI.NLMSG_ERROR, flags: flags, sequence: request.sequence, portID: request.portID
        )
        .write(to: &w)
        w.i32(-(error?.errno ?? 0))
        request.write(to: &w)
        if let error, hasText {
            w.attribute(ABI.NLMSGERR_ATTR_MSG, string: error.context)
        }
        w.patchU32(at: 0, UInt32(w.count))
        return w.bytes
    }

    // MARK: Files

    private func fileURL(_ name: String) -> URL {
        // An interface name is at most 15 bytes without '/'; anything else is escaped to stay in the folder.
        let safe = name.map { $0 == "/" || $0 == "." ? "_" : String($0) }.joined()
        return stateDirectory.appendingPathComponent(safe + ".json")
    }

    private func load(_ name: String) -> FileState {
        guard let data = try? Data(contentsOf: fileURL(name)),
            let state = try? JSONDecoder().decode(FileState.self, from: data)
        else { return FileState() }
        return state
    }

    private func save(_ state: FileState, for name: String) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(state) else { return }
        try? FileManager.default.createDirectory(at: stateDirectory, withIntermediateDirectories: true)
        Self.replace(fileURL(name).path, with: Array(data))
    }

    /// Writes a temporary file and renames it over `path`: readers in other processes see the old state or the new,
    /// never a mix. No fsync: the kernel keeps VF settings in memory (a reboot loses them), and a durable write per
    /// setting made every simulated rtnetlink request wait for the disk.
    private static func replace(_ path: String, with bytes: [UInt8]) {
        let temporary = path + ".\(getpid()).\(UInt32.random(in: 0...UInt32.max)).sim-tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { break }
            offset += written
        }
        close(fd)
        if offset == bytes.count { rename(temporary, path) } else { unlink(temporary) }
    }
}
