import t from 'tap';
import { CoalescedPasses } from './coalesce.ts';

t.test('one pass at a time; a burst while running queues exactly one more', async (t) => {
  let running = 0;
  let maxRunning = 0;
  let passes = 0;
  let release!: () => void;
  const q = new CoalescedPasses(async () => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    passes++;
    if (passes === 1) await new Promise<void>((r) => (release = r));
    running--;
  }, (err) => t.fail(String(err)));
  const first = q.schedule();
  await new Promise((r) => setImmediate(r));
  const burst = [q.schedule(), q.schedule(), q.schedule()];
  release();
  await Promise.all([first, ...burst]);
  t.equal(passes, 2, 'the burst collapsed into one extra pass');
  t.equal(maxRunning, 1, 'never two at once');
  await q.schedule();
  t.equal(passes, 3, 'a later request runs again');
});

t.test('a failing pass is reported and does not stop later ones', async (t) => {
  const errors: unknown[] = [];
  let n = 0;
  const q = new CoalescedPasses(async () => {
    if (++n === 1) throw new Error('boom');
  }, (e) => errors.push(e));
  await q.schedule();
  await q.schedule();
  t.equal(n, 2);
  t.match(errors, [{ message: 'boom' }]);
});
