// One JSON-RPC 1.0 connection in the OVS dialect (lib/jsonrpc.c): request /
// reply matching by id, notifications, server-originated requests (ovsdb-server
// sends "echo"), and the inactivity probe of lib/reconnect.c.
//
// Failure model: every problem (socket error, peer EOF, bad JSON, oversize
// message, probe timeout) ends in one place, #shutdown(), which rejects all
// pending requests with ConnectionClosedError and emits 'close' exactly once.
// Nothing here emits 'error' or leaves a promise nobody can observe.

import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { ConnectionClosedError, ProtocolError, RpcError, TimeoutError } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import { JsonStreamParser } from './framing.ts';
import { formatRemote, parseRemote, type Remote } from './remote.ts';
import { connectTransport, type TlsFiles } from './transport.ts';

/** reconnect.c's RECONNECT_DEFAULT_PROBE_INTERVAL. */
export const DEFAULT_PROBE_INTERVAL_MS = 5000;

// lib/jsonrpc.c sends its probe with this id and swallows the matching reply.
const ECHO_ID = 'echo';

export interface JsonRpcConnectionOptions {
  /** For logs and errors, e.g. the remote string. */
  name: string;
  /** Per-message limit for received messages (default 64 MiB). */
  maxMessageBytes?: number;
  /** Receive-idle time before sending an echo probe; 0 or absent disables probing. */
  probeIntervalMs?: number;
  /** Default per-request timeout; 0 or absent means requests wait until the connection closes. */
  requestTimeoutMs?: number;
  logger?: Logger;
}

