import assert from 'node:assert/strict';
import t from 'tap';
import fc from 'fast-check';
import { MessageTooLargeError, ProtocolError } from '../errors.ts';
import { JsonStreamParser, MAX_NESTING_DEPTH } from './framing.ts';

// Characters that confuse a naive splitter, plus multi-byte UTF-8 (2, 3 and 4 bytes).
const tricky = fc.constantFrom('{', '}', '[', ']', '"', '\\', '\\"', '"}', ' ', '\n', '\t', 'é', '€', '😀', '\u0000', '\u2028');
const unit = fc.oneof(
  { weight: 3, arbitrary: tricky },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
);
const jsonObject = fc.dictionary(
  fc.string({ unit, maxLength: 8 }),
  fc.jsonValue({ stringUnit: unit, maxDepth: 4 }),
  { maxKeys: 6 },
);
const whitespace = fc.string({ unit: fc.constantFrom(' ', '\t', '\r', '\n'), maxLength: 3 });

function split(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => (buf.length === 0 ? 0 : c % (buf.length + 1))))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    chunks.push(buf.subarray(prev, p));
    prev = p;
  }
  chunks.push(buf.subarray(prev));
  return chunks;
}

function feedAll(parser: JsonStreamParser, chunks: Buffer[]): unknown[] {
  const out: unknown[] = [];
  for (const c of chunks) out.push(...parser.push(c));
  return out;
}

t.test('property: concatenated objects split anywhere decode identically, in order', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(jsonObject, whitespace), { minLength: 1, maxLength: 8 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      (values, cuts) => {
        const text = values.map(([v, ws]) => JSON.stringify(v) + ws).join('');
        const expected = values.map(([v]) => JSON.parse(JSON.stringify(v)) as unknown);
        const parser = new JsonStreamParser();
        const got = feedAll(parser, split(Buffer.from(text, 'utf8'), cuts));
        assert.deepEqual(got, expected);
        assert.equal(parser.bufferedBytes, 0);
      },
    ),
    { numRuns: 300 },
  );
  t.pass('300 runs');
  t.end();
});

t.test('property: byte-at-a-time feeding equals one-shot feeding', (t) => {
  fc.assert(
    fc.property(fc.array(jsonObject, { minLength: 1, maxLength: 4 }), (values) => {
      const buf = Buffer.from(values.map((v) => JSON.stringify(v)).join(''), 'utf8');
      const oneShot = new JsonStreamParser().push(buf);
      const bytes: Buffer[] = [];
      for (let i = 0; i < buf.length; i++) bytes.push(buf.subarray(i, i + 1));
      assert.deepEqual(feedAll(new JsonStreamParser(), bytes), oneShot);
      assert.equal(oneShot.length, values.length);
    }),
    { numRuns: 100 },
  );
  t.pass('100 runs');
  t.end();
});

t.test('strings holding braces, brackets, escaped quotes and backslashes', (t) => {
  const v = { a: '}{][', b: 'say \\"hi\\"', c: '\\', d: '\\\\"}', e: ['{', { f: ']' }] };
  const text = JSON.stringify(v);
  t.match(text, /\\\\"/, 'fixture really has an escaped backslash before a quote');
  const parser = new JsonStreamParser();
  t.strictSame(parser.push(Buffer.from(text + text)), [v, v]);
  t.end();
});

t.test('multi-byte UTF-8 split inside a character', (t) => {
  const v = { s: 'é€😀' };
  const buf = Buffer.from(JSON.stringify(v), 'utf8');
  const at = buf.indexOf(0xf0) + 2; // middle of the 4-byte emoji
  const parser = new JsonStreamParser();
  t.strictSame(parser.push(buf.subarray(0, at)), []);
  t.ok(parser.bufferedBytes > 0);
  t.strictSame(parser.push(buf.subarray(at)), [v]);
  t.end();
});

t.test('many values and whitespace in one chunk', (t) => {
  const parser = new JsonStreamParser();
  const text = ' \n{"id":1}\t{"id":2}\r\n  {"id":3}{"id":4}\n';
  t.strictSame(parser.push(Buffer.from(text)), [{ id: 1 }, { id: 2 }, { id: 3 }, { id: 4 }]);
  t.equal(parser.bufferedBytes, 0);
  t.end();
});

t.test('a 20 MB message decodes', (t) => {
  const big = 'x{"}\\'.repeat(4 * 1024 * 1024); // 20 MiB of characters that need care
  const v = { result: [big, { k: 'v' }], id: 7 };
  const buf = Buffer.from(JSON.stringify(v) + '{"id":8}');
  const parser = new JsonStreamParser();
  const out: unknown[] = [];
  for (let i = 0; i < buf.length; i += 65536) out.push(...parser.push(buf.subarray(i, i + 65536)));
  t.equal(out.length, 2);
  const first = out[0] as { result: [string, unknown]; id: number };
  t.equal(first.id, 7);
  t.equal(first.result[0].length, big.length);
  t.ok(first.result[0] === big, 'content intact');
  t.strictSame(out[1], { id: 8 });
  t.end();
});

t.test('oversize message throws before it is all buffered', (t) => {
  const limit = 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 'a');
  const parser = new JsonStreamParser({ maxMessageBytes: limit });
  parser.push(Buffer.from('{"id":1,"result":"'));
  let pushed = 0;
  let thrown: unknown;
  // 10 MiB worth available; a parser that waits for the end would never throw.
  for (let i = 0; i < 160 && thrown === undefined; i++) {
    try {
      parser.push(chunk);
      pushed++;
    } catch (err) {
      thrown = err;
    }
  }
  t.type(thrown, MessageTooLargeError);
  t.equal((thrown as MessageTooLargeError).limitBytes, limit);
  t.ok(pushed <= limit / chunk.length, `threw after ${pushed} chunks`);
  t.throws(() => parser.push(Buffer.from('"}')), ProtocolError, 'unusable after the error');
  t.end();
});

