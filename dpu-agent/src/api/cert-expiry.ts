import type { X509Certificate } from 'node:crypto';
import type { Logger } from '../log.ts';
import type { CertKind, Metrics } from '../metrics/metrics.ts';
import type { ServerTlsMaterial } from './tls-material.ts';

// Expiry of what the host API trusts and presents: the server certificate, the
// client CA(s), the CRL's nextUpdate (an expired CRL fails every handshake), and
// each accepted peer certificate seen. Exported as Unix times
// (dpu_host_api_cert_expiry_timestamp_seconds{cert,host}) and warned about
// `warningDays` ahead: at load, at first sight of a peer cert, and twice a day.

const DAY_MS = 86_400_000;
const RECHECK_MS = DAY_MS / 2;

interface Tracked {
  readonly kind: CertKind;
  readonly host: string;
  readonly what: string;
  readonly notAfterMs: number;
}

export class CertExpiry {
  private tracked = new Map<string, Tracked>();
  private readonly peerSerials = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly opts: { metrics: Metrics; log: Logger; warningDays: number; now?: () => number },
  ) {}

  start(): void {
    this.timer = setInterval(() => this.warnAll(), RECHECK_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** The material in use changed (or was loaded): replaces the server/CA/CRL entries. */
  material(m: ServerTlsMaterial): void {
    for (const [k, v] of this.tracked) if (v.kind !== 'peer') this.tracked.delete(k);
    for (const kind of ['server', 'client-ca', 'crl'] as const) this.opts.metrics.certExpiry.remove({ cert: kind, host: '' });
    this.set('server', '', 'server certificate', Date.parse(m.serverCert.validTo));
    // The earliest CA of the bundle: the one that ends trust first.
    this.set('client-ca', '', 'client CA', Math.min(...m.caCerts.map((c: X509Certificate) => Date.parse(c.validTo))));
    const next = m.crls.map((c) => c.nextUpdate?.getTime()).filter((x): x is number => x !== undefined);
    if (next.length > 0) this.set('crl', '', 'CRL nextUpdate', Math.min(...next));
    this.warnAll();
  }

  /** An accepted peer presented a certificate (once per connection). */
  peer(host: string, serial: string | undefined, validTo: string | undefined): void {
    if (!validTo || this.peerSerials.get(host) === serial) return;
    this.peerSerials.set(host, serial ?? '');
    const t = this.set('peer', host, `client certificate of ${host}`, Date.parse(validTo));
    if (t) this.warn(t);
  }

  private set(kind: CertKind, host: string, what: string, notAfterMs: number): Tracked | undefined {
    if (!Number.isFinite(notAfterMs)) return undefined;
    const t = { kind, host, what, notAfterMs };
    this.tracked.set(`${kind}/${host}`, t);
    this.opts.metrics.certExpiry.set({ cert: kind, host }, Math.floor(notAfterMs / 1000));
    return t;
  }

  private warnAll(): void {
    for (const t of this.tracked.values()) this.warn(t);
  }

  private warn(t: Tracked): void {
    const now = (this.opts.now ?? Date.now)();
    const left = t.notAfterMs - now;
    if (left > this.opts.warningDays * DAY_MS) return;
    const ctx = { cert: t.kind, ...(t.host ? { host: t.host } : {}), notAfter: new Date(t.notAfterMs).toISOString(), daysLeft: Math.floor(left / DAY_MS) };
    if (left <= 0) this.opts.log.error(ctx, `${t.what} has expired`);
    else this.opts.log.warn(ctx, `${t.what} expires soon`);
  }
}
