// rtnetlink link messages: message types, the link multicast group, the ifinfomsg
// header and the IFLA_* / IFF_* ids the agent reads or writes. One place for the
// numbers: include/uapi/linux/rtnetlink.h, if_link.h, if.h.
import { readS32, readU32 } from '../netlink/nl.ts';

export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_SETLINK = 19;
export const RTNLGRP_LINK = 1;

/** struct ifinfomsg { u8 family; u8 pad; u16 type; s32 index; u32 flags; u32 change; } */
export const IFINFOMSG_LEN = 16;

export const IFLA_ADDRESS = 1;
export const IFLA_IFNAME = 3;
export const IFLA_LINK = 5;
export const IFLA_OPERSTATE = 16;
export const IFLA_STATS64 = 23;
export const IFLA_EXT_MASK = 29;
export const IFLA_LINK_NETNSID = 37;
/** IFLA_IF_NETNSID (4.15) = IFLA_TARGET_NETNSID: the request acts in the netns with that id. */
export const IFLA_TARGET_NETNSID = 46;
export const RTEXT_FILTER_SKIP_STATS = 1 << 3;

export const IFF_UP = 0x1;
export const IFF_LOWER_UP = 0x10000;
export const IF_OPER_UP = 6;

/** ifi_index and ifi_flags of a link message body (at least IFINFOMSG_LEN bytes). */
export function ifinfoHeader(body: Buffer): { ifindex: number; flags: number } {
  return { ifindex: readS32(body, 4), flags: readU32(body, 8) };
}
