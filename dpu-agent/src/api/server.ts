import { readFile } from 'node:fs/promises';
import { constants as h2, type Http2SecureServer, type Http2ServerRequest, type Http2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Code, createConnectRouter, createContextValues } from '@connectrpc/connect';
import { universalRequestFromNodeRequest, universalResponseToNodeResponse } from '@connectrpc/connect-node';
import type { UniversalServerResponse } from '@connectrpc/connect/protocol';
import * as protoConnect from '@connectrpc/connect/protocol-connect';
import * as protoGrpc from '@connectrpc/connect/protocol-grpc';
import { fastify, type FastifyInstance, LogController } from 'fastify';
import type { ApiConfig } from '../config.ts';
import { ConfigError } from '../errors.ts';
import { HostService } from '../../../contract/gen/dpu/v1/host_pb.ts';
import type { Logger } from '../log.ts';
import { countRejected, type HostApiMethod, type Metrics } from '../metrics/metrics.ts';
import type { VfPoolApi } from '../ports/types.ts';
import { PeerLimiter } from './limits.ts';
import { peerFromSocket } from './peer.ts';
import type { HostPresence } from './host-presence.ts';
import { type CallState, codeLabel, createHostService, kCall } from './service.ts';

// The host API listener (DESIGN.md §1, §4): Connect + gRPC on fastify over
// HTTP/2, TLS 1.3 only, client certificate required and verified against the
// configured host CA. Bound to the host-facing address only (config refuses
// wildcards); metrics and health live on the management listener instead.
//
// Limits, outermost first:
//   maxConnections, tlsHandshakeTimeoutMs       before anyone is known
//   maxConnectionsPerPeer                        after the handshake, by CN
//   maxConcurrentStreams, maxHeaderListPairs,
//   maxSessionMemoryMb, sessionIdleTimeoutMs     per HTTP/2 connection
//   requestBodyTimeoutMs                          per stream (slowloris)
//   maxMessageBytes (readMaxBytes)               per message
//   ratePerSecond/rateBurst, maxConcurrentPerPeer per peer, in the handler guard
//   maxDeadlineMs                                 per call (client grpc-timeout if shorter)

export interface ApiTlsMaterial {
  readonly key: Buffer;
  readonly cert: Buffer;
  readonly clientCa: Buffer;
}

export interface HostApiServerOptions {
  readonly config: ApiConfig;
  readonly tls: ApiTlsMaterial;
  readonly pool: VfPoolApi;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Host liveness / GC grace (ports.hostSilenceMs, ports.hostReturnGraceMs); undefined = GC never deferred. */
  readonly presence?: HostPresence;
  /** Clock for the rate limiter (ms, monotonic). */
  readonly now?: () => number;
}

const METHODS: ReadonlyMap<string, HostApiMethod> = new Map(
  (['AllocateVf', 'ReleaseVf', 'GetVf', 'ListVfs', 'Status'] as const).map((m) => [`/${HostService.typeName}/${m}`, m]),
);

/** Reads the PEM files named by the config; a missing file is a ConfigError naming the key. */
export async function readApiTls(config: ApiConfig): Promise<ApiTlsMaterial> {
  const read = async (key: 'key' | 'cert' | 'clientCa'): Promise<Buffer> => {
    try {
      return await readFile(config.tls[key]);
    } catch (err) {
      throw new ConfigError(`api.tls.${key}`, `cannot read ${config.tls[key]}: ${(err as Error).message}`);
    }
  };
  return { key: await read('key'), cert: await read('cert'), clientCa: await read('clientCa') };
}

export class HostApiServer {
  private readonly app: FastifyInstance;
  private readonly log: Logger;
  private readonly shutdown = new AbortController();
  private readonly peerConnections = new Map<string, number>();

