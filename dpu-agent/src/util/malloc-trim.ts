// Gives glibc's free heap pages back to the kernel. The agent's start (OVSDB
// snapshots parsed, Turbofan compiling the hot paths, TLS set-up) peaks well above
// its steady state, and glibc keeps what V8 and OpenSSL freed inside its arenas:
// 5–9 MiB of RSS with 1,000 leases that nothing will reuse soon
// (`npm run bench -- attach`). malloc_trim(0) releases every whole free page of every
// arena (madvise DONTNEED); it costs well under a millisecond at this size.
// glibc only: on other libcs (musl has no malloc_trim) this is a no-op.
import { readFileSync } from 'node:fs';
import { libcFunction } from './libc.ts';

type MallocTrim = (pad: number) => number;
const libcMallocTrim = (): MallocTrim | null => libcFunction<MallocTrim>('int malloc_trim(size_t pad)');

/** Resident set size in bytes (VmRSS: in kB whatever the page size, 4 KiB or ARM's 64 KiB). */
export function rssBytes(): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'latin1'));
  return m ? Number(m[1]) * 1024 : 0;
}

export interface TrimResult {
  /** false when malloc_trim is not available (not glibc, or koffi missing). */
  readonly available: boolean;
  /** malloc_trim's answer: true if it gave memory back. */
  readonly released: boolean;
  readonly rssBefore: number;
  readonly rssAfter: number;
}

export function mallocTrim(): TrimResult {
  const fn = libcMallocTrim();
  const rssBefore = rssBytes();
  if (!fn) return { available: false, released: false, rssBefore, rssAfter: rssBefore };
  const released = fn(0) === 1;
  return { available: true, released, rssBefore, rssAfter: rssBytes() };
}

/**
 * Trims now and then every `intervalMs` (unref'd: never keeps the process up).
 * `onTrim` sees each result (the agent logs the first at info, the rest at debug).
 * Returns a stop function.
 */
export function startMallocTrim(intervalMs: number, onTrim: (r: TrimResult, first: boolean) => void): () => void {
  const first = mallocTrim();
  onTrim(first, true);
  if (!first.available || intervalMs <= 0) return () => undefined;
  const timer = setInterval(() => onTrim(mallocTrim(), false), intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
