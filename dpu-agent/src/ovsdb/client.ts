import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConnectionClosedError, OvsdbError, ProtocolError } from '../errors.ts';
import { JsonRpcConnection } from '../jsonrpc/connection.ts';
import { type Remote, formatRemote, parseRemotes } from '../jsonrpc/remote.ts';
import type { TlsFiles } from '../jsonrpc/transport.ts';
import { type Logger, silentLogger } from '../log.ts';
import { type Row, decodeRow, decodeValue } from './atoms.ts';
import { Monitor, type MonitorRequests } from './monitor.ts';
import { type Operation, encodeOperation, operationColumns } from './ops.ts';
import { type DatabaseSchema, checkColumns, parseSchema, tableSchema } from './schema.ts';
import { ServerDbCheck } from './server-db.ts';

// RFC 7047 client with the ovsdb-server(7) extensions, modelled on the C/Python
// IDL state machine (lib/ovsdb-cs.c): connect → check _Server.Database (cluster
// state, leader, stale index) → get_schema → (re)establish monitors → serve.
// One client talks to one database; a cluster is given as several remotes.

export interface BackoffOptions {
  /** lib/reconnect.c defaults: 1000 → 8000 ms, doubling. */
  readonly minMs: number;
  readonly maxMs: number;
}

export interface OvsdbClientOptions {
  readonly remotes: string | readonly string[];
  readonly database: string;
  readonly tls?: TlsFiles;
  /** Only use a clustered member that is the Raft leader (C/Python IDL default). Standalone DBs always pass. */
  readonly leaderOnly?: boolean;
  readonly requestTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  /** Inactivity probe for tcp/ssl; unix sockets never probe (as OVS). */
  readonly probeIntervalMs?: number;
  readonly maxMessageBytes?: number;
  readonly backoff?: BackoffOptions;
  readonly logger?: Logger;
  /** Injected for tests: [0,1) */
  readonly random?: () => number;
}

export interface TransactOptions {
  readonly timeoutMs?: number;
}

/** Per-op results (RFC 7047 §5.2), decoded. */
export interface OpResult {
  readonly uuid?: string;
  readonly count?: number;
  readonly rows?: Row[];
}

export declare interface OvsdbClient {
  on(event: 'connected', l: (remote: string) => void): this;
  on(event: 'disconnected', l: (err: Error | undefined) => void): this;
  on(event: 'schema', l: (schema: DatabaseSchema) => void): this;
}

export class OvsdbClient extends EventEmitter {
  readonly database: string;
  private readonly remotes: Remote[];
  private readonly opts: OvsdbClientOptions;
  private readonly log: Logger;
  private conn: JsonRpcConnection | undefined;
  /** True once the current session passed the server check, has the schema and re-established every monitor. */
  private handshakeDone = false;
  private _schema: DatabaseSchema | undefined;
  private stopped = true;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private nextRemote = 0;
  private readonly serverCheck: ServerDbCheck;
  private readonly monitors = new Set<Monitor>();
  private connectedWaiters: Array<() => void> = [];
  private nextMonitorId = 1;
  /** Connection count: lets callers and tests see reconnects. */
  reconnects = 0;

  constructor(opts: OvsdbClientOptions) {
    super();
    this.opts = opts;
    this.database = opts.database;
    const list = typeof opts.remotes === 'string' ? parseRemotes(opts.remotes) : opts.remotes.flatMap((r) => parseRemotes(r));
    if (list.length === 0) throw new ProtocolError('no remotes');
    this.remotes = list;
    this.log = (opts.logger ?? silentLogger()).child({ component: 'ovsdb', db: opts.database });
    this.serverCheck = new ServerDbCheck(opts.database, opts.leaderOnly !== false);
  }

  get connected(): boolean {
    return this.handshakeDone && this.conn !== undefined && !this.conn.closed;
  }

  get schema(): DatabaseSchema {
    if (!this._schema) throw new ConnectionClosedError('not connected yet: no schema');
    return this._schema;
  }

  /** The remote currently connected to, if any. */
  get remote(): string | undefined {
    return this.conn && !this.conn.closed ? this.conn.name : undefined;
  }

