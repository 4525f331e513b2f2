import { EventEmitter } from 'node:events';
import { PortsError } from '../errors.ts';
import { type CounterReader, type VfCounters, rebase } from '../hw/link-stats.ts';
import type { HwBackend, Representor } from '../hw/types.ts';
import type { Logger } from '../log.ts';
import { strMap } from '../ovsdb/atoms.ts';
import type { OvsdbClient } from '../ovsdb/client.ts';
import { type Monitor, type MonitorRequests, coversRequests } from '../ovsdb/monitor.ts';
import { op } from '../ovsdb/ops.ts';
import { CoalescedPasses } from '../util/coalesce.ts';
import { EXT, type Lease, PLUG_IFACE_OP, leaseFromInterface, plugOps, reassertOps, reassertRestoreOps, unplugOps } from './lease.ts';
import type { OvnView, PodPort } from './ovn.ts';
import type { Quarantine } from '../hw/quarantine.ts';
import {
  type Attachment,
  type AttachmentKey,
  type PoolStatus,
  type VfPoolApi,
  PRIMARY_IFNAME,
  keyString,
  lspName,
} from './types.ts';

// The VF pool: the host asks, the DPU decides. A VF is handed out only for a
// pod whose OVN port exists and is requested on this chassis; MAC and IPs come
// from OVN; the lease and the plug are one OVSDB transaction; every failure
// undoes what it took (no leaked port, lease or MAC). Leases are never kept
// anywhere but OVSDB, so a restart rebuilds them with zero writes.

/** What the pool reads of the Open_vSwitch DB; a shared monitor given in `monitor` must cover it. */
export const POOL_MONITOR: MonitorRequests = {
  Bridge: { columns: ['name', 'ports'] },
  Port: { columns: ['name', 'interfaces'] },
  Interface: { columns: ['name', 'external_ids', 'ofport', 'error'] },
  Open_vSwitch: { columns: ['cur_cfg'] },
};

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

export declare interface VfPool {
  on(event: 'reasserted', l: (o: ReassertOutcome) => void): this;
  on(event: 'allocated', l: (a: Attachment, t: AllocationTiming) => void): this;
  on(event: 'allocation-failed', l: (reason: string) => void): this;
  on(event: 'released', l: (representor: string, why: string) => void): this;
  on(event: 'lease-broken', l: (representor: string) => void): this;
  on(event: 'requarantined', l: (representor: string) => void): this;
}

export class VfPool extends EventEmitter implements VfPoolApi {
  private readonly log: Logger;
  readonly hw: HwBackend;
  private monitor: Monitor | undefined;
  private representors: Representor[] = [];
  /** Representors being plugged right now (not yet visible in OVSDB). */
  private readonly reserved = new Set<string>();
  /** In-flight allocations by attachment key: a retry joins the same promise. */
  private readonly inflight = new Map<string, { peer: string; promise: Promise<Attachment> }>();
  /** LSP name → when we first saw it missing, for orphan GC. */
  private readonly missingSince = new Map<string, number>();
  private started = false;
  private readonly now: () => number;
  private leaseMemo: { monitor: Monitor; generation: number; leases: readonly Lease[] } | undefined;
  /** Leased representors whose netdev vanished. */
  private readonly broken = new Set<string>();
  private rescanning: Promise<void> = Promise.resolve();
  /** Re-assertions by LSP: one at a time each, a request while one runs queues one more. */
  private readonly reasserts = new Map<string, { passes: CoalescedPasses; pending: number }>();

  constructor(private readonly opts: VfPoolOptions) {
    super();
    if (opts.monitor && !coversRequests(opts.monitor.requests, POOL_MONITOR)) throw new TypeError('VfPool: the shared monitor does not cover POOL_MONITOR');
    this.hw = opts.hw;
    this.log = opts.logger.child({ component: 'ports' });
    this.now = opts.now ?? Date.now;
  }

