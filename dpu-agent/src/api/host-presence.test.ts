import t from 'tap';
import { HostPresence } from './host-presence.ts';

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let n = start;
  return { now: () => n, advance: (ms) => void (n += ms) };
}

t.test('the first request since our start opens a stretch of contact; GC waits the grace from there', async (t) => {
  const c = clock();
  const p = new HostPresence({ silenceMs: 30_000, returnGraceMs: 60_000, now: c.now });
  t.equal(p.gcDeferredMs('host1'), 60_000, 'a host never seen: deferred by the whole grace');
  t.equal(p.seen('host1'), true);
  c.advance(10_000);
  t.equal(p.seen('host1'), false, 'steady contact is not a return');
  t.equal(p.gcDeferredMs('host1'), 50_000);
  c.advance(25_000);
  p.seen('host1');
  c.advance(25_000);
  p.seen('host1');
  t.equal(p.gcDeferredMs('host1'), 0, 'back for the whole grace: GC runs');
  t.equal(p.lastSeen('host1'), c.now());
  t.equal(p.lastSeen('host2'), undefined);
});

t.test('a silence longer than silenceMs makes the next request a return, and GC waits again', async (t) => {
  const c = clock();
  const p = new HostPresence({ silenceMs: 30_000, returnGraceMs: 60_000, now: c.now });
  p.seen('host1');
  c.advance(70_000);
  t.equal(p.seen('host1'), true, 'silent for 70 s > 30 s: a return');
  t.equal(p.gcDeferredMs('host1'), 60_000);
  c.advance(30_000);
  t.equal(p.seen('host1'), false, 'exactly silenceMs is still contact');
  t.equal(p.gcDeferredMs('host1'), 30_000);
});

t.test('hosts are tracked apart; a zero grace never defers', async (t) => {
  const c = clock();
  const p = new HostPresence({ silenceMs: 1_000, returnGraceMs: 5_000, now: c.now });
  p.seen('host1');
  c.advance(5_000);
  p.seen('host2');
  t.equal(p.gcDeferredMs('host1'), 0);
  t.equal(p.gcDeferredMs('host2'), 5_000);
  const z = new HostPresence({ silenceMs: 1_000, returnGraceMs: 0, now: c.now });
  t.equal(z.gcDeferredMs('host1'), 0);
  z.seen('host1');
  t.equal(z.gcDeferredMs('host1'), 0);
});
