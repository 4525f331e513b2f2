// A representor's traffic counters (RTM_GETLINK → IFLA_STATS64, read by rtlink.ts), turned into the
// pod's view of its VF and re-based at lease time: the kernel (and the eSwitch
// vport behind a BlueField representor) keeps counting across tenants, and a new
// tenant must not see the previous one's traffic. Representor netdevs live on the
// DPU on both backends, so this is one reader for both.
//   same as: ip -s -j link show dev pf0vf3
import type { RtNetlink } from '../netlink/socket.ts';
import { type LinkStats, RtLinks } from './rtlink.ts';

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

/** The pod's view of its VF from the representor's own counters: what the representor sends, the VF receives. Pure. */
export function podView(s: LinkStats): VfCounters {
  return {
    rxPackets: s.txPackets,
    rxBytes: s.txBytes,
    txPackets: s.rxPackets,
    txBytes: s.rxBytes,
    rxDropped: s.txDropped,
    txDropped: s.rxDropped,
  };
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
  private readonly links: RtLinks;

  constructor(nl: RtNetlink) {
    this.links = new RtLinks(nl);
  }

  async read(names: readonly string[]): Promise<Map<string, VfCounters>> {
    const out = new Map<string, VfCounters>();
    if (names.length === 0) return out;
    // One link: one request (a missing one — a hot-unplugged VF — has no counters); several: one dump.
    const only = names.length === 1 ? names[0] : undefined;
    const links = only !== undefined ? [await this.links.get({ name: only, stats: true })] : await this.links.dump(undefined, { stats: true });
    const wanted = new Set(names);
    for (const l of links) if (l?.stats && wanted.has(l.name)) out.set(l.name, podView(l.stats));
    return out;
  }
}
