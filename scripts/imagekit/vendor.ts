// The native addons a package ships beside the bundle (esbuild leaves `netlink`
// and `koffi` external): only the target architecture's prebuilt binary plus
// the JS that loads it, laid out as node_modules so Node resolves them from
// the bundle's directory exactly as it does in the repo.
//
// netlink carries every linux prebuild in its npm package. koffi's binaries
// live in per-platform optional packages (@koromix/koffi-linux-x64, …), and
// npm installs only the one of the build machine; another architecture's comes
// from a tarball cache, fetched once with `npm pack` and checked against the
// sha512 integrity in package-lock.json (the only network use; builds are offline).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import type { DebFile } from './deb.ts';

const run = promisify(execFile);

/** Debian architecture → Node's process.arch. */
export const NODE_ARCH: Readonly<Record<string, string>> = { amd64: 'x64', arm64: 'arm64' };

export function nodeArch(debArch: string): string {
  const a = NODE_ARCH[debArch];
  if (!a) throw new Error(`unsupported architecture ${debArch} (supported: ${Object.keys(NODE_ARCH).join(', ')})`);
  return a;
}

export interface LockEntry {
  readonly name: string;
  readonly version: string;
  readonly integrity: string;
}

/** A package's entry in package-lock.json (lockfile v2/v3 `packages`). */
export function lockEntry(lock: unknown, name: string): LockEntry {
  const pkgs = (lock as { packages?: Record<string, { version?: string; integrity?: string }> }).packages ?? {};
  const e = pkgs[`node_modules/${name}`];
  if (!e?.version || !e.integrity) throw new Error(`package-lock.json has no version/integrity for ${name}`);
  return { name, version: e.version, integrity: e.integrity };
}

/** Subresource-integrity string (npm's `integrity`) of some bytes, for its algorithm. */
export function integrityOf(data: Buffer, algo = 'sha512'): string {
  return `${algo}-${createHash(algo).update(data).digest('base64')}`;
}

export function koffiPlatformName(debArch: string): string {
  return `@koromix/koffi-linux-${nodeArch(debArch)}`;
}

/** `@koromix/koffi-linux-arm64@3.3.4` → `koromix-koffi-linux-arm64-3.3.4.tgz` (npm pack's name). */
export function tarballName(e: LockEntry): string {
  return `${e.name.replace(/^@/, '').replace('/', '-')}-${e.version}.tgz`;
}

async function verified(path: string, e: LockEntry): Promise<boolean> {
  if (!existsSync(path)) return false;
  const algo = e.integrity.split('-')[0] ?? 'sha512';
  return integrityOf(await readFile(path), algo) === e.integrity;
}

