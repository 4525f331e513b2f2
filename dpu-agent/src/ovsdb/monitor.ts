import { EventEmitter } from 'node:events';
import { ConnectionClosedError, ProtocolError, RpcError } from '../errors.ts';
import type { JsonRpcConnection } from '../jsonrpc/connection.ts';
import type { Logger } from '../log.ts';
import type { Row } from './atoms.ts';
import { type Condition, encodeCondition } from './ops.ts';
import { Replica, type RowChange } from './replica.ts';
import { type DatabaseSchema, checkColumns } from './schema.ts';

// One monitor = one replica of chosen tables/columns that survives reconnects.
// It prefers monitor_cond_since (OVS 2.12+) so a reconnect to a clustered DB
// only receives what it missed; it falls back to monitor_cond, then monitor, on
// "unknown method" (as lib/ovsdb-cs.c). Standalone DBs keep no history and
// always answer found=false: then the fresh snapshot is diffed against the
// replica so listeners see exactly the real changes, none twice, none lost.

export interface MonitorTableRequest {
  readonly columns?: readonly string[];
  readonly where?: readonly Condition[];
}
export type MonitorRequests = Readonly<Record<string, MonitorTableRequest>>;

/**
 * One request covering all of `reqs` (column union per table), so components that
 * watch the same tables share one replica instead of each holding a copy. Only for
 * unconditional requests: a `where` cannot be merged and is refused.
 */
export function mergeMonitorRequests(...reqs: readonly MonitorRequests[]): MonitorRequests {
  const out: Record<string, { columns?: string[] }> = {};
  for (const r of reqs) {
    for (const [table, t] of Object.entries(r)) {
      if (t.where) throw new ProtocolError(`cannot merge a conditional monitor request (${table})`);
      const prev = out[table];
      // No column list means all columns, which absorbs any list.
      if (prev && prev.columns === undefined) continue;
      if (t.columns === undefined) out[table] = {};
      else out[table] = { columns: [...new Set([...(prev?.columns ?? []), ...t.columns])] };
    }
  }
  return out;
}

/** Whether `m` (a request) covers every table and column of `need`. */
export function coversRequests(m: MonitorRequests, need: MonitorRequests): boolean {
  return Object.entries(need).every(([table, t]) => {
    const have = m[table];
    if (!have) return false;
    if (have.columns === undefined) return true;
    return t.columns !== undefined && t.columns.every((c) => have.columns?.includes(c));
  });
}

type Method = 'monitor_cond_since' | 'monitor_cond' | 'monitor';
const ZERO_TXN = '00000000-0000-0000-0000-000000000000';

interface Owner {
  readonly database: string;
  reconnect(): void;
}

export declare interface Monitor {
  on(event: 'change', l: (c: RowChange) => void): this;
  on(event: 'synced', l: (changes: readonly RowChange[]) => void): this;
  on(event: 'closed', l: () => void): this;
}

export class Monitor extends EventEmitter {
  /** Resolves after the first snapshot has been applied. */
  readonly ready: Promise<void>;
  readonly idKey: string;
  private replica: Replica | undefined;
  private method: Method = 'monitor_cond_since';
  private lastTxnId = ZERO_TXN;
  /** Notifications that raced the monitor reply on the wire; applied right after it. */
  private buffered: Array<[string, unknown[]]> | undefined;
  private closed = false;
  private conn: JsonRpcConnection | undefined;
  private resolveReady!: () => void;
  private rejectReady!: (e: Error) => void;
  /** Times the monitor was (re)established, and how (for metrics and tests). */
  readonly stats = { established: 0, resumed: 0, snapshots: 0 };

  constructor(
    private readonly owner: Owner,
    private readonly id: unknown,
    readonly requests: MonitorRequests,
    private readonly log: Logger,
  ) {
    super();
    this.idKey = JSON.stringify(id);
    this.ready = new Promise<void>((res, rej) => {
      this.resolveReady = res;
      this.rejectReady = rej;
    });
    this.ready.catch(() => undefined);
  }

  table(name: string): ReadonlyMap<string, Row> {
    if (!this.replica) return new Map();
    return this.replica.table(name);
  }

  /** The replica's generation (Replica.generation); 0 before the first snapshot. */
  get generation(): number {
    return this.replica?.generation ?? 0;
  }

  get txnId(): string {
    return this.lastTxnId;
  }

