import Netlink
import SRIOVCore

/// The groups of VF settings that travel together in one rtnetlink attribute: VLAN, QoS and VLAN protocol go as
/// one `IFLA_VF_VLAN`/`IFLA_VF_VLAN_LIST`, both rates as one `IFLA_VF_RATE`.
enum VFField: CaseIterable, Hashable, Sendable {
    case vlan
    case spoofCheck
    case mac
    case trust
    case rate
    case linkState
}

/// One rtnetlink request of a plan: one VF attribute in its own `RTM_NEWLINK`.
struct SettingStep: Hashable, Sendable {
    var field: VFField
    /// The API name of what this request changes (`vlan`, `min_tx_rate`, ...), for errors.
    var setting: String
    var request: VFSetting

    /// `vf.vlan`, `vf.mac`, ... for the audit record.
    var operation: String {
        switch field {
        case .vlan: "vf.vlan"
        case .spoofCheck: "vf.spoofchk"
        case .mac: "vf.mac"
        case .trust: "vf.trust"
        case .rate: "vf.rate"
        case .linkState: "vf.link_state"
        }
    }

    /// The value as text for the audit record.
    var value: String {
        switch request {
        case .mac(let bytes): formatMAC(bytes)
        case .vlan(let vlan, let qos, let proto): "vlan=\(vlan) qos=\(qos) proto=\(proto)"
        case .rate(let min, let max): "min=\(min) max=\(max)"
        case .spoofCheck(let on), .trust(let on): on ? "on" : "off"
        case .linkState(let state): "\(state)"
        }
    }

    /// The setting to name when the kernel refuses this request with `errno`: a VLAN request refused with
    /// `EPROTONOSUPPORT` was refused for its protocol.
    func setting(refusedWith errnoName: String) -> String {
        field == .vlan && errnoName == "EPROTONOSUPPORT" ? "vlan_proto" : setting
    }
}

/// Turns wanted VF settings into rtnetlink requests, in the order drivers accept them.
///
/// The order: VLAN (with QoS and protocol) and spoof check before the MAC, then trust, the rates, and the link
/// state. Drivers that filter on the port VLAN or check spoofing when a MAC is set (i40e, ice) take a MAC best once
/// the VLAN and anti-spoofing are in place, and a link state forced last cannot bring a VF up with half its
/// settings. The driver rebind, a sysfs matter, comes after all of them (see `VFController`).
enum VFSettingPlan {
    /// The requests that take a VF from `current` to `target`. A nil field of `target` is left alone. Without
    /// `force`, a field already at the wanted value is not written (so asking for what is already there never
    /// meets a driver's refusal); with it, every non-nil field is written once, because a MAC, VLAN or rate
    /// written again reprograms the hardware's filters whatever the driver reports. The link state is never
    /// forced: nothing in the hardware stands behind it, and igb refuses every link_state write, even of the
    /// value it has.
    static func steps(to target: VFState, from current: VFState, force: Bool) -> [SettingStep] {
        var steps: [SettingStep] = []
        if target.vlan != nil || target.qos != nil || target.vlanProto != nil {
            let vlan = target.vlan ?? current.vlan ?? 0
            // QoS and an 802.1ad protocol mean nothing without a VLAN: VLAN 0 always goes as 0/0/802.1Q.
            let qos = vlan == 0 ? 0 : target.qos ?? current.qos ?? 0
            let proto = vlan == 0 ? .dot1Q : target.vlanProto ?? current.vlanProto ?? .dot1Q
            let same =
                vlan == current.vlan && qos == (current.qos ?? 0)
                && (vlan == 0 || proto == current.vlanProto)
            if force || !same {
                let request = VFSetting.vlan(
                    vlan: UInt16(clamping: vlan), qos: UInt8(clamping: qos),
                    proto: proto == .dot1AD ? .ieee8021AD : .ieee8021Q)
                steps.append(SettingStep(field: .vlan, setting: "vlan", request: request))
            }
        }
        if let on = target.spoofCheck, force || on != current.spoofCheck {
            steps.append(SettingStep(field: .spoofCheck, setting: "spoof_check", request: .spoofCheck(on)))
        }
        if let mac = target.mac, let bytes = parseMAC(mac), force || mac.lowercased() != current.mac?.lowercased() {
            steps.append(SettingStep(field: .mac, setting: "mac", request: .mac(bytes)))
        }
        if let on = target.trust, force || on != current.trust {
            steps.append(SettingStep(field: .trust, setting: "trust", request: .trust(on)))
        }
        if target.minTxRate != nil || target.maxTxRate != nil {
            steps += rateSteps(target, current, force: force)
        }
        if let state = target.linkState, state != current.linkState {
            steps.append(SettingStep(field: .linkState, setting: "link_state", request: .linkState(state.netlink)))
        }
        return steps
    }

