// Helpers for the kernel tests (test/kernel/*.ts): plain scripts that test/kernel/run.ts
// runs inside the kernel lane (scripts/kernel-lane, DESIGN §7), each exiting 0 (pass)
// or 1 (fail). They are not tap files: the lane boots one guest for all of them.
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { sh } from '../../scripts/labkit/sh.ts';

export const KERNEL_TEST_DIR = fileURLToPath(new URL('../kernel/', import.meta.url));

/** Files in test/kernel/ that are not kernel tests: the runner itself (host-side tools live in scripts/). */
const NOT_TESTS = new Set(['run']);

/** The kernel tests, by name (test/kernel/NAME.ts), sorted. */
export function kernelTestNames(): string[] {
  return readdirSync(KERNEL_TEST_DIR)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => f.slice(0, -'.ts'.length))
    .filter((n) => !NOT_TESTS.has(n))
    .sort();
}

/** True inside the lane's guest (scripts/kernel-lane exports KERNEL_LANE=1). */
export const inKernelLane = process.env['KERNEL_LANE'] === '1';

export type Defer = (cleanup: () => unknown) => void;

/**
 * Runs one kernel test and exits the process: 0 when `body` resolves, 1 when it throws.
 * Cleanups registered with `defer` run in reverse order either way; a failing cleanup
 * is reported but only fails the test if the body passed. Prints `ok - NAME` or
 * `not ok - NAME: reason` as its last line.
 */
export async function kernelTest(name: string, body: (defer: Defer) => Promise<void>): Promise<never> {
  const cleanups: (() => unknown)[] = [];
  let failure: unknown;
  try {
    await body((fn) => cleanups.push(fn));
  } catch (err) {
    failure = err;
  }
  for (const fn of cleanups.reverse()) {
    try {
      await fn();
    } catch (err) {
      console.error(`${name}: cleanup failed: ${errorText(err)}`);
      failure ??= err;
    }
  }
  if (failure === undefined) {
    console.log(`ok - ${name}`);
    process.exit(0);
  }
  console.log(`not ok - ${name}: ${errorText(failure)}`);
  process.exit(1);
}

function errorText(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

/** Throws unless `cond`; the message says what was expected and what was seen. */
export function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(message);
}

/**
 * Fails early, naming the lane, when a module the test needs is not loaded (the
 * lane's init loads them; this host kernel lacks cls_flower and openvswitch).
 */
export function requireModules(...names: string[]): void {
  const missing = names.filter((m) => !existsSync(`/sys/module/${m}`));
  if (missing.length > 0) {
    const where = inKernelLane ? 'the lane guest did not load' : 'not inside scripts/kernel-lane, and this kernel lacks';
    throw new Error(`${where}: ${missing.join(', ')}`);
  }
}

export interface TcActionJson {
  order: number;
  kind: string;
  stats?: { bytes: number; packets: number; drops?: number };
  [key: string]: unknown;
}

export interface TcFilterJson {
  protocol: string;
  pref: number;
  kind: string;
  chain: number;
  options?: {
    handle: number;
    keys?: Record<string, unknown>;
    skip_hw?: boolean;
    skip_sw?: boolean;
    in_hw?: boolean;
    in_hw_count?: number;
    not_in_hw?: boolean;
    actions?: TcActionJson[];
    [key: string]: unknown;
  };
}

/**
 * The filters (not the per-prio header entries, which carry no options) on DEV's
 * ingress. Same as: tc [-n NS] -s -j filter show dev DEV ingress
 */
export async function tcIngressFilters(ns: string | undefined, dev: string): Promise<TcFilterJson[]> {
  const out = await sh(['tc', ...(ns ? ['-n', ns] : []), '-s', '-j', 'filter', 'show', 'dev', dev, 'ingress']);
  return (JSON.parse(out || '[]') as TcFilterJson[]).filter((f) => f.options !== undefined);
}

/** Packets a filter matched: the largest count among its actions (each action counts its own). */
export function filterPackets(f: TcFilterJson): number {
  return Math.max(0, ...(f.options?.actions ?? []).map((a) => a.stats?.packets ?? 0));
}
