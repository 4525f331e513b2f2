import { type Atom, type Value, encodeRow, encodeValue } from './atoms.ts';

// Transaction operations as plain values (RFC 7047 §5.2). Reconcilers return
// arrays of these; only OvsdbClient.transact puts them on the wire, so unit
// tests can assert on exactly what would be written.

export type ConditionFn = '==' | '!=' | '<' | '<=' | '>' | '>=' | 'includes' | 'excludes';
export type Condition = readonly [column: string, fn: ConditionFn, value: Value] | boolean;
export type Mutator = '+=' | '-=' | '*=' | '/=' | '%=' | 'insert' | 'delete';
export type Mutation = readonly [column: string, mutator: Mutator, value: Value];
export type RowData = Readonly<Record<string, Value>>;

export type Operation =
  | { readonly op: 'insert'; readonly table: string; readonly row: RowData; readonly uuidName?: string }
  | { readonly op: 'select'; readonly table: string; readonly where: readonly Condition[]; readonly columns?: readonly string[] }
  | { readonly op: 'update'; readonly table: string; readonly where: readonly Condition[]; readonly row: RowData }
  | { readonly op: 'mutate'; readonly table: string; readonly where: readonly Condition[]; readonly mutations: readonly Mutation[] }
  | { readonly op: 'delete'; readonly table: string; readonly where: readonly Condition[] }
  | {
      readonly op: 'wait';
      readonly table: string;
      readonly where: readonly Condition[];
      readonly columns: readonly string[];
      readonly until: '==' | '!=';
      readonly rows: readonly RowData[];
      readonly timeoutMs?: number;
    }
  | { readonly op: 'commit'; readonly durable: boolean }
  | { readonly op: 'abort' }
  | { readonly op: 'comment'; readonly comment: string }
  | { readonly op: 'assert'; readonly lock: string };

export const op = {
  insert: (table: string, row: RowData, uuidName?: string): Operation =>
    uuidName === undefined ? { op: 'insert', table, row } : { op: 'insert', table, row, uuidName },
  select: (table: string, where: readonly Condition[], columns?: readonly string[]): Operation =>
    columns === undefined ? { op: 'select', table, where } : { op: 'select', table, where, columns },
  update: (table: string, where: readonly Condition[], row: RowData): Operation => ({ op: 'update', table, where, row }),
  mutate: (table: string, where: readonly Condition[], mutations: readonly Mutation[]): Operation => ({
    op: 'mutate',
    table,
    where,
    mutations,
  }),
  delete: (table: string, where: readonly Condition[]): Operation => ({ op: 'delete', table, where }),
  /** Optimistic-concurrency guard (what the C IDL emits to verify a column): fails with "timed out" when timeoutMs is 0 and the rows differ. */
  wait: (
    table: string,
    where: readonly Condition[],
    columns: readonly string[],
    until: '==' | '!=',
    rows: readonly RowData[],
    timeoutMs?: number,
  ): Operation =>
    timeoutMs === undefined
      ? { op: 'wait', table, where, columns, until, rows }
      : { op: 'wait', table, where, columns, until, rows, timeoutMs },
  commit: (durable: boolean): Operation => ({ op: 'commit', durable }),
  abort: (): Operation => ({ op: 'abort' }),
  comment: (comment: string): Operation => ({ op: 'comment', comment }),
  assert: (lock: string): Operation => ({ op: 'assert', lock }),
};

/** Shorthand for `[column, '==', value]`. */
export function eq(column: string, value: Atom | Value): Condition {
  return [column, '==', value];
}

export function encodeCondition(c: Condition): unknown {
  if (typeof c === 'boolean') return c;
  return [c[0], c[1], encodeValue(c[2])];
}

export function encodeOperation(o: Operation): Record<string, unknown> {
  switch (o.op) {
    case 'insert':
      return { op: 'insert', table: o.table, row: encodeRow(o.row), ...(o.uuidName ? { 'uuid-name': o.uuidName } : {}) };
    case 'select':
      return { op: 'select', table: o.table, where: o.where.map(encodeCondition), ...(o.columns ? { columns: o.columns } : {}) };
    case 'update':
      return { op: 'update', table: o.table, where: o.where.map(encodeCondition), row: encodeRow(o.row) };
    case 'mutate':
      return {
        op: 'mutate',
        table: o.table,
        where: o.where.map(encodeCondition),
        mutations: o.mutations.map(([c, m, v]) => [c, m, encodeValue(v)]),
      };
    case 'delete':
      return { op: 'delete', table: o.table, where: o.where.map(encodeCondition) };
    case 'wait':
      return {
        op: 'wait',
        table: o.table,
        where: o.where.map(encodeCondition),
        columns: o.columns,
        until: o.until,
        rows: o.rows.map(encodeRow),
        ...(o.timeoutMs !== undefined ? { timeout: o.timeoutMs } : {}),
      };
    case 'commit':
      return { op: 'commit', durable: o.durable };
    case 'abort':
      return { op: 'abort' };
    case 'comment':
      return { op: 'comment', comment: o.comment };
    case 'assert':
      return { op: 'assert', lock: o.lock };
  }
}

/** Columns an operation names, for checking against the schema before sending. */
export function operationColumns(o: Operation): string[] {
  const cols = new Set<string>();
  const where = 'where' in o ? o.where : [];
  for (const c of where) if (typeof c !== 'boolean') cols.add(c[0]);
  if ('row' in o) for (const k of Object.keys(o.row)) cols.add(k);
  if (o.op === 'mutate') for (const m of o.mutations) cols.add(m[0]);
  if ((o.op === 'select' && o.columns) || o.op === 'wait') for (const c of o.columns ?? []) cols.add(c);
  if (o.op === 'wait') for (const r of o.rows) for (const k of Object.keys(r)) cols.add(k);
  return [...cols];
}