export interface JsonRpcConnectOptions extends Omit<JsonRpcConnectionOptions, 'name'> {
  /** Defaults to the remote string. */
  name?: string;
  tls?: TlsFiles;
  connectTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface RequestOptions {
  timeoutMs?: number;
}

/** Answers a server-originated request; only the first call has effect. */
export type ReplyFn = (result: unknown, error?: unknown) => void;

export interface JsonRpcConnectionEvents {
  notification: [method: string, params: unknown];
  request: [method: string, params: unknown, reply: ReplyFn];
  close: [err?: Error];
}

interface Pending {
  method: string;
  resolve: (result: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

export class JsonRpcConnection extends EventEmitter<JsonRpcConnectionEvents> {
  readonly name: string;

  readonly #socket: Duplex;
  readonly #parser: JsonStreamParser;
  readonly #log: Logger;
  readonly #requestTimeoutMs: number;
  readonly #probeIntervalMs: number;

  #closed = false;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();

  #probeTimer: NodeJS.Timeout | undefined;
  #lastReceive = 0;
  #probeSentAt: number | undefined;

  constructor(socket: Duplex, opts: JsonRpcConnectionOptions) {
    super();
    this.name = opts.name;
    this.#socket = socket;
    this.#parser = new JsonStreamParser({ maxMessageBytes: opts.maxMessageBytes });
    this.#log = (opts.logger ?? silentLogger()).child({ component: 'jsonrpc', conn: opts.name });
    this.#requestTimeoutMs = opts.requestTimeoutMs ?? 0;
    this.#probeIntervalMs = opts.probeIntervalMs ?? 0;

    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);

    if (socket.destroyed) {
      // Keep the "close is an event" contract even for a dead socket.
      queueMicrotask(() => this.#shutdown(new ConnectionClosedError('socket already destroyed')));
      return;
    }
    if (this.#probeIntervalMs > 0) {
      this.#lastReceive = performance.now();
      this.#scheduleProbe(this.#probeIntervalMs);
    }
  }

  /**
   * Connects to an OVS remote. Probes default to 5000 ms for tcp:/ssl: and off
   * for unix:, as jsonrpc_session_open() does (stream_or_pstream_needs_probes).
   */
  static async connect(remote: Remote | string, opts: JsonRpcConnectOptions = {}): Promise<JsonRpcConnection> {
    const r = typeof remote === 'string' ? parseRemote(remote) : remote;
    const socket = await connectTransport(r, {
      tls: opts.tls,
      connectTimeoutMs: opts.connectTimeoutMs,
      signal: opts.signal,
    });
    return new JsonRpcConnection(socket, {
      name: opts.name ?? formatRemote(r),
      maxMessageBytes: opts.maxMessageBytes,
      probeIntervalMs: opts.probeIntervalMs ?? (r.kind === 'unix' ? 0 : DEFAULT_PROBE_INTERVAL_MS),
      requestTimeoutMs: opts.requestTimeoutMs,
      logger: opts.logger,
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** 0 when probing is off. */
  get probeIntervalMs(): number {
    return this.#probeIntervalMs;
  }

  request<T = unknown>(method: string, params: unknown, opts: RequestOptions = {}): Promise<T> {
    if (this.#closed) {
      return Promise.reject(new ConnectionClosedError(`${method} request on ${this.name}: connection is closed`));
    }
    const id = this.#nextId++;
    let text: string;
    try {
      text = JSON.stringify({ method, params, id });
    } catch (err) {
      return Promise.reject(err);
    }
    const timeoutMs = opts.timeoutMs ?? this.#requestTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const entry: Pending = { method, resolve: resolve as (r: unknown) => void, reject, timer: undefined };
      if (timeoutMs > 0) {
        entry.timer = setTimeout(() => {
          this.#pending.delete(id);
          reject(new TimeoutError(`${method} request on ${this.name}`, timeoutMs));
        }, timeoutMs);
      }
      this.#pending.set(id, entry);
      this.#send(text);
    });
  }

  /** Fire-and-forget; like jsonrpc_send() on a dead connection, dropped once closed. */
  notify(method: string, params: unknown): void {
    if (this.#closed) {
      this.#log.debug({ method }, 'notification dropped: connection closed');
      return;
    }
    this.#send(JSON.stringify({ method, params, id: null }));
  }

  close(): void {
    this.#shutdown(undefined);
  }

  #send(text: string): void {
    this.#socket.write(text);
  }

  #onData = (chunk: Buffer | string): void => {
    if (this.#closed) return;
    // Any received byte is activity, not just a whole message: a large reply
    // on a slow link must not trip the probe (jsonrpc_session_recv()).
    if (this.#probeIntervalMs > 0) {
      this.#lastReceive = performance.now();
      this.#probeSentAt = undefined;
    }
    let messages: unknown[];
    try {
      messages = this.#parser.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    } catch (err) {
      this.#log.warn({ err }, 'closing: bad input from peer');
      this.#shutdown(err as Error);
      return;
    }
    for (const msg of messages) {
      if (this.#closed) return; // a listener closed us mid-batch
      try {
        this.#dispatch(msg as Record<string, unknown>);
      } catch (err) {
        this.#log.warn({ err }, 'closing: bad JSON-RPC message from peer');
        this.#shutdown(err as Error);
        return;
      }
    }
  };

  #onEnd = (): void => {
    this.#shutdown(new ConnectionClosedError('connection closed by peer'));
  };

  #onError = (err: Error): void => {
    this.#shutdown(new ConnectionClosedError(`socket error: ${err.message}`, { cause: err }));
  };

  #onClose = (): void => {
    this.#shutdown(new ConnectionClosedError('socket closed'));
  };

  // Message classification follows jsonrpc_msg_from_json(): a "method" makes
  // it a request (id non-null) or notification (id null/absent); otherwise it
  // is a reply and must carry an id. Unlike OVS we ignore unknown members.
  #dispatch(msg: Record<string, unknown>): void {
    const { method, params, id } = msg;
    if (method !== undefined && method !== null) {
      if (typeof method !== 'string') throw new ProtocolError('"method" is not a JSON string');
      if (params !== undefined && params !== null && !Array.isArray(params)) {
        throw new ProtocolError(`"params" of ${method} must be a JSON array`);
      }
      if (id === undefined || id === null) this.#onNotification(method, params);
      else this.#onRequest(method, params, id);
      return;
    }
    if (id === undefined || id === null) {
      throw new ProtocolError('message has neither "method" nor "id"');
    }
    this.#onReply(id, msg['result'], msg['error']);
  }

