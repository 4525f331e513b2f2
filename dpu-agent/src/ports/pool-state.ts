// What the VF pool's parts share: its options, the replica view, the representor
// set and the pool's events. The pool (pool.ts) owns one PoolState and hands it to
// allocation (allocate.ts), release (release.ts) and re-assertion (reassert.ts).
import { PortsError } from '../errors.ts';
import type { CounterReader } from '../hw/link-stats.ts';
import type { Quarantine } from '../hw/quarantine.ts';
import type { HwBackend, Representor } from '../hw/types.ts';
import type { Logger } from '../log.ts';
import type { OvsdbClient } from '../ovsdb/client.ts';
import type { Monitor } from '../ovsdb/monitor.ts';
import { toAttachment } from './attachment.ts';
import type { BridgeView } from './bridge-view.ts';
import type { Lease } from './lease.ts';
import type { OvnView, PodPort } from './ovn.ts';
import type { Attachment, AttachmentKey } from './types.ts';

export interface VfPoolOptions {
  readonly ovs: OvsdbClient;
  /** A monitor shared with other components (covering POOL_MONITOR), owned by the caller; default: our own. */
  readonly monitor?: Monitor;
  readonly ovn: OvnView;
  readonly hw: HwBackend;
  readonly quarantine: Quarantine;
  readonly logger: Logger;
  readonly bridge: string;
  /** Names this chassis answers to in options:requested-chassis (system-id, hostname). */
  readonly chassisNames: readonly string[];
  readonly mtu: number;
  readonly ovnInstalledTimeoutMs: number;
  /** This chassis' encap IP (chassis.encapIp, its only Encap): what the re-assertion sets external_ids:encap-ip to. */
  readonly encapIp: string;
  readonly maxLeasesPerPeer: number;
  /** A lease whose LSP vanished (or that GC no longer names) is released after this long. */
  readonly orphanGraceMs: number;
  /** Representor counters, re-based per lease; without it no counters are reported. */
  readonly counters?: CounterReader;
  readonly now?: () => number;
}

export interface AllocationTiming {
  readonly agentMs: number;
  readonly ovnInstalledMs: number;
}

/** What a re-assertion of a lease came to (see VfPool.reassert). */
export interface ReassertOutcome {
  readonly lsp: string;
  /** reclaimed: ovn-controller marked the leased interface installed again; no-lease: nothing leased under that LSP;
   *  lease-changed: released or re-plugged meanwhile; not-installed: no re-mark within ovnInstalledTimeoutMs. */
  readonly result: 'reclaimed' | 'no-lease' | 'lease-changed' | 'not-installed';
  readonly representor?: string;
  readonly ms: number;
}

/** The pool's events and their arguments. */
export interface PoolEvents {
  reasserted: [o: ReassertOutcome];
  allocated: [a: Attachment, t: AllocationTiming];
  'allocation-failed': [reason: string];
  released: [representor: string, why: string];
  'lease-broken': [representor: string];
  requarantined: [representor: string];
}

export type PoolEmit = <K extends keyof PoolEvents>(event: K, ...args: PoolEvents[K]) => void;

export class PoolState {
  /** The replica view; undefined until the pool started. */
  view: BridgeView | undefined;
  /** Representors present, sorted by (pf, vf). */
  representors: Representor[] = [];
  /** Representors being plugged right now (not yet visible in OVSDB). */
  readonly reserved = new Set<string>();
  /** Leased representors whose netdev vanished. */
  readonly broken = new Set<string>();
  started = false;
  readonly log: Logger;
  readonly now: () => number;

  constructor(
    readonly opts: VfPoolOptions,
    readonly emit: PoolEmit,
  ) {
    this.log = opts.logger.child({ component: 'ports' });
    this.now = opts.now ?? Date.now;
  }

  /** The view, on paths that run only once the pool started (an allocation, a release of a known lease). */
  get bridge(): BridgeView {
    if (!this.view) throw new PortsError('not-ready', 'the VF pool has not started');
    return this.view;
  }

  leases(): Lease[] {
    return this.view?.leases() ?? [];
  }

  findLease(key: AttachmentKey, leases: readonly Lease[] = this.leases()): Lease | undefined {
    return leases.find(
      (l) => l.key.pod.namespace === key.pod.namespace && l.key.pod.name === key.pod.name && l.key.ifname === key.ifname,
    );
  }

  /** Readiness without counting leases (it sits on the allocation path). */
  ready(): boolean {
    return this.started && this.opts.ovs.connected && this.opts.ovn.connected && this.view?.bridgeUuid() !== undefined;
  }

  attachment(l: Lease, port: PodPort | undefined = this.opts.ovn.lookup(l.lsp)): Attachment {
    return toAttachment(l, port, { mtu: this.opts.mtu, broken: this.broken.has(l.representor) });
  }
}
