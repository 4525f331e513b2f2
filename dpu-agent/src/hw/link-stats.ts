// A representor's traffic counters (RTM_GETLINK → IFLA_STATS64), turned into the
// pod's view of its VF and re-based at lease time: the kernel (and the eSwitch
// vport behind a BlueField representor) keeps counting across tenants, and a new
// tenant must not see the previous one's traffic. Representor netdevs live on the
// DPU on both backends, so this is one reader for both.
//   same as: ip -s -j link show dev pf0vf3
import { NetlinkError } from '../errors.ts';
import { NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, type NlMessage, encodeMessage, parseAttrs, readU64, writeU16 } from '../tc/nl.ts';
import type { RtNetlink } from '../tc/socket.ts';

const RTM_NEWLINK = 16;
const RTM_GETLINK = 18;
const IFLA_IFNAME = 3;
const IFLA_STATS64 = 23;
const IFINFOMSG_LEN = 16;

/** Traffic of a VF as the pod sees it (its rx = the representor's tx). */
export interface VfCounters {
  readonly rxPackets: number;
  readonly rxBytes: number;
  readonly txPackets: number;
  readonly txBytes: number;
  readonly rxDropped: number;
  readonly txDropped: number;
}

export const ZERO_COUNTERS: VfCounters = { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, rxDropped: 0, txDropped: 0 };
const FIELDS = ['rxPackets', 'rxBytes', 'txPackets', 'txBytes', 'rxDropped', 'txDropped'] as const;

/** RTM_GETLINK for one link by name, or a dump of the netns's links when `name` is undefined. Pure. */
export function encodeGetLink(seq: number, name?: string): Buffer {
  if (name === undefined) return encodeMessage({ type: RTM_GETLINK, flags: NLM_F_REQUEST | NLM_F_DUMP, seq }, Buffer.alloc(IFINFOMSG_LEN));
  const nameBytes = Buffer.from(`${name}\0`);
  const attrLen = 4 + nameBytes.length;
  const body = Buffer.alloc(IFINFOMSG_LEN + ((attrLen + 3) & ~3));
  writeU16(body, 16, attrLen);
  writeU16(body, 18, IFLA_IFNAME);
  nameBytes.copy(body, 20);
  // NLM_F_ACK: RtNetlink.request() collects the reply until the kernel's ACK.
  return encodeMessage({ type: RTM_GETLINK, flags: NLM_F_REQUEST | NLM_F_ACK, seq }, body);
}

/**
 * Name and pod-view counters of one RTM_NEWLINK reply; undefined for other
 * messages or a link without IFLA_STATS64. Pure.
 */
export function decodeLinkCounters(msg: NlMessage): { name: string; counters: VfCounters } | undefined {
  if (msg.hdr.type !== RTM_NEWLINK || msg.body.length < IFINFOMSG_LEN) return undefined;
  let name: string | undefined;
  let stats: VfCounters | undefined;
  for (const a of parseAttrs(msg.body, IFINFOMSG_LEN)) {
    if (a.type === IFLA_IFNAME) name = a.data.toString('latin1').replace(/\0.*$/s, '');
    else if (a.type === IFLA_STATS64 && a.data.length >= 64) {
      // struct rtnl_link_stats64: rx_packets, tx_packets, rx_bytes, tx_bytes, rx_errors, tx_errors, rx_dropped, tx_dropped, …
      const d = a.data;
      stats = {
        rxPackets: readU64(d, 8),
        txPackets: readU64(d, 0),
        rxBytes: readU64(d, 24),
        txBytes: readU64(d, 16),
        rxDropped: readU64(d, 56),
        txDropped: readU64(d, 48),
      };
    }
  }
  return name !== undefined && stats ? { name, counters: stats } : undefined;
}

/** Counters since `base`. A counter below its base means the link was re-created (DPU restart): count from zero again. */
export function rebase(now: VfCounters, base: VfCounters | undefined): VfCounters {
  if (!base || FIELDS.some((f) => now[f] < base[f])) return now;
  return {
    rxPackets: now.rxPackets - base.rxPackets,
    rxBytes: now.rxBytes - base.rxBytes,
    txPackets: now.txPackets - base.txPackets,
    txBytes: now.txBytes - base.txBytes,
    rxDropped: now.rxDropped - base.rxDropped,
    txDropped: now.txDropped - base.txDropped,
  };
}

/** The compact form kept in the lease (`external_ids`): six decimal integers. */
export function formatCounters(c: VfCounters): string {
  return FIELDS.map((f) => String(c[f])).join(',');
}

export function parseCounters(s: string | undefined): VfCounters | undefined {
  if (!s) return undefined;
  const v = s.split(',').map(Number);
  if (v.length !== FIELDS.length || v.some((n) => !Number.isSafeInteger(n) || n < 0)) return undefined;
  const [rxPackets, rxBytes, txPackets, txBytes, rxDropped, txDropped] = v as [number, number, number, number, number, number];
  return { rxPackets, rxBytes, txPackets, txBytes, rxDropped, txDropped };
}

export interface CounterReader {
  /** Counters of the named links that exist (one request for one name, one dump for several). */
  read(names: readonly string[]): Promise<Map<string, VfCounters>>;
}

export class RtLinkCounters implements CounterReader {
  constructor(private readonly nl: RtNetlink) {}

  async read(names: readonly string[]): Promise<Map<string, VfCounters>> {
    const out = new Map<string, VfCounters>();
    if (names.length === 0) return out;
    let replies: NlMessage[];
    if (names.length === 1) {
      try {
        replies = await this.nl.request((seq) => encodeGetLink(seq, names[0]), `link show ${names[0]}`);
      } catch (err) {
        // ENODEV: the representor is gone (hot-unplugged VF) — no counters, not an error.
        if (err instanceof NetlinkError && err.errno === 19) return out;
        throw err;
      }
    } else {
      replies = await this.nl.dump((seq) => encodeGetLink(seq), 'link dump');
    }
    const wanted = new Set(names);
    for (const m of replies) {
      const d = decodeLinkCounters(m);
      if (d && wanted.has(d.name)) out.set(d.name, d.counters);
    }
    return out;
  }
}
