import { ProtocolError } from '../errors.ts';
import { type ColumnType, isMapColumn, isSetColumn } from './schema.ts';

// OVSDB values as JS values (RFC 7047 §5.1):
//   atom  → string | number | boolean | Uuid | NamedUuid
//   set   → Atom[]            (wire: ["set", [...]], or a bare atom for a 1-element set)
//   map   → Map<Atom, Atom>   (wire: ["map", [[k, v], ...]])
// Integers are JS numbers: exact up to 2^53, which covers every column the
// agent touches (ofport, next_cfg, tunnel keys, VLAN ids).

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NAMED_RE = /^[_a-zA-Z][_a-zA-Z0-9]*$/;

export class Uuid {
  constructor(readonly value: string) {
    if (!UUID_RE.test(value)) throw new ProtocolError(`invalid uuid ${JSON.stringify(value)}`);
  }
  toJSON(): unknown {
    return ['uuid', this.value];
  }
  toString(): string {
    return this.value;
  }
}

/** A reference to a row inserted earlier in the same transaction (`uuid-name`). */
export class NamedUuid {
  constructor(readonly name: string) {
    if (!NAMED_RE.test(name)) throw new ProtocolError(`invalid named-uuid ${JSON.stringify(name)}`);
  }
  toJSON(): unknown {
    return ['named-uuid', this.name];
  }
  toString(): string {
    return this.name;
  }
}

export type Atom = string | number | boolean | Uuid | NamedUuid;
export type OvsMap = Map<Atom, Atom>;
export type Value = Atom | Atom[] | OvsMap;
export type Row = Readonly<Record<string, Value>>;

export function encodeAtom(a: Atom): unknown {
  if (a instanceof Uuid) return ['uuid', a.value];
  if (a instanceof NamedUuid) return ['named-uuid', a.name];
  return a;
}

export function encodeValue(v: Value): unknown {
  if (Array.isArray(v)) return ['set', v.map(encodeAtom)];
  if (v instanceof Map) return ['map', [...v].map(([k, val]) => [encodeAtom(k), encodeAtom(val)])];
  return encodeAtom(v);
}

export function encodeRow(row: Readonly<Record<string, Value>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) out[k] = encodeValue(v);
  return out;
}

export function decodeAtom(j: unknown): Atom {
  switch (typeof j) {
    case 'string':
    case 'number':
    case 'boolean':
      return j;
  }
  if (Array.isArray(j) && j.length === 2 && typeof j[1] === 'string') {
    if (j[0] === 'uuid') return new Uuid(j[1]);
    if (j[0] === 'named-uuid') return new NamedUuid(j[1]);
  }
  throw new ProtocolError(`not an OVSDB atom: ${JSON.stringify(j)}`);
}

/**
 * Decode a wire value. With a column type, sets and maps are normalised (a bare
 * atom in a set column becomes a 1-element array — both forms are legal on the
 * wire, RFC 7047 §5.1); without one the wire tags decide.
 */
export function decodeValue(j: unknown, type?: ColumnType): Value {
  if (Array.isArray(j) && j[0] === 'set') {
    const items = j[1];
    if (!Array.isArray(items)) throw new ProtocolError(`bad set: ${JSON.stringify(j)}`);
    const set = items.map(decodeAtom);
    // A 0..1 or 1..1 column delivered as a set: keep it a set only if the column is one.
    if (type && !isSetColumn(type) && !isMapColumn(type)) {
      if (set.length === 1) return set[0] as Atom;
      throw new ProtocolError(`set given for scalar column: ${JSON.stringify(j)}`);
    }
    return set;
  }
  if (Array.isArray(j) && j[0] === 'map') {
    const pairs = j[1];
    if (!Array.isArray(pairs)) throw new ProtocolError(`bad map: ${JSON.stringify(j)}`);
    const m: OvsMap = new Map();
    for (const p of pairs) {
      if (!Array.isArray(p) || p.length !== 2) throw new ProtocolError(`bad map pair: ${JSON.stringify(p)}`);
      m.set(mapKey(m, decodeAtom(p[0])), decodeAtom(p[1]));
    }
    return m;
  }
  const atom = decodeAtom(j);
  if (type && isSetColumn(type)) return [atom];
  return atom;
}

export function decodeRow(j: unknown, columns?: Readonly<Record<string, { type: ColumnType }>>): Record<string, Value> {
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new ProtocolError(`not a row: ${JSON.stringify(j)}`);
  const out: Record<string, Value> = {};
  for (const [k, v] of Object.entries(j)) out[k] = decodeValue(v, columns?.[k]?.type);
  return out;
}

export function atomsEqual(a: Atom, b: Atom): boolean {
  if (a instanceof Uuid) return b instanceof Uuid && a.value === b.value;
  if (a instanceof NamedUuid) return b instanceof NamedUuid && a.name === b.name;
  return a === b;
}

export function valuesEqual(a: Value | undefined, b: Value | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    // Sets are unordered.
    return a.every((x) => b.some((y) => atomsEqual(x, y)));
  }
  if (a instanceof Map) {
    if (!(b instanceof Map) || a.size !== b.size) return false;
    for (const [k, v] of a) {
      const bk = mapKey(b, k);
      if (!b.has(bk) || !atomsEqual(v, b.get(bk) as Atom)) return false;
    }
    return true;
  }
  if (Array.isArray(b) || b instanceof Map) return false;
  return atomsEqual(a, b);
}

/** Map keys compare by identity in JS; find the stored key equal to `k` so uuid keys work. */
export function mapKey(m: OvsMap, k: Atom): Atom {
  if (typeof k !== 'object') return k;
  for (const existing of m.keys()) if (atomsEqual(existing, k)) return existing;
  return k;
}

/** Convenience for string→string maps such as external_ids / other_config. */
export function strMap(v: Value | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (v instanceof Map) for (const [k, val] of v) out.set(String(k), String(val));
  return out;
}