    /// Rates go as `IFLA_VF_RATE`, which always carries both. When both change, they go as two requests so that a
    /// refusal names the rate refused (igb refuses any min rate but takes a max rate), ordered so that no request
    /// has a min above its max.
    private static func rateSteps(_ target: VFState, _ current: VFState, force: Bool) -> [SettingStep] {
        let currentMin = UInt32(clamping: current.minTxRate ?? 0)
        let currentMax = UInt32(clamping: current.maxTxRate ?? 0)
        let min = UInt32(clamping: target.minTxRate ?? current.minTxRate ?? 0)
        let max = UInt32(clamping: target.maxTxRate ?? current.maxTxRate ?? 0)
        func step(_ setting: String, _ low: UInt32, _ high: UInt32) -> SettingStep {
            SettingStep(field: .rate, setting: setting, request: .rate(min: low, max: high))
        }
        let minChanges = min != currentMin
        let maxChanges = max != currentMax
        if force || minChanges != maxChanges {
            return [step(min != 0 && (minChanges || force) ? "min_tx_rate" : "max_tx_rate", min, max)]
        }
        guard minChanges && maxChanges else { return [] }
        if max == 0 || currentMin <= max {
            return [step("max_tx_rate", currentMin, max), step("min_tx_rate", min, max)]
        }
        return [step("min_tx_rate", min, currentMax), step("max_tx_rate", min, max)]
    }
}

extension VFField {
    /// The settings this group carries.
    var settings: Set<VFSettingField> {
        switch self {
        case .vlan: [.vlan, .qos, .vlanProto]
        case .spoofCheck: [.spoofCheck]
        case .mac: [.mac]
        case .trust: [.trust]
        case .rate: [.minTxRate, .maxTxRate]
        case .linkState: [.linkState]
        }
    }

    /// The group that carries `setting`; nil for the driver, which is not an rtnetlink matter.
    init?(carrying setting: VFSettingField) {
        guard let group = VFField.allCases.first(where: { $0.settings.contains(setting) }) else { return nil }
        self = group
    }

    /// Every setting of these groups.
    static func settings(of groups: Set<VFField>) -> Set<VFSettingField> {
        groups.reduce(into: []) { $0.formUnion($1.settings) }
    }
}

extension VFState {
    /// The state rtnetlink reports for a VF, with the driver bound to it.
    init(_ info: VFLinkInfo, driver: String?) {
        let proto: VFConfig.VLANProtocol? =
            switch info.vlanProtocol {
            case .ieee8021Q?: .dot1Q
            case .ieee8021AD?: .dot1AD
            default: nil
            }
        self.init(
            mac: info.macString.lowercased(), vlan: Int(info.vlan), qos: Int(info.qos), vlanProto: proto,
            spoofCheck: info.spoofCheck, trust: info.trust, linkState: info.linkState.map(VFConfig.LinkState.init),
            minTxRate: Int(info.minTxRate), maxTxRate: Int(info.maxTxRate), driver: driver)
    }

    /// The network fields a config asks for, the driver left out (it is not an rtnetlink matter).
    public init(settingsOf config: VFConfig) {
        self.init(
            mac: config.mac?.lowercased(), vlan: config.vlan, qos: config.qos, vlanProto: config.vlanProto,
            spoofCheck: config.spoofCheck, trust: config.trust, linkState: config.linkState,
            minTxRate: config.minTxRate, maxTxRate: config.maxTxRate)
    }

    /// Only the fields of the given groups; the others nil.
    func masked(to fields: Set<VFField>) -> VFState {
        VFState(
            mac: fields.contains(.mac) ? mac : nil, vlan: fields.contains(.vlan) ? vlan : nil,
            qos: fields.contains(.vlan) ? qos : nil, vlanProto: fields.contains(.vlan) ? vlanProto : nil,
            spoofCheck: fields.contains(.spoofCheck) ? spoofCheck : nil,
            trust: fields.contains(.trust) ? trust : nil, linkState: fields.contains(.linkState) ? linkState : nil,
            minTxRate: fields.contains(.rate) ? minTxRate : nil, maxTxRate: fields.contains(.rate) ? maxTxRate : nil,
            driver: driver)
    }

    /// True when any network field is set.
    var hasNetworkSettings: Bool {
        mac != nil || vlan != nil || qos != nil || vlanProto != nil || spoofCheck != nil || trust != nil
            || linkState != nil || minTxRate != nil || maxTxRate != nil
    }
}

extension VFConfig.LinkState {
    init(_ state: VFLinkState) {
        switch state {
        case .auto: self = .auto
        case .enable: self = .enable
        case .disable: self = .disable
        }
    }

    var netlink: VFLinkState {
        switch self {
        case .auto: .auto
        case .enable: .enable
        case .disable: .disable
        }
    }
}
