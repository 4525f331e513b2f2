// Re-asserting a lease after a foreign interface carrying its iface-id was on
// br-int (the bridge audit removed it). ovn-controller claims the binding for the
// newer interface, and when that one goes away it may release the LSP altogether
// instead of giving it back: consider_iface_release (binding.c, OVN 23.03 to main)
// only spares the lease's binding while the other interface still has no ofport,
// so the leased interface is left unbound, ovn-installed removed, until something
// makes ovn-controller look at it again. reassertOps (lease.ts) is that something
// (an encap-ip flip, safe whether or not the LSP pins iface-id-ver); then a bounded
// wait for ovn-controller to mark the leased interface installed again, and
// encap-ip is put back as it was.
import { CoalescedPasses } from '../util/coalesce.ts';
import type { PoolState, ReassertOutcome } from './pool-state.ts';
import { EXT, reassertOps, reassertRestoreOps } from './lease.ts';

export class Reassertions {
  /** Re-assertions by LSP: one at a time each, a request while one runs queues one more. */
  private readonly reasserts = new Map<string, { passes: CoalescedPasses; pending: number }>();

  constructor(private readonly s: PoolState) {}

  /** Resolves when done; the outcome is the pool's 'reasserted' event (and the log). */
  reassert(lsp: string): Promise<void> {
    let r = this.reasserts.get(lsp);
    if (!r) {
      r = { passes: new CoalescedPasses(() => this.doReassert(lsp), (err) => this.s.log.error({ err, lsp }, 'lease re-assertion crashed')), pending: 0 };
      this.reasserts.set(lsp, r);
    }
    const entry = r;
    entry.pending++;
    return entry.passes.schedule().finally(() => {
      if (--entry.pending === 0 && this.reasserts.get(lsp) === entry) this.reasserts.delete(lsp);
    });
  }

  private async doReassert(lsp: string): Promise<void> {
    const s = this.s;
    const t0 = performance.now();
    const done = (result: ReassertOutcome['result'], representor?: string): void => {
      s.emit('reasserted', { lsp, result, ms: performance.now() - t0, ...(representor ? { representor } : {}) });
    };
    const view = s.view;
    const lease = s.leases().find((l) => l.lsp === lsp);
    if (!view || !lease) return done('no-lease');
    const ctx = { lsp, representor: lease.representor, sandbox: lease.key.sandboxId, peer: lease.peer };
    const ext = (): ReadonlyMap<string, string> | undefined => view.interfaceExternalIds(lease.interfaceUuid);
    const before = ext();
    const encapIp = before?.get(EXT.encapIp);
    const staleTs = before?.get(EXT.ovnInstalledTs);
    const res = await s.opts.ovs.transact(reassertOps(lease, encapIp, s.opts.encapIp));
    if (res[0]?.count !== 1) {
      s.log.info(ctx, 'lease changed before it could be re-asserted; nothing to do');
      return done('lease-changed', lease.representor);
    }
    s.log.warn({ ...ctx, wasInstalled: before?.get(EXT.ovnInstalled) === 'true' }, 're-asserting lease after a foreign claim of its iface-id');
    // Installed again, stamped after our write (we removed the old stamp; a monitor
    // update may still show it if ovn-controller was quick, hence the comparison).
    const reclaimed =
      (await view.waitFor(() => {
        const e = ext();
        if (!e) return true;
        return e.get(EXT.ovnInstalled) === 'true' && (staleTs === undefined || e.get(EXT.ovnInstalledTs) !== staleTs);
      }, s.opts.ovnInstalledTimeoutMs)) === 'met';
    if (!ext()) {
      s.log.info(ctx, 'lease released while being re-asserted');
      return done('lease-changed', lease.representor);
    }
    if (!reclaimed) {
      // encap-ip stays flipped: put back now, ovn-controller could see both writes as
      // one and no change. Harmless either way (this chassis' own encap IP, or none),
      // and the next re-assertion flips it again.
      s.log.error({ ...ctx, timeoutMs: s.opts.ovnInstalledTimeoutMs }, 'ovn-controller did not re-claim the leased interface; the pod has no traffic');
      return done('not-installed', lease.representor);
    }
    await s.opts.ovs.transact(reassertRestoreOps(lease, encapIp)).catch((err: unknown) => {
      s.log.warn({ ...ctx, err }, 'could not put encap-ip back after the re-assertion');
    });
    const ms = performance.now() - t0;
    s.log.warn({ ...ctx, ms }, 'lease re-asserted: ovn-controller re-claimed the leased interface');
    done('reclaimed', lease.representor);
  }
}