  #onNotification(method: string, params: unknown): void {
    try {
      this.emit('notification', method, params);
    } catch (err) {
      // A throwing listener must not cost us the rest of the batch.
      this.#log.error({ err, method }, 'notification listener threw');
    }
  }

  #onRequest(method: string, params: unknown, id: unknown): void {
    let replied = false;
    const reply: ReplyFn = (result, error = null) => {
      if (replied || this.#closed) return;
      replied = true;
      // OVS always writes both members (jsonrpc_msg_to_json()).
      this.#send(JSON.stringify({ id, result: error === null ? (result ?? null) : null, error }));
    };
    if (method === 'echo') {
      reply(params);
      return;
    }
    if (this.listenerCount('request') === 0) {
      // What ovsdb-server answers for a method it does not know.
      reply(null, 'unknown method');
      return;
    }
    try {
      this.emit('request', method, params, reply);
    } catch (err) {
      this.#log.error({ err, method }, 'request listener threw');
      reply(null, 'internal error');
    }
  }

  #onReply(id: unknown, result: unknown, error: unknown): void {
    if (id === ECHO_ID) return; // answer to our own probe; receiving it was the point
    const pending = typeof id === 'number' ? this.#pending.get(id) : undefined;
    if (!pending) {
      // Usually the reply to a request that already timed out.
      this.#log.debug({ id }, 'ignoring reply to unknown or expired request');
      return;
    }
    this.#pending.delete(id as number);
    if (pending.timer) clearTimeout(pending.timer);
    if (error !== undefined && error !== null) pending.reject(new RpcError(pending.method, error));
    else pending.resolve(result);
  }

  #scheduleProbe(delayMs: number): void {
    this.#probeTimer = setTimeout(this.#probeTick, Math.max(1, Math.ceil(delayMs)));
  }

  // One timer, re-armed from timestamps, so receiving data costs no timer churn.
  #probeTick = (): void => {
    this.#probeTimer = undefined;
    if (this.#closed) return;
    const interval = this.#probeIntervalMs;
    const now = performance.now();
    if (this.#probeSentAt === undefined) {
      const idle = now - this.#lastReceive;
      if (idle < interval) {
        this.#scheduleProbe(interval - idle);
        return;
      }
      this.#log.debug({ idleMs: Math.round(idle) }, 'idle, sending inactivity probe');
      this.#send(JSON.stringify({ method: 'echo', params: [], id: ECHO_ID }));
      this.#probeSentAt = now;
      this.#scheduleProbe(interval);
      return;
    }
    const waited = now - this.#probeSentAt;
    if (waited < interval) {
      this.#scheduleProbe(interval - waited);
      return;
    }
    // reconnect.c: "no response to inactivity probe after N seconds, disconnecting".
    const err = new TimeoutError('inactivity probe', interval);
    this.#log.warn({ err }, 'no response to inactivity probe, disconnecting');
    this.#shutdown(err);
  };

  #shutdown(reason: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#probeTimer) clearTimeout(this.#probeTimer);
    this.#probeTimer = undefined;
    this.#socket.off('data', this.#onData);
    // The 'error' listener stays: a destroyed socket may still report one.
    this.#socket.destroy();

    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) {
      if (p.timer) clearTimeout(p.timer);
      const msg = `${p.method} request on ${this.name} aborted: connection closed`;
      p.reject(new ConnectionClosedError(reason ? `${msg} (${reason.message})` : msg, { cause: reason }));
    }
    if (reason) this.#log.info({ err: reason }, 'connection closed');
    else this.#log.debug('connection closed locally');
    this.emit('close', reason);
  }
}