  /** Rebuild from OVSDB and the hardware; quarantine everything not leased. Writes nothing to OVSDB. */
  async start(): Promise<void> {
    const m = this.opts.monitor ?? this.opts.ovs.monitor(POOL_MONITOR);
    this.monitor = m;
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
    this.representors = [...reps]; // sorted by discovery (was one insert + sort per representor in adopt())
    try {
      for (const r of reps) await this.adopt(r, leases.get(r.name), macs?.get(r.name), true);
    } finally {
      endSurvey?.();
    }
    this.started = true;
    this.log.info({ representors: this.representors.length, leases: leases.size }, 'VF pool rebuilt from OVSDB');
  }

  stop(): void {
    if (!this.opts.monitor) this.monitor?.close();
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
    if (!listed && !this.representors.some((x) => x.name === r.name)) {
      this.representors = [...this.representors, r].sort((a, b) => a.pf - b.pf || a.vf - b.vf);
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
    if (this.broken.delete(r.name)) this.log.info({ representor: r.name, lsp: lease.lsp }, 'leased VF is back; restored');
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
    const now = await this.opts.hw.discoverRepresentors();
    const names = new Set(now.map((r) => r.name));
    const leases = new Map(this.leases().map((l) => [l.representor, l]));
    for (const gone of this.representors.filter((r) => !names.has(r.name))) {
      this.representors = this.representors.filter((r) => r.name !== gone.name);
      const l = leases.get(gone.name);
      if (l) {
        this.broken.add(gone.name);
        this.log.error({ representor: gone.name, lsp: l.lsp, sandbox: l.key.sandboxId }, 'leased VF vanished; lease marked broken');
        this.emit('lease-broken', gone.name);
      } else {
        this.log.info({ representor: gone.name }, 'representor removed from the pool');
      }
    }
    for (const r of now) {
      if (this.representors.some((x) => x.name === r.name) && !this.broken.has(r.name)) continue;
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
    if (!this.started || this.reserved.has(name) || !this.representors.some((r) => r.name === name)) return Promise.resolve();
    if (this.allPortNames().has(name)) return Promise.resolve();
    this.log.warn({ representor: name }, 'free representor came up; quarantined again');
    this.emit('requarantined', name);
    return this.opts.quarantine.apply(name).catch((err: unknown) => {
      this.log.warn({ err, representor: name }, 'could not quarantine a free representor that came up');
    });
  }

  // ---- queries -------------------------------------------------------------

  leases(): Lease[] {
    const m = this.monitor;
    if (!m) return [];
    // Decoding every Interface's external_ids costs ~2 ms with 1,000 leases, and an
    // allocation, a status read and each sweep ask for the list: decoded once per replica state.
    const gen = m.generation;
    if (this.leaseMemo?.monitor === m && this.leaseMemo.generation === gen) return [...this.leaseMemo.leases];
    const onBridge = this.bridgePortNames();
    const out: Lease[] = [];
    for (const row of m.table('Interface').values()) {
      const l = leaseFromInterface(row);
      if (l && onBridge.has(l.representor)) out.push(l);
    }
    this.leaseMemo = { monitor: m, generation: gen, leases: out };
    return [...out];
  }

  status(): PoolStatus {
    const leases = this.leases();
    const leased = leases.length;
    // A broken lease's representor is gone: it is not among `total`, so it takes no free VF.
    const broken = leases.filter((l) => this.broken.has(l.representor)).length;
    const total = this.representors.length;
    return {
      total,
      leased,
      broken,
      free: Math.max(0, total - (leased - broken) - this.reserved.size),
      ovsdbConnected: this.opts.ovs.connected,
      ovnConnected: this.opts.ovn.connected,
      ready: this.ready(),
      chassis: this.opts.chassisNames[0] ?? '',
    };
  }

  /** The readiness half of status(), without counting leases (it sits on the allocation path). */
  private ready(): boolean {
    return this.started && this.opts.ovs.connected && this.opts.ovn.connected && this.bridgeUuid() !== undefined;
  }

  get(key: AttachmentKey, peer: string): Attachment | undefined {
    const l = this.findLease(key);
    if (!l || l.peer !== peer || l.key.sandboxId !== key.sandboxId || l.key.pod.uid !== key.pod.uid) return undefined;
    return this.toAttachment(l);
  }

  list(peer: string): Attachment[] {
    return this.leases()
      .filter((l) => l.peer === peer)
      .map((l) => this.toAttachment(l));
  }

  async counters(attachments: readonly Attachment[]): Promise<ReadonlyMap<string, VfCounters>> {
    const out = new Map<string, VfCounters>();
    const reader = this.opts.counters;
    if (!reader || attachments.length === 0) return out;
    const now = await reader.read(attachments.filter((a) => !this.broken.has(a.representor)).map((a) => a.representor));
    for (const a of attachments) {
      const c = now.get(a.representor);
      if (c) out.set(keyString(a.key), rebase(c, a.countersBase));
    }
    return out;
  }

  // ---- allocate --------------------------------------------------------------

  allocate(key: AttachmentKey, peer: string, opts: { signal?: AbortSignal } = {}): Promise<Attachment> {
    const k = keyString(key);
    const running = this.inflight.get(k);
    if (running && running.peer === peer) return running.promise;
    if (running) return Promise.reject(new PortsError('not-owner', `${keyString(key)} is being allocated for another host`));
    const promise = this.doAllocate(key, peer, opts.signal).finally(() => this.inflight.delete(k));
    this.inflight.set(k, { peer, promise });
    return promise;
  }

  private async doAllocate(key: AttachmentKey, peer: string, signal: AbortSignal | undefined): Promise<Attachment> {
    const t0 = performance.now();
    try {
      if (!this.ready()) throw new PortsError('not-ready', 'DPU not ready (OVSDB/OVN not connected)');
      const lsp = lspName(key.pod, key.ifname);
      // One scan of the leases for every check below (each scan walks the Interface table).
      const leases = this.leases();
      const existing = this.findLease(key, leases);
      if (existing) return await this.resume(existing, key, peer);

      // A port created just before this ADD may still be on its way to our NB replica.
      if (!this.opts.ovn.lookup(lsp)) await this.opts.ovn.sync();
      const port = this.authorise(key, lsp);
      const other = leases.find((l) => l.lsp === lsp);
      if (other) throw new PortsError('sandbox-conflict', `${lsp} is attached with sandbox ${other.key.sandboxId}`);
      // Other allocations of this host still in flight count against its cap too.
      const self = keyString(key);
      const inflightForPeer = [...this.inflight].filter(([k, f]) => k !== self && f.peer === peer).length;
      const mine = leases.filter((l) => l.peer === peer).length + inflightForPeer;
      if (mine >= this.opts.maxLeasesPerPeer) throw new PortsError('host-lease-cap', `host ${peer} holds ${mine} VFs (cap ${this.opts.maxLeasesPerPeer})`);
      const rep = this.pickFree();
      if (!rep) throw new PortsError('vf-pool-empty', 'no free VF on this DPU');

      this.reserved.add(rep.name);
      let plugged = false;
      const tChecked = performance.now();
      try {
        // Order matters: MAC first (the host must never see the previous tenant's), quarantine lifted
        // last before the plug — before it, not alongside: with the two run together a lab pod once
        // had no connectivity when its ADD returned (CI, 1 of 6 runs of the reboot test). Suspected
        // cause: ovs-vswitchd sets a new port's flags from its own view of them and can write the
        // link back DOWN, the mirror of why a released representor is re-quarantined only after
        // vswitchd acks (requarantineAfterVswitchd).
        // The base the new tenant's counters start from (whatever the VF carried before is not
        // theirs), read while the MAC is set: the representor is down and forwards nothing yet.
        const [, counted] = await Promise.all([this.opts.hw.setVfMac(rep, port.mac), this.opts.counters?.read([rep.name])]);
        const countersBase = counted?.get(rep.name);
        signal?.throwIfAborted();
        const tMac = performance.now();
        await this.opts.quarantine.lift(rep.name);
        const plugResults = await this.opts.ovs.transact(
          plugOps({
            bridge: this.opts.bridge,
            representor: rep.name,
            pf: rep.pf,
            vf: rep.vf,
            lsp,
            mac: port.mac,
            key,
            peer,
            leaseTime: new Date(this.now()).toISOString(),
            ...(countersBase ? { countersBase } : {}),
            ...(port.ifaceIdVer !== undefined ? { ifaceIdVer: port.ifaceIdVer } : {}),
          }),
        );
        plugged = true;
        const t1 = performance.now();
        const agentMs = t1 - t0;
        // Where the agent's time went: lookups and checks, VF MAC (+ counter base), lift then plug transaction.
        const phasesMs = { checks: round2(tChecked - t0), mac: round2(tMac - tChecked), plug: round2(t1 - tMac) };
        await this.waitInstalled(rep.name, plugResults[PLUG_IFACE_OP]?.uuid, signal);
        const lease = this.findLease(key);
        if (!lease) throw new PortsError('plug-failed', `lease for ${lsp} vanished while waiting for ovn-installed`);
        const a = this.toAttachment(lease, port);
        const timing = { agentMs, ovnInstalledMs: performance.now() - t1 };
        this.log.info({ lsp, sandbox: key.sandboxId, representor: rep.name, vf: rep.vf, peer, ...timing, phasesMs }, 'VF allocated');
        this.emit('allocated', a, timing);
        return a;
      } catch (err) {
        await this.rollback(rep, plugged, lsp, err);
        throw err;
      } finally {
        this.reserved.delete(rep.name);
      }
    } catch (err) {
      const reason = err instanceof PortsError ? err.reason : 'internal';
      this.emit('allocation-failed', reason);
      if (err instanceof PortsError) throw err;
      throw new PortsError('plug-failed', 'allocation failed', { cause: err });
    }
  }

  /** Same key again: the retry gets the same VF (after ovn-installed), or a clear refusal. */
  private async resume(l: Lease, key: AttachmentKey, peer: string): Promise<Attachment> {
    if (l.peer !== peer) throw new PortsError('not-owner', `${l.lsp} is leased to another host`);
    if (l.key.sandboxId !== key.sandboxId) {
      throw new PortsError('sandbox-conflict', `${l.lsp} ${key.ifname} is attached with sandbox ${l.key.sandboxId}`);
    }
    if (l.key.pod.uid !== key.pod.uid) throw new PortsError('pod-uid-mismatch', `${l.lsp} is leased to another pod uid`);
    const port = this.opts.ovn.lookup(l.lsp);
    if (port && staleVersion(l, port)) {
      // The control plane re-versioned the LSP since the plug: ovn-controller will never bind
      // this interface again (and a stale ovn-installed must not pass for ready). Undone like
      // a lease that never became usable; the retry plugs afresh with the LSP's version.
      await this.releaseLease(l, 'iface-id-ver-changed');
      throw new PortsError('ovn-not-installed', `${l.lsp} options:iface-id-ver changed since the plug`);
    }
    try {
      await this.waitInstalled(l.representor, l.interfaceUuid, undefined);
    } catch (err) {
      // Same rule as a fresh allocation: a lease that never became usable is undone, not left behind.
      if (err instanceof PortsError && err.reason === 'ovn-not-installed') await this.releaseLease(l, 'ovn-not-installed');
      throw err;
    }
    return this.toAttachment(this.findLease(key) ?? l);
  }

  /** The pod must exist in OVN and be requested on this chassis (DESIGN §1). */
  private authorise(key: AttachmentKey, lsp: string): PodPort {
    const port = this.opts.ovn.lookup(lsp);
    if (!port) throw new PortsError('pod-not-found', `no OVN port ${lsp}`);
    if (!port.requestedChassis.some((c) => this.opts.chassisNames.includes(c))) {
      throw new PortsError('pod-not-on-this-chassis', `${lsp} is not requested on this chassis`);
    }
    if (port.podUid !== undefined && port.podUid !== key.pod.uid) {
      throw new PortsError('pod-uid-mismatch', `${lsp} belongs to another pod uid`);
    }
    return port;
  }

  private pickFree(): Representor | undefined {
    const onBridge = this.allPortNames();
    return this.representors.find((r) => !onBridge.has(r.name) && !this.reserved.has(r.name));
  }

  private async rollback(rep: Representor, plugged: boolean, lsp: string, cause: unknown): Promise<void> {
    this.log.warn({ err: cause, lsp, representor: rep.name }, 'allocation failed; rolling back');
    try {
      await this.opts.quarantine.apply(rep.name);
      if (plugged) await this.unplug(rep.name);
      await this.opts.hw.setVfMac(rep, scrubMac(rep.pf, rep.vf));
      if (plugged) await this.requarantineAfterVswitchd(rep.name);
    } catch (err) {
      // The audit (offload/) and the next start repair what is left; say loudly that something is.
      this.log.error({ err, representor: rep.name }, 'rollback incomplete');
    }
  }

  /**
   * `ifaceUuid`: the plugged Interface row. Checked by uuid on every replica change — a scan
   * by name cost each of N concurrent waiters a pass over every Interface per change event.
   * Until the row reaches the replica it is simply not installed yet; by name only when
   * the caller has no uuid.
   */
  private waitInstalled(representor: string, ifaceUuid: string | undefined, signal: AbortSignal | undefined): Promise<void> {
    const m = this.monitor as Monitor;
    const installed = (): boolean => {
      const row = ifaceUuid !== undefined ? m.table('Interface').get(ifaceUuid) : [...m.table('Interface').values()].find((r) => r['name'] === representor);
      return row !== undefined && strMap(row['external_ids']).get(EXT.ovnInstalled) === 'true';
    };
    return this.waitFor(installed, this.opts.ovnInstalledTimeoutMs, signal).then((r) => {
      if (r === 'aborted') throw new PortsError('ovn-not-installed', 'request cancelled while waiting for ovn-installed');
      if (r === 'timeout') throw new PortsError('ovn-not-installed', `ovn-controller did not install ${representor} within ${this.opts.ovnInstalledTimeoutMs} ms`);
    });
  }

  // ---- re-assert ------------------------------------------------------------------

  /**
   * Re-assert the lease of `lsp` after a foreign interface with its iface-id was on
   * br-int (the bridge audit removed it). ovn-controller claims the binding for the
   * newer interface, and when that one goes away it may release the LSP altogether
   * instead of giving it back: consider_iface_release (binding.c, OVN 23.03 to main)
   * only spares the lease's binding while the other interface still has no ofport,
   * so the leased interface is left unbound, ovn-installed removed, until something
   * makes ovn-controller look at it again. reassertOps is that something (an
   * encap-ip flip, safe whether or not the LSP pins iface-id-ver); then a bounded
   * wait for ovn-controller to mark the leased interface installed again, and
   * encap-ip is put back as it was. Resolves when done; the outcome is the
   * 'reasserted' event (and the log).
   */
  reassert(lsp: string): Promise<void> {
    let r = this.reasserts.get(lsp);
    if (!r) {
      r = { passes: new CoalescedPasses(() => this.doReassert(lsp), (err) => this.log.error({ err, lsp }, 'lease re-assertion crashed')), pending: 0 };
      this.reasserts.set(lsp, r);
    }
    const entry = r;
    entry.pending++;
    return entry.passes.schedule().finally(() => {
      if (--entry.pending === 0 && this.reasserts.get(lsp) === entry) this.reasserts.delete(lsp);
    });
  }

  private async doReassert(lsp: string): Promise<void> {
    const t0 = performance.now();
    const done = (result: ReassertOutcome['result'], representor?: string): void => {
      this.emit('reasserted', { lsp, result, ms: performance.now() - t0, ...(representor ? { representor } : {}) });
    };
    const m = this.monitor;
    const lease = this.leases().find((l) => l.lsp === lsp);
    if (!m || !lease) return done('no-lease');
    const ctx = { lsp, representor: lease.representor, sandbox: lease.key.sandboxId, peer: lease.peer };
    const ext = (): Map<string, string> | undefined => {
      const row = m.table('Interface').get(lease.interfaceUuid);
      return row ? strMap(row['external_ids']) : undefined;
    };
    const before = ext();
    const encapIp = before?.get(EXT.encapIp);
    const staleTs = before?.get(EXT.ovnInstalledTs);
    const res = await this.opts.ovs.transact(reassertOps(lease, encapIp, this.opts.encapIp));
    if (res[0]?.count !== 1) {
      this.log.info(ctx, 'lease changed before it could be re-asserted; nothing to do');
      return done('lease-changed', lease.representor);
    }
    this.log.warn({ ...ctx, wasInstalled: before?.get(EXT.ovnInstalled) === 'true' }, 're-asserting lease after a foreign claim of its iface-id');
    // Installed again, stamped after our write (we removed the old stamp; a monitor
    // update may still show it if ovn-controller was quick, hence the comparison).
    const reclaimed =
      (await this.waitFor(() => {
        const e = ext();
        if (!e) return true;
        return e.get(EXT.ovnInstalled) === 'true' && (staleTs === undefined || e.get(EXT.ovnInstalledTs) !== staleTs);
      }, this.opts.ovnInstalledTimeoutMs)) === 'met';
    if (!ext()) {
      this.log.info(ctx, 'lease released while being re-asserted');
      return done('lease-changed', lease.representor);
    }
    if (!reclaimed) {
      // encap-ip stays flipped: put back now, ovn-controller could see both writes as
      // one and no change. Harmless either way (this chassis' own encap IP, or none),
      // and the next re-assertion flips it again.
      this.log.error({ ...ctx, timeoutMs: this.opts.ovnInstalledTimeoutMs }, 'ovn-controller did not re-claim the leased interface; the pod has no traffic');
      return done('not-installed', lease.representor);
    }
    await this.opts.ovs.transact(reassertRestoreOps(lease, encapIp)).catch((err: unknown) => {
      this.log.warn({ ...ctx, err }, 'could not put encap-ip back after the re-assertion');
    });
    const ms = performance.now() - t0;
    this.log.warn({ ...ctx, ms }, 'lease re-asserted: ovn-controller re-claimed the leased interface');
    done('reclaimed', lease.representor);
  }

  /**
   * 'met' as soon as `cond` holds (checked now and on each monitor change), 'timeout'
   * after timeoutMs, 'aborted' when `signal` aborts while waiting.
   */
  private waitFor(cond: () => boolean, timeoutMs: number, signal?: AbortSignal): Promise<'met' | 'timeout' | 'aborted'> {
    const m = this.monitor as Monitor;
    if (cond()) return Promise.resolve('met');
    return new Promise((resolve) => {
      const finish = (r: 'met' | 'timeout' | 'aborted'): void => {
        clearTimeout(timer);
        m.off('change', check);
        signal?.removeEventListener('abort', onAbort);
        resolve(r);
      };
      const check = (): void => {
        if (cond()) finish('met');
      };
      const onAbort = (): void => finish('aborted');
      const timer = setTimeout(() => finish('timeout'), timeoutMs);
      m.on('change', check);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  // ---- release / gc ------------------------------------------------------------

  async release(key: AttachmentKey, peer: string): Promise<{ released: boolean }> {
    const l = this.findLease(key);
    // A DEL for an old sandbox, or for an earlier pod of the same name (another uid), must
    // not tear down the live attachment (stale-DEL guard): only the whole key releases.
    if (!l || l.key.sandboxId !== key.sandboxId || l.key.pod.uid !== key.pod.uid) return { released: false };
    if (l.peer !== peer) throw new PortsError('not-owner', `${l.lsp} is leased to another host`);
    await this.releaseLease(l, 'release');
    return { released: true };
  }

  async gc(peer: string, keep: readonly AttachmentKey[]): Promise<{ released: number }> {
    const keepSet = new Set(keep.map(keyString));
    let released = 0;
    for (const l of this.leases()) {
      if (l.peer !== peer || keepSet.has(keyString(l.key))) continue;
      // Leases younger than the grace period may belong to an ADD still in flight on the host.
      if (this.now() - Date.parse(l.leaseTime) < this.opts.orphanGraceMs) continue;
      await this.releaseLease(l, 'cni-gc');
      released++;
    }
    return { released };
  }

  /**
   * Release leases whose OVN port has been gone for longer than the grace period, or
   * re-versioned (options:iface-id-ver no longer the lease's: a pod re-created under
   * the same name; ovn-controller will not bind the old interface to it).
   */
  async sweepOrphans(): Promise<number> {
    let released = 0;
    const now = this.now();
    for (const l of this.leases()) {
      const port = this.opts.ovn.lookup(l.lsp);
      if (port && !staleVersion(l, port)) {
        this.missingSince.delete(l.lsp);
        continue;
      }
      const since = this.missingSince.get(l.lsp) ?? now;
      this.missingSince.set(l.lsp, since);
      if (now - since >= this.opts.orphanGraceMs) {
        await this.releaseLease(l, port ? 'iface-id-ver-changed' : 'lsp-gone');
        this.missingSince.delete(l.lsp);
        released++;
      }
    }
    return released;
  }

  private async releaseLease(l: Lease, why: string): Promise<void> {
    const vf = { pf: l.pf, vf: l.vf };
    // A vanished VF has no netdev to quarantine or MAC to scrub; adopt() does both if it returns.
    const present = !this.broken.delete(l.representor);
    // Quarantine first: from here on the representor forwards nothing.
    if (present) await this.opts.quarantine.apply(l.representor);
    await this.unplug(l.representor);
    if (present) await this.opts.hw.setVfMac(vf, scrubMac(l.pf, l.vf));
    if (present) await this.requarantineAfterVswitchd(l.representor);
    this.log.info({ lsp: l.lsp, sandbox: l.key.sandboxId, representor: l.representor, why }, 'VF released');
    this.emit('released', l.representor, why);
  }

  /**
   * ovs-vswitchd drops an unplugged port asynchronously, and on closing the netdev it
   * restores the flags it changed by writing the whole flag word from its cached view
   * (netdev-linux update_flags): a cache that predates our link-down puts the
   * representor back UP — a quarantine hole seen in the lab's release cycles. So, as
   * ovs-vsctl does without --no-wait, bump next_cfg and wait (bounded) until
   * ovs-vswitchd reports it in cur_cfg, then quarantine again. Skipped when no
   * ovs-vswitchd acknowledges configurations (cur_cfg 0: none running).
   */
  private async requarantineAfterVswitchd(representor: string, timeoutMs = 2000): Promise<void> {
    const m = this.monitor as Monitor;
    const curCfg = (): number => Number([...m.table('Open_vSwitch').values()][0]?.['cur_cfg'] ?? 0);
    if (curCfg() > 0) {
      try {
        // same as: ovs-vsctl (without --no-wait) -- the next_cfg += 1 / wait for cur_cfg
        const res = await this.opts.ovs.transact([
          op.mutate('Open_vSwitch', [], [['next_cfg', '+=', 1]]),
          op.select('Open_vSwitch', [], ['next_cfg']),
          op.comment(`dpu-agent: wait for ovs-vswitchd to drop ${representor}`),
        ]);
        const want = Number(res[1]?.rows?.[0]?.['next_cfg'] ?? 0);
        if (want > 0) await this.waitFor(() => curCfg() >= want, timeoutMs);
      } catch (err) {
        this.log.warn({ err, representor }, 'could not wait for ovs-vswitchd; quarantining again anyway');
      }
    }
    await this.opts.quarantine.apply(representor);
  }

  private async unplug(representor: string): Promise<void> {
    const m = this.monitor as Monitor;
    const port = [...m.table('Port').entries()].find(([, r]) => r['name'] === representor);
    if (!port) return;
    await this.opts.ovs.transact(unplugOps(this.opts.bridge, port[0], representor));
  }

  // ---- helpers ---------------------------------------------------------------------

  private findLease(key: AttachmentKey, leases: readonly Lease[] = this.leases()): Lease | undefined {
    return leases.find(
      (l) => l.key.pod.namespace === key.pod.namespace && l.key.pod.name === key.pod.name && l.key.ifname === key.ifname,
    );
  }

  private bridgeUuid(): string | undefined {
    const m = this.monitor;
    if (!m) return undefined;
    for (const [uuid, b] of m.table('Bridge')) if (b['name'] === this.opts.bridge) return uuid;
    return undefined;
  }

  private bridgePortNames(): Set<string> {
    const m = this.monitor;
    const out = new Set<string>();
    if (!m) return out;
    const uuid = this.bridgeUuid();
    const br = uuid ? m.table('Bridge').get(uuid) : undefined;
    const ports = m.table('Port');
    for (const p of (br?.['ports'] as unknown[] | undefined) ?? []) {
      const name = ports.get(String(p))?.['name'];
      if (typeof name === 'string') out.add(name);
    }
    return out;
  }

  /** Ports on any bridge: a representor someone put elsewhere is not free either. */
  private allPortNames(): Set<string> {
    const m = this.monitor;
    const out = new Set<string>();
    if (!m) return out;
    for (const p of m.table('Port').values()) out.add(String(p['name']));
    return out;
  }

  private toAttachment(l: Lease, port: PodPort | undefined = this.opts.ovn.lookup(l.lsp)): Attachment {
    const gw4 = port?.gateways.find((g) => !g.includes(':'));
    const gw6 = port?.gateways.find((g) => g.includes(':'));
    const ips = (port?.ips ?? []).map((address) => {
      const gw = address.includes(':') ? gw6 : gw4;
      return gw ? { address, gateway: gw } : { address };
    });
    // Default routes for the primary interface only: the host applies routes with `ip route
    // replace`, so a further attachment's default route would take eth0's, and its DEL would
    // leave the pod with none (seen in the lab with eth0 + net1 on one switch).
    const primary = l.key.ifname === PRIMARY_IFNAME;
    const routes = primary
      ? [...(gw4 ? [{ dst: '0.0.0.0/0', gateway: gw4 }] : []), ...(gw6 ? [{ dst: '::/0', gateway: gw6 }] : [])]
      : [];
    return {
      key: l.key,
      vfIndex: l.vf,
      pf: l.pf,
      representor: l.representor,
      mac: port?.mac ?? l.mac,
      ips,
      routes,
      mtu: this.opts.mtu,
      peer: l.peer,
      leaseTime: l.leaseTime,
      state: port && !staleVersion(l, port) && l.ovnInstalled && !this.broken.has(l.representor) ? 'ready' : 'broken',
      ...(l.countersBase ? { countersBase: l.countersBase } : {}),
    };
  }
}

/**
 * The LSP pins an iface-id-ver the lease's interface does not carry (binding.c
 * ovs_iface_matches_lport_iface_id_ver): ovn-controller will not bind it. An LSP
 * without one binds any version.
 */
function staleVersion(l: Lease, port: PodPort): boolean {
  return port.ifaceIdVer !== undefined && port.ifaceIdVer !== l.ifaceIdVer;
}

const round2 = (ms: number): number => Math.round(ms * 100) / 100;

/** A locally administered MAC per VF: what a released VF carries instead of its last tenant's. */
export function scrubMac(pf: number, vf: number): string {
  const h = (n: number): string => (n & 0xff).toString(16).padStart(2, '0');
  return `02:00:00:${h(pf)}:${h(vf >> 8)}:${h(vf)}`;
}
