import { ProtocolError } from '../errors.ts';
import { type Atom, type OvsMap, type Row, type Value, Uuid, atomsEqual, decodeRow, decodeValue, mapKey, valuesEqual } from './atoms.ts';
import { type ColumnSchema, type DatabaseSchema, isMapColumn, isSetColumn } from './schema.ts';

// In-memory copy of monitored tables. Pure: it only turns <table-updates>
// (monitor, RFC 7047 §4.1.6) and <table-updates2> (monitor_cond / _since,
// ovsdb-server(7) §4.1.14) into row state and change events. The client feeds it.

export type ChangeKind = 'insert' | 'modify' | 'delete';

export interface RowChange {
  readonly table: string;
  readonly uuid: string;
  readonly kind: ChangeKind;
  readonly old?: Row;
  readonly new?: Row;
}

type Columns = Readonly<Record<string, ColumnSchema>>;

export class Replica {
  private readonly tables = new Map<string, Map<string, Row>>();
  private gen = 0;
  /** Per table, the columns a new row gets default values for (cached per schema). */
  private readonly defaultCols = new Map<string, [string, ColumnSchema][]>();

  /**
   * `columns`: the monitored columns per table (absent: all). Rows carry those only:
   * filling every schema column (Interface has ~50, most of them maps) cost a few KiB
   * of heap per row and most of the snapshot's decode time with 1,000 leases.
   */
  constructor(
    private schema: DatabaseSchema,
    tableNames: Iterable<string>,
    private readonly monitored?: ReadonlyMap<string, readonly string[] | undefined>,
  ) {
    for (const t of tableNames) this.tables.set(t, new Map());
  }

  setSchema(schema: DatabaseSchema): void {
    this.schema = schema;
    this.defaultCols.clear();
  }

  table(name: string): ReadonlyMap<string, Row> {
    const t = this.tables.get(name);
    if (!t) throw new ProtocolError(`table ${name} is not monitored`);
    return t;
  }

  /**
   * Bumped by every update applied (and by clear): state derived from the rows is still
   * valid while this is unchanged. Rows are never mutated in place, only replaced.
   */
  get generation(): number {
    return this.gen;
  }

  tableNames(): string[] {
    return [...this.tables.keys()];
  }

  /** monitor (v1) `update` / initial reply. */
  applyUpdates(updates: unknown): RowChange[] {
    this.gen++;
    const changes: RowChange[] = [];
    for (const [table, rows] of this.entries(updates)) {
      const t = this.tables.get(table);
      if (!t) continue;
      const cols = this.columns(table);
      for (const [uuid, ru] of Object.entries(rows)) {
        const u = ru as { old?: unknown; new?: unknown };
        const prev = t.get(uuid);
        if (u.new === undefined || u.new === null) {
          removeRow(t, table, uuid, changes);
          continue;
        }
        const decoded = decodeRow(u.new, cols);
        const next = withUuid({ ...(prev ?? {}), ...decoded }, uuid);
        t.set(uuid, next);
        changes.push(prev ? { table, uuid, kind: 'modify', old: prev, new: next } : { table, uuid, kind: 'insert', new: next });
      }
    }
    return changes;
  }

  /** `update2`/`update3` and monitor_cond(_since) replies with found=true. */
  applyUpdates2(updates: unknown): RowChange[] {
    this.gen++;
    const changes: RowChange[] = [];
    for (const [table, rows] of this.entries(updates)) {
      const t = this.tables.get(table);
      if (!t) continue;
      const cols = this.columns(table);
      for (const [uuid, ru] of Object.entries(rows)) {
        const u = ru as Record<string, unknown>;
        const prev = t.get(uuid);
        if ('delete' in u) {
          removeRow(t, table, uuid, changes);
        } else if ('modify' in u) {
          if (!prev) throw new ProtocolError(`modify for unknown row ${table} ${uuid}`);
          const next: Record<string, Value> = { ...prev };
          const diff = u['modify'];
          if (typeof diff !== 'object' || diff === null) throw new ProtocolError(`bad modify for ${table} ${uuid}`);
          for (const [col, dj] of Object.entries(diff)) {
            const cs = cols[col];
            next[col] = cs ? applyDiff(prev[col], dj, cs) : decodeValue(dj);
          }
          const row = withUuid(next, uuid);
          t.set(uuid, row);
          changes.push({ table, uuid, kind: 'modify', old: prev, new: row });
        } else {
          // initial / insert: full row (default-valued columns omitted, so fill defaults).
          const body = u['initial'] ?? u['insert'];
          const row = withUuid({ ...this.defaults(table), ...decodeRow(body, cols) }, uuid);
          t.set(uuid, row);
          changes.push(prev ? { table, uuid, kind: 'modify', old: prev, new: row } : { table, uuid, kind: 'insert', new: row });
        }
      }
    }
    return changes;
  }

