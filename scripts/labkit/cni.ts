// The lab's container runtime, as far as networking goes: host-shim installed as
// a CNI plugin for each host (binary + conflist), and CNI ADD/DEL/CHECK/STATUS
// run the way containerd runs them — the plugin exec'd inside the host's netns
// with CNI_* in the environment and the plugin's network configuration on stdin.
import { spawn } from 'node:child_process';
import { copyFileSync, chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { REPO_ROOT } from './chassis.ts';
import { apiUrl } from './plan.ts';
import { caPath, pemPair } from './pki.ts';
import type { LabRun } from './run.ts';
import type { DpuState } from './state.ts';

/** The network name in each host's conflist. */
export const CNI_NETWORK = 'dpu';
export const CNI_VERSION = '1.1.0';
const SHIM_WRAPPER = join(REPO_ROOT, 'host-shim/bin/dpu-host-shim');

export const cniBinDir = (run: LabRun): string => join(run.state.dir, 'cni/bin');
export const conflistPath = (run: LabRun, k: number): string => join(run.state.dir, `host${k}`, 'net.d', '10-dpu.conflist');
export const shimStateDir = (run: LabRun, k: number): string => join(run.state.dir, `host${k}`, 'cni-state');
export const sysfsRoot = (run: LabRun, k: number): string => join(run.state.dir, `host${k}`, 'sys');

/**
 * Installs host-shim as a node would (README "Install"): the wrapper script copied
 * into the CNI bin dir with the release bundle next to it, built from the current
 * source (same esbuild options as scripts/build.ts), so a `lab up` never runs a
 * stale dist/. DPU_LAB_SHIM=source runs the repo's wrapper on the TypeScript source
 * instead (slower start-up: ~1 s against ~0.3 s per CNI call).
 */
export async function installShim(run: LabRun): Promise<void> {
  const dir = cniBinDir(run);
  mkdirSync(dir, { recursive: true });
  if (process.env['DPU_LAB_SHIM'] === 'source') return;
  await build({
    entryPoints: [join(REPO_ROOT, 'host-shim/src/main.ts')],
    outfile: join(dir, 'dpu-host-shim.mjs'),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    external: ['netlink', 'koffi'],
    banner: { js: "#!/usr/bin/env node\nimport { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    legalComments: 'none',
    logLevel: 'warning',
  });
  copyFileSync(SHIM_WRAPPER, join(dir, 'dpu-host-shim'));
  chmodSync(join(dir, 'dpu-host-shim'), 0o755);
}

/** The plugin binary this run execs (the installed copy, or the repo's wrapper). */
export function shimBinary(run: LabRun): string {
  const installed = join(cniBinDir(run), 'dpu-host-shim');
  return process.env['DPU_LAB_SHIM'] !== 'source' && existsSync(installed) ? installed : SHIM_WRAPPER;
}

/** hostK's conflist: one network, one plugin (host-shim) pointed at dpuK's host API. */
export function conflist(run: LabRun, d: DpuState): Record<string, unknown> {
  return {
    cniVersion: CNI_VERSION,
    name: CNI_NETWORK,
    plugins: [
      {
        type: 'dpu-host-shim',
        agentUrl: apiUrl(d.k),
        tls: { ...pemPair(run, `host${d.k}`), ca: caPath(run) },
        pf: 'pf0',
        sysfsRoot: sysfsRoot(run, d.k),
        stateDir: shimStateDir(run, d.k),
        timeouts: { addMs: 30_000, delMs: 15_000, checkMs: 10_000, statusMs: 2_000, gcMs: 15_000 },
      },
    ],
  };
}

export function writeConflist(run: LabRun, d: DpuState): void {
  const p = conflistPath(run, d.k);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, `${JSON.stringify(conflist(run, d), null, 2)}\n`);
}

/** What libcni hands one plugin of a conflist on stdin: the plugin entry plus the list's name and version. */
export function pluginConf(run: LabRun, d: DpuState, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const list = conflist(run, d);
  const [plugin] = list['plugins'] as Record<string, unknown>[];
  return { cniVersion: list['cniVersion'], name: list['name'], ...plugin, ...extra };
}

export interface CniPod {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly sandbox: string;
  /** Path of the pod netns (`/run/netns/<name>`); may be '' for DEL. */
  readonly netnsPath: string;
}

export interface CniRun {
  /** Plugin exit code (0 = success). */
  readonly exit: number;
  /** The JSON the plugin printed (result or error), if any. */
  readonly out: Record<string, unknown> | undefined;
  readonly stderr: string;
  readonly ms: number;
}

/** CNI error fields of a failed run, for assertions and messages. */
export function cniError(r: CniRun): { code: number; msg: string; details: string } | undefined {
  if (r.exit === 0) return undefined;
  return { code: Number(r.out?.['code'] ?? -1), msg: String(r.out?.['msg'] ?? ''), details: String(r.out?.['details'] ?? r.stderr.trim()) };
}

export class CniFailure extends Error {
  constructor(
    readonly command: string,
    readonly code: number,
    readonly details: string,
    msg: string,
  ) {
    super(`CNI ${command} failed with code ${code}: ${msg}${details ? ` (${details})` : ''}`);
    this.name = 'CniFailure';
  }
}

/**
 * Runs the plugin once, as the runtime does. same as:
 *   ip netns exec <p>-hostK env CNI_COMMAND=ADD CNI_CONTAINERID=… CNI_NETNS=… CNI_IFNAME=eth0
 *     CNI_ARGS='IgnoreUnknown=1;K8S_POD_NAMESPACE=…;K8S_POD_NAME=…;K8S_POD_UID=…' dpu-host-shim < netconf
 * Bounded by `timeoutMs` (SIGKILL after). Never throws for a plugin error: see `exit`/`out`.
 */
export function runCni(
  run: LabRun,
  d: DpuState,
  command: 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC' | 'VERSION',
  pod: CniPod | undefined,
  opts: { ifname?: string; conf?: Record<string, unknown>; timeoutMs?: number } = {},
): Promise<CniRun> {
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: command,
    CNI_PATH: cniBinDir(run),
  };
  if (process.env['DPU_LAB_SHIM'] === 'source') env['DPU_HOST_SHIM_FROM_SOURCE'] = '1';
  if (pod) {
    env['CNI_CONTAINERID'] = pod.sandbox;
    env['CNI_NETNS'] = pod.netnsPath;
    env['CNI_IFNAME'] = opts.ifname ?? 'eth0';
    env['CNI_ARGS'] = `IgnoreUnknown=1;K8S_POD_NAMESPACE=${pod.namespace};K8S_POD_NAME=${pod.name};K8S_POD_UID=${pod.uid}`;
  }
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', d.hostNs, shimBinary(run)], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let out: Record<string, unknown> | undefined;
      try {
        out = stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : undefined;
      } catch {
        out = { unparsable: stdout };
      }
      resolve({ exit: code ?? (signal ? 128 : 1), out, stderr, ms: performance.now() - t0 });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(JSON.stringify(opts.conf ?? pluginConf(run, d)));
  });
}
