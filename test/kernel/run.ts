// The kernel tests' runner, meant to run inside the lane:
//   scripts/kernel-lane -- node --import tsx test/kernel/run.ts [NAME…]
// Runs every kernel test (test/kernel/*.ts but this file, see kernelTestNames) or only
// the NAMEs given (without .ts): one node process each, one after the other (they
// share the guest's kernel), each bounded by
// KERNEL_TEST_TIMEOUT_S (default 120; ovn-offload 420, see LONGER). Prints `PASS NAME (Ns)` / `FAIL NAME (…)`
// per test (a FAIL after the kernel log lines the test caused: segfaults, OOM kills)
// and `kernel tests: N passed, N failed` last; exits 1 if any failed or none ran.
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { inKernelLane, KERNEL_TEST_DIR, kernelTestNames } from '../helpers/kernel.ts';

const timeoutMs = Number(process.env['KERNEL_TEST_TIMEOUT_S'] ?? 120) * 1000;
/** Tests that need longer under TCG (seconds), unless KERNEL_TEST_TIMEOUT_S says otherwise. */
const LONGER: Record<string, number> = { 'ovn-offload': 420 };
const timeoutOf = (name: string): number => (process.env['KERNEL_TEST_TIMEOUT_S'] === undefined && LONGER[name] ? LONGER[name] * 1000 : timeoutMs);
const all = kernelTestNames();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((n) => !all.includes(n));
if (unknown.length > 0) {
  console.error(`run.ts: no such kernel test: ${unknown.join(', ')} (have: ${all.join(', ')})`);
  process.exit(1);
}
const names = wanted.length > 0 ? wanted : all;
if (!inKernelLane) console.error('run.ts: warning: not inside scripts/kernel-lane (KERNEL_LANE unset)');

/** Exit code of one test file, or a reason it has none. */
function runOne(name: string): Promise<number | string> {
  const timeoutMs = timeoutOf(name);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(KERNEL_TEST_DIR, `${name}.ts`)], { stdio: ['ignore', 'inherit', 'inherit'] });
    const timer = setTimeout(() => {
      child.kill('SIGKILL'); // by the child's pid; its detached daemons die with the guest
      resolve(`timeout after ${timeoutMs / 1000}s`);
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve(`spawn failed: ${err.message}`);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? `killed by ${signal}`);
    });
  });
}

/** The kernel log's lines (same as: dmesg). Segfaults and OOM kills show up only there. */
function kernelLog(): string[] {
  return spawnSync('dmesg', { encoding: 'utf8' }).stdout?.split('\n').filter(Boolean) ?? [];
}

let passed = 0;
const failed: string[] = [];
for (const name of names) {
  const t0 = performance.now();
  const logStart = kernelLog().length;
  console.log(`--- ${name}`);
  const result = await runOne(name);
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  if (result === 0) {
    passed++;
    console.log(`PASS ${name} (${secs}s)`);
  } else {
    failed.push(name);
    for (const line of kernelLog().slice(logStart).slice(-20)) console.log(`dmesg: ${line}`);
    console.log(`FAIL ${name} (${typeof result === 'number' ? `exit ${result}` : result}, ${secs}s)`);
  }
}
console.log(`kernel tests: ${passed} passed, ${failed.length} failed${failed.length ? ` (${failed.join(', ')})` : ''}`);
process.exit(failed.length === 0 && passed > 0 ? 0 : 1);