  constructor(private readonly opts: HostApiServerOptions) {
    const { config, tls, metrics } = opts;
    const limits = config.limits;
    this.log = opts.logger.child({ component: 'host-api' });

    this.app = fastify({
      http2: true,
      https: {
        key: tls.key,
        cert: tls.cert,
        ca: tls.clientCa,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.3',
        allowHTTP1: false,
        handshakeTimeout: limits.tlsHandshakeTimeoutMs,
        maxHeaderListPairs: limits.maxHeaderListPairs,
        maxSessionMemory: limits.maxSessionMemoryMb,
        // An unauthenticated peer that completes TLS but never speaks h2.
        unknownProtocolTimeout: limits.tlsHandshakeTimeoutMs,
        settings: {
          maxConcurrentStreams: limits.maxConcurrentStreams,
          maxHeaderListSize: 16 * 1024,
          enablePush: false,
        },
      },
      http2SessionTimeout: limits.sessionIdleTimeoutMs,
      loggerInstance: this.log,
      logController: new LogController({ disableRequestLogging: true }),
      return503OnClosing: true,
    }) as unknown as FastifyInstance;

    const server = this.app.server as unknown as Http2SecureServer & { maxConnections: number };
    server.maxConnections = limits.maxConnections;
    server.on('tlsClientError', (err: Error) => {
      countRejected(metrics, 'tls-handshake');
      this.log.debug({ err }, 'TLS handshake refused');
    });
    server.on('secureConnection', (sock: TLSSocket) => this.trackPeerConnection(sock));
    server.on('session', (session: Http2Session) => {
      // fastify's http2SessionTimeout closes gracefully (GOAWAY); a session whose
      // streams never finish is destroyed shortly after.
      session.setTimeout(limits.sessionIdleTimeoutMs, () => {
        setTimeout(() => session.destroy(), 1_000).unref();
      });
    });

    this.app.addHook('onRequest', (req, _reply, done) => {
      this.armBodyTimer(req.raw as unknown as Http2ServerRequest, limits.requestBodyTimeoutMs);
      done();
    });
    this.app.addContentTypeParser(
      [protoGrpc.contentTypeProto, protoGrpc.contentTypeJson, protoConnect.contentTypeUnaryJson, protoConnect.contentTypeUnaryProto],
      (_req, _payload, done) => done(null, undefined),
    );
    this.app.addContentTypeParser(protoGrpc.contentTypeRegExp, (_req, _payload, done) => done(null, undefined));
    this.app.addContentTypeParser(protoConnect.contentTypeRegExp, (_req, _payload, done) => done(null, undefined));

    const limiter = new PeerLimiter(limits, opts.now);
    const router = createConnectRouter({
      readMaxBytes: limits.maxMessageBytes,
      writeMaxBytes: 4 * 1024 * 1024,
      // No compression: nothing to gain on these small messages, and no decompression bombs.
      acceptCompression: [],
      grpc: true,
      connect: true,
      grpcWeb: false,
      shutdownSignal: this.shutdown.signal,
    });
    router.service(
      HostService,
      createHostService({
        pool: opts.pool,
        limiter,
        metrics,
        logger: this.log,
        maxDeadlineMs: limits.maxDeadlineMs,
        maxValidAttachments: limits.maxValidAttachments,
        ...(opts.presence ? { presence: opts.presence } : {}),
      }),
    );

    // Same as @connectrpc/connect-fastify's plugin, plus: the peer identity from
    // the TLS socket into the call state, and a request counted even when it
    // fails before reaching a handler (bad framing, oversize, bad timeout header).
    for (const handler of router.handlers) {
      const method = METHODS.get(handler.requestPath) ?? 'unknown';
      this.app.all(handler.requestPath, async (req, reply) => {
        const raw = req.raw as unknown as Http2ServerRequest;
        const state: CallState = { peer: this.peerOf(raw), recorded: false };
        const values = createContextValues().set(kCall, state);
        const closed = new Promise<void>((resolve) => reply.raw.once('close', resolve));
        try {
          const uRes = await decodeErrorsAreInvalidArgument(
            await handler(universalRequestFromNodeRequest(req.raw, reply.raw, undefined, values)),
          );
          // connect-node waits for an 'end' event that Node 20's Http2ServerResponse
          // never emits; 'close' is the reliable "response done (or reset)" signal.
          await Promise.race([universalResponseToNodeResponse(uRes, reply.raw), closed]);
          if (!state.recorded) this.recordEarlyFailure(method, uRes);
        } catch (err) {
          if (!state.recorded) metrics.hostApiRequests.inc({ method, code: codeLabel(Code.Canceled) });
          this.log.debug({ err, method }, 'host API stream ended early');
        }
      });
    }
  }

  /** Reads key/cert/CA files and builds the server. */
  static async create(opts: Omit<HostApiServerOptions, 'tls'>): Promise<HostApiServer> {
    return new HostApiServer({ ...opts, tls: await readApiTls(opts.config) });
  }

  async start(): Promise<void> {
    await this.app.listen({ host: this.opts.config.listenAddress, port: this.opts.config.port });
    this.log.info({ address: this.address() }, 'host API listening');
  }

  address(): AddressInfo {
    return this.app.server.address() as AddressInfo;
  }

  /** Stops accepting, gives in-flight calls shutdownGraceMs, then cancels them. */
  async stop(): Promise<void> {
    const grace = setTimeout(() => this.shutdown.abort(), this.opts.config.limits.shutdownGraceMs);
    try {
      await this.app.close();
    } finally {
      clearTimeout(grace);
      this.shutdown.abort();
    }
  }

