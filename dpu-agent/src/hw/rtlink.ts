// Links and addresses over rtnetlink instead of an `ip` process per call: the
// quarantine and the VF MAC sit on the allocation path, and a process spawn costs
// ~10 ms there (more under load).
//   same as: ip link set dev pf0vf3 up|down; ip -j link show; ip link set … address;
//            ip addr flush dev pf0vf3
import { HwError, NetlinkError, NetlinkMalformedError } from '../errors.ts';
import type { Quarantine } from './quarantine.ts';
import { bytesToMac, macToBytes } from '../netlink/addr.ts';
import {
  AttrWriter,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  NLA_TYPE_MASK,
  type NlMessage,
  attrLen,
  encodeMessage,
  parseAttrs,
  readAt,
  readS32,
  readU16,
  readU64,
  readU32,
  writeU16,
  writeU32,
} from '../netlink/nl.ts';
import { dumpRetrying } from '../netlink/dump.ts';
import type { RtNetlink } from '../netlink/socket.ts';
import {
  IFF_LOWER_UP,
  IFF_UP,
  IFINFOMSG_LEN,
  IFLA_ADDRESS,
  IFLA_EXT_MASK,
  IFLA_IFNAME,
  IFLA_LINK,
  IFLA_LINK_NETNSID,
  IFLA_OPERSTATE,
  IFLA_STATS64,
  IFLA_TARGET_NETNSID,
  IF_OPER_UP,
  RTEXT_FILTER_SKIP_STATS,
  RTM_GETLINK,
  RTM_NEWLINK,
  RTM_SETLINK,
  ifinfoHeader,
} from './link-msg.ts';
import { withNetnsFd } from './netns.ts';

const RTM_NEWADDR = 20;
const RTM_DELADDR = 21;
const RTM_GETADDR = 22;
const RTM_NEWNSID = 88;
const RTM_GETNSID = 90;
const NETNSA_NSID = 1;
const NETNSA_FD = 3;
const IFADDRMSG_LEN = 8;

/** RTM_NEWLINK (no CREATE: an existing link only) addressed by name, changing IFF_UP alone. Pure. */
export function encodeSetLinkUp(seq: number, name: string, up: boolean): Buffer {
  const nameBytes = Buffer.from(`${name}\0`);
  const attrLen = 4 + nameBytes.length;
  const body = Buffer.alloc(16 + ((attrLen + 3) & ~3));
  // struct ifinfomsg { u8 family; u8 pad; u16 type; s32 index (0 = by IFLA_IFNAME); u32 flags; u32 change; }
  writeU32(body, 8, up ? IFF_UP : 0);
  writeU32(body, 12, IFF_UP);
  writeU16(body, 16, attrLen);
  writeU16(body, 18, IFLA_IFNAME);
  nameBytes.copy(body, 20);
  return encodeMessage({ type: RTM_NEWLINK, flags: NLM_F_REQUEST | NLM_F_ACK, seq }, body);
}

/** The representor down/up half of the quarantine, on one shared rtnetlink socket. */
export class RtLinkQuarantine implements Quarantine {
  constructor(private readonly nl: RtNetlink) {}

  apply(representor: string): Promise<void> {
    return this.set(representor, false);
  }

  lift(representor: string): Promise<void> {
    return this.set(representor, true);
  }

  private async set(dev: string, up: boolean): Promise<void> {
    try {
      await this.nl.request((seq) => encodeSetLinkUp(seq, dev, up), `link set ${dev} ${up ? 'up' : 'down'}`);
    } catch (err) {
      const why = err instanceof NetlinkError ? err.message : String(err);
      throw new HwError(`set ${dev} ${up ? 'up' : 'down'}: ${why}`, { cause: err });
    }
  }
}

// ---- links: RTM_GETLINK / RTM_SETLINK ---------------------------------------------

/** One link as RTM_NEWLINK describes it (the fields the agent uses). */
export interface LinkInfo {
  readonly ifindex: number;
  readonly name: string;
  readonly mac?: string;
  /** IFF_UP: administratively up. */
  readonly up: boolean;
  /** Operationally up: IF_OPER_UP, or L1 up (IFF_LOWER_UP). */
  readonly operUp: boolean;
  /** IFLA_LINK: a veth's peer ifindex (in the netns `linkNetnsid` names, when set). */
  readonly link?: number;
  /** IFLA_LINK_NETNSID: the peer's netns as an nsid of the asking socket's netns (absent: same netns). */
  readonly linkNetnsid?: number;
  /** IFLA_STATS64, only when asked for (requests skip statistics by default). */
  readonly stats?: LinkStats;
}

