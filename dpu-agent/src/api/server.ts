import { constants as h2, type Http2SecureServer, type Http2ServerRequest, type Http2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { createConnectRouter, createContextValues } from '@connectrpc/connect';
import { universalRequestFromNodeRequest, universalResponseToNodeResponse } from '@connectrpc/connect-node';
import type { UniversalServerResponse } from '@connectrpc/connect/protocol';
import * as protoConnect from '@connectrpc/connect/protocol-connect';
import * as protoGrpc from '@connectrpc/connect/protocol-grpc';
import { fastify, type FastifyInstance, LogController } from 'fastify';
import { TlsFilesError, type TlsFilesWatcher, watchTlsFiles } from '../../../contract/tls-files.ts';
import type { ApiConfig } from '../config.ts';
import { ConfigError } from '../errors.ts';
import { HostService } from '../../../contract/gen/dpu/v1/host_pb.ts';
import type { Logger } from '../log.ts';
import { countRejected, countSessionClosed, type HostApiMethod, type Metrics } from '../metrics/metrics.ts';
import type { VfPoolApi } from '../ports/types.ts';
import { CertExpiry } from './cert-expiry.ts';
import { decodeErrorsAreInvalidArgument, earlyStatus } from './early-status.ts';
import type { HostPresence } from './host-presence.ts';
import { type LeaseOwner, UnacceptedLeases } from './lease-owners.ts';
import { PeerLimiter } from './limits.ts';
import { type Peer, peerFromSocket } from './peer.ts';
import { type CallState, createHostService, kCall } from './service.ts';
import { SessionGuard } from './sessions.ts';
import { type ApiTlsFile, apiTlsPaths, BASE_TLS_OPTIONS, buildServerTls, judgeOpenPeer, type ServerTlsMaterial } from './tls-material.ts';

// The host API listener (DESIGN.md §1, §4): Connect + gRPC on fastify over
// HTTP/2, TLS 1.3 only, client certificate required and verified against the
// configured host CA. Bound to the host-facing address only (config refuses
// wildcards); metrics and health live on the management listener instead.
//
// Limits, outermost first:
//   maxConnections, tlsHandshakeTimeoutMs       before anyone is known
//   maxConnectionsPerPeer                        after the handshake, by host name
//   maxConcurrentStreams, maxHeaderListPairs,
//   maxSessionMemoryMb, sessionIdleTimeoutMs,
//   keepalivePingMs                              per HTTP/2 connection (api/sessions.ts)
//   requestBodyTimeoutMs                          per stream (slowloris)
//   maxMessageBytes (readMaxBytes)               per message
//   ratePerSecond/rateBurst, maxConcurrentPerPeer per peer, in the handler guard
//   maxDeadlineMs                                 per call (client grpc-timeout if shorter)
//
// Identity (api/peer.ts): only the configured host is served; any other valid
// certificate completes the handshake and gets PERMISSION_DENIED `wrong-host` on
// every call. TLS files (server key/cert, client CA, CRL) follow their files
// (contract/tls-files.ts): new handshakes use new material at once, and open
// sessions whose peer certificate the new material revokes or no longer trusts
// are closed.

export interface HostApiServerOptions {
  readonly config: ApiConfig;
  /** Initial TLS material; `create` loads it from the files and keeps following them. */
  readonly tls: ServerTlsMaterial;
  readonly pool: VfPoolApi;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Host liveness / GC grace (ports.hostSilenceMs, ports.hostReturnGraceMs); undefined = GC never deferred. */
  readonly presence?: HostPresence;
  /** Every lease with its owner, to report leases of hosts no longer accepted. */
  readonly leaseOwners?: () => readonly LeaseOwner[];
  /** Clock for the rate limiter (ms, monotonic). */
  readonly now?: () => number;
}

const METHODS: ReadonlyMap<string, HostApiMethod> = new Map(
  (['AllocateVf', 'ReleaseVf', 'GetVf', 'ListVfs', 'Status'] as const).map((m) => [`/${HostService.typeName}/${m}`, m]),
);

/** Loads the TLS files named by the config and follows them; a file that cannot be used at start is a ConfigError. */
export async function watchApiTls(
  config: ApiConfig,
  on: { change(m: ServerTlsMaterial): void; error(err: Error): void },
): Promise<TlsFilesWatcher<ApiTlsFile, ServerTlsMaterial>> {
  try {
    return (await watchTlsFiles({
      paths: apiTlsPaths(config.tls),
      build: (files) => buildServerTls(files as Parameters<typeof buildServerTls>[0]),
      onChange: (m) => on.change(m),
      onError: (err) => on.error(err),
      pollMs: config.tls.reloadPollMs,
    })) as TlsFilesWatcher<ApiTlsFile, ServerTlsMaterial>;
  } catch (err) {
    if (err instanceof TlsFilesError) throw new ConfigError(`api.tls.${err.file}`, err.message.slice(err.file.length + 2));
    throw new ConfigError('api.tls', (err as Error).message);
  }
}

export class HostApiServer {
  private readonly app: FastifyInstance;
  private readonly log: Logger;
  private readonly shutdown = new AbortController();
  private readonly peerConnections = new Map<string, number>();
  /** Each connection's peer, judged once: its certificate and the (frozen) rule do not change while it lives. */
  private readonly peers = new WeakMap<TLSSocket, Peer | undefined>();
  private readonly sessions: SessionGuard;
  private readonly expiry: CertExpiry;
  private readonly unaccepted: UnacceptedLeases | undefined;
  private tls: ServerTlsMaterial;
  private watcher: TlsFilesWatcher<ApiTlsFile, ServerTlsMaterial> | undefined;

  constructor(private readonly opts: HostApiServerOptions) {
    const { config, metrics } = opts;
    const limits = config.limits;
    this.tls = opts.tls;
    this.log = opts.logger.child({ component: 'host-api' });
    this.expiry = new CertExpiry({ metrics, log: this.log, warningDays: config.tls.expiryWarningDays });
    this.expiry.material(this.tls);
    if (opts.leaseOwners) {
      this.unaccepted = new UnacceptedLeases(config.peer.identity, opts.leaseOwners);
      this.unaccepted.bind(metrics);
    }

    this.app = fastify({
      http2: true,
      https: {
        ...this.tls.options,
        requestCert: true,
        rejectUnauthorized: true,
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
    server.on('secureConnection', (sock: TLSSocket) => this.onSecureConnection(sock));
    this.sessions = new SessionGuard({
      idleMs: limits.sessionIdleTimeoutMs,
      pingMs: limits.keepalivePingMs,
      onEnd: (why) => {
        countSessionClosed(metrics, why);
        if (why === 'keepalive-timeout') this.log.info('HTTP/2 session did not answer a PING in time (dead peer, or GOAWAY after a protocol error): closed');
      },
    });
    server.on('session', (session: Http2Session) => this.sessions.add(session));

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
        ...(this.unaccepted ? { unaccepted: this.unaccepted } : {}),
      }),
    );

    // Same as @connectrpc/connect-fastify's plugin, plus: the peer identity from
    // the TLS socket into the call state, and a request counted even when it
    // fails before reaching a handler (bad framing, oversize, bad timeout header,
    // wrong HTTP method or content type, reset by the client).
    for (const handler of router.handlers) {
      const method = METHODS.get(handler.requestPath) ?? 'unknown';
      this.app.all(handler.requestPath, async (req, reply) => {
        const raw = req.raw as unknown as Http2ServerRequest;
        const peer = this.peerOf(raw);
        const state: CallState = { peer: peer?.name, accepted: peer?.accepted === true, recorded: false };
        const values = createContextValues().set(kCall, state);
        const closed = new Promise<void>((resolve) => reply.raw.once('close', resolve));
        let uRes: UniversalServerResponse | undefined;
        let connectCode: string | undefined;
        try {
          ({ uRes, connectCode } = await decodeErrorsAreInvalidArgument(
            await handler(universalRequestFromNodeRequest(req.raw, reply.raw, undefined, values)),
          ));
          // connect-node waits for an 'end' event that Node 20's Http2ServerResponse
          // never emits; 'close' is the reliable "response done (or reset)" signal.
          await Promise.race([universalResponseToNodeResponse(uRes, reply.raw), closed]);
        } catch (err) {
          this.log.debug({ err, method }, 'host API stream ended early');
        }
        if (state.recorded) return;
        const reset = (raw.stream?.rstCode ?? h2.NGHTTP2_NO_ERROR) !== h2.NGHTTP2_NO_ERROR || uRes === undefined;
        const st = earlyStatus(uRes, connectCode, reset);
        if (st.rejected) countRejected(metrics, st.rejected);
        metrics.hostApiRequests.inc({ method, code: st.code });
      });
    }
  }

  /** Loads the TLS files, follows them, and builds the server. */
  static async create(opts: Omit<HostApiServerOptions, 'tls'>): Promise<HostApiServer> {
    let server: HostApiServer | undefined;
    const watcher = await watchApiTls(opts.config, {
      change: (m) => server?.applyTls(m),
      error: (err) => server?.tlsRefused(err),
    });
    server = new HostApiServer({ ...opts, tls: watcher.current });
    server.watcher = watcher;
    return server;
  }

  async start(): Promise<void> {
    await this.app.listen({ host: this.opts.config.listenAddress, port: this.opts.config.port });
    this.expiry.start();
    this.unaccepted?.report(this.log);
    this.log.info({ address: this.address(), accepts: this.opts.config.peer.identity }, 'host API listening');
  }

  address(): AddressInfo {
    return this.app.server.address() as AddressInfo;
  }

  /** Reads the TLS files now (tests; the watcher does it on change and on its poll). */
  async reloadTls(): Promise<'unchanged' | 'applied' | 'refused'> {
    return this.watcher ? this.watcher.check() : 'unchanged';
  }

  /** Stops accepting, gives in-flight calls shutdownGraceMs, then cancels them. */
  async stop(): Promise<void> {
    this.watcher?.close();
    this.expiry.stop();
    this.sessions.close();
    const grace = setTimeout(() => this.shutdown.abort(), this.opts.config.limits.shutdownGraceMs);
    try {
      await this.app.close();
    } finally {
      clearTimeout(grace);
      this.shutdown.abort();
    }
  }

  /**
   * New material: new handshakes use it at once (setSecureContext), then every
   * open session is judged under it and closed when its peer certificate is now
   * revoked or no longer chains to a trusted CA.
   */
  applyTls(m: ServerTlsMaterial): void {
    const server = this.app.server as unknown as Http2SecureServer;
    server.setSecureContext({ ...BASE_TLS_OPTIONS, ...m.options });
    this.tls = m;
    this.opts.metrics.tlsReloads.inc({ result: 'ok' });
    this.expiry.material(m);
    this.log.info(
      { serverCertNotAfter: m.serverCert.validTo, cas: m.caCerts.length, crls: m.crls.length, revoked: m.crls.reduce((n, c) => n + c.revoked.size, 0) },
      'host API TLS material reloaded',
    );
    this.sessions.forEach((session, sock) => {
      if (!this.stillGood(sock)) session.destroy();
    });
  }

  private tlsRefused(err: Error): void {
    this.opts.metrics.tlsReloads.inc({ result: 'error' });
    this.log.error({ err }, 'new host API TLS files refused; the previous material stays in use');
  }

  /** False (counted, logged) when the socket's peer certificate is revoked or untrusted under the current material. */
  private stillGood(sock: TLSSocket): boolean {
    const cert = typeof sock.getPeerCertificate === 'function' ? sock.getPeerCertificate(true) : undefined;
    if (!cert || !cert.raw) return true;
    const verdict = judgeOpenPeer(cert, this.tls);
    if (verdict === 'ok') return true;
    const reason = verdict === 'revoked' ? 'cert-revoked' : 'cert-untrusted';
    countSessionClosed(this.opts.metrics, reason);
    this.log.warn({ cn: cert.subject?.CN, serial: cert.serialNumber, issuer: cert.issuer?.CN, reason }, 'closing a host API connection: its client certificate is no longer accepted');
    return false;
  }

  private peerOf(raw: Http2ServerRequest): Peer | undefined {
    const sock = raw.stream?.session?.socket as TLSSocket | undefined;
    return sock === undefined ? undefined : this.judge(sock);
  }

  private judge(sock: TLSSocket): Peer | undefined {
    if (this.peers.has(sock)) return this.peers.get(sock);
    const peer = peerFromSocket(sock, this.opts.config.peer);
    this.peers.set(sock, peer);
    return peer;
  }

  private onSecureConnection(sock: TLSSocket): void {
    // A resumed session skips the certificate check; tickets are off (BASE_TLS_OPTIONS), and this is the backstop.
    if (sock.authorized && !this.stillGood(sock)) {
      sock.destroy();
      return;
    }
    const peer = this.judge(sock);
    if (peer === undefined || peer.name === undefined) return; // refused per call with bad-peer-identity
    if (peer.accepted) this.expiry.peer(peer.name, peer.presented.serial, peer.presented.notAfter);
    else this.log.warn({ presented: peer.presented, accepts: this.opts.config.peer.identity }, 'connection from a host this DPU does not serve: every call will be refused wrong-host');
    const n = (this.peerConnections.get(peer.name) ?? 0) + 1;
    if (n > this.opts.config.limits.maxConnectionsPerPeer) {
      countRejected(this.opts.metrics, 'peer-connection-limit');
      this.log.warn({ peer: peer.name }, 'too many connections from one host; closing the newest');
      sock.destroy();
      return;
    }
    const name = peer.name;
    this.peerConnections.set(name, n);
    sock.once('close', () => {
      const left = (this.peerConnections.get(name) ?? 1) - 1;
      if (left <= 0) this.peerConnections.delete(name);
      else this.peerConnections.set(name, left);
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
}