/** Downloads `e` into `cacheDir` with `npm pack` unless a verified copy is there. Returns its path. */
export async function fetchTarball(cacheDir: string, e: LockEntry): Promise<string> {
  const dst = join(cacheDir, tarballName(e));
  if (await verified(dst, e)) return dst;
  await mkdir(cacheDir, { recursive: true });
  const tmp = await mkdtemp(join(cacheDir, '.fetch-'));
  try {
    await run('npm', ['pack', `${e.name}@${e.version}`, '--pack-destination', tmp, '--silent'], { timeout: 120_000 });
    const got = join(tmp, tarballName(e));
    if (!(await verified(got, e))) throw new Error(`${e.name}@${e.version}: downloaded tarball does not match package-lock.json integrity`);
    await rename(got, dst);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return dst;
}

/**
 * Directory holding koffi's platform package for `debArch`: node_modules when npm
 * installed it here (same version as the lock), else the verified cached tarball
 * unpacked under `work`. Offline; throws with the fix when the tarball is missing.
 */
export async function koffiPlatformDir(repo: string, lock: unknown, debArch: string, cacheDir: string, work: string): Promise<string> {
  const e = lockEntry(lock, koffiPlatformName(debArch));
  const installed = join(repo, 'node_modules', e.name);
  if (existsSync(join(installed, 'package.json'))) {
    const v = (JSON.parse(await readFile(join(installed, 'package.json'), 'utf8')) as { version?: string }).version;
    if (v === e.version) return installed;
  }
  const tgz = join(cacheDir, tarballName(e));
  if (!(await verified(tgz, e))) {
    throw new Error(`${e.name}@${e.version} is not in ${cacheDir} (or fails its integrity check): run scripts/build-image --fetch once`);
  }
  const dir = join(work, `${e.name.replace('/', '+')}-${e.version}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await run('tar', ['-xzf', tgz, '-C', dir, '--no-same-owner']);
  return join(dir, 'package');
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const ent of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, ent.name);
    if (ent.isDirectory()) out.push(...(await walk(p)));
    else if (ent.isFile()) out.push(p);
  }
  return out.sort();
}

/** Files of one npm package under `pkgDir` that `keep` selects (relative paths), placed at `dest`. */
async function select(pkgDir: string, dest: string, keep: (rel: string) => boolean): Promise<DebFile[]> {
  const files = (await walk(pkgDir)).map((abs) => ({ abs, rel: relative(pkgDir, abs) })).filter((f) => keep(f.rel));
  return files.map((f) => ({ path: `${dest}/${f.rel}`, mode: 0o644, content: { file: f.abs } }));
}

/**
 * netlink (+ node-gyp-build, which loads its prebuild) and koffi (+ its platform
 * package) for `debArch`, under `${libDir}/node_modules`. Only that
 * architecture's glibc binaries; no sources, typings, maps or docs.
 */
export async function addonFiles(repo: string, debArch: string, libDir: string, koffiPlatform: string): Promise<DebFile[]> {
  const na = nodeArch(debArch);
  const nm = join(repo, 'node_modules');
  const dest = `${libDir}/node_modules`;
  const files = [
    ...(await select(join(nm, 'netlink'), `${dest}/netlink`, (r) =>
      r === 'package.json' || r === 'LICENSE' || (r.startsWith('dist/') && r.endsWith('.js')) || r === `prebuilds/linux-${na}/node.napi.node`)),
    ...(await select(join(nm, 'node-gyp-build'), `${dest}/node-gyp-build`, (r) =>
      ['package.json', 'LICENSE', 'index.js', 'node-gyp-build.js'].includes(r))),
    ...(await select(join(nm, 'koffi'), `${dest}/koffi`, (r) =>
      ['package.json', 'LICENSE.txt', 'index.js', 'index.cjs', 'src/koffi/index.js', 'src/koffi/index.cjs', 'src/koffi/src/static.js', 'src/koffi/src/static.cjs'].includes(r))),
    ...(await select(koffiPlatform, `${dest}/@koromix/koffi-linux-${na}`, (r) =>
      r === 'package.json' || r === 'index.js' || r === `linux_${na}/koffi.node`)),
  ];
  for (const must of [`netlink/prebuilds/linux-${na}/node.napi.node`, `@koromix/koffi-linux-${na}/linux_${na}/koffi.node`, 'koffi/src/koffi/index.cjs']) {
    if (!files.some((f) => f.path === `${dest}/${must}`)) throw new Error(`native addon file missing: ${must}`);
  }
  return files;
}

/** Highest GLIBC_x.y symbol version the ELF files need (readelf -V), e.g. "2.25". */
export async function glibcFloor(elfFiles: readonly string[]): Promise<string> {
  let best = [2, 17];
  for (const f of elfFiles) {
    const { stdout } = await run('readelf', ['-V', '--wide', f], { maxBuffer: 16 << 20 });
    for (const m of stdout.matchAll(/GLIBC_(\d+)\.(\d+)/g)) {
      const v = [Number(m[1]), Number(m[2])];
      if (v[0]! > best[0]! || (v[0] === best[0] && v[1]! > best[1]!)) best = v;
    }
  }
  return best.join('.');
}
