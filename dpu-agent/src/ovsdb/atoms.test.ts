import t from 'tap';
import fc from 'fast-check';
import { type Atom, NamedUuid, Uuid, decodeValue, encodeValue, valuesEqual } from './atoms.ts';
import type { ColumnType } from './schema.ts';

const uuidArb = fc.uuid().map((u) => new Uuid(u));
const atomArb: fc.Arbitrary<Atom> = fc.oneof(
  fc.string(),
  fc.integer(),
  fc.boolean(),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0)),
  uuidArb,
);

t.test('atoms, sets and maps survive encode → JSON → decode', async (t) => {
  fc.assert(
    fc.property(atomArb, (a) => valuesEqual(decodeValue(JSON.parse(JSON.stringify(encodeValue(a)))), a)),
  );
  fc.assert(
    fc.property(fc.uniqueArray(fc.string()), (s) => valuesEqual(decodeValue(JSON.parse(JSON.stringify(encodeValue(s)))), s)),
  );
  fc.assert(
    fc.property(fc.dictionary(fc.string(), fc.string()), (d) => {
      const m = new Map<Atom, Atom>(Object.entries(d));
      return valuesEqual(decodeValue(JSON.parse(JSON.stringify(encodeValue(m)))), m);
    }),
  );
  t.pass('properties held');
});

t.test('wire forms', async (t) => {
  t.same(encodeValue(new Uuid('9b6a1a5e-8b1f-4c47-9a0b-0e2b39f3f0d1')), ['uuid', '9b6a1a5e-8b1f-4c47-9a0b-0e2b39f3f0d1']);
  t.same(encodeValue(new NamedUuid('port0')), ['named-uuid', 'port0']);
  t.same(encodeValue([]), ['set', []]);
  t.same(encodeValue(new Map([['iface-id', 'ns_pod']])), ['map', [['iface-id', 'ns_pod']]]);
  t.throws(() => new NamedUuid('0bad'), { code: 'DPU_ERR_PROTOCOL' });
  t.throws(() => new Uuid('nope'), { code: 'DPU_ERR_PROTOCOL' });
  t.throws(() => decodeValue({ not: 'an atom' }), { code: 'DPU_ERR_PROTOCOL' });
});

t.test('a 1-element set may arrive as a bare atom; the column type normalises it', async (t) => {
  const setOfInts: ColumnType = { key: { type: 'integer' }, min: 0, max: 1 };
  const scalar: ColumnType = { key: { type: 'string' }, min: 1, max: 1 };
  t.same(decodeValue(5, setOfInts), [5]);
  t.same(decodeValue(['set', [5]], setOfInts), [5]);
  t.same(decodeValue(['set', []], setOfInts), []);
  t.equal(decodeValue('x', scalar), 'x');
  t.equal(decodeValue(['set', ['x']], scalar), 'x');
  t.throws(() => decodeValue(['set', ['x', 'y']], scalar), { code: 'DPU_ERR_PROTOCOL' });
});

t.test('valuesEqual treats sets as unordered and maps by content', async (t) => {
  t.ok(valuesEqual([1, 2, 3], [3, 1, 2]));
  t.notOk(valuesEqual([1, 2], [1, 2, 3]));
  t.ok(valuesEqual(new Map([['a', '1'], ['b', '2']]), new Map([['b', '2'], ['a', '1']])));
  t.notOk(valuesEqual(new Map([['a', '1']]), new Map([['a', '2']])));
  const u = '9b6a1a5e-8b1f-4c47-9a0b-0e2b39f3f0d1';
  t.ok(valuesEqual(new Uuid(u), new Uuid(u)));
  t.notOk(valuesEqual('x', ['x']));
});
