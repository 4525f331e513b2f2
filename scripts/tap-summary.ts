// Count a tap run honestly from its raw TAP stream and print one summary line.
//
// usage: node --import tsx scripts/tap-summary.ts [--extra-failure=LABEL]… [--runner-exit=N] FILE.tap
//
// Contract (what counts):
// - Leaf test points across all files and nesting levels: `ok` → passed,
//   `not ok` → failed, `# SKIP` / `# TODO` → skipped. A subtest's closing
//   point is not counted again when its children already explain it.
// - A subtest (e.g. a test file) whose closing point is `not ok` while no
//   failing leaf sits under it — the file crashed, exited non-zero, timed out,
//   had a plan mismatch, found no tests — counts as 1 failure.
// - A subtest closed with `# SKIP`/`# TODO` turns everything under it into
//   skipped (tap's own semantics); an empty one counts as 1 skipped.
//   An empty subtest closed `ok` counts as 1 passed (as tap counts it).
// - A stream with no test points at all, or one that is broken (bail out,
//   no plan, count ≠ plan: the runner died) without any counted failure,
//   counts as 1 failure.
// - Each --extra-failure (e.g. "tsc --noEmit") adds 1 failure; a non-zero
//   --runner-exit with nothing failed adds 1 failure.
// Output: the failure list (if any), then as the very last line exactly
// `N passed, N failed` (`, N skipped` appended when any). Exit 1 if failed > 0.

import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Parser } from 'tap-parser';
import type { FinalResults, Result } from 'tap-parser';

export interface TapSummary {
  passed: number;
  failed: number;
  skipped: number;
  /** ' > '-joined paths of what failed, in stream order */
  failures: string[];
}

interface Counts {
  passed: number;
  failed: number;
  skipped: number;
  failures: string[];
}

const zero = (): Counts => ({ passed: 0, failed: 0, skipped: 0, failures: [] });

function add(into: Counts, from: Counts): void {
  into.passed += from.passed;
  into.failed += from.failed;
  into.skipped += from.skipped;
  into.failures.push(...from.failures);
}

