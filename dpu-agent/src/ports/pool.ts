import { EventEmitter } from 'node:events';
import { type VfCounters, rebase } from '../hw/link-stats.ts';
import { compareVf, scrubMac } from '../hw/representor.ts';
import type { HwBackend, Representor } from '../hw/types.ts';
import type { Logger } from '../log.ts';
import { coversRequests } from '../ovsdb/monitor.ts';
import { Allocations } from './allocate.ts';
import { BridgeView, POOL_MONITOR } from './bridge-view.ts';
import { type AllocationTiming, PoolState, type ReassertOutcome, type VfPoolOptions } from './pool-state.ts';
import type { Lease } from './lease.ts';
import { Reassertions } from './reassert.ts';
import { Releases } from './release.ts';
import { type Attachment, type AttachmentKey, type PoolStatus, type VfPoolApi, keyString } from './types.ts';

export type { AllocationTiming, ReassertOutcome, VfPoolOptions } from './pool-state.ts';

// The VF pool: the host asks, the DPU decides. A VF is handed out only for a
// pod whose OVN port exists and is requested on this chassis (allocate.ts); every
// failure undoes what it took (release.ts); a lease whose binding a foreign
// interface took is re-asserted (reassert.ts). Leases are never kept anywhere but
// OVSDB (bridge-view.ts reads them), so a restart rebuilds them with zero writes.
// This file keeps the representor set: discovery, adoption, the quarantine of
// free ones, and the queries of the host API.

export declare interface VfPool {
  on(event: 'reasserted', l: (o: ReassertOutcome) => void): this;
  on(event: 'allocated', l: (a: Attachment, t: AllocationTiming) => void): this;
  on(event: 'allocation-failed', l: (reason: string) => void): this;
  on(event: 'released', l: (representor: string, why: string) => void): this;
  on(event: 'lease-broken', l: (representor: string) => void): this;
  on(event: 'requarantined', l: (representor: string) => void): this;
}

export class VfPool extends EventEmitter implements VfPoolApi {
  readonly hw: HwBackend;
  private readonly s: PoolState;
  private readonly log: Logger;
  private readonly allocations: Allocations;
  private readonly releases: Releases;
  private readonly reassertions: Reassertions;
  private rescanning: Promise<void> = Promise.resolve();

  constructor(private readonly opts: VfPoolOptions) {
    super();
    if (opts.monitor && !coversRequests(opts.monitor.requests, POOL_MONITOR)) throw new TypeError('VfPool: the shared monitor does not cover POOL_MONITOR');
    this.hw = opts.hw;
    this.s = new PoolState(opts, (event, ...args) => this.emit(event, ...args));
    this.log = this.s.log;
    this.releases = new Releases(this.s);
    this.allocations = new Allocations(this.s, this.releases);
    this.reassertions = new Reassertions(this.s);
  }

  /** Rebuild from OVSDB and the hardware; quarantine everything not leased. Writes nothing to OVSDB. */
  async start(): Promise<void> {
    const m = this.opts.monitor ?? this.opts.ovs.monitor(POOL_MONITOR);
    this.s.view = new BridgeView(m, this.opts.bridge);
    await m.ready;
    const leases = new Map(this.leases().map((l) => [l.representor, l]));
    const reps = await this.opts.hw.discoverRepresentors();
    // The VF MACs in one batch where the backend can (a dump per netns, not requests per VF).
    const macs = await this.opts.hw.getVfMacs?.(reps).catch((err: unknown) => {
      this.log.warn({ err }, 'batch VF MAC read failed; reading them one by one');
      return undefined;
    });
    // The quarantine reads the representors' state in a few dumps and skips what is already so.
    const endSurvey = await this.opts.quarantine.survey?.(reps);
    this.s.representors = [...reps]; // sorted by discovery
    try {
      for (const r of reps) await this.adopt(r, leases.get(r.name), macs?.get(r.name), true);
    } finally {
      endSurvey?.();
    }
    this.s.started = true;
    this.log.info({ representors: this.s.representors.length, leases: leases.size }, 'VF pool rebuilt from OVSDB');
  }

  stop(): void {
    if (!this.opts.monitor) this.s.view?.monitor.close();
  }

  /**
   * Take a representor into the pool. Unleased: quarantined, and a tenant MAC
   * left by an agent killed mid-allocation is scrubbed. Leased (DPU reboot, or a
   * VF that came back): after a reboot the eSwitch forgot the VF's MAC and the
   * representor is down while the pod still runs on the host, so both are
   * restored from the lease in OVSDB — no host action, and the OVSDB rows are
   * untouched, so ovn-controller keeps the same binding (no port flap).
   */
  private async adopt(r: Representor, lease: Lease | undefined, knownMac?: string, listed = false): Promise<void> {
    const s = this.s;
    if (!listed && !s.representors.some((x) => x.name === r.name)) {
      s.representors = [...s.representors, r].sort(compareVf);
    }
    const vfMac = async (): Promise<string | undefined> => knownMac ?? (await this.opts.hw.getVfMac(r));
    if (!lease) {
      await this.opts.quarantine.apply(r.name);
      const scrub = scrubMac(r.pf, r.vf);
      if ((await vfMac()) !== scrub) await this.opts.hw.setVfMac(r, scrub);
      return;
    }
    if ((await vfMac()) !== lease.mac) await this.opts.hw.setVfMac(r, lease.mac);
    await this.opts.quarantine.lift(r.name);
    if (s.broken.delete(r.name)) this.log.info({ representor: r.name, lsp: lease.lsp }, 'leased VF is back; restored');
  }