  /** Connects in the background and keeps reconnecting until stop(); resolves once connected the first time. */
  async start(): Promise<void> {
    if (!this.stopped) return this.waitConnected();
    this.stopped = false;
    this.loop = this.run().catch((err: unknown) => {
      this.log.error({ err }, 'ovsdb client loop crashed');
    });
    return this.waitConnected();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.conn?.close();
    await this.loop;
    this.loop = undefined;
    for (const m of this.monitors) m.close();
  }

  /** Resolves when connected (or immediately). With a timeout, rejects if not connected in time. */
  waitConnected(timeoutMs?: number): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        if (timer) clearTimeout(timer);
        resolve();
      };
      this.connectedWaiters.push(done);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.connectedWaiters = this.connectedWaiters.filter((w) => w !== done);
          reject(new ConnectionClosedError(`${this.database}: not connected after ${timeoutMs} ms`));
        }, timeoutMs);
      }
    });
  }

  /** Drop the current connection; the loop reconnects (used on leader change, and by tests). */
  reconnect(): void {
    this.conn?.close();
  }

  // ---- requests ---------------------------------------------------------

  async listDbs(): Promise<string[]> {
    return (await this.request('list_dbs', [])) as string[];
  }

  async getSchema(db: string = this.database): Promise<DatabaseSchema> {
    return parseSchema(await this.request('get_schema', [db]));
  }

  /**
   * Run a transaction. Throws OvsdbError for the first failing op or a commit
   * error (RFC 7047 §4.1.3: the failing slot holds `error`, later slots `null`,
   * a commit-time error is one extra element). Ops are checked against the
   * schema first so a typo never reaches the server.
   */
  async transact(ops: readonly Operation[], opts: TransactOptions = {}): Promise<OpResult[]> {
    const schema = this.schema;
    for (const o of ops) if ('table' in o) checkColumns(schema, o.table, operationColumns(o));
    const raw = await this.request('transact', [this.database, ...ops.map(encodeOperation)], opts.timeoutMs);
    if (!Array.isArray(raw)) throw new ProtocolError('transact: result is not an array');
    for (let i = 0; i < raw.length; i++) {
      const r = raw[i] as { error?: unknown; details?: unknown } | null;
      if (r && typeof r.error === 'string') {
        const o = ops[i];
        throw new OvsdbError(r.error, typeof r.details === 'string' ? r.details : undefined, i, o ? o.op : 'commit');
      }
    }
    return ops.map((o, i) => decodeResult(raw[i], o, schema));
  }

  /** Start a monitor; it survives reconnects (re-established with monitor_cond_since). */
  monitor(requests: MonitorRequests): Monitor {
    const m = new Monitor(this, ['dpu-agent', this.nextMonitorId++], requests, this.log);
    this.monitors.add(m);
    m.once('closed', () => this.monitors.delete(m));
    const conn = this.conn;
    if (this.connected && conn) {
      m.establish(conn, this.schema).catch((err: unknown) => {
        // A session that ends mid-request re-establishes every monitor on the next connect.
        if (this.stopped || conn.closed) return;
        this.log.warn({ err }, 'monitor request failed; reconnecting');
        conn.close();
      });
    }
    return m;
  }

  /** Low-level request on the current connection. */
  async request(method: string, params: unknown, timeoutMs?: number): Promise<unknown> {
    const c = this.conn;
    if (!c || c.closed) throw new ConnectionClosedError(`${this.database}: not connected`);
    return c.request(method, params, { timeoutMs: timeoutMs ?? this.opts.requestTimeoutMs ?? 10_000 });
  }

  // ---- connection loop ----------------------------------------------------

  private async run(): Promise<void> {
    const min = this.opts.backoff?.minMs ?? 1000;
    const max = this.opts.backoff?.maxMs ?? 8000;
    let backoff = 0;
    // As lib/jsonrpc.c: one backoff-free try per remote before backing off.
    let freeTries = this.remotes.length;
    while (!this.stopped) {
      const remote = this.remotes[this.nextRemote % this.remotes.length] as Remote;
      this.nextRemote = (this.nextRemote + 1) % this.remotes.length;
      const name = formatRemote(remote);
      const startedAt = Date.now();
      let session: { ended: Promise<void> } | undefined;
      try {
        session = await this.session(remote);
      } catch (err) {
        this.log.warn({ err, remote: name }, 'ovsdb connect failed');
      }
      if (session) {
        await session.ended;
        this.reconnects++;
        // A connection that stayed up longer than the backoff resets it (lib/reconnect.c).
        if (Date.now() - startedAt >= Math.max(backoff, min)) {
          backoff = 0;
          freeTries = this.remotes.length;
        }
      }
      if (this.stopped) break;
      if (freeTries > 0) {
        freeTries--;
        continue;
      }
      backoff = backoff === 0 ? min : Math.min(max, backoff * 2);
      // Full jitter on half the interval so a fleet of agents does not reconnect in lockstep.
      const rnd = (this.opts.random ?? Math.random)();
      await this.pause(backoff / 2 + rnd * (backoff / 2));
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }

  /** Connect and handshake; `ended` settles when the session is over (a bare promise would be flattened by await). */
  private async session(remote: Remote): Promise<{ ended: Promise<void> }> {
    const name = formatRemote(remote);
    const conn = await JsonRpcConnection.connect(remote, {
      name,
      ...(this.opts.tls ? { tls: this.opts.tls } : {}),
      connectTimeoutMs: this.opts.connectTimeoutMs ?? 5000,
      requestTimeoutMs: this.opts.requestTimeoutMs ?? 10_000,
      ...(this.opts.probeIntervalMs !== undefined ? { probeIntervalMs: this.opts.probeIntervalMs } : {}),
      ...(this.opts.maxMessageBytes !== undefined ? { maxMessageBytes: this.opts.maxMessageBytes } : {}),
      logger: this.log,
    });
    const ended = new Promise<void>((resolve) => conn.once('close', () => resolve()));
    conn.on('notification', (method: string, params: unknown) => this.onNotification(conn, method, params));
    try {
      if (this.stopped) throw new ConnectionClosedError('stopped');
      this.handshakeDone = false;
      this.conn = conn;
      await this.serverCheck.check(conn, name);
      const schema = parseSchema(await conn.request('get_schema', [this.database]));
      // Without this the server drops us whenever a database is added or converted (ovsdb-server(7) §4.1.18).
      await conn.request('set_db_change_aware', [true]).catch(() => undefined);
      this._schema = schema;
      this.emit('schema', schema);
      await Promise.all([...this.monitors].map((m) => m.establish(conn, schema)));
      if (conn.closed) throw new ConnectionClosedError('closed during handshake');
    } catch (err) {
      conn.close();
      if (this.conn === conn) this.conn = undefined;
      throw err;
    }
    this.handshakeDone = true;
    this.log.info({ remote: name }, 'ovsdb connected');
    this.emit('connected', name);
    const waiters = this.connectedWaiters;
    this.connectedWaiters = [];
    for (const w of waiters) w();
    return {
      ended: ended.then((): void => {
        if (this.conn === conn) {
          this.conn = undefined;
          this.handshakeDone = false;
        }
        for (const m of this.monitors) m.connectionLost();
        if (!this.stopped) this.log.warn({ remote: name }, 'ovsdb disconnected');
        this.emit('disconnected', undefined);
      }),
    };
  }

  private onNotification(conn: JsonRpcConnection, method: string, params: unknown): void {
    if (!Array.isArray(params)) return;
    if (this.serverCheck.isServerUpdate(method, params)) {
      const problem = this.serverCheck.problemIn(params[1]);
      if (problem) {
        this.log.warn({ remote: conn.name, reason: problem }, 'cluster member no longer usable; moving on');
        conn.close();
      }
      return;
    }
    const id = JSON.stringify(params[0]);
    if (method === 'monitor_canceled') {
      // The db was removed or converted: start over (ovsdb-cs.c does the same).
      this.log.warn({ id }, 'monitor canceled by server; reconnecting');
      conn.close();
      return;
    }
    for (const m of this.monitors) {
      if (m.idKey === id) {
        m.onNotification(method, params);
        return;
      }
    }
  }
}

function decodeResult(j: unknown, o: Operation | undefined, schema: DatabaseSchema): OpResult {
  if (j === null || typeof j !== 'object') return {};
  const r = j as { uuid?: unknown; count?: unknown; rows?: unknown };
  const out: { uuid?: string; count?: number; rows?: Row[] } = {};
  if (r.uuid !== undefined) out.uuid = String(decodeValue(r.uuid));
  if (typeof r.count === 'number') out.count = r.count;
  if (Array.isArray(r.rows)) {
    const cols = o && 'table' in o ? tableSchema(schema, o.table).columns : undefined;
    out.rows = r.rows.map((row) => Object.freeze(decodeRow(row, cols)));
  }
  return out;
}
