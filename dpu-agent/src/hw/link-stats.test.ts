import t from 'tap';
import fc from 'fast-check';
import { createSocket } from 'node:dgram';
import { parseHeader, writeU16, writeU32, writeU64 } from '../netlink/nl.ts';
import { RtNetlink } from '../netlink/socket.ts';
import { RtLinkCounters, type VfCounters, ZERO_COUNTERS, formatCounters, parseCounters, podView, rebase } from './link-stats.ts';
import { decodeLink, encodeGetLink, encodeLinkDump } from './rtlink.ts';

/** An RTM_NEWLINK reply as the kernel sends it: ifinfomsg, IFLA_IFNAME, IFLA_STATS64 (rx/tx order of rtnl_link_stats64). */
function newlink(name: string, s: { rxp: number; txp: number; rxb: number; txb: number; rxd: number; txd: number }) {
  const nameBytes = Buffer.from(`${name}\0`);
  const nameAttr = (4 + nameBytes.length + 3) & ~3;
  const body = Buffer.alloc(16 + nameAttr + 4 + 8 * 24);
  writeU16(body, 16, 4 + nameBytes.length);
  writeU16(body, 18, 3);
  nameBytes.copy(body, 20);
  const st = 16 + nameAttr;
  writeU16(body, st, 4 + 8 * 24);
  writeU16(body, st + 2, 23);
  [s.rxp, s.txp, s.rxb, s.txb, 0, 0, s.rxd, s.txd].forEach((v, i) => writeU64(body, st + 4 + 8 * i, v));
  writeU32(body, 4, 7); // ifindex, ignored
  return { hdr: { len: 16 + body.length, type: 16, flags: 0, seq: 1, pid: 0 }, body };
}

t.test('decode: the pod sees the representor mirrored (its rx = the representor tx)', async (t) => {
  const l = decodeLink(newlink('pf0vf3', { rxp: 10, txp: 20, rxb: 1000, txb: 2000, rxd: 1, txd: 2 }));
  t.equal(l?.name, 'pf0vf3');
  t.strictSame(l?.stats && podView(l.stats), { rxPackets: 20, rxBytes: 2000, txPackets: 10, txBytes: 1000, rxDropped: 2, txDropped: 1 });
  t.equal(decodeLink({ hdr: { len: 32, type: 20, flags: 0, seq: 1, pid: 0 }, body: Buffer.alloc(16) }), undefined, 'not a link message');
  t.equal(decodeLink({ hdr: { len: 32, type: 16, flags: 0, seq: 1, pid: 0 }, body: Buffer.alloc(16) })?.stats, undefined, 'no name, no stats');
});

t.test('encode: by name, or a dump, with statistics', async (t) => {
  const one = encodeGetLink(5, { name: 'pf0vf1', stats: true });
  const h = parseHeader(one);
  t.equal(h.type, 18);
  t.equal(h.seq, 5);
  t.ok(one.subarray(16 + 16 + 4).toString('latin1').startsWith('pf0vf1\0'));
  t.notOk(one.subarray(32).includes(Buffer.from([8, 0, 29, 0])), 'no IFLA_EXT_MASK: the kernel includes IFLA_STATS64');
  t.ok(encodeGetLink(5, { name: 'pf0vf1' }).subarray(32).includes(Buffer.from([8, 0, 29, 0])), 'without stats: skipped (IFLA_EXT_MASK)');
  const all = encodeLinkDump(6, undefined, true);
  t.equal(parseHeader(all).flags & 0x300, 0x300, 'NLM_F_DUMP');
  t.equal(all.length, 32, 'ifinfomsg only: statistics included');
});

const counters = fc.record({
  rxPackets: fc.nat(),
  rxBytes: fc.maxSafeNat(),
  txPackets: fc.nat(),
  txBytes: fc.maxSafeNat(),
  rxDropped: fc.nat(),
  txDropped: fc.nat(),
});

t.test('lease form round-trips; garbage is refused', async (t) => {
  fc.assert(fc.property(counters, (c) => JSON.stringify(parseCounters(formatCounters(c))) === JSON.stringify(c)));
  t.pass('round trip holds for generated counters');
  for (const bad of ['', '1,2,3', '1,2,3,4,5,x', '1,2,3,4,5,-1', '1,2,3,4,5,6,7', '1,2,3,4,5,1e300']) t.equal(parseCounters(bad), undefined, JSON.stringify(bad));
});

const small = fc.record({
  rxPackets: fc.nat(),
  rxBytes: fc.nat({ max: 2 ** 48 }),
  txPackets: fc.nat(),
  txBytes: fc.nat({ max: 2 ** 48 }),
  rxDropped: fc.nat(),
  txDropped: fc.nat(),
});

t.test('rebase: counts since the base; a counter below its base (link re-created) counts from zero', async (t) => {
  fc.assert(
    fc.property(small, small, (base, extra) => {
      const now = Object.fromEntries(Object.entries(base).map(([k, v]) => [k, v + extra[k as keyof VfCounters]])) as unknown as VfCounters;
      const r = rebase(now, base);
      return Object.entries(r).every(([k, v]) => v === extra[k as keyof VfCounters]);
    }),
  );
  t.pass('rebase(base + x, base) = x for generated counters');
  const base = { ...ZERO_COUNTERS, rxPackets: 100, txPackets: 5 };
  t.strictSame(rebase({ ...ZERO_COUNTERS, rxPackets: 3, txPackets: 9 }, base), { ...ZERO_COUNTERS, rxPackets: 3, txPackets: 9 }, 'reset seen: raw');
  t.strictSame(rebase(base, undefined), base, 'no base: raw');
});

t.test('real kernel: loopback counters move with traffic we send to 127.0.0.1', async (t) => {
  const nl = new RtNetlink({ timeoutMs: 2000 });
  t.teardown(() => nl.close());
  const reader = new RtLinkCounters(nl);
  const before = (await reader.read(['lo'])).get('lo');
  t.ok(before, 'lo has counters');
  const rx = createSocket('udp4');
  const tx = createSocket('udp4');
  t.teardown(() => {
    rx.close();
    tx.close();
  });
  await new Promise<void>((r) => rx.bind(0, '127.0.0.1', r));
  const port = rx.address().port;
  const got = new Promise<void>((resolve) => {
    let n = 0;
    rx.on('message', () => ++n === 20 && resolve());
  });
  for (let i = 0; i < 20; i++) tx.send(Buffer.alloc(100), port, '127.0.0.1');
  await got;
  const after = (await reader.read(['lo', 'no-such-link-x'])).get('lo');
  t.ok(after && before);
  if (!after || !before) return;
  const d = rebase(after, before);
  t.ok(d.rxPackets >= 20 && d.txPackets >= 20, `≥ 20 packets each way on lo (rx ${d.rxPackets}, tx ${d.txPackets})`);
  t.ok(d.rxBytes >= 20 * 128, 'bytes too');
  t.strictSame([...(await reader.read(['no-such-link-x'])).keys()], [], 'a missing link has no counters (ENODEV is not an error)');
  t.strictSame([...(await reader.read([])).keys()], []);
});
