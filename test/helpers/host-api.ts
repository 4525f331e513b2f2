import type { HostPresence } from '../../dpu-agent/src/api/host-presence.ts';
import { createClient, type Client } from '@connectrpc/connect';
import { createConnectTransport, createGrpcTransport, Http2SessionManager } from '@connectrpc/connect-node';
import { HostApiServer } from '../../dpu-agent/src/api/server.ts';
import { type ApiConfig, type ApiLimits, parseConfig } from '../../dpu-agent/src/config.ts';
import { HostService } from '../../contract/gen/dpu/v1/host_pb.ts';
import { silentLogger, type Logger } from '../../dpu-agent/src/log.ts';
import { createMetrics, type Metrics } from '../../dpu-agent/src/metrics/metrics.ts';
import { FakePool } from './fake-pool.ts';
import type { KeyPair, Pki } from './pki.ts';

// A real HostApiServer on 127.0.0.1 (ephemeral port) over the test PKI, backed
// by the FakePool, plus clients that present a given certificate.

export interface HostApiHarness {
  readonly server: HostApiServer;
  readonly pool: FakePool;
  readonly metrics: Metrics;
  readonly config: ApiConfig;
  readonly port: number;
  readonly url: string;
  /** gRPC client presenting `id` (default host1). Sessions are closed by close(). */
  grpc(id?: KeyPair, opts?: { defaultTimeoutMs?: number }): Client<typeof HostService>;
  connect(id?: KeyPair): Client<typeof HostService>;
  close(): Promise<void>;
}

export async function startHostApi(
  pki: Pki,
  opts: {
    limits?: Partial<Record<keyof ApiLimits, number>>;
    pool?: FakePool;
    logger?: Logger;
    now?: () => number;
    presence?: HostPresence;
    /** api.peer (default: identity host1); api.tls extras (crl, reloadPollMs, …). */
    peer?: { identity?: string; uri?: string };
    tls?: Record<string, unknown>;
  } = {},
): Promise<HostApiHarness> {
  const cfg = parseConfig({
    chassis: { systemId: 'dpu-0', ovnRemote: 'tcp:127.0.0.1:6642', encapIp: '192.0.2.10' },
    api: {
      listenAddress: '127.0.0.1',
      port: 0,
      tls: { key: pki.server.keyPath, cert: pki.server.certPath, clientCa: pki.caPath, ...opts.tls },
      peer: { identity: 'host1', ...opts.peer },
      limits: opts.limits ?? {},
    },
  });
  const config = cfg.api as ApiConfig;
  const pool = opts.pool ?? new FakePool();
  const metrics = createMetrics({ processMetrics: false });
  const server = await HostApiServer.create({
    config,
    pool,
    metrics,
    logger: opts.logger ?? silentLogger(),
    leaseOwners: () => [...pool.leases.values()],
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.presence ? { presence: opts.presence } : {}),
  });
  await server.start();
  const port = server.address().port;
  const url = `https://127.0.0.1:${port}`;
  const managers: Http2SessionManager[] = [];
  const nodeOptions = (id: KeyPair) => ({ ca: pki.ca, key: id.key, cert: id.cert });
  return {
    server,
    pool,
    metrics,
    config,
    port,
    url,
    grpc(id = pki.host1, o = {}) {
      const sessionManager = new Http2SessionManager(url, {}, nodeOptions(id));
      managers.push(sessionManager);
      return createClient(HostService, createGrpcTransport({ baseUrl: url, sessionManager, ...o }));
    },
    connect(id = pki.host1) {
      const sessionManager = new Http2SessionManager(url, {}, nodeOptions(id));
      managers.push(sessionManager);
      return createClient(HostService, createConnectTransport({ baseUrl: url, httpVersion: '2', sessionManager }));
    },
    async close() {
      for (const m of managers) m.abort();
      await server.stop();
    },
  };
}
