// scripts/tap-summary.ts counts what tap ran, the way tap itself does, plus
// "a file that failed without a failing assertion is a failure".

import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatSummary, summarizeTap } from '../../scripts/tap-summary.ts';

// Shapes copied from real `tap --reporter=tap` output (diagnostics trimmed).
const NESTED = `TAP version 14
1..2
# Subtest: a.test.ts
    # Subtest: outer
        # Subtest: inner
            not ok 1 - fails
              ---
              compare: ===
              ...
            
            ok 2 - ok inner
            1..2
        not ok 1 - inner # time=24.141ms
        
        ok 2 - ok outer
        ok 3 - skipped one # SKIP
        ok 4 - todo one # TODO
        ok 5 - skip assert # SKIP why
        1..5
    not ok 1 - outer # time=30.675ms
    
    # Subtest: empty
        1..0
    ok 2 - empty # time=0.779ms
    
    1..2
not ok 1 - a.test.ts # time=50.52ms
  ---
  exitCode: 1
  signal: null
  ...

# Subtest: b.test.ts
    ok 1 - fine
    1..1
ok 2 - b.test.ts # time=1ms

# { total: 7, pass: 4, fail: 1, todo: 1, skip: 2 }
`;

const CRASHED_AFTER_PASSING = `TAP version 14
1..1
# Subtest: crash.test.ts
    ok 1 - before crash
    ok 2 - also fine
    1..2
not ok 1 - crash.test.ts # time=30ms
  ---
  exitCode: 1
  signal: null
  ...
`;

const NO_TESTS_FOUND = `TAP version 14
1..1
# Subtest: syntax.test.ts
    1..0 # no tests found
not ok 1 - syntax.test.ts # time=771ms
  ---
  exitCode: 1
  signal: null
  ...
`;

const TIMED_OUT_BY_SIGNAL = `TAP version 14
1..1
# Subtest: hang.test.ts
    ok 1 - x
    1..1
not ok 1 - hang.test.ts # time=3030ms
  ---
  exitCode: null
  signal: SIGKILL
  ...
`;

const TODO_SUBTEST = `TAP version 14
1..1
# Subtest: later
    not ok 1 - not yet
    ok 2 - this works
    1..2
not ok 1 - later # TODO not done
`;

const SKIPPED_FILE = `TAP version 14
1..1
ok 1 - linux-only.test.ts # SKIP no tests found
`;

const CUT_OFF = `TAP version 14
1..2
# Subtest: a.test.ts
    ok 1 - one
    ok 2 - two
`;

const BAIL = `TAP version 14
1..2
ok 1 - first
Bail out! cannot continue
`;

t.test('nested subtests: leaves only, skip and todo as skipped, empty ok subtest as a pass', async (t) => {
  const s = summarizeTap(NESTED);
  t.same(
    { passed: s.passed, failed: s.failed, skipped: s.skipped },
    { passed: 4, failed: 1, skipped: 3 },
    'same numbers as tap prints',
  );
  t.same(s.failures, ['a.test.ts > outer > inner > fails'], 'closing points of failed subtests are not counted again');
  t.equal(formatSummary(s), '4 passed, 1 failed, 3 skipped');
});

t.test('a file that failed without a failing assertion counts as one failure', async (t) => {
  const crashed = summarizeTap(CRASHED_AFTER_PASSING);
  t.same([crashed.passed, crashed.failed], [2, 1]);
  t.match(crashed.failures[0], /^crash\.test\.ts — failed without a failing assertion \(exit code 1\)$/);

  const none = summarizeTap(NO_TESTS_FOUND);
  t.same([none.passed, none.failed, none.skipped], [0, 1, 0]);

  const killed = summarizeTap(TIMED_OUT_BY_SIGNAL);
  t.same([killed.passed, killed.failed], [1, 1]);
  t.match(killed.failures[0], /signal SIGKILL/);
});

t.test('a todo subtest excuses what fails inside it; a skipped file is skipped', async (t) => {
  const todo = summarizeTap(TODO_SUBTEST);
  t.same([todo.passed, todo.failed, todo.skipped], [1, 0, 1]);
  const skipped = summarizeTap(SKIPPED_FILE);
  t.same([skipped.passed, skipped.failed, skipped.skipped], [0, 0, 1]);
  t.equal(formatSummary(skipped), '0 passed, 0 failed, 1 skipped');
});

t.test('broken streams are failures', async (t) => {
  const cut = summarizeTap(CUT_OFF);
  t.same([cut.passed, cut.failed], [2, 1], 'runner died mid-file');
  const empty = summarizeTap('');
  t.same([empty.passed, empty.failed], [0, 1], 'no output at all');
  t.match(empty.failures[0], /no test points/);
  const bail = summarizeTap(BAIL);
  t.same([bail.passed, bail.failed], [1, 1]);
  t.match(bail.failures[0], /bailed out/);
});

t.test('extra failures and the runner exit code', async (t) => {
  const ok = `TAP version 14\n1..1\nok 1 - fine\n`;
  t.equal(formatSummary(summarizeTap(ok)), '1 passed, 0 failed', 'no skipped suffix when none');
  const tsc = summarizeTap(ok, { extraFailures: ['tsc --noEmit'] });
  t.same([tsc.passed, tsc.failed, tsc.failures], [1, 1, ['tsc --noEmit']]);
  t.equal(summarizeTap(ok, { runnerExit: 1 }).failed, 1, 'tap failed with nothing failing → 1');
  t.equal(summarizeTap(NESTED, { runnerExit: 1 }).failed, 1, 'not added when failures explain the exit');
});

t.test('CLI prints the summary as the very last line and exits 1 on failure', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tap-summary-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'run.tap');
  await writeFile(file, NESTED);
  const script = new URL('../../scripts/tap-summary.ts', import.meta.url).pathname;
  const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
    const child = execFile(process.execPath, ['--import', 'tsx', script, '--extra-failure=tsc --noEmit', file], (_err, stdout) =>
      resolve({ code: child.exitCode, stdout }),
    );
  });
  t.equal(code, 1);
  const lines = stdout.trimEnd().split('\n');
  t.equal(lines.at(-1), '4 passed, 2 failed, 3 skipped');
  t.ok(lines.includes('  ✗ tsc --noEmit'), 'failure list before the summary');
});