t.test('oversize message complete within one chunk throws', (t) => {
  const small = { s: 'y'.repeat(90) }; // 98 bytes
  t.strictSame(new JsonStreamParser({ maxMessageBytes: 100 }).push(Buffer.from(JSON.stringify(small))), [small]);
  const big = Buffer.from(JSON.stringify({ s: 'y'.repeat(200) }));
  t.throws(() => new JsonStreamParser({ maxMessageBytes: 100 }).push(big), MessageTooLargeError);
  t.end();
});

t.test('limit is inclusive', (t) => {
  const text = JSON.stringify({ s: 'z'.repeat(50) });
  t.strictSame(new JsonStreamParser({ maxMessageBytes: text.length }).push(Buffer.from(text)), [{ s: 'z'.repeat(50) }]);
  t.throws(() => new JsonStreamParser({ maxMessageBytes: text.length - 1 }).push(Buffer.from(text)), MessageTooLargeError);
  t.end();
});

t.test('invalid JSON throws ProtocolError', (t) => {
  const bad = ['{"a":}', '{"a" 1}', '{"a":1,}', '{]', "{'a':1}", '{"a":tru}', '{"a":"\\x"}'];
  for (const text of bad) {
    const parser = new JsonStreamParser();
    t.throws(() => parser.push(Buffer.from(text)), ProtocolError, text);
    t.throws(() => parser.push(Buffer.from('{}')), ProtocolError, `${text}: poisoned afterwards`);
  }
  t.end();
});

t.test('invalid JSON does not leak the payload into the message', (t) => {
  const parser = new JsonStreamParser();
  try {
    parser.push(Buffer.from('{"secret":"hunter2" x}'));
    t.fail('should throw');
  } catch (err) {
    t.type(err, ProtocolError);
    t.notMatch((err as Error).message, /hunter2/);
  }
  t.end();
});

t.test('mismatched closers throw as soon as they arrive', (t) => {
  for (const text of ['{]', '{"a":[}', '{"a":{]}', '{"a":[[]}']) {
    t.throws(() => new JsonStreamParser().push(Buffer.from(text)), ProtocolError, text);
  }
  t.end();
});

t.test('invalid UTF-8 throws ProtocolError', (t) => {
  const buf = Buffer.concat([Buffer.from('{"s":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
  t.throws(() => new JsonStreamParser().push(buf), ProtocolError);
  t.end();
});

t.test('top-level non-objects throw ProtocolError', (t) => {
  for (const text of ['[1,2]', '"str"', '42', 'null', 'true', '{"a":1}}']) {
    t.throws(() => new JsonStreamParser().push(Buffer.from(text)), ProtocolError, text);
  }
  t.end();
});

t.test('values before a bad byte in a later chunk were already returned', (t) => {
  const parser = new JsonStreamParser();
  t.strictSame(parser.push(Buffer.from('{"a":1}')), [{ a: 1 }]);
  t.throws(() => parser.push(Buffer.from('x')), ProtocolError);
  t.end();
});

t.test('nesting deeper than the limit throws ProtocolError', (t) => {
  const ok = '{"a":' + '['.repeat(MAX_NESTING_DEPTH - 1) + ']'.repeat(MAX_NESTING_DEPTH - 1) + '}';
  t.equal(new JsonStreamParser().push(Buffer.from(ok)).length, 1);
  const deep = '{"a":' + '['.repeat(MAX_NESTING_DEPTH) + ']'.repeat(MAX_NESTING_DEPTH) + '}';
  t.throws(() => new JsonStreamParser().push(Buffer.from(deep)), ProtocolError);
  t.end();
});

t.test('empty chunks and whitespace-only chunks are harmless', (t) => {
  const parser = new JsonStreamParser();
  t.strictSame(parser.push(Buffer.alloc(0)), []);
  t.strictSame(parser.push(Buffer.from('  \n')), []);
  t.strictSame(parser.push(Buffer.from('{"a"')), []);
  t.strictSame(parser.push(Buffer.alloc(0)), []);
  t.strictSame(parser.push(Buffer.from(':1}')), [{ a: 1 }]);
  t.end();
});

t.test('rejects a nonsensical limit', (t) => {
  t.throws(() => new JsonStreamParser({ maxMessageBytes: 0 }), RangeError);
  t.throws(() => new JsonStreamParser({ maxMessageBytes: 1.5 }), RangeError);
  t.end();
});
