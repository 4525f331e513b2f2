import { Code, type ConnectError, createContextKey, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import { codeToString } from '@connectrpc/connect/protocol-connect';
import { HostService } from '../../../contract/gen/dpu/v1/host_pb.ts';
import { WIRE_CODES } from '../../../contract/reasons.ts';
import { HostApiError, PortsError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { countRejected, type HostApiMethod, type Metrics } from '../metrics/metrics.ts';
import { type AttachmentKey, type VfPoolApi, keyString } from '../ports/types.ts';
import type { HostPresence } from './host-presence.ts';
import type { UnacceptedLeases } from './lease-owners.ts';
import type { PeerLimiter } from './limits.ts';
import { attachmentKeyFromWire, attachmentRefFromWire, attachmentToWire, toWireError } from './wire.ts';

// HostService handlers. Each call goes through `guard`: identity → admission
// (rate, concurrency) → deadline → handler → one error mapping → metrics.
// Handlers only validate, translate and call the pool; the pool decides.

/** Per-request state, created by the server for every HTTP/2 stream. */
export interface CallState {
  /** Host name from the client certificate (api/peer.ts), or undefined when unusable. */
  readonly peer: string | undefined;
  /** The certificate names the one host this DPU serves; false → every call is `wrong-host`. */
  readonly accepted: boolean;
  /** Set once the request has been counted in dpu_host_api_requests_total. */
  recorded: boolean;
}

export const kCall = createContextKey<CallState | undefined>(undefined, { description: 'dpu host API call state' });

export interface HostServiceOptions {
  readonly pool: VfPoolApi;
  readonly limiter: PeerLimiter;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Server cap on a call's deadline; a shorter client grpc-timeout wins. */
  readonly maxDeadlineMs: number;
  readonly maxValidAttachments: number;
  /** Host liveness and the GC grace after a host comes back; undefined = GC never deferred. */
  readonly presence?: HostPresence;
  /** Leases of hosts no longer accepted: GetVf of such a key is `not-owner`, not `lease-not-found`. */
  readonly unaccepted?: UnacceptedLeases;
}

interface Call {
  readonly peer: string;
  /** Aborts at the effective deadline or when the client goes away. */
  readonly signal: AbortSignal;
}

export function codeLabel(code: Code | undefined): string {
  return code === undefined ? 'ok' : codeToString(code);
}

export function createHostService(opts: HostServiceOptions): ServiceImpl<typeof HostService> {
  const log = opts.logger;
  const { pool, metrics } = opts;

  async function guard<T>(method: HostApiMethod, ctx: HandlerContext, fn: (call: Call) => Promise<T> | T): Promise<T> {
    const state = ctx.values.get(kCall);
    const peer = state?.peer;
    let code: Code | undefined;
    try {
      if (peer === undefined) throw new HostApiError('bad-peer-identity', 'client certificate has no usable subject CN');
      // Before liveness and limits: another host's calls touch none of this host's state.
      if (state?.accepted !== true) {
        countRejected(metrics, 'wrong-host');
        throw new HostApiError('wrong-host', 'this DPU serves another host');
      }
      // Liveness host → DPU: any authenticated call counts, even one a limit refuses.
      metrics.hostLastSeen.set({ host: peer }, Date.now() / 1000);
      if (opts.presence?.seen(peer)) log.info({ host: peer }, 'host is back (first request since agent start or after a silence)');
      const admission = opts.limiter.acquire(peer);
      if (!admission.ok) {
        countRejected(metrics, admission.why === 'rate' ? 'rate-limited' : 'concurrency-limited');
        throw new HostApiError('rate-limited', admission.why === 'rate' ? 'too many requests' : 'too many requests in flight');
      }
      try {
        const clientMs = ctx.timeoutMs();
        const ms = Math.max(0, Math.min(clientMs ?? opts.maxDeadlineMs, opts.maxDeadlineMs));
        const deadline = AbortSignal.timeout(ms);
        const signal = AbortSignal.any([ctx.signal, deadline]);
        return await untilAborted(Promise.resolve().then(() => fn({ peer, signal })), signal);
      } finally {
        admission.release();
      }
    } catch (err) {
      if (err instanceof HostApiError && WIRE_CODES[err.reason] === Code.InvalidArgument) countRejected(metrics, 'invalid-argument');
      if (err instanceof HostApiError && err.reason === 'bad-peer-identity') countRejected(metrics, 'bad-peer-identity');
      const wire: ConnectError = toWireError(err, log, { method, peer });
      code = wire.code;
      throw wire;
    } finally {
      metrics.hostApiRequests.inc({ method, code: codeLabel(code) });
      if (state) state.recorded = true;
    }
  }

  function countAllocation(err: unknown): void {
    const result = err === undefined ? 'ok' : err instanceof PortsError ? err.reason : err instanceof HostApiError ? err.reason : 'internal';
    metrics.vfAllocations.inc({ result });
  }

  return {
    allocateVf: (req, ctx) =>
      guard('AllocateVf', ctx, async ({ peer, signal }) => {
        const key = attachmentKeyFromWire(req.attachment);
        try {
          const a = await pool.allocate(key, peer, { signal });
          countAllocation(undefined);
          return { vf: attachmentToWire(a) };
        } catch (err) {
          countAllocation(err);
          throw err;
        }
      }),

    releaseVf: (req, ctx) =>
      guard('ReleaseVf', ctx, async ({ peer }) => {
        const key = attachmentKeyFromWire(req.attachment);
        const { released } = await pool.release(key, peer);
        return { released };
      }),

    getVf: (req, ctx) =>
      guard('GetVf', ctx, async ({ peer }) => {
        const key = attachmentKeyFromWire(req.attachment);
        const a = pool.get(key, peer);
        if (!a && opts.unaccepted?.heldByOther(key)) throw new PortsError('not-owner', 'held by a host this DPU no longer accepts');
        if (!a) throw new HostApiError('lease-not-found', 'no lease for this attachment');
        const counters = await pool.counters([a]);
        return { vf: attachmentToWire(a, counters.get(keyString(a.key))) };
      }),

    listVfs: (req, ctx) =>
      guard('ListVfs', ctx, async ({ peer }) => {
        if (req.validAttachments.length > opts.maxValidAttachments) {
          throw new HostApiError('too-many-attachments', `valid_attachments: at most ${opts.maxValidAttachments} entries`, 'valid_attachments');
        }
        const valid = new Set(
          req.validAttachments.map((r, i) => {
            const v = attachmentRefFromWire(r, `valid_attachments[${i}]`);
            return `${v.sandboxId}\u0000${v.ifname}`;
          }),
        );
        let released = 0;
        let gcDeferred = false;
        const waitMs = req.collectGarbage ? (opts.presence?.gcDeferredMs(peer) ?? 0) : 0;
        if (waitMs > 0) {
          gcDeferred = true;
          log.info({ host: peer, retryInMs: waitMs, valid: valid.size }, 'CNI GC deferred: host came back less than the grace period ago');
        } else if (req.collectGarbage) {
          // CNI GC names attachments by (containerID, ifname) only: keep the caller's
          // leases that match one, and let the pool release the rest.
          const keep: AttachmentKey[] = pool
            .list(peer)
            .filter((a) => valid.has(`${a.key.sandboxId}\u0000${a.key.ifname}`))
            .map((a) => a.key);
          ({ released } = await pool.gc(peer, keep));
        }
        const vfs = pool.list(peer);
        const counters = await pool.counters(vfs);
        return { vfs: vfs.map((a) => attachmentToWire(a, counters.get(keyString(a.key)))), released, gcDeferred };
      }),

    status: (_req, ctx) =>
      guard('Status', ctx, ({ peer }) => {
        const s = pool.status();
        const reasons: string[] = [];
        if (!s.ovsdbConnected) reasons.push('ovsdb-not-connected');
        if (!s.ovnConnected) reasons.push('ovn-not-connected');
        if (!s.ready && reasons.length === 0) reasons.push('not-ready');
        // A full pool is not "network not ready": NetworkReady=false would mark the
        // node NotReady and hurt the pods already running. ADD reports vf-pool-empty.
        return {
          ready: s.ready,
          notReadyReasons: reasons,
          vfsTotal: s.total,
          vfsFree: s.free,
          vfsLeasedByCaller: pool.list(peer).length,
        };
      }),
  };
}

/** Settles like `p`, or rejects with deadline-exceeded when `signal` aborts first. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new HostApiError('deadline-exceeded', 'deadline exceeded'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new HostApiError('deadline-exceeded', 'deadline exceeded'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