  /** Send the monitor request on a fresh connection and apply its reply. */
  async establish(conn: JsonRpcConnection, schema: DatabaseSchema): Promise<void> {
    if (this.closed) return;
    for (const [t, r] of Object.entries(this.requests)) {
      checkColumns(schema, t, [...(r.columns ?? []), ...(r.where ?? []).flatMap((c) => (typeof c === 'boolean' ? [] : [c[0]]))]);
    }
    if (!this.replica) this.replica = new Replica(schema, Object.keys(this.requests), new Map(Object.entries(this.requests).map(([t, r]) => [t, r.columns])));
    else this.replica.setSchema(schema);
    this.conn = conn;
    this.buffered = [];
    for (;;) {
      try {
        const reply = await conn.request(this.method, this.params(), {});
        this.applyReply(reply);
        break;
      } catch (err) {
        if (err instanceof RpcError && isUnknownMethod(err) && this.method !== 'monitor') {
          this.method = this.method === 'monitor_cond_since' ? 'monitor_cond' : 'monitor';
          this.log.info({ method: this.method }, 'server lacks newer monitor method; falling back');
          continue;
        }
        this.buffered = undefined;
        if (err instanceof ProtocolError) this.resync(err);
        throw err;
      }
    }
    const pending = this.buffered ?? [];
    this.buffered = undefined;
    for (const [m, p] of pending) this.onNotification(m, p);
    this.stats.established++;
    this.resolveReady();
  }

  onNotification(method: string, params: unknown[]): void {
    if (this.closed || !this.replica) return;
    if (this.buffered) {
      this.buffered.push([method, params]);
      return;
    }
    try {
      let changes: RowChange[];
      if (method === 'update3') {
        changes = this.replica.applyUpdates2(params[2]);
        if (typeof params[1] === 'string') this.lastTxnId = params[1];
      } else if (method === 'update2') {
        changes = this.replica.applyUpdates2(params[1]);
      } else if (method === 'update') {
        changes = this.replica.applyUpdates(params[1]);
      } else {
        return;
      }
      for (const c of changes) this.emit('change', c);
    } catch (err) {
      this.resync(err as Error);
    }
  }

  /** The connection dropped; keep the replica and the last txn id for the resume. */
  connectionLost(): void {
    this.conn = undefined;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.conn && !this.conn.closed) {
      this.conn.request('monitor_cancel', [this.id], { timeoutMs: 2000 }).catch(() => undefined);
    }
    this.rejectReady(new ConnectionClosedError('monitor closed'));
    this.emit('closed');
  }

  private params(): unknown[] {
    const reqs: Record<string, unknown> = {};
    for (const [t, r] of Object.entries(this.requests)) {
      const one: Record<string, unknown> = {};
      if (r.columns) one['columns'] = r.columns;
      if (r.where && this.method !== 'monitor') one['where'] = r.where.map(encodeCondition);
      // monitor (v1) takes one request object per table; the _cond variants take an array.
      reqs[t] = this.method === 'monitor' ? one : [one];
    }
    const p: unknown[] = [this.owner.database, this.id, reqs];
    if (this.method === 'monitor_cond_since') p.push(this.lastTxnId);
    return p;
  }

  private applyReply(reply: unknown): void {
    const replica = this.replica as Replica;
    let changes: RowChange[];
    if (this.method === 'monitor_cond_since') {
      if (!Array.isArray(reply) || reply.length !== 3) throw new ProtocolError('monitor_cond_since: bad reply');
      const [found, last, updates] = reply as [unknown, unknown, unknown];
      if (found === true) {
        changes = replica.applyUpdates2(updates);
        this.stats.resumed++;
      } else {
        changes = replica.replaceWithSnapshot(updates, 2);
        this.stats.snapshots++;
      }
      if (typeof last === 'string') this.lastTxnId = last;
    } else {
      changes = replica.replaceWithSnapshot(reply, this.method === 'monitor' ? 1 : 2);
      this.stats.snapshots++;
    }
    for (const c of changes) this.emit('change', c);
    this.emit('synced', changes);
  }

  /** The replica disagrees with what the server says: forget the txn id and reconnect (full snapshot). */
  private resync(err: Error): void {
    this.log.error({ err }, 'monitor replica inconsistent; resyncing');
    this.lastTxnId = ZERO_TXN;
    this.owner.reconnect();
  }
}

function isUnknownMethod(err: RpcError): boolean {
  const e = err.error;
  return e === 'unknown method' || (typeof e === 'object' && e !== null && JSON.stringify(e).includes('unknown method'));
}
