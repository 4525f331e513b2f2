import { NotLeaderError, RpcError } from '../errors.ts';
import type { JsonRpcConnection } from '../jsonrpc/connection.ts';
import { decodeRow } from './atoms.ts';

// Whether a server may serve our database, from its _Server.Database row
// (ovsdb-server(7) §"_Server database"), as lib/ovsdb-cs.c ovsdb_cs_check_server_db__:
// a clustered member must be connected to the cluster, the Raft leader when asked,
// and not behind the highest Raft index already seen (stale data after a failover).
// The row stays monitored for the session, so a leadership change moves us on.

export interface ServerDbInfo {
  readonly model: string;
  readonly connected: boolean;
  readonly leader: boolean;
  readonly index: number | undefined;
  readonly sid: string | undefined;
}

const SERVER_MONITOR_ID = ['dpu-agent', '_Server'];
const SERVER_MONITOR_KEY = JSON.stringify(SERVER_MONITOR_ID);

/** One per client: remembers the highest Raft index across sessions. */
export class ServerDbCheck {
  /** Highest Raft index seen; a member behind it has stale data (ovsdb-cs.c min_index). */
  private minIndex = 0;

  constructor(
    private readonly database: string,
    /** Only the Raft leader will do (C/Python IDL default). */
    private readonly leaderOnly: boolean,
  ) {}

  /**
   * Monitor our row in _Server.Database on a fresh connection and refuse a member
   * that cannot serve us (NotLeaderError). Servers before 2.9 have no _Server: nothing to check.
   */
  async check(conn: JsonRpcConnection, name: string): Promise<void> {
    let reply: unknown;
    try {
      reply = await conn.request('monitor_cond', [
        '_Server',
        SERVER_MONITOR_ID,
        { Database: [{ columns: ['name', 'model', 'connected', 'leader', 'index', 'sid', 'schema'], where: [['name', '==', this.database]] }] },
      ]);
    } catch (err) {
      if (err instanceof RpcError) return;
      throw err;
    }
    const rows = Object.values(((reply as Record<string, Record<string, unknown>>)['Database'] ?? {}) as Record<string, unknown>);
    const row = rows[0] as { initial?: unknown } | undefined;
    if (!row || !row.initial) throw new NotLeaderError(name, `database ${this.database} not served here`);
    const verdict = this.judge(decodeServerRow(row.initial));
    if (verdict) throw new NotLeaderError(name, verdict);
  }

  /** Whether a notification belongs to the _Server monitor (then give it to `problemIn`). */
  isServerUpdate(method: string, params: readonly unknown[]): boolean {
    return method === 'update2' && JSON.stringify(params[0]) === SERVER_MONITOR_KEY;
  }

  /** Why the member can no longer serve us after this _Server update, if it cannot. */
  problemIn(updates: unknown): string | undefined {
    const rows = (updates as Record<string, Record<string, Record<string, unknown>>>)['Database'] ?? {};
    for (const u of Object.values(rows)) {
      if (u['delete'] !== undefined) return 'database removed';
      const body = u['modify'] ?? u['initial'] ?? u['insert'];
      if (!body) continue;
      // modify carries only changed columns; leader/connected are scalars so the diff is the new value.
      const problem = this.judgePartial(decodeServerRow(body, true));
      if (problem) return problem;
    }
    return undefined;
  }

  private judge(info: ServerDbInfo): string | undefined {
    if (info.model !== 'clustered') return undefined;
    if (!info.connected) return 'member not connected to the cluster';
    if (this.leaderOnly && !info.leader) return 'not the leader';
    if (info.index !== undefined) {
      if (info.index < this.minIndex) return `stale data (index ${info.index} < ${this.minIndex})`;
      this.minIndex = info.index;
    }
    return undefined;
  }

  private judgePartial(info: Partial<ServerDbInfo>): string | undefined {
    if (info.connected === false) return 'member lost cluster connection';
    if (this.leaderOnly && info.leader === false) return 'leadership moved';
    if (info.index !== undefined && info.index > this.minIndex) this.minIndex = info.index;
    return undefined;
  }
}

function decodeServerRow(j: unknown, partial?: false): ServerDbInfo;
function decodeServerRow(j: unknown, partial: true): Partial<ServerDbInfo>;
function decodeServerRow(j: unknown, partial = false): Partial<ServerDbInfo> {
  const r = decodeRow(j);
  const opt = (v: unknown): unknown => (Array.isArray(v) ? v[0] : v);
  const out: { -readonly [K in keyof ServerDbInfo]?: ServerDbInfo[K] } = {};
  if ('model' in r || !partial) out.model = String(r['model'] ?? 'standalone');
  if ('connected' in r || !partial) out.connected = r['connected'] === true;
  if ('leader' in r || !partial) out.leader = r['leader'] === true;
  const index = opt(r['index']);
  if (typeof index === 'number') out.index = index;
  const sid = opt(r['sid']);
  if (sid !== undefined) out.sid = String(sid);
  return out;
}
