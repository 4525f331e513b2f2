// Test fixture for the lab: a lab per test file with a unique prefix, torn down
// in t.teardown even when the test fails, plus the "nothing left behind" check.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { runDir } from '../../scripts/labkit/plan.ts';
import { listNetns } from '../../scripts/labkit/netns.ts';
import type { LabRun } from '../../scripts/labkit/run.ts';
import { down, missingPrerequisites, up, type UpOptions } from '../../scripts/labkit/topology.ts';

const LAB_CLI = fileURLToPath(new URL('../../scripts/lab', import.meta.url));

export function uniquePrefix(tag: string): string {
  return `${tag}${randomBytes(3).toString('hex')}`.slice(0, 12);
}

/** Why the lab cannot run here (not root, tools missing), or undefined. */
export async function labSkipReason(): Promise<string | undefined> {
  const missing = await missingPrerequisites();
  return missing.length > 0 ? `lab prerequisites missing: ${missing.join('; ')}` : undefined;
}

interface Teardownable {
  teardown(fn: () => unknown): void;
}

/** Brings up a lab for this test; tears it down (and checks) at the end. */
export async function labFor(t: Teardownable, tag: string, opts: Partial<Omit<UpOptions, 'prefix'>> = {}): Promise<LabRun> {
  const prefix = uniquePrefix(tag);
  let isDown = false;
  // A throw at a test file's top level ends the process before any teardown runs:
  // take the lab down from the exit handler then (synchronously, by its prefix).
  const onExit = (): void => {
    if (!isDown) spawnSync(LAB_CLI, ['down', '--prefix', prefix], { stdio: 'ignore', timeout: 60_000 });
  };
  process.once('exit', onExit);
  t.teardown(async () => {
    await down(prefix);
    isDown = true;
    process.off('exit', onExit);
  });
  return up({ prefix, dpus: opts.dpus ?? 2, sbCluster: opts.sbCluster ?? 1, vfs: opts.vfs ?? 8 });
}

/**
 * What a run left behind: its netns, its run dir, any live process whose command
 * line mentions the run dir or that runs in one of its netns (by pid, from /proc).
 */
export async function leftovers(prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (const n of await listNetns()) if (n.startsWith(`${prefix}-`)) out.push(`netns ${n}`);
  const dir = runDir(prefix);
  if (existsSync(dir)) out.push(`run dir ${dir}`);
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (/^\S+ \(.*\) Z/.test(stat)) continue; // a zombie waiting for its parent holds nothing
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(`${dir}/`)) out.push(`process ${pid}: ${cmd.slice(0, 120)}`);
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}