  /**
   * Replace the whole content with a fresh snapshot (reconnect with found=false,
   * or a v1/v2 monitor re-established) and report only what really differs, so a
   * reconnect produces neither duplicate nor missing events.
   */
  replaceWithSnapshot(updates: unknown, version: 1 | 2): RowChange[] {
    this.gen++;
    const fresh = new Replica(this.schema, this.tables.keys(), this.monitored);
    if (version === 1) fresh.applyUpdates(updates);
    else fresh.applyUpdates2(updates);
    const changes: RowChange[] = [];
    for (const [table, oldRows] of this.tables) {
      const newRows = fresh.tables.get(table) as Map<string, Row>;
      for (const [uuid, o] of oldRows) {
        const n = newRows.get(uuid);
        if (!n) changes.push({ table, uuid, kind: 'delete', old: o });
        else if (!rowsEqual(o, n)) changes.push({ table, uuid, kind: 'modify', old: o, new: n });
      }
      for (const [uuid, n] of newRows) if (!oldRows.has(uuid)) changes.push({ table, uuid, kind: 'insert', new: n });
      this.tables.set(table, newRows);
    }
    return changes;
  }

  clear(): void {
    this.gen++;
    for (const t of this.tables.values()) t.clear();
  }

  private entries(updates: unknown): [string, Record<string, unknown>][] {
    if (typeof updates !== 'object' || updates === null || Array.isArray(updates)) {
      throw new ProtocolError(`bad table-updates: ${JSON.stringify(updates)?.slice(0, 200)}`);
    }
    return Object.entries(updates as Record<string, Record<string, unknown>>);
  }

  private columns(table: string): Columns {
    return this.schema.tables[table]?.columns ?? {};
  }

  private defaults(table: string): Record<string, Value> {
    let cols = this.defaultCols.get(table);
    if (!cols) {
      const all = this.columns(table);
      const wanted = this.monitored?.get(table);
      cols = (wanted ? wanted.filter((n) => all[n]).map((n): [string, ColumnSchema] => [n, all[n] as ColumnSchema]) : Object.entries(all)).filter(([n]) => !n.startsWith('_'));
      this.defaultCols.set(table, cols);
    }
    const out: Record<string, Value> = {};
    for (const [name, c] of cols) out[name] = defaultValue(c);
    return out;
  }
}

function removeRow(t: Map<string, Row>, table: string, uuid: string, changes: RowChange[]): void {
  const prev = t.get(uuid);
  if (!prev) return;
  t.delete(uuid);
  changes.push({ table, uuid, kind: 'delete', old: prev });
}

function withUuid(row: Record<string, Value>, uuid: string): Row {
  row['_uuid'] = new Uuid(uuid);
  return Object.freeze(row);
}

export function rowsEqual(a: Row, b: Row): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if (!valuesEqual(a[k], b[k])) return false;
  return true;
}

/** The value a column has when a row omits it (RFC 7047 §5.1 defaults). */
export function defaultValue(c: ColumnSchema): Value {
  const t = c.type;
  if (isMapColumn(t)) return new Map();
  if (isSetColumn(t)) return [];
  switch (t.key.type) {
    case 'integer':
    case 'real':
      return 0;
    case 'boolean':
      return false;
    case 'string':
      return '';
    case 'uuid':
      return new Uuid('00000000-0000-0000-0000-000000000000');
  }
}

/** update2 `modify` semantics (ovsdb-server(7) §4.1.14). */
function applyDiff(prev: Value | undefined, diffJ: unknown, cs: ColumnSchema): Value {
  const t = cs.type;
  if (isMapColumn(t)) {
    const next: OvsMap = new Map(prev instanceof Map ? prev : []);
    const diff = decodeValue(diffJ, t);
    if (!(diff instanceof Map)) throw new ProtocolError('map diff is not a map');
    for (const [k, v] of diff) {
      const key = mapKey(next, k);
      // Same key and value → removed; same key, other value → updated; new key → added.
      if (next.has(key) && atomsEqual(next.get(key) as Atom, v)) next.delete(key);
      else next.set(key, v);
    }
    return next;
  }
  if (isSetColumn(t) && t.max === 1) {
    // Optional scalars (0..1) carry the new value, not a difference: ovsdb-server
    // sends "standalone" for secure→standalone and ["set",[]] when cleared
    // (measured on OVS 3.1; ovsdb/monitor.c diffs only multi-valued columns).
    return decodeValue(diffJ, t);
  }
  if (isSetColumn(t)) {
    const next: Atom[] = Array.isArray(prev) ? [...prev] : [];
    const diff = decodeValue(diffJ, t) as Atom[];
    for (const a of diff) {
      // Symmetric difference: present → remove, absent → add.
      const i = next.findIndex((x) => atomsEqual(x, a));
      if (i >= 0) next.splice(i, 1);
      else next.push(a);
    }
    return next;
  }
  return decodeValue(diffJ, t);
}