/** The link's own counters (struct rtnl_link_stats64, the fields the agent uses). */
export interface LinkStats {
  readonly rxPackets: number;
  readonly txPackets: number;
  readonly rxBytes: number;
  readonly txBytes: number;
  readonly rxDropped: number;
  readonly txDropped: number;
}

/** A link by ifindex or by name, optionally in the netns with that nsid (IFLA_TARGET_NETNSID). */
export interface LinkSelector {
  readonly ifindex?: number;
  readonly name?: string;
  readonly nsid?: number;
  /** Include IFLA_STATS64 (skipped otherwise: a dump of 1,000 links carries them for nothing). */
  readonly stats?: boolean;
}

function ifinfomsg(w: AttrWriter, ifindex: number, flags = 0, change = 0): void {
  // struct ifinfomsg { u8 family (AF_UNSPEC); u8 pad; u16 type; s32 index; u32 flags; u32 change; }
  const b = Buffer.alloc(IFINFOMSG_LEN);
  writeU32(b, 4, ifindex >>> 0);
  writeU32(b, 8, flags);
  writeU32(b, 12, change);
  w.raw(b);
}

/** RTM_GETLINK for one link (ACKed: the reply comes before the ACK); statistics only if `sel.stats`. Pure. */
export function encodeGetLink(seq: number, sel: LinkSelector): Buffer {
  const w = new AttrWriter(64);
  ifinfomsg(w, sel.ifindex ?? 0);
  if (sel.name !== undefined) w.string(IFLA_IFNAME, sel.name);
  if (!sel.stats) w.u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  if (sel.nsid !== undefined) w.u32(IFLA_TARGET_NETNSID, sel.nsid);
  return encodeMessage({ type: RTM_GETLINK, flags: NLM_F_REQUEST | NLM_F_ACK, seq }, w.toBuffer());
}

/** RTM_GETLINK dump of a whole netns (ours, or the one `nsid` names); statistics only if `stats`. Pure. */
export function encodeLinkDump(seq: number, nsid?: number, stats = false): Buffer {
  const w = new AttrWriter(32);
  ifinfomsg(w, 0);
  if (!stats) w.u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  if (nsid !== undefined) w.u32(IFLA_TARGET_NETNSID, nsid);
  return encodeMessage({ type: RTM_GETLINK, flags: NLM_F_REQUEST | NLM_F_DUMP, seq }, w.toBuffer());
}

/** RTM_SETLINK: the MAC of the link with that ifindex (in the netns `nsid` names, if given). Pure. */
export function encodeSetLinkAddress(seq: number, ifindex: number, mac: string, nsid?: number): Buffer {
  const w = new AttrWriter(48);
  ifinfomsg(w, ifindex);
  w.bytes(IFLA_ADDRESS, macToBytes(mac));
  if (nsid !== undefined) w.u32(IFLA_TARGET_NETNSID, nsid);
  return encodeMessage({ type: RTM_SETLINK, flags: NLM_F_REQUEST | NLM_F_ACK, seq }, w.toBuffer());
}

/**
 * An RTM_NEWLINK message → LinkInfo; undefined for anything else. Pure. Walks the
 * attributes in place and reads only the five it needs: a link carries ~45 (a dump of
 * 1,000 representors is ~45,000), and an object per attribute would be most of a start's
 * decode time.
 */