  /**
   * Re-read the representors (after a link notification, or when notifications
   * were lost): new ones are adopted at once, a leased one that vanished marks
   * its lease broken (reported by GetVf / CNI CHECK) instead of leaving it dangling.
   */
  rescan(): Promise<void> {
    this.rescanning = this.rescanning.then(() => this.doRescan()).catch((err: unknown) => {
      this.log.warn({ err }, 'representor rescan failed');
    });
    return this.rescanning;
  }

  private async doRescan(): Promise<void> {
    const s = this.s;
    const now = await this.opts.hw.discoverRepresentors();
    const names = new Set(now.map((r) => r.name));
    const leases = new Map(this.leases().map((l) => [l.representor, l]));
    for (const gone of s.representors.filter((r) => !names.has(r.name))) {
      s.representors = s.representors.filter((r) => r.name !== gone.name);
      const l = leases.get(gone.name);
      if (l) {
        s.broken.add(gone.name);
        this.log.error({ representor: gone.name, lsp: l.lsp, sandbox: l.key.sandboxId }, 'leased VF vanished; lease marked broken');
        this.emit('lease-broken', gone.name);
      } else {
        this.log.info({ representor: gone.name }, 'representor removed from the pool');
      }
    }
    for (const r of now) {
      if (s.representors.some((x) => x.name === r.name) && !s.broken.has(r.name)) continue;
      await this.adopt(r, leases.get(r.name));
      this.log.info({ representor: r.name, leased: leases.has(r.name) }, 'representor added to the pool');
    }
  }

  /**
   * A representor reported admin-up (RTM_NEWLINK with IFF_UP). A free one must stay
   * down whoever brought it up — a hot-added VF whose creator sets it up after we
   * quarantined it, a network manager, ovs-vswitchd restoring cached flags after an
   * unplug — or it forwards while nobody holds it; the next rescan would not notice
   * (it only adopts new names). Leased, being plugged, or unknown: left alone. The
   * checks and the apply are in one tick, so an allocation's lift queues after it.
   */
  keepQuarantined(name: string): Promise<void> {
    const s = this.s;
    if (!s.started || s.reserved.has(name) || !s.representors.some((r) => r.name === name)) return Promise.resolve();
    if (s.view?.allPortNames().has(name)) return Promise.resolve();
    this.log.warn({ representor: name }, 'free representor came up; quarantined again');
    this.emit('requarantined', name);
    return this.opts.quarantine.apply(name).catch((err: unknown) => {
      this.log.warn({ err, representor: name }, 'could not quarantine a free representor that came up');
    });
  }

  // ---- queries -------------------------------------------------------------

  leases(): Lease[] {
    return this.s.leases();
  }

  status(): PoolStatus {
    const s = this.s;
    const leases = this.leases();
    const leased = leases.length;
    // A broken lease's representor is gone: it is not among `total`, so it takes no free VF.
    const broken = leases.filter((l) => s.broken.has(l.representor)).length;
    const total = s.representors.length;
    return {
      total,
      leased,
      broken,
      free: Math.max(0, total - (leased - broken) - s.reserved.size),
      ovsdbConnected: this.opts.ovs.connected,
      ovnConnected: this.opts.ovn.connected,
      ready: s.ready(),
      chassis: this.opts.chassisNames[0] ?? '',
    };
  }

  get(key: AttachmentKey, peer: string): Attachment | undefined {
    const l = this.s.findLease(key);
    if (!l || l.peer !== peer || l.key.sandboxId !== key.sandboxId || l.key.pod.uid !== key.pod.uid) return undefined;
    return this.s.attachment(l);
  }

  list(peer: string): Attachment[] {
    return this.leases()
      .filter((l) => l.peer === peer)
      .map((l) => this.s.attachment(l));
  }

  async counters(attachments: readonly Attachment[]): Promise<ReadonlyMap<string, VfCounters>> {
    const out = new Map<string, VfCounters>();
    const reader = this.opts.counters;
    if (!reader || attachments.length === 0) return out;
    const now = await reader.read(attachments.filter((a) => !this.s.broken.has(a.representor)).map((a) => a.representor));
    for (const a of attachments) {
      const c = now.get(a.representor);
      if (c) out.set(keyString(a.key), rebase(c, a.countersBase));
    }
    return out;
  }

  // ---- allocation, release, re-assertion -------------------------------------

  allocate(key: AttachmentKey, peer: string, opts: { signal?: AbortSignal } = {}): Promise<Attachment> {
    return this.allocations.allocate(key, peer, opts);
  }

  release(key: AttachmentKey, peer: string): Promise<{ released: boolean }> {
    return this.releases.release(key, peer);
  }

  gc(peer: string, keep: readonly AttachmentKey[]): Promise<{ released: number }> {
    return this.releases.gc(peer, keep);
  }

  /**
   * Release leases whose OVN port has been gone for longer than the grace period, or
   * re-versioned (a pod re-created under the same name).
   */
  sweepOrphans(): Promise<number> {
    return this.releases.sweepOrphans();
  }

  /**
   * Re-assert the lease of `lsp` after a foreign interface with its iface-id was on
   * br-int (reassert.ts). Resolves when done; the outcome is the 'reasserted' event.
   */
  reassert(lsp: string): Promise<void> {
    return this.reassertions.reassert(lsp);
  }
}
