// Debian 12 root filesystems for package tests, built with debootstrap once per
// machine and cached as tarballs under /var/cache/dpu-agent/rootfs/ (override:
// $DPU_AGENT_CACHE), then unpacked into a temp dir per test run.
//
// Contract:
// - `cachedRootfs(spec)` returns the tarball, building it when missing (cold:
//   debootstrap from the mirror in /etc/apt/sources.list(.d), ~1 min). The key
//   hashes the recipe, so changing `include` builds a new one (and drops the old). Written to a temp
//   name and renamed: concurrent builders cannot leave a half tarball.
// - `native` specs are full minbase chroots (packages configured, usable with
//   chroot). `foreign` specs are sysroots for another architecture: debootstrap
//   --foreign only downloads, so every .deb is unpacked with dpkg-deb -x (no
//   maintainer scripts ran); good for `qemu-aarch64-static -L SYSROOT`.
// - `inChroot` runs a command in a fresh mount + pid namespace: /proc is mounted
//   there and vanishes with it, and every process started inside (e.g. a
//   daemon that detached) is killed when the command ends. Nothing to unmount.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const CACHE_DIR = process.env['DPU_AGENT_CACHE'] ?? '/var/cache/dpu-agent';

export interface RootfsSpec {
  readonly arch: 'amd64' | 'arm64';
  readonly kind: 'native' | 'foreign';
  readonly include: readonly string[];
}

export interface CachedRootfs {
  readonly tarball: string;
  /** true when this call had to build it. */
  readonly cold: boolean;
  readonly buildSeconds: number;
}

/** Bumped when the way a rootfs is made changes (invalidates every cached tarball). */
const RECIPE = 1;

/** The Debian mirror apt uses here (deb822 or one-line sources), else deb.debian.org. */
export async function debianMirror(): Promise<string> {
  const files: string[] = [];
  if (existsSync('/etc/apt/sources.list')) files.push('/etc/apt/sources.list');
  if (existsSync('/etc/apt/sources.list.d')) {
    for (const f of (await readdir('/etc/apt/sources.list.d')).sort()) {
      if (f.endsWith('.list') || f.endsWith('.sources')) files.push(join('/etc/apt/sources.list.d', f));
    }
  }
  for (const f of files) {
    const text = await readFile(f, 'utf8');
    const deb822 = /^URIs:\s*(\S+)[\s\S]*?^Suites:.*\bbookworm\b/m.exec(text);
    if (deb822?.[1] && !deb822[1].includes('security')) return deb822[1];
    const line = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s/m.exec(text);
    if (line?.[1]) return line[1];
  }
  return 'http://deb.debian.org/debian';
}

export function rootfsKey(spec: RootfsSpec): string {
  const h = createHash('sha256').update(JSON.stringify({ RECIPE, ...spec, include: [...spec.include].sort() })).digest('hex').slice(0, 12);
  return `bookworm-${spec.arch}-${spec.kind}-${h}`;
}

export async function cachedRootfs(spec: RootfsSpec): Promise<CachedRootfs> {
  const dir = join(CACHE_DIR, 'rootfs');
  const tarball = join(dir, `${rootfsKey(spec)}.tar.gz`);
  if (existsSync(tarball)) return { tarball, cold: false, buildSeconds: 0 };
  const started = Date.now();
  await mkdir(dir, { recursive: true });
  const work = await mkdtemp(join(dir, '.build-'));
  try {
    const root = join(work, 'root');
    const mirror = await debianMirror();
    const args = ['--variant=minbase', `--arch=${spec.arch}`];
    if (spec.include.length) args.push(`--include=${spec.include.join(',')}`);
    if (spec.kind === 'foreign') args.push('--foreign');
    args.push('bookworm', root, mirror);
    try {
      await run('debootstrap', args, { maxBuffer: 64 << 20, timeout: 900_000 });
    } catch (err) {
      const log = await readFile(join(root, 'debootstrap/debootstrap.log'), 'utf8').catch(() => '');
      throw new Error(`debootstrap ${args.join(' ')} failed: ${(err as Error).message}\n${log.slice(-2000)}`, { cause: err });
    }
    const archives = join(root, 'var/cache/apt/archives');
    if (spec.kind === 'foreign') {
      // Unpack everything debootstrap fetched (the --include'd packages were only downloaded).
      for (const deb of (await readdir(archives)).filter((f) => f.endsWith('.deb')).sort()) {
        await run('dpkg-deb', ['-x', join(archives, deb), root]);
      }
      await rm(join(root, 'debootstrap'), { recursive: true, force: true });
    }
    for (const f of (await readdir(archives)).filter((f) => f.endsWith('.deb'))) await rm(join(archives, f));
    const tmp = join(work, 'rootfs.tar.gz');
    await run('tar', ['-C', root, '--numeric-owner', '--use-compress-program=gzip -1', '-cf', tmp, '.'], { maxBuffer: 16 << 20 });
    await rename(tmp, tarball);
    // An older recipe's tarball for the same arch/kind is dead weight now.
    const prefix = `bookworm-${spec.arch}-${spec.kind}-`;
    for (const f of await readdir(dir)) {
      if (f.startsWith(prefix) && f.endsWith('.tar.gz') && join(dir, f) !== tarball) await rm(join(dir, f), { force: true });
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { tarball, cold: true, buildSeconds: (Date.now() - started) / 1000 };
}

/** Unpacks a cached rootfs into a new temp dir; returns the dir (caller removes it). */
export async function unpackRootfs(tarball: string, prefix = 'rootfs-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await run('tar', ['-C', dir, '--numeric-owner', '-xzf', tarball], { maxBuffer: 16 << 20 });
  return dir;
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * `argv` inside `root` (chroot) in its own mount and pid namespaces, with a clean
 * environment plus `env`. Never throws for a non-zero exit: returns the code.
 */
export async function inChroot(
  root: string,
  argv: readonly string[],
  opts: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  const env = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: '/root',
    LC_ALL: 'C.UTF-8',
    DEBIAN_FRONTEND: 'noninteractive',
    ...opts.env,
  };
  const script = 'mount -t proc proc "$0/proc" && exec chroot "$0" /usr/bin/env -i "$@"';
  const full = ['--mount', '--pid', '--fork', '--propagation', 'private', '--', 'sh', '-c', script, root,
    ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv];
  return runCapture('unshare', full, { ...(opts.input !== undefined ? { input: opts.input } : {}), ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) });
}

/** execFile that returns the exit code instead of throwing, with an optional stdin. */
export function runCapture(cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { maxBuffer: 64 << 20, timeout: opts.timeoutMs ?? 120_000, env: opts.env ?? process.env }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 128) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}
