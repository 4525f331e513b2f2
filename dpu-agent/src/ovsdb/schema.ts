import { OvsdbSchemaError } from '../errors.ts';

// The parts of an OVSDB schema (RFC 7047 §3.2) the client needs: column types,
// to normalise values on decode and to reject unknown tables/columns before a
// request reaches the server.

export type AtomicType = 'integer' | 'real' | 'boolean' | 'string' | 'uuid';

export interface BaseType {
  readonly type: AtomicType;
  readonly refTable?: string;
  readonly refType?: 'strong' | 'weak';
  /** The only values the atom may take (RFC 7047 §3.2 <base-type> "enum"), if restricted. */
  readonly enum?: readonly (string | number | boolean)[];
}

export interface ColumnType {
  readonly key: BaseType;
  readonly value?: BaseType;
  readonly min: number;
  /** Infinity for "unlimited". */
  readonly max: number;
}

export interface ColumnSchema {
  readonly type: ColumnType;
  readonly mutable: boolean;
  readonly ephemeral: boolean;
}

export interface TableSchema {
  readonly name: string;
  readonly columns: Readonly<Record<string, ColumnSchema>>;
  readonly isRoot: boolean;
  readonly indexes: readonly (readonly string[])[];
}

export interface DatabaseSchema {
  readonly name: string;
  readonly version: string;
  readonly cksum?: string;
  readonly tables: Readonly<Record<string, TableSchema>>;
}

/** Columns every table has (RFC 7047 §3.2). */
const UUID_TYPE: ColumnType = { key: { type: 'uuid' }, min: 1, max: 1 };
const IMPLICIT: Record<string, ColumnSchema> = {
  _uuid: { type: UUID_TYPE, mutable: false, ephemeral: false },
  _version: { type: UUID_TYPE, mutable: false, ephemeral: false },
};

export function isMapColumn(t: ColumnType): boolean {
  return t.value !== undefined;
}

/** A set column: anything but exactly-one, without a value type. 0..1 counts as a set (optional). */
export function isSetColumn(t: ColumnType): boolean {
  return t.value === undefined && !(t.min === 1 && t.max === 1);
}

export function parseSchema(j: unknown): DatabaseSchema {
  const o = obj(j, 'schema');
  const name = str(o['name'], 'schema.name');
  const tablesJ = obj(o['tables'], `${name}.tables`);
  const tables: Record<string, TableSchema> = {};
  for (const [tname, tj] of Object.entries(tablesJ)) {
    const to = obj(tj, `${name}.${tname}`);
    const columns: Record<string, ColumnSchema> = { ...IMPLICIT };
    for (const [cname, cj] of Object.entries(obj(to['columns'], `${tname}.columns`))) {
      const co = obj(cj, `${tname}.${cname}`);
      columns[cname] = {
        type: parseColumnType(co['type'], `${tname}.${cname}`),
        mutable: co['mutable'] !== false,
        ephemeral: co['ephemeral'] === true,
      };
    }
    tables[tname] = {
      name: tname,
      columns,
      isRoot: to['isRoot'] === true,
      indexes: Array.isArray(to['indexes']) ? (to['indexes'] as string[][]) : [],
    };
  }
  return {
    name,
    version: typeof o['version'] === 'string' ? o['version'] : '',
    ...(typeof o['cksum'] === 'string' ? { cksum: o['cksum'] } : {}),
    tables,
  };
}

function parseColumnType(j: unknown, where: string): ColumnType {
  if (typeof j === 'string') return { key: { type: atomic(j, where) }, min: 1, max: 1 };
  const o = obj(j, where);
  const max = o['max'] === undefined ? 1 : o['max'] === 'unlimited' ? Infinity : Number(o['max']);
  const min = o['min'] === undefined ? 1 : Number(o['min']);
  return {
    key: parseBase(o['key'], where),
    ...(o['value'] !== undefined ? { value: parseBase(o['value'], where) } : {}),
    min,
    max,
  };
}

function parseBase(j: unknown, where: string): BaseType {
  if (typeof j === 'string') return { type: atomic(j, where) };
  const o = obj(j, where);
  return {
    type: atomic(o['type'], where),
    ...(typeof o['refTable'] === 'string' ? { refTable: o['refTable'] } : {}),
    ...(o['refType'] === 'weak' || o['refType'] === 'strong' ? { refType: o['refType'] } : {}),
    ...(o['enum'] !== undefined ? { enum: parseEnum(o['enum'], where) } : {}),
  };
}

/** An enum is a set of atoms: `["set", [...]]`, or one bare atom. */
function parseEnum(j: unknown, where: string): (string | number | boolean)[] {
  const items = Array.isArray(j) && j[0] === 'set' && Array.isArray(j[1]) ? (j[1] as unknown[]) : [j];
  return items.map((a) => {
    if (typeof a === 'string' || typeof a === 'number' || typeof a === 'boolean') return a;
    throw new OvsdbSchemaError(`${where}: bad enum value ${JSON.stringify(a)}`);
  });
}

function atomic(j: unknown, where: string): AtomicType {
  if (j === 'integer' || j === 'real' || j === 'boolean' || j === 'string' || j === 'uuid') return j;
  throw new OvsdbSchemaError(`${where}: unknown atomic type ${JSON.stringify(j)}`);
}

function obj(j: unknown, where: string): Record<string, unknown> {
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new OvsdbSchemaError(`${where}: expected an object`);
  return j as Record<string, unknown>;
}

function str(j: unknown, where: string): string {
  if (typeof j !== 'string') throw new OvsdbSchemaError(`${where}: expected a string`);
  return j;
}

export function tableSchema(db: DatabaseSchema, table: string): TableSchema {
  const t = db.tables[table];
  if (!t) throw new OvsdbSchemaError(`${db.name}: no table ${table}`);
  return t;
}

export function checkColumns(db: DatabaseSchema, table: string, columns: Iterable<string>): void {
  const t = tableSchema(db, table);
  for (const c of columns) {
    if (!t.columns[c]) throw new OvsdbSchemaError(`${db.name}.${table}: no column ${c}`);
  }
}