function hint(res: Result): string {
  const diag: unknown = res.diag;
  if (typeof diag !== 'object' || diag === null) return '';
  const d = diag as Record<string, unknown>;
  const parts: string[] = [];
  if (d['exitCode'] !== undefined && d['exitCode'] !== null) parts.push(`exit code ${String(d['exitCode'])}`);
  if (d['signal'] !== undefined && d['signal'] !== null) parts.push(`signal ${String(d['signal'])}`);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

/** Attach counters to `parser`; they fill in as it parses. */
function track(parser: Parser, path: string[]): Counts {
  const counts = zero();
  let pending: { name: string; parser: Parser; counts: Counts } | undefined;

  const label = (name: string): string => [...path, name || '(unnamed)'].join(' > ');

  parser.on('child', (child: Parser) => {
    if (pending !== undefined) closeUnfinished(pending);
    pending = { name: child.name, parser: child, counts: track(child, [...path, child.name || '(unnamed)']) };
  });

  // a child block that never got its closing point (stream cut off)
  const closeUnfinished = (p: { name: string; parser: Parser; counts: Counts }): void => {
    const c = p.counts;
    if (c.failed === 0 && p.parser.results !== null && !p.parser.results.ok) {
      c.failed += 1;
      c.failures.push(`${label(p.name)} — did not finish`);
    }
    add(counts, c);
  };

  parser.on('assert', (res: Result) => {
    const child = pending;
    pending = undefined;
    if (child === undefined) {
      // a leaf test point
      if (res.skip !== false || res.todo !== false) counts.skipped += 1;
      else if (res.ok) counts.passed += 1;
      else {
        counts.failed += 1;
        counts.failures.push(label(res.name));
      }
      return;
    }
    // the closing point of `child`
    const c = child.counts;
    const leaves = c.passed + c.failed + c.skipped;
    if (res.skip !== false || res.todo !== false) {
      c.skipped += c.failed + (leaves === 0 ? 1 : 0);
      c.failed = 0;
      c.failures = [];
    } else if (!res.ok) {
      if (c.failed === 0) {
        c.failed = 1;
        c.failures.push(`${label(res.name)} — failed without a failing assertion${hint(res)}`);
      }
    } else if (leaves === 0) {
      c.passed += 1;
    }
    add(counts, c);
  });

  parser.on('complete', () => {
    if (pending !== undefined) {
      closeUnfinished(pending);
      pending = undefined;
    }
  });

  return counts;
}

export interface SummarizeOptions {
  /** labels of failures that happened outside tap (each counts 1) */
  extraFailures?: string[];
  /** tap's exit code; non-zero with nothing failed counts 1 */
  runnerExit?: number;
}

export function summarizeTap(text: string, opts: SummarizeOptions = {}): TapSummary {
  const parser = new Parser();
  const counts = track(parser, []);
  let final: FinalResults | undefined;
  parser.on('complete', (r: FinalResults) => {
    final = r;
  });
  parser.end(text);
  if (final === undefined) throw new Error('tap-parser did not complete');
  const r: FinalResults = final;

  // Stream-level trouble nothing above counted. (Not `!r.ok`: tap-parser also
  // marks a parent not ok for failures inside a `# TODO` subtest.)
  if (counts.passed + counts.failed + counts.skipped === 0) {
    counts.failed += 1;
    counts.failures.push('(tap) no test points in the TAP stream');
  } else if (counts.failed === 0) {
    const streamError = r.failures.find((f) => 'tapError' in f && typeof f.tapError === 'string');
    if (r.bailout !== false) {
      counts.failed += 1;
      counts.failures.push(`(tap) bailed out: ${String(r.bailout)}`);
    } else if (streamError !== undefined) {
      counts.failed += 1;
      counts.failures.push(`(tap) broken TAP stream: ${String((streamError as { tapError: string }).tapError)}`);
    }
  }
  for (const label of opts.extraFailures ?? []) {
    counts.failed += 1;
    counts.failures.push(label);
  }
  if (opts.runnerExit !== undefined && opts.runnerExit !== 0 && counts.failed === 0) {
    counts.failed += 1;
    counts.failures.push(`(tap) runner exited with code ${opts.runnerExit}`);
  }
  return { passed: counts.passed, failed: counts.failed, skipped: counts.skipped, failures: counts.failures };
}

export function formatSummary(s: TapSummary): string {
  return `${s.passed} passed, ${s.failed} failed${s.skipped > 0 ? `, ${s.skipped} skipped` : ''}`;
}

function main(argv: string[]): number {
  const extraFailures: string[] = [];
  let runnerExit: number | undefined;
  let file: string | undefined;
  for (const arg of argv) {
    if (arg.startsWith('--extra-failure=')) extraFailures.push(arg.slice('--extra-failure='.length));
    else if (arg.startsWith('--runner-exit=')) runnerExit = Number(arg.slice('--runner-exit='.length));
    else if (!arg.startsWith('--') && file === undefined) file = arg;
    else {
      process.stderr.write(`tap-summary: unexpected argument ${arg}\n`);
      return 2;
    }
  }
  if (file === undefined) {
    process.stderr.write('usage: tap-summary [--extra-failure=LABEL]… [--runner-exit=N] FILE.tap\n');
    return 2;
  }
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    // a missing file is an empty stream: counted as a failure below
  }
  const s = summarizeTap(text, { extraFailures, ...(runnerExit !== undefined ? { runnerExit } : {}) });
  const lines: string[] = [];
  if (s.failures.length > 0) {
    lines.push('failed:');
    const shown = s.failures.slice(0, 100);
    for (const f of shown) lines.push(`  ✗ ${f}`);
    if (s.failures.length > shown.length) lines.push(`  … and ${s.failures.length - shown.length} more`);
  }
  lines.push(formatSummary(s));
  process.stdout.write(`${lines.join('\n')}\n`);
  return s.failed > 0 ? 1 : 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
