// swift-format-ignore-file: AlwaysUseLowerCamelCase
// The kernel's own names are kept so each constant can be found in the headers.

/// The kernel ABI numbers this target speaks, from include/uapi/linux/{netlink,rtnetlink,if_link}.h.
/// They are spelled out here (rather than taken from the C headers at each use) so the codec reads the same
/// in the simulated kernel; a test checks each against `CLinux`.
package enum ABI {
    // netlink.h: message header flags and types.
    package static let nlmsgHeaderSize = 16
    package static let nlmsgAlignment = 4
    package static let NLMSG_NOOP: UInt16 = 1
    package static let NLMSG_ERROR: UInt16 = 2
    package static let NLMSG_DONE: UInt16 = 3
    package static let NLMSG_OVERRUN: UInt16 = 4
    package static let NLM_F_REQUEST: UInt16 = 0x01
    package static let NLM_F_MULTI: UInt16 = 0x02
    package static let NLM_F_ACK: UInt16 = 0x04
    package static let NLM_F_DUMP_INTR: UInt16 = 0x10
    /// In an `NLMSG_ERROR`: the echoed request was cut to its header.
    package static let NLM_F_CAPPED: UInt16 = 0x100
    /// In an `NLMSG_ERROR`: extended-ack TLVs follow.
    package static let NLM_F_ACK_TLVS: UInt16 = 0x200
    package static let NLMSGERR_ATTR_MSG: UInt16 = 1
    package static let NLA_F_NESTED: UInt16 = 0x8000
    package static let NLA_F_NET_BYTEORDER: UInt16 = 0x4000
    package static let NLA_TYPE_MASK: UInt16 = 0x3fff
    package static let nlaHeaderSize = 4

    // rtnetlink.h
    package static let RTM_NEWLINK: UInt16 = 16
    package static let RTM_GETLINK: UInt16 = 18
    package static let ifinfomsgSize = 16
    package static let RTEXT_FILTER_VF: UInt32 = 1
    package static let RTEXT_FILTER_SKIP_STATS: UInt32 = 8

    // if_link.h: IFLA_*
    package static let IFLA_ADDRESS: UInt16 = 1
    package static let IFLA_IFNAME: UInt16 = 3
    package static let IFLA_MTU: UInt16 = 4
    package static let IFLA_OPERSTATE: UInt16 = 16
    package static let IFLA_NUM_VF: UInt16 = 21
    package static let IFLA_VFINFO_LIST: UInt16 = 22
    package static let IFLA_EXT_MASK: UInt16 = 29

    // if_link.h: IFLA_VF_INFO and its members.
    package static let IFLA_VF_INFO: UInt16 = 1
    package static let IFLA_VF_MAC: UInt16 = 1
    package static let IFLA_VF_VLAN: UInt16 = 2
    package static let IFLA_VF_TX_RATE: UInt16 = 3
    package static let IFLA_VF_SPOOFCHK: UInt16 = 4
    package static let IFLA_VF_LINK_STATE: UInt16 = 5
    package static let IFLA_VF_RATE: UInt16 = 6
    package static let IFLA_VF_RSS_QUERY_EN: UInt16 = 7
    package static let IFLA_VF_STATS: UInt16 = 8
    package static let IFLA_VF_TRUST: UInt16 = 9
    package static let IFLA_VF_VLAN_LIST: UInt16 = 12
    package static let IFLA_VF_BROADCAST: UInt16 = 13
    package static let IFLA_VF_VLAN_INFO: UInt16 = 1

    // if_link.h: members of IFLA_VF_STATS, each a u64 (IFLA_VF_STATS_PAD, 6, is alignment padding).
    package static let IFLA_VF_STATS_RX_PACKETS: UInt16 = 0
    package static let IFLA_VF_STATS_TX_PACKETS: UInt16 = 1
    package static let IFLA_VF_STATS_RX_BYTES: UInt16 = 2
    package static let IFLA_VF_STATS_TX_BYTES: UInt16 = 3
    package static let IFLA_VF_STATS_BROADCAST: UInt16 = 4
    package static let IFLA_VF_STATS_MULTICAST: UInt16 = 5
    package static let IFLA_VF_STATS_RX_DROPPED: UInt16 = 7
    package static let IFLA_VF_STATS_TX_DROPPED: UInt16 = 8

    /// `struct ifla_vf_mac { __u32 vf; __u8 mac[32]; }`
    package static let vfMACSize = 36
    package static let vfMACBytes = 32
    /// `struct ifla_vf_vlan { __u32 vf, vlan, qos; }`
    package static let vfVLANSize = 12
    /// `struct ifla_vf_vlan_info { __u32 vf, vlan, qos; __be16 vlan_proto; }` (padded to 16)
    package static let vfVLANInfoSize = 16
    /// `struct ifla_vf_rate { __u32 vf, min_tx_rate, max_tx_rate; }`
    package static let vfRateSize = 12
    /// `struct ifla_vf_spoofchk`, `ifla_vf_trust`, `ifla_vf_link_state`, `ifla_vf_tx_rate`: two `__u32`.
    package static let vfPairSize = 8

    // netlink.h: socket options at SOL_NETLINK.
    package static let SOL_NETLINK: Int32 = 270
    package static let NETLINK_CAP_ACK: Int32 = 10
    package static let NETLINK_EXT_ACK: Int32 = 11
    package static let NETLINK_ROUTE: Int32 = 0
    /// The multicast group of link changes (`RTNLGRP_LINK`, bit 0).
    package static let RTMGRP_LINK: UInt32 = 1
    package static let NETLINK_KOBJECT_UEVENT: Int32 = 15
}

extension Int {
    /// Rounded up to the netlink alignment (4): `NLMSG_ALIGN` and `NLA_ALIGN`.
    var netlinkAligned: Int { (self + 3) & ~3 }
}
