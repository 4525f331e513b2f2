// Giving a VF back: on the host's DEL, on CNI GC, when its OVN port is gone or
// re-versioned, and when an allocation is undone. Quarantine first, then unplug,
// then the VF's MAC scrubbed, then quarantined again once ovs-vswitchd dropped the
// port, so a representor nobody holds never forwards.
import { PortsError } from '../errors.ts';
import { scrubMac } from '../hw/representor.ts';
import type { Representor } from '../hw/types.ts';
import { op } from '../ovsdb/ops.ts';
import { staleVersion } from './attachment.ts';
import type { PoolState } from './pool-state.ts';
import { type Lease, unplugOps } from './lease.ts';
import { type AttachmentKey, keyString } from './types.ts';

export class Releases {
  /** LSP name → when we first saw it missing, for orphan GC. */
  private readonly missingSince = new Map<string, number>();

  constructor(private readonly s: PoolState) {}

  async release(key: AttachmentKey, peer: string): Promise<{ released: boolean }> {
    const l = this.s.findLease(key);
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
    for (const l of this.s.leases()) {
      if (l.peer !== peer || keepSet.has(keyString(l.key))) continue;
      // Leases younger than the grace period may belong to an ADD still in flight on the host.
      if (this.s.now() - Date.parse(l.leaseTime) < this.s.opts.orphanGraceMs) continue;
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
    const now = this.s.now();
    for (const l of this.s.leases()) {
      const port = this.s.opts.ovn.lookup(l.lsp);
      if (port && !staleVersion(l, port)) {
        this.missingSince.delete(l.lsp);
        continue;
      }
      const since = this.missingSince.get(l.lsp) ?? now;
      this.missingSince.set(l.lsp, since);
      if (now - since >= this.s.opts.orphanGraceMs) {
        await this.releaseLease(l, port ? 'iface-id-ver-changed' : 'lsp-gone');
        this.missingSince.delete(l.lsp);
        released++;
      }
    }
    return released;
  }

  async releaseLease(l: Lease, why: string): Promise<void> {
    const vf = { pf: l.pf, vf: l.vf };
    // A vanished VF has no netdev to quarantine or MAC to scrub; the pool's adopt does both if it returns.
    const present = !this.s.broken.delete(l.representor);
    // Quarantine first: from here on the representor forwards nothing.
    if (present) await this.s.opts.quarantine.apply(l.representor);
    await this.unplug(l.representor);
    if (present) await this.s.opts.hw.setVfMac(vf, scrubMac(l.pf, l.vf));
    if (present) await this.requarantineAfterVswitchd(l.representor);
    this.s.log.info({ lsp: l.lsp, sandbox: l.key.sandboxId, representor: l.representor, why }, 'VF released');
    this.s.emit('released', l.representor, why);
  }

  /** Undoes a failed allocation of `rep` (`plugged`: its plug transaction went through). Never throws. */
  async rollback(rep: Representor, plugged: boolean, lsp: string, cause: unknown): Promise<void> {
    this.s.log.warn({ err: cause, lsp, representor: rep.name }, 'allocation failed; rolling back');
    try {
      await this.s.opts.quarantine.apply(rep.name);
      if (plugged) await this.unplug(rep.name);
      await this.s.opts.hw.setVfMac(rep, scrubMac(rep.pf, rep.vf));
      if (plugged) await this.requarantineAfterVswitchd(rep.name);
    } catch (err) {
      // The audit (offload/) and the next start repair what is left; say loudly that something is.
      this.s.log.error({ err, representor: rep.name }, 'rollback incomplete');
    }
  }

  /**
   * ovs-vswitchd drops an unplugged port asynchronously, and on closing the netdev it
   * restores the flags it changed by writing the whole flag word from its cached view
   * (netdev-linux update_flags): a cache that predates our link-down puts the
   * representor back UP. So, as ovs-vsctl does without --no-wait, bump next_cfg and
   * wait (bounded) until ovs-vswitchd reports it in cur_cfg, then quarantine again.
   * Skipped when no ovs-vswitchd acknowledges configurations (cur_cfg 0: none running).
   */
  private async requarantineAfterVswitchd(representor: string, timeoutMs = 2000): Promise<void> {
    const view = this.s.bridge;
    if (view.curCfg() > 0) {
      try {
        // same as: ovs-vsctl (without --no-wait) -- the next_cfg += 1 / wait for cur_cfg
        const res = await this.s.opts.ovs.transact([
          op.mutate('Open_vSwitch', [], [['next_cfg', '+=', 1]]),
          op.select('Open_vSwitch', [], ['next_cfg']),
          op.comment(`dpu-agent: wait for ovs-vswitchd to drop ${representor}`),
        ]);
        const want = Number(res[1]?.rows?.[0]?.['next_cfg'] ?? 0);
        if (want > 0) await view.waitFor(() => view.curCfg() >= want, timeoutMs);
      } catch (err) {
        this.s.log.warn({ err, representor }, 'could not wait for ovs-vswitchd; quarantining again anyway');
      }
    }
    await this.s.opts.quarantine.apply(representor);
  }

  private async unplug(representor: string): Promise<void> {
    const port = this.s.bridge.portUuid(representor);
    if (port === undefined) return;
    await this.s.opts.ovs.transact(unplugOps(this.s.opts.bridge, port, representor));
  }
}
