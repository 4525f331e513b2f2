import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.ts';
import type { Metrics } from './metrics.ts';

// The management listener (DESIGN.md §1): plain HTTP on a management address,
// a different socket from the host API, never reachable from the host.
//   GET /metrics  Prometheus text format from the agent's own Registry
//   GET /healthz  200 while the process serves requests (liveness)
//   GET /readyz   200 when `ready()` says so, else 503 with the reasons (readiness)

export interface Readiness {
  readonly ready: boolean;
  /** Short stable strings, e.g. "ovsdb-not-connected"; empty when ready. */
  readonly reasons: readonly string[];
}

export interface MetricsServerOptions {
  readonly metrics: Metrics;
  readonly listenAddress: string;
  readonly port: number;
  readonly ready: () => Readiness;
  readonly logger: Logger;
}

export class MetricsServer {
  private readonly server: Server;
  private readonly log: Logger;

  constructor(private readonly opts: MetricsServerOptions) {
    this.log = opts.logger.child({ component: 'metrics' });
    this.server = createServer({ headersTimeout: 5_000, requestTimeout: 10_000 }, (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.log.error({ err }, 'metrics request failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('internal error\n');
      });
    });
    this.server.keepAliveTimeout = 5_000;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: this.opts.listenAddress, port: this.opts.port }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.log.info({ address: this.address() }, 'management listener up');
  }

  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  async stop(): Promise<void> {
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' });
      res.end('method not allowed\n');
      return;
    }
    switch (path) {
      case '/metrics': {
        const body = await this.opts.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': this.opts.metrics.registry.contentType });
        res.end(req.method === 'HEAD' ? undefined : body);
        return;
      }
      case '/healthz':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok\n');
        return;
      case '/readyz': {
        const r = this.opts.ready();
        res.writeHead(r.ready ? 200 : 503, { 'content-type': 'text/plain' });
        res.end(r.ready ? 'ready\n' : `not ready: ${r.reasons.join(', ')}\n`);
        return;
      }
      default:
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found\n');
    }
  }
}
