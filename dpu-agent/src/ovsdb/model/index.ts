import type { Row } from '../atoms.ts';
import type { MonitorRequests } from '../monitor.ts';
import type { OvnNbTables } from './ovn-nb.ts';
import type { VswitchTables } from './vswitch.ts';

// Typed reads of replica rows. A component declares the columns it reads per table,
// once; that declaration is both its monitor request and the type of the rows it gets:
//
//   const VIEW = vswitchColumns({ Interface: ['name', 'external_ids'], Bridge: ['name', 'ports'] });
//   export const X_MONITOR: MonitorRequests = VIEW.requests;
//   type IfaceRow = RowOf<typeof VIEW, 'Interface'>;        // { _uuid, name, external_ids }
//   for (const i of VIEW.rows(monitor, 'Interface').values()) i.external_ids.get('iface-id');
//   VIEW.row(monitor, 'Interface', uuid)?.name;  VIEW.changed('Interface', change.new)
//
// The rows are the replica's own objects, typed, never copied or converted (the pool reads
// thousands per pass); the types are generated from the schemas (model/vswitch.ts,
// model/ovn-nb.ts). Reading a column the selection lacks is a compile error, because the
// replica holds only monitored columns (plus _uuid). A shared monitor (mergeMonitorRequests)
// holds at least the selected columns, so a selection is valid on it when coversRequests says so.

/** Anything that holds replica tables: Monitor, Replica. */
export interface RowSource {
  table(name: string): ReadonlyMap<string, Row>;
}

/** Per table, the columns read. */
export type ColumnSelection<DB> = { readonly [T in keyof DB]?: readonly (keyof DB[T] & string)[] };

/** One table's row under a selection: the selected columns and _uuid. */
export type SelectedRow<DB, S extends ColumnSelection<DB>, T extends keyof S & keyof DB> = Pick<
  DB[T],
  Extract<(S[T] extends readonly (infer C)[] ? C : never) | '_uuid', keyof DB[T]>
>;

export class TableView<DB, S extends ColumnSelection<DB>> {
  /** The monitor request reading exactly these columns (no `where`). */
  readonly requests: MonitorRequests;

  constructor(readonly selection: S) {
    const reqs: Record<string, { columns: readonly string[] }> = {};
    for (const [table, columns] of Object.entries(selection) as [string, readonly string[] | undefined][]) {
      if (columns) reqs[table] = { columns };
    }
    this.requests = reqs;
  }

  /** The table's rows by uuid: the replica's map itself. */
  rows<T extends keyof S & keyof DB & string>(src: RowSource, table: T): ReadonlyMap<string, SelectedRow<DB, S, T>> {
    return src.table(table) as unknown as ReadonlyMap<string, SelectedRow<DB, S, T>>;
  }

  row<T extends keyof S & keyof DB & string>(src: RowSource, table: T, uuid: string): SelectedRow<DB, S, T> | undefined {
    return this.rows(src, table).get(uuid);
  }

  /** A RowChange's `old`/`new` of `table` (only for a change of that table). */
  changed<T extends keyof S & keyof DB & string>(_table: T, row: Row | undefined): SelectedRow<DB, S, T> | undefined {
    return row as unknown as SelectedRow<DB, S, T> | undefined;
  }
}

/** The row type a view gives for one table. */
export type RowOf<V, T extends string> = V extends TableView<infer DB, infer S> ? (T extends keyof S & keyof DB ? SelectedRow<DB, S, T> : never) : never;

/** A selection over the Open_vSwitch database. */
export function vswitchColumns<const S extends ColumnSelection<VswitchTables>>(selection: S): TableView<VswitchTables, S> {
  return new TableView<VswitchTables, S>(selection);
}

/** A selection over the OVN_Northbound database. */
export function ovnNbColumns<const S extends ColumnSelection<OvnNbTables>>(selection: S): TableView<OvnNbTables, S> {
  return new TableView<OvnNbTables, S>(selection);
}
