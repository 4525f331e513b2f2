import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { type AttachmentKey, keyString } from '../ports/types.ts';

// Leases held by a host this DPU no longer accepts (another host's certificate
// got one before the one-host rule, or api.peer.identity changed). Nobody can
// release them through the API any more: the accepted host is refused
// `not-owner`, the old owner `wrong-host`. They are reported, not silently kept
// and not silently taken over: dpu_host_api_unaccepted_leases (at scrape time),
// a warning at start listing them, and GetVf from the accepted host answers
// PERMISSION_DENIED `not-owner` for such a key instead of `lease-not-found`.
// The OVN-driven orphan sweep still releases them once their pod is deleted.

export interface LeaseOwner {
  readonly key: AttachmentKey;
  readonly peer: string;
}

export class UnacceptedLeases {
  constructor(
    private readonly identity: string,
    private readonly owners: () => readonly LeaseOwner[],
  ) {}

  list(): LeaseOwner[] {
    return this.owners().filter((l) => l.peer !== this.identity);
  }

  /** The lease of `key` (same pod and interface), when a host other than the accepted one holds it. */
  heldByOther(key: AttachmentKey): LeaseOwner | undefined {
    const k = keyString(key);
    return this.list().find((l) => keyString({ ...l.key, sandboxId: key.sandboxId }) === k);
  }

  bind(metrics: Metrics): void {
    metrics.bindUnacceptedLeases(() => this.list().length);
  }

  /** Logs the current ones (at start); returns how many. */
  report(log: Logger): number {
    const l = this.list();
    if (l.length > 0) {
      log.warn(
        { accepted: this.identity, count: l.length, leases: l.slice(0, 20).map((x) => ({ peer: x.peer, attachment: keyString(x.key) })) },
        'leases held by hosts this DPU no longer accepts: kept until their pod is deleted from OVN; release them by deleting the pod or the lease',
      );
    }
    return l.length;
  }
}
