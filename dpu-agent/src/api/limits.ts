// Per-peer admission for the host API: a token bucket (rate) and an in-flight
// cap (concurrency), keyed by the client-certificate CN. Pure; the clock is
// injected so tests drive time.

export interface PeerLimits {
  readonly ratePerSecond: number;
  readonly rateBurst: number;
  readonly maxConcurrentPerPeer: number;
}

export type Admission = { readonly ok: true; release(): void } | { readonly ok: false; readonly why: 'rate' | 'concurrency' };

interface PeerState {
  tokens: number;
  /** Clock value (ms) when `tokens` was last brought up to date. */
  at: number;
  inFlight: number;
}

/** Past this many tracked peers, idle full buckets are dropped (they carry no state worth keeping). */
const SWEEP_ABOVE = 1024;

export class PeerLimiter {
  private readonly peers = new Map<string, PeerState>();

  constructor(
    private readonly limits: PeerLimits,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Admit one call of `peer`, or say why not. A refused call takes no token. */
  acquire(peer: string): Admission {
    const t = this.now();
    let s = this.peers.get(peer);
    if (!s) {
      if (this.peers.size >= SWEEP_ABOVE) this.sweep(t);
      s = { tokens: this.limits.rateBurst, at: t, inFlight: 0 };
      this.peers.set(peer, s);
    }
    this.refill(s, t);
    if (s.inFlight >= this.limits.maxConcurrentPerPeer) return { ok: false, why: 'concurrency' };
    if (s.tokens < 1) return { ok: false, why: 'rate' };
    s.tokens -= 1;
    s.inFlight += 1;
    const state = s;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        state.inFlight -= 1;
      },
    };
  }

  /** For tests and metrics: calls of `peer` in flight. */
  inFlight(peer: string): number {
    return this.peers.get(peer)?.inFlight ?? 0;
  }

  private refill(s: PeerState, t: number): void {
    const elapsedMs = Math.max(0, t - s.at);
    s.tokens = Math.min(this.limits.rateBurst, s.tokens + (elapsedMs * this.limits.ratePerSecond) / 1000);
    s.at = t;
  }

  private sweep(t: number): void {
    for (const [peer, s] of this.peers) {
      this.refill(s, t);
      if (s.inFlight === 0 && s.tokens >= this.limits.rateBurst) this.peers.delete(peer);
    }
  }
}
