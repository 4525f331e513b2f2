// struct tcmsg and the tc handle arithmetic (include/uapi/linux/rtnetlink.h,
// include/uapi/linux/pkt_sched.h). Pure.
import { HOST_LE, readS32, readU32, writeS32, writeU32 } from '../netlink/nl.ts';
import { NetlinkMalformedError } from '../errors.ts';

// rtnetlink message types (rtnetlink.h)
export const RTM_NEWQDISC = 36;
export const RTM_DELQDISC = 37;
export const RTM_GETQDISC = 38;
export const RTM_NEWTFILTER = 44;
export const RTM_DELTFILTER = 45;
export const RTM_GETTFILTER = 46;
export const RTM_NEWCHAIN = 100;
export const RTM_DELCHAIN = 101;
export const RTM_GETCHAIN = 102;

/** Multicast group for filter/qdisc events (RTNLGRP_TC). */
export const RTNLGRP_TC = 4;

// Top-level TCA_* attributes of a tcmsg (rtnetlink.h enum, ids verified in reference B1).
export const TCA_KIND = 1;
export const TCA_OPTIONS = 2;
export const TCA_STATS = 3;
export const TCA_XSTATS = 4;
export const TCA_RATE = 5;
export const TCA_FCNT = 6;
export const TCA_STATS2 = 7;
export const TCA_STAB = 8;
export const TCA_PAD = 9;
export const TCA_DUMP_INVISIBLE = 10;
export const TCA_CHAIN = 11;
export const TCA_HW_OFFLOAD = 12;
export const TCA_INGRESS_BLOCK = 13;
export const TCA_EGRESS_BLOCK = 14;
export const TCA_DUMP_FLAGS = 15;
export const TCA_EXT_WARN_MSG = 16;

/** TCA_DUMP_FLAGS bit: keys omitted, only action stats (OVS stats polling, lib/tc.c). */
export const TCA_DUMP_FLAGS_TERSE = 1;

// Handles (pkt_sched.h)
export const TC_H_MAJ_MASK = 0xffff0000;
export const TC_H_MIN_MASK = 0x0000ffff;
export const TC_H_UNSPEC = 0;
export const TC_H_ROOT = 0xffffffff;
/** Parent of the ingress/clsact *qdisc* (TC_H_INGRESS == TC_H_CLSACT). */
export const TC_H_INGRESS = 0xfffffff1;
export const TC_H_CLSACT = TC_H_INGRESS;
export const TC_H_MIN_INGRESS = 0xfff2;
export const TC_H_MIN_EGRESS = 0xfff3;
/** Handle of the ingress/clsact qdisc itself ("ffff:"). */
export const TC_H_INGRESS_QDISC_HANDLE = 0xffff0000;
/** Shared blocks: tcm_ifindex = this, tcm_parent = block index. */
export const TCM_IFINDEX_MAGIC_BLOCK = 0xffffffff;

export const TC_H_MAJ = (h: number): number => (h & TC_H_MAJ_MASK) >>> 0;
export const TC_H_MIN = (h: number): number => h & TC_H_MIN_MASK;
export const TC_H_MAKE = (maj: number, min: number): number => ((maj & TC_H_MAJ_MASK) | (min & TC_H_MIN_MASK)) >>> 0;

/** Filter parent for the ingress hook: ffff:fff2 (OVS lib/tc.h, iproute2 tc_filter.c `ingress`). */
export const TC_PARENT_INGRESS = TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS);
/** Filter parent for the egress hook of a clsact qdisc: ffff:fff3. */
export const TC_PARENT_EGRESS = TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS);

// Ethertypes used as filter protocols (linux/if_ether.h)
export const ETH_P_ALL = 0x0003;
export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
export const ETH_P_8021Q = 0x8100;
export const ETH_P_8021AD = 0x88a8;
export const ETH_P_IPV6 = 0x86dd;
export const ETH_P_MPLS_UC = 0x8847;

const htons = (v: number): number => ((v & 0xff) << 8) | ((v >> 8) & 0xff);

/**
 * tcm_info of a filter = TC_H_MAKE(prio << 16, htons(protocol)) (iproute2
 * tc_filter.c; vishvananda MakeHandle(prio, Swap16(proto))): the low 16 bits hold
 * the protocol as the kernel's __be16, i.e. network byte order *in memory*.
 * On little-endian: prio 2 + ETH_P_IP ⇒ 0x00020008.
 */
export function tcmInfo(prio: number, protocol: number): number {
  const p = HOST_LE ? htons(protocol) : protocol;
  return TC_H_MAKE(prio << 16, p);
}

export function splitTcmInfo(info: number): { prio: number; protocol: number } {
  const low = TC_H_MIN(info);
  return { prio: TC_H_MAJ(info) >>> 16, protocol: HOST_LE ? htons(low) : low };
}

export interface TcMsg {
  family: number;
  ifindex: number;
  handle: number;
  parent: number;
  info: number;
}

export const TCMSG_LEN = 20;

/** struct tcmsg: u8 family, u8 pad, u16 pad, s32 ifindex, u32 handle, u32 parent, u32 info. */
export function encodeTcMsg(m: TcMsg): Buffer {
  const b = Buffer.alloc(TCMSG_LEN);
  b.writeUInt8(m.family, 0);
  writeS32(b, 4, m.ifindex);
  writeU32(b, 8, m.handle);
  writeU32(b, 12, m.parent);
  writeU32(b, 16, m.info);
  return b;
}

export function decodeTcMsg(body: Buffer): TcMsg {
  if (body.length < TCMSG_LEN) throw new NetlinkMalformedError(`short tcmsg (${body.length} B)`);
  return {
    family: body[0]!,
    // ifindex is s32 on the wire; the shared-block magic is 0xffffffff (−1): keep it unsigned.
    ifindex: readS32(body, 4) >>> 0,
    handle: readU32(body, 8),
    parent: readU32(body, 12),
    info: readU32(body, 16),
  };
}

/** "ffff:fff2" — how tc prints a handle (for logs and the tc -j comparison). */
export function formatHandle(h: number): string {
  if (h === TC_H_ROOT) return 'root';
  if (h === TC_H_UNSPEC) return 'none';
  return `${(TC_H_MAJ(h) >>> 16).toString(16)}:${TC_H_MIN(h) ? TC_H_MIN(h).toString(16) : ''}`;
}
