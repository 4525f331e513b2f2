import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import t from 'tap';
import { mallocTrim, rssBytes, startMallocTrim } from './malloc-trim.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const settle = async (): Promise<void> => {
  // ArrayBuffer backing stores are freed by sweeping, which may finish on a V8 worker.
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
  }
};

t.test('free pages inside glibc arenas go back to the kernel', async (t) => {
  await settle();
  mallocTrim();
  // 96 MiB in 48 KiB buffers: below glibc's mmap threshold, so they come from the arena.
  // Every 16th stays alive, so the freed ones are holes glibc cannot give back by itself
  // (it only shrinks from the top of the heap).
  let bufs: Buffer[] = Array.from({ length: 2048 }, () => Buffer.allocUnsafeSlow(48 * 1024).fill(1));
  const keep = bufs.filter((_, i) => i % 16 === 0);
  const withAll = rssBytes();
  bufs = [];
  await settle();
  const r = mallocTrim();
  t.equal(r.available, true, 'glibc malloc_trim found through koffi');
  t.equal(r.released, true, 'malloc_trim says it released memory');
  const freedMiB = (r.rssBefore - r.rssAfter) / 1048576;
  t.ok(freedMiB > 48, `RSS ${(withAll / 1048576).toFixed(0)} MiB with the buffers; trim gave back ${freedMiB.toFixed(1)} MiB of the ~90 MiB freed`);
  t.equal(keep.length, 128);
});

t.test('startMallocTrim trims at once, then on its timer; stop ends it', async (t) => {
  const seen: boolean[] = [];
  const stop = startMallocTrim(20, (r, first) => {
    t.equal(r.available, true);
    seen.push(first);
  });
  t.same(seen, [true], 'the first trim is synchronous');
  await new Promise((r) => setTimeout(r, 120));
  stop();
  const n = seen.length;
  t.ok(n >= 2 && seen.slice(1).every((f) => !f), `${n - 1} periodic trims after the first`);
  await new Promise((r) => setTimeout(r, 80));
  t.equal(seen.length, n, 'none after stop');
});
