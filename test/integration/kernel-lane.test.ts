// The kernel lane end to end (DESIGN §7): boots Debian's kernel under qemu and runs
// every kernel test inside it. Same as:
//   scripts/kernel-lane --timeout 570 -- node --import tsx test/kernel/run.ts
// Bounded under 10 minutes on a 2-core machine: 3.5 min idle, 5 min with the machine
// loaded (first run downloads ~70 MB); ovn-offload (OVN on the kernel datapath, two
// chassis) is the longest, 1-3 min under TCG.
// No skip: a missing qemu or kernel is a failure, with the lane's own message.
import t from 'tap';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kernelTestNames } from '../helpers/kernel.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LANE_TIMEOUT_S = 570;
t.setTimeout((LANE_TIMEOUT_S + 60) * 1000); // above the lane's own bound, so the lane reports first

const kernelTests = kernelTestNames();

interface LaneResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

function runLane(): Promise<LaneResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      join(ROOT, 'scripts', 'kernel-lane'),
      // Every node in the guest runs --jitless: under qemu 7.2 TCG, V8's JIT code dies of
      // SIGSEGV/SIGILL now and then (first seen in ovs-offload's probe, ~half its runs; then a
      // tc-audit run in CI: "killed by SIGSEGV" after 10 s) — 0 crashes jitless. These tests
      // check what the kernel does with our messages, not speed.
      ['--timeout', String(LANE_TIMEOUT_S), '--env', 'NODE_OPTIONS=--jitless', '--', 'node', '--import', 'tsx', 'test/kernel/run.ts'],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    // If this process goes first (tap's timeout), the lane's EXIT trap kills its qemu.
    const killLane = () => child.kill('SIGTERM');
    process.once('exit', killLane);
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      process.off('exit', killLane);
      resolve({ code, signal, output });
    });
  });
}

const tail = (s: string, n = 40) => s.trimEnd().split('\n').slice(-n).join('\n');

/** A kernel test's own output: the lines between `--- NAME` and its PASS/FAIL line. */
function section(output: string, name: string): string {
  const lines = output.split('\n');
  const start = lines.indexOf(`--- ${name}`);
  if (start < 0) return '(never started)';
  const end = lines.findIndex((l, i) => i > start && /^(PASS|FAIL) /.test(l));
  return tail(lines.slice(start + 1, end < 0 ? undefined : end + 1).join('\n'), 60);
}

t.test('kernel tests pass inside the lane', async (t) => {
  t.ok(kernelTests.includes('smoke'), 'test/kernel/smoke.ts exists');
  const r = await runLane();
  const stats = /^kernel-lane: setup .*$/m.exec(r.output);
  if (stats) t.comment(stats[0]);
  const why =
    r.code === 124 ? `the lane timed out after ${LANE_TIMEOUT_S}s`
    : r.code === 125 ? 'the lane itself failed: qemu, busybox or the kernel unavailable, or the guest did not boot'
    : `exit ${r.code ?? r.signal}`;
  t.equal(r.code, 0, r.code === 0 ? 'scripts/kernel-lane exits 0' : `scripts/kernel-lane: ${why}; its output ends with:\n${tail(r.output)}`);
  for (const name of kernelTests) {
    const ok = new RegExp(`^PASS ${name} \\(`, 'm').test(r.output);
    t.ok(ok, ok ? `kernel test ${name} passed` : `kernel test ${name} did not pass; its output:\n${section(r.output, name)}`);
  }
  t.match(r.output, new RegExp(`^kernel tests: ${kernelTests.length} passed, 0 failed$`, 'm'), 'runner summary: all passed');
});
