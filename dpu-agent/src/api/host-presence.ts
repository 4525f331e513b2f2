// When each host last spoke, and whether it has just come back. CNI GC names the
// attachments the host's runtime believes alive; right after a host (or its
// runtime, or this agent) restarts that list can be incomplete — the runtime is
// still restoring sandboxes — and acting on it would wipe live pods' leases. So GC
// from a host is deferred until it has been back for a grace period. Leases of pods
// that really went away are still released by the OVN-driven orphan sweep.

export interface HostPresenceOptions {
  /** No request for this long counts as the host having been away. */
  readonly silenceMs: number;
  /** GC from a host is deferred until it has been back this long (0 = never deferred). */
  readonly returnGraceMs: number;
  readonly now?: () => number;
}

interface Seen {
  last: number;
  /** Start of the current stretch of contact (first request after a silence, or after our start). */
  since: number;
}

export class HostPresence {
  private readonly hosts = new Map<string, Seen>();
  private readonly now: () => number;

  constructor(private readonly opts: HostPresenceOptions) {
    this.now = opts.now ?? Date.now;
  }

  /**
   * Records a request from `host`. Returns true when it starts a new stretch of
   * contact: the first since this agent started (we cannot know what the host did
   * while we were down), or the first after a silence longer than silenceMs.
   */
  seen(host: string): boolean {
    const now = this.now();
    const s = this.hosts.get(host);
    if (s && now - s.last <= this.opts.silenceMs) {
      s.last = now;
      return false;
    }
    this.hosts.set(host, { last: now, since: now });
    return true;
  }

  /** Milliseconds until GC from `host` may run; 0 = now. */
  gcDeferredMs(host: string): number {
    const s = this.hosts.get(host);
    if (!s) return this.opts.returnGraceMs;
    return Math.max(0, s.since + this.opts.returnGraceMs - this.now());
  }

  /** Unix ms of the host's last request, or undefined if it never spoke to this agent. */
  lastSeen(host: string): number | undefined {
    return this.hosts.get(host)?.last;
  }
}