export function decodeLink(m: NlMessage): LinkInfo | undefined {
  const b = m.body;
  if (m.hdr.type !== RTM_NEWLINK || b.length < IFINFOMSG_LEN) return undefined;
  const { ifindex, flags } = ifinfoHeader(b);
  let name = '';
  let mac: string | undefined;
  let operstate: number | undefined;
  let link: number | undefined;
  let linkNetnsid: number | undefined;
  let stats: LinkStats | undefined;
  for (let off = IFINFOMSG_LEN; off + 4 <= b.length; ) {
    const len = readU16(b, off);
    if (len < 4 || off + len > b.length) throw new NetlinkMalformedError(`link attribute length ${len} at ${off} overruns ${b.length}`);
    const at = off + 4;
    const plen = len - 4;
    switch (readU16(b, off + 2) & NLA_TYPE_MASK) {
      case IFLA_IFNAME: {
        const nul = b.indexOf(0, at);
        name = b.toString('utf8', at, nul < 0 || nul > at + plen ? at + plen : nul);
        break;
      }
      case IFLA_ADDRESS:
        if (plen === 6) mac = bytesToMac(b.subarray(at, at + 6));
        break;
      case IFLA_OPERSTATE:
        if (plen >= 1) operstate = b[at];
        break;
      case IFLA_LINK:
        if (plen === 4) link = readU32(b, at);
        break;
      case IFLA_LINK_NETNSID:
        if (plen === 4) linkNetnsid = readS32(b, at);
        break;
      case IFLA_STATS64:
        // rx_packets, tx_packets, rx_bytes, tx_bytes, rx_errors, tx_errors, rx_dropped, tx_dropped, …
        if (plen >= 64) {
          stats = {
            rxPackets: readU64(b, at),
            txPackets: readU64(b, at + 8),
            rxBytes: readU64(b, at + 16),
            txBytes: readU64(b, at + 24),
            rxDropped: readU64(b, at + 48),
            txDropped: readU64(b, at + 56),
          };
        }
        break;
    }
    off += (len + 3) & ~3;
  }
  return {
    ifindex,
    name,
    ...(mac ? { mac } : {}),
    up: (flags & IFF_UP) !== 0,
    operUp: operstate === IF_OPER_UP || (flags & IFF_LOWER_UP) !== 0,
    // IFLA_LINK equal to the link itself (most non-stacked devices report it) says nothing.
    ...(link !== undefined && link !== 0 && (link !== ifindex || linkNetnsid !== undefined) ? { link } : {}),
    ...(linkNetnsid !== undefined && linkNetnsid >= 0 ? { linkNetnsid } : {}),
    ...(stats ? { stats } : {}),
  };
}

// ---- addresses: RTM_GETADDR / RTM_DELADDR -------------------------------------------

export interface AddrInfo {
  readonly family: number;
  readonly prefixlen: number;
  readonly ifindex: number;
  /** The RTM_NEWADDR body as received: sent back as RTM_DELADDR, as `ip addr flush` does. */
  readonly body: Buffer;
}

/** RTM_GETADDR dump, every family (the kernel filters by index only with strict checking). Pure. */
export function encodeAddrDump(seq: number): Buffer {
  // struct ifaddrmsg { u8 family; u8 prefixlen; u8 flags; u8 scope; u32 index; }
  return encodeMessage({ type: RTM_GETADDR, flags: NLM_F_REQUEST | NLM_F_DUMP, seq }, Buffer.alloc(IFADDRMSG_LEN));
}

export function decodeAddr(m: NlMessage): AddrInfo | undefined {
  if (m.hdr.type !== RTM_NEWADDR || m.body.length < IFADDRMSG_LEN) return undefined;
  return { family: m.body[0] as number, prefixlen: m.body[1] as number, ifindex: readU32(m.body, 4), body: m.body };
}

export function encodeDelAddr(seq: number, a: AddrInfo): Buffer {
  return encodeMessage({ type: RTM_DELADDR, flags: NLM_F_REQUEST | NLM_F_ACK, seq }, a.body);
}

// ---- nsids: RTM_GETNSID ---------------------------------------------------------------

/** RTM_GETNSID for the netns behind an open fd (ACKed). Pure. */
export function encodeGetNsid(seq: number, fd: number): Buffer {
  const w = new AttrWriter(16);
  w.raw(Buffer.alloc(1)); // struct rtgenmsg { u8 family } (AF_UNSPEC), padded to 4
  w.u32(NETNSA_FD, fd);
  return encodeMessage({ type: RTM_GETNSID, flags: NLM_F_REQUEST | NLM_F_ACK, seq }, w.toBuffer());
}

/** The nsid in an RTM_NEWNSID reply; undefined when not assigned (-1) or absent. Pure. */
export function decodeNsid(m: NlMessage): number | undefined {
  if (m.hdr.type !== RTM_NEWNSID) return undefined;
  for (const a of parseAttrs(m.body, 4)) {
    if (a.type === NETNSA_NSID && attrLen(a) === 4) {
      const id = readAt(a, 0, readS32);
      return id >= 0 ? id : undefined;
    }
  }
  return undefined;
}