  private peerOf(raw: Http2ServerRequest): string | undefined {
    return peerFromSocket(raw.stream?.session?.socket as TLSSocket | undefined);
  }

  private trackPeerConnection(sock: TLSSocket): void {
    const peer = peerFromSocket(sock);
    if (peer === undefined) return; // refused per call with bad-peer-identity
    const n = (this.peerConnections.get(peer) ?? 0) + 1;
    if (n > this.opts.config.limits.maxConnectionsPerPeer) {
      countRejected(this.opts.metrics, 'peer-connection-limit');
      this.log.warn({ peer }, 'too many connections from one host; closing the newest');
      sock.destroy();
      return;
    }
    this.peerConnections.set(peer, n);
    sock.once('close', () => {
      const left = (this.peerConnections.get(peer) ?? 1) - 1;
      if (left <= 0) this.peerConnections.delete(peer);
      else this.peerConnections.set(peer, left);
    });
  }

  /**
   * Slowloris guard: the request body must be complete within `ms` of the
   * headers. Otherwise the stream is reset (RST_STREAM CANCEL); the connection
   * and its other streams carry on.
   */
  private armBodyTimer(raw: Http2ServerRequest, ms: number): void {
    const stream = raw.stream;
    if (!stream || raw.complete) return;
    const timer = setTimeout(() => {
      if (stream.destroyed || stream.closed) return;
      countRejected(this.opts.metrics, 'body-timeout');
      this.log.info({ path: raw.url }, 'request body not received in time; resetting the stream');
      stream.close(h2.NGHTTP2_CANCEL);
    }, ms);
    timer.unref();
    const clear = (): void => clearTimeout(timer);
    raw.once('end', clear);
    stream.once('close', clear);
  }

  private recordEarlyFailure(method: HostApiMethod, uRes: UniversalServerResponse): void {
    const grpcStatus = uRes.trailer?.get('grpc-status') ?? uRes.header?.get('grpc-status');
    let label: string;
    if (grpcStatus !== null && grpcStatus !== undefined) {
      const n = Number(grpcStatus);
      label = n === 0 ? 'ok' : codeLabel(n as Code);
    } else {
      label = uRes.status === 200 ? 'ok' : codeLabel(protoConnect.codeFromHttpStatus(uRes.status));
    }
    if (label === 'invalid_argument') countRejected(this.opts.metrics, 'invalid-argument');
    this.opts.metrics.hostApiRequests.inc({ method, code: label });
  }
}

const PARSE_ERROR = /^(\[internal\] )?parse binary: /;
const INVALID_MESSAGE = 'invalid request message';

/**
 * connect-es reports an undecodable request message as INTERNAL ("parse
 * binary: …", the same path it uses for a client parsing a bad response). For
 * a server that is the caller's fault: rewrite it to INVALID_ARGUMENT with a
 * fixed message, for gRPC (trailer, set once the body iterator finishes) and
 * Connect unary (HTTP 500 JSON body).
 */
async function decodeErrorsAreInvalidArgument(uRes: UniversalServerResponse): Promise<UniversalServerResponse> {
  const trailer = uRes.trailer;
  const fixTrailer = (): void => {
    if (!trailer || trailer.get('grpc-status') !== String(Code.Internal)) return;
    if (!PARSE_ERROR.test(decodeURIComponent(trailer.get('grpc-message') ?? ''))) return;
    trailer.set('grpc-status', String(Code.InvalidArgument));
    trailer.set('grpc-message', encodeURIComponent(INVALID_MESSAGE));
    trailer.delete('grpc-status-details-bin');
  };
  if (trailer && uRes.body) {
    const body = uRes.body;
    fixTrailer();
    return {
      ...uRes,
      body: (async function* () {
        yield* body;
        fixTrailer();
      })(),
    };
  }
  if (uRes.status === 500 && uRes.body && uRes.header?.get('content-type')?.startsWith('application/json')) {
    const chunks: Uint8Array[] = [];
    for await (const c of uRes.body) chunks.push(c);
    let bytes = Buffer.concat(chunks);
    let status = uRes.status;
    try {
      const j = JSON.parse(bytes.toString('utf8')) as { code?: unknown; message?: unknown };
      if (j.code === 'internal' && typeof j.message === 'string' && PARSE_ERROR.test(j.message)) {
        status = protoConnect.codeToHttpStatus(Code.InvalidArgument);
        bytes = Buffer.from(JSON.stringify({ code: protoConnect.codeToString(Code.InvalidArgument), message: INVALID_MESSAGE }));
        uRes.header.set('content-length', String(bytes.byteLength));
      }
    } catch {
      // not our JSON error body: pass it on unchanged
    }
    return { ...uRes, status, body: (async function* () { yield bytes; })() };
  }
  return uRes;
}
