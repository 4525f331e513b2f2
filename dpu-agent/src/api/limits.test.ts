import t from 'tap';
import { PeerLimiter } from './limits.ts';

t.test('token bucket: burst, then refill at the configured rate', async (t) => {
  let now = 0;
  const l = new PeerLimiter({ ratePerSecond: 2, rateBurst: 3, maxConcurrentPerPeer: 100 }, () => now);
  for (let i = 0; i < 3; i++) {
    const a = l.acquire('h1');
    t.ok(a.ok, `burst ${i}`);
    if (a.ok) a.release();
  }
  t.strictSame(l.acquire('h1'), { ok: false, why: 'rate' }, 'bucket empty');
  t.ok(l.acquire('h2').ok, 'another peer has its own bucket');
  now += 499;
  t.notOk(l.acquire('h1').ok, 'not yet a whole token after 499 ms at 2/s');
  now += 1;
  t.ok(l.acquire('h1').ok, 'one token after 500 ms');
  now += 60_000;
  let n = 0;
  while (l.acquire('h1').ok) n++;
  t.equal(n, 3, 'refill is capped at the burst size');
});

t.test('concurrency cap per peer; release is idempotent; refused calls take no token', async (t) => {
  const l = new PeerLimiter({ ratePerSecond: 1, rateBurst: 3, maxConcurrentPerPeer: 2 }, () => 0);
  const a = l.acquire('h1');
  const b = l.acquire('h1');
  t.ok(a.ok && b.ok);
  t.strictSame(l.acquire('h1'), { ok: false, why: 'concurrency' });
  t.equal(l.inFlight('h1'), 2);
  if (a.ok) {
    a.release();
    a.release();
  }
  t.equal(l.inFlight('h1'), 1, 'double release counts once');
  t.ok(l.acquire('h1').ok, 'third token still there: the refused call took none');
  t.strictSame(l.acquire('h1'), { ok: false, why: 'concurrency' }, 'cap reached again before the bucket runs dry');
});

t.test('many peers: idle full buckets are swept', async (t) => {
  let now = 0;
  const l = new PeerLimiter({ ratePerSecond: 10, rateBurst: 10, maxConcurrentPerPeer: 1 }, () => now);
  const held = l.acquire('busy');
  for (let i = 0; i < 3000; i++) {
    const a = l.acquire(`p${i}`);
    if (a.ok) a.release();
    now += 1000;
  }
  t.equal(l.inFlight('busy'), 1, 'a peer with a call in flight is kept');
  t.ok(held.ok);
  t.ok((l as unknown as { peers: Map<string, unknown> }).peers.size < 1100, 'map stays bounded');
});
