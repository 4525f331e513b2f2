// Handing out a VF: only for a pod whose OVN port exists and is requested on this
// chassis; MAC and IPs come from OVN; the lease and the plug are one OVSDB
// transaction; a failure undoes what it took (release.ts rollback). Idempotent per
// attachment key: a retry joins the allocation in flight, or resumes the lease.
import { PortsError } from '../errors.ts';
import type { Representor } from '../hw/types.ts';
import { staleVersion } from './attachment.ts';
import type { PoolState } from './pool-state.ts';
import { type Lease, PLUG_IFACE_OP, plugOps } from './lease.ts';
import type { PodPort } from './ovn.ts';
import type { Releases } from './release.ts';
import { type Attachment, type AttachmentKey, keyString, lspName } from './types.ts';

const round2 = (ms: number): number => Math.round(ms * 100) / 100;

export class Allocations {
  /** In-flight allocations by attachment key: a retry joins the same promise. */
  private readonly inflight = new Map<string, { peer: string; promise: Promise<Attachment> }>();

  constructor(
    private readonly s: PoolState,
    private readonly releases: Releases,
  ) {}

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
    const s = this.s;
    const t0 = performance.now();
    try {
      if (!s.ready()) throw new PortsError('not-ready', 'DPU not ready (OVSDB/OVN not connected)');
      const lsp = lspName(key.pod, key.ifname);
      // One scan of the leases for every check below (each scan walks the Interface table).
      const leases = s.leases();
      const existing = s.findLease(key, leases);
      if (existing) return await this.resume(existing, key, peer);

      // A port created just before this ADD may still be on its way to our NB replica.
      if (!s.opts.ovn.lookup(lsp)) await s.opts.ovn.sync();
      const port = this.authorise(key, lsp);
      const other = leases.find((l) => l.lsp === lsp);
      if (other) throw new PortsError('sandbox-conflict', `${lsp} is attached with sandbox ${other.key.sandboxId}`);
      // Other allocations of this host still in flight count against its cap too.
      const self = keyString(key);
      const inflightForPeer = [...this.inflight].filter(([k, f]) => k !== self && f.peer === peer).length;
      const mine = leases.filter((l) => l.peer === peer).length + inflightForPeer;
      if (mine >= s.opts.maxLeasesPerPeer) throw new PortsError('host-lease-cap', `host ${peer} holds ${mine} VFs (cap ${s.opts.maxLeasesPerPeer})`);
      const rep = this.pickFree();
      if (!rep) throw new PortsError('vf-pool-empty', 'no free VF on this DPU');

      s.reserved.add(rep.name);
      let plugged = false;
      const tChecked = performance.now();
      try {
        // Order matters: MAC first (the host must never see the previous tenant's), quarantine
        // lifted last before the plug — before it, not alongside: ovs-vswitchd sets a new port's
        // flags from its own view of them and can write the link back down (the mirror of why
        // a released representor is quarantined again only after vswitchd acks, release.ts).
        // The base the new tenant's counters start from (whatever the VF carried before is not
        // theirs), read while the MAC is set: the representor is down and forwards nothing yet.
        const [, counted] = await Promise.all([s.opts.hw.setVfMac(rep, port.mac), s.opts.counters?.read([rep.name])]);
        const countersBase = counted?.get(rep.name);
        signal?.throwIfAborted();
        const tMac = performance.now();
        await s.opts.quarantine.lift(rep.name);
        const plugResults = await s.opts.ovs.transact(
          plugOps({
            bridge: s.opts.bridge,
            representor: rep.name,
            pf: rep.pf,
            vf: rep.vf,
            lsp,
            mac: port.mac,
            key,
            peer,
            leaseTime: new Date(s.now()).toISOString(),
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
        const lease = s.findLease(key);
        if (!lease) throw new PortsError('plug-failed', `lease for ${lsp} vanished while waiting for ovn-installed`);
        const a = s.attachment(lease, port);
        const timing = { agentMs, ovnInstalledMs: performance.now() - t1 };
        s.log.info({ lsp, sandbox: key.sandboxId, representor: rep.name, vf: rep.vf, peer, ...timing, phasesMs }, 'VF allocated');
        s.emit('allocated', a, timing);
        return a;
      } catch (err) {
        await this.releases.rollback(rep, plugged, lsp, err);
        throw err;
      } finally {
        s.reserved.delete(rep.name);
      }
    } catch (err) {
      const reason = err instanceof PortsError ? err.reason : 'internal';
      s.emit('allocation-failed', reason);
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
    const port = this.s.opts.ovn.lookup(l.lsp);
    if (port && staleVersion(l, port)) {
      // The control plane re-versioned the LSP since the plug: ovn-controller will never bind
      // this interface again (and a stale ovn-installed must not pass for ready). Undone like
      // a lease that never became usable; the retry plugs afresh with the LSP's version.
      await this.releases.releaseLease(l, 'iface-id-ver-changed');
      throw new PortsError('ovn-not-installed', `${l.lsp} options:iface-id-ver changed since the plug`);
    }
    try {
      await this.waitInstalled(l.representor, l.interfaceUuid, undefined);
    } catch (err) {
      // Same rule as a fresh allocation: a lease that never became usable is undone, not left behind.
      if (err instanceof PortsError && err.reason === 'ovn-not-installed') await this.releases.releaseLease(l, 'ovn-not-installed');
      throw err;
    }
    return this.s.attachment(this.s.findLease(key) ?? l);
  }

  /** The pod must exist in OVN and be requested on this chassis (DESIGN §1). */
  private authorise(key: AttachmentKey, lsp: string): PodPort {
    const port = this.s.opts.ovn.lookup(lsp);
    if (!port) throw new PortsError('pod-not-found', `no OVN port ${lsp}`);
    if (!port.requestedChassis.some((c) => this.s.opts.chassisNames.includes(c))) {
      throw new PortsError('pod-not-on-this-chassis', `${lsp} is not requested on this chassis`);
    }
    if (port.podUid !== undefined && port.podUid !== key.pod.uid) {
      throw new PortsError('pod-uid-mismatch', `${lsp} belongs to another pod uid`);
    }
    return port;
  }

  private pickFree(): Representor | undefined {
    const onBridge = this.s.bridge.allPortNames();
    return this.s.representors.find((r) => !onBridge.has(r.name) && !this.s.reserved.has(r.name));
  }

  /**
   * `ifaceUuid`: the plugged Interface row, checked by uuid on every replica change (a
   * scan by name would cost each of N concurrent waiters a pass over every Interface
   * per change); by name only when the caller has no uuid.
   */
  private async waitInstalled(representor: string, ifaceUuid: string | undefined, signal: AbortSignal | undefined): Promise<void> {
    const view = this.s.bridge;
    const timeoutMs = this.s.opts.ovnInstalledTimeoutMs;
    const r = await view.waitFor(() => view.ovnInstalled(ifaceUuid, representor), timeoutMs, signal);
    if (r === 'aborted') throw new PortsError('ovn-not-installed', 'request cancelled while waiting for ovn-installed');
    if (r === 'timeout') throw new PortsError('ovn-not-installed', `ovn-controller did not install ${representor} within ${timeoutMs} ms`);
  }
}
