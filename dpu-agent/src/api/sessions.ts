import type { Http2Session } from 'node:http2';
import type { TLSSocket } from 'node:tls';

// Every HTTP/2 session of the host API, with the two closes Node does not do on
// its own:
//   - idle: no open stream for `idleMs` → GOAWAY, destroyed 1 s later. Counted
//     from the last stream's end, not from the last byte: PINGs or garbage from
//     the peer do not keep an idle session alive.
//   - keepalive: every `pingMs` each session is PINGed; no ACK within `pingMs` →
//     destroyed. nghttp2 answers a protocol error (e.g. DATA on stream 0) with
//     GOAWAY and then ignores the peer, but Node keeps the socket open and emits
//     nothing; such a session never ACKs again, so this closes it.
// Also the place to find the open sessions of a peer when its certificate is
// revoked or no longer trusted (`forEach`).

export type SessionEnd = 'idle' | 'keepalive-timeout';

interface Tracked {
  open: number;
  idleSince: number;
  lastPing: number;
  pingOutstanding: boolean;
  closing: boolean;
}

export interface SessionGuardOptions {
  readonly idleMs: number;
  readonly pingMs: number;
  /** Called once per session the guard ends. */
  readonly onEnd?: (why: SessionEnd, session: Http2Session) => void;
  readonly now?: () => number;
}

export class SessionGuard {
  private readonly sessions = new Map<Http2Session, Tracked>();
  private readonly timer: NodeJS.Timeout;
  private readonly now: () => number;

  constructor(private readonly opts: SessionGuardOptions) {
    this.now = opts.now ?? (() => performance.now());
    const tick = Math.max(50, Math.min(1000, Math.floor(Math.min(opts.idleMs, opts.pingMs) / 4)));
    this.timer = setInterval(() => this.tick(), tick);
    this.timer.unref();
  }

  add(session: Http2Session): void {
    const t0 = this.now();
    const s: Tracked = { open: 0, idleSince: t0, lastPing: t0, pingOutstanding: false, closing: false };
    this.sessions.set(session, s);
    session.on('stream', (stream) => {
      s.open++;
      stream.once('close', () => {
        s.open--;
        if (s.open === 0) s.idleSince = this.now();
      });
    });
    session.once('close', () => this.sessions.delete(session));
  }

  /** Open sessions with their TLS sockets. */
  forEach(fn: (session: Http2Session, socket: TLSSocket) => void): void {
    for (const session of [...this.sessions.keys()]) {
      if (session.destroyed) continue;
      fn(session, session.socket as TLSSocket);
    }
  }

  get size(): number {
    return this.sessions.size;
  }

  close(): void {
    clearInterval(this.timer);
  }

  private tick(): void {
    const now = this.now();
    for (const [session, s] of this.sessions) {
      if (session.destroyed) {
        this.sessions.delete(session);
        continue;
      }
      if (s.pingOutstanding && now - s.lastPing > this.opts.pingMs) {
        this.end(session, 'keepalive-timeout');
        continue;
      }
      if (!s.pingOutstanding && now - s.lastPing >= this.opts.pingMs) this.ping(session, s, now);
      if (!s.closing && s.open === 0 && now - s.idleSince >= this.opts.idleMs) {
        s.closing = true;
        this.opts.onEnd?.('idle', session);
        session.close();
        setTimeout(() => session.destroy(), 1_000).unref();
      }
    }
  }

  private ping(session: Http2Session, s: Tracked, now: number): void {
    s.lastPing = now;
    s.pingOutstanding = true;
    try {
      session.ping((err) => {
        if (!err) s.pingOutstanding = false;
      });
    } catch {
      // Closing or too many outstanding pings: the next tick sees the missing ACK.
    }
  }

  private end(session: Http2Session, why: SessionEnd): void {
    this.sessions.delete(session);
    this.opts.onEnd?.(why, session);
    session.destroy();
  }
}