/**
 * Links and addresses of one netns (the socket's). Reads may look into any netns
 * that has an nsid here: RTM_GETLINK with IFLA_TARGET_NETNSID (Linux ≥ 4.15) — how the
 * emulated eSwitch reads a VF wherever the host moved it (the representor's
 * IFLA_LINK_NETNSID + IFLA_LINK; the kernel allocates that nsid itself when it reports
 * IFLA_LINK_NETNSID, peernet2id_alloc). Writes may not: on RTM_SETLINK/RTM_NEWLINK the
 * same attribute names the netns to MOVE the device to (do_setlink →
 * rtnl_link_get_net_capable, like IFLA_NET_NS_FD), and the device is looked up in the
 * socket's own netns: a "set MAC in nsid 0" would move the representor into the
 * host netns. So a write goes through a socket opened inside the netns (hw/netns.ts).
 */
export class RtLinks {
  constructor(readonly nl: RtNetlink) {}

  /** Every link of our netns, or of the one `nsid` names (same as: ip -j [-s] link show). */
  async dump(nsid?: number, opts: { stats?: boolean } = {}): Promise<LinkInfo[]> {
    const msgs = await dumpRetrying(this.nl, (seq) => encodeLinkDump(seq, nsid, opts.stats), 'link dump');
    const out: LinkInfo[] = [];
    for (const m of msgs) {
      const l = decodeLink(m);
      if (l) out.push(l);
    }
    return out;
  }

  /** One link, or undefined when there is none (ENODEV; EINVAL for an nsid that names no netns). */
  async get(sel: LinkSelector): Promise<LinkInfo | undefined> {
    try {
      const replies = await this.nl.request((seq) => encodeGetLink(seq, sel), 'link get');
      for (const m of replies) {
        const l = decodeLink(m);
        if (l) return l;
      }
      return undefined;
    } catch (err) {
      if (err instanceof NetlinkError && (err.errnoName === 'ENODEV' || (sel.nsid !== undefined && err.errnoName === 'EINVAL'))) return undefined;
      throw err;
    }
  }

  /** same as: ip [-n NS] link set dev IFINDEX address MAC. Throws NetlinkError (ENODEV when gone). */
  async setAddress(ifindex: number, mac: string, nsid?: number): Promise<void> {
    await this.nl.request((seq) => encodeSetLinkAddress(seq, ifindex, mac, nsid), `link ${ifindex} address`);
  }

  /** The nsid our netns gives the netns behind `fd`; undefined when it has none yet. */
  async nsidOfFd(fd: number): Promise<number | undefined> {
    const replies = await this.nl.request((seq) => encodeGetNsid(seq, fd), 'nsid get');
    for (const m of replies) {
      const id = decodeNsid(m);
      if (id !== undefined) return id;
    }
    return undefined;
  }

  /** The nsid our netns gives the named netns `name` (/run/netns); undefined when none (or no such netns). */
  nsidOfNetns(name: string): Promise<number | undefined> {
    return withNetnsFd(name, (fd) => this.nsidOfFd(fd)).then((x) => x ?? undefined);
  }

  /** Addresses of our netns (all, or of one link). */
  async addresses(ifindex?: number): Promise<AddrInfo[]> {
    const msgs = await dumpRetrying(this.nl, (seq) => encodeAddrDump(seq), 'addr dump');
    const out: AddrInfo[] = [];
    for (const m of msgs) {
      const a = decodeAddr(m);
      if (a && (ifindex === undefined || a.ifindex === ifindex)) out.push(a);
    }
    return out;
  }

  /**
   * same as: ip addr flush dev X — deletes what `known` (or a dump) lists for the
   * link; an address already gone (a secondary goes with its primary) is fine.
   * Returns how many were deleted.
   */
  async flushAddresses(ifindex: number, known?: readonly AddrInfo[]): Promise<number> {
    const addrs = (known ?? (await this.addresses(ifindex))).filter((a) => a.ifindex === ifindex);
    let n = 0;
    for (const a of addrs) {
      try {
        await this.nl.request((seq) => encodeDelAddr(seq, a), `addr del ${ifindex}`);
        n++;
      } catch (err) {
        if (!(err instanceof NetlinkError) || !['EADDRNOTAVAIL', 'ENODEV', 'ENOENT'].includes(err.errnoName)) throw err;
      }
    }
    return n;
  }
}
