import type { PortsReason } from '../../contract/reasons.ts';
import { PortsError } from '../../dpu-agent/src/errors.ts';
import type { VfCounters } from '../../dpu-agent/src/hw/link-stats.ts';
import { type Attachment, type AttachmentKey, type PoolStatus, type VfPoolApi, keyString } from '../../dpu-agent/src/ports/types.ts';

// In-memory VfPoolApi for host API and host-shim tests: same interface and the
// same observable rules as ports/pool.ts (idempotent allocate per key, leases
// owned by a peer, idempotent release, CNI GC by keep list), no OVSDB/OVN.
// Failure injection: `failNext(reason)` makes the next allocate throw a
// PortsError; `throwNext(err)` any error; `delayMs` slows allocate (honouring
// the abort signal the way the real pool does: ovn-not-installed).

export interface FakePoolOptions {
  readonly total?: number;
  readonly mtu?: number;
  /** Called to build a pod's addressing from its VF index (default 10.244.0.(10+vf)/24). */
  readonly addressing?: (vf: number) => Pick<Attachment, 'mac' | 'ips' | 'routes'>;
}

const keyId = (k: AttachmentKey): string => `${k.pod.namespace}/${k.pod.name}/${k.ifname}`;

export function defaultAddressing(vf: number): Pick<Attachment, 'mac' | 'ips' | 'routes'> {
  return {
    mac: `0a:58:0a:f4:00:${(10 + vf).toString(16).padStart(2, '0')}`,
    ips: [{ address: `10.244.0.${10 + vf}/24`, gateway: '10.244.0.1' }],
    routes: [{ dst: '0.0.0.0/0', gateway: '10.244.0.1' }, { dst: '10.96.0.0/12' }],
  };
}

export class FakePool implements VfPoolApi {
  readonly leases = new Map<string, Attachment>();
  readonly calls: { method: string; peer: string; key?: AttachmentKey }[] = [];
  ovsdbConnected = true;
  ovnConnected = true;
  delayMs = 0;
  private readonly total: number;
  private readonly mtu: number;
  private readonly addressing: (vf: number) => Pick<Attachment, 'mac' | 'ips' | 'routes'>;
  private nextError: unknown;

  constructor(opts: FakePoolOptions = {}) {
    this.total = opts.total ?? 4;
    this.mtu = opts.mtu ?? 1400;
    this.addressing = opts.addressing ?? defaultAddressing;
  }

  failNext(reason: PortsReason, message = `injected ${reason}`): void {
    this.nextError = new PortsError(reason, message);
  }

  throwNext(err: unknown): void {
    this.nextError = err;
  }

  async allocate(key: AttachmentKey, peer: string, opts?: { signal?: AbortSignal }): Promise<Attachment> {
    this.calls.push({ method: 'allocate', peer, key });
    if (this.nextError !== undefined) {
      const e = this.nextError;
      this.nextError = undefined;
      throw e;
    }
    if (!this.status().ready) throw new PortsError('not-ready', 'not connected');
    const existing = this.leases.get(keyId(key));
    if (existing) {
      if (existing.peer !== peer) throw new PortsError('not-owner', 'leased to another host');
      if (existing.key.sandboxId !== key.sandboxId) throw new PortsError('sandbox-conflict', 'other sandbox');
      return existing;
    }
    const used = new Set([...this.leases.values()].map((a) => a.vfIndex));
    let vf = 0;
    while (used.has(vf)) vf++;
    if (vf >= this.total) throw new PortsError('vf-pool-empty', 'no free VF');
    if (this.delayMs > 0) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, this.delayMs);
        opts?.signal?.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(new PortsError('ovn-not-installed', 'cancelled while waiting for ovn-installed'));
        });
      });
    }
    const a: Attachment = {
      key,
      vfIndex: vf,
      pf: 0,
      representor: `pf0vf${vf}`,
      ...this.addressing(vf),
      mtu: this.mtu,
      peer,
      leaseTime: new Date().toISOString(),
      state: 'ready',
    };
    this.leases.set(keyId(key), a);
    return a;
  }

  async release(key: AttachmentKey, peer: string): Promise<{ released: boolean }> {
    this.calls.push({ method: 'release', peer, key });
    const a = this.leases.get(keyId(key));
    if (!a || a.key.sandboxId !== key.sandboxId) return { released: false };
    if (a.peer !== peer) throw new PortsError('not-owner', 'leased to another host');
    this.leases.delete(keyId(key));
    return { released: true };
  }

  get(key: AttachmentKey, peer: string): Attachment | undefined {
    this.calls.push({ method: 'get', peer, key });
    const a = this.leases.get(keyId(key));
    if (!a || a.key.sandboxId !== key.sandboxId) return undefined;
    if (a.peer !== peer) throw new PortsError('not-owner', 'leased to another host');
    return a;
  }

  list(peer: string): Attachment[] {
    return [...this.leases.values()].filter((a) => a.peer === peer);
  }

  async gc(peer: string, keep: readonly AttachmentKey[]): Promise<{ released: number }> {
    this.calls.push({ method: 'gc', peer });
    const kept = new Set(keep.map((k) => `${keyId(k)}/${k.sandboxId}`));
    let released = 0;
    for (const [id, a] of this.leases) {
      if (a.peer === peer && !kept.has(`${keyId(a.key)}/${a.key.sandboxId}`)) {
        this.leases.delete(id);
        released++;
      }
    }
    return { released };
  }

  /** Counters the fake reports per attachment (keyString); tests set them. */
  readonly fakeCounters = new Map<string, VfCounters>();

  async counters(attachments: readonly Attachment[]): Promise<ReadonlyMap<string, VfCounters>> {
    return new Map(attachments.flatMap((a) => {
      const c = this.fakeCounters.get(keyString(a.key));
      return c ? [[keyString(a.key), c] as const] : [];
    }));
  }

  status(): PoolStatus {
    const leased = this.leases.size;
    return {
      total: this.total,
      free: this.total - leased,
      leased,
      broken: 0,
      ovsdbConnected: this.ovsdbConnected,
      ovnConnected: this.ovnConnected,
      ready: this.ovsdbConnected && this.ovnConnected,
      chassis: 'fake-dpu',
    };
  }
}
