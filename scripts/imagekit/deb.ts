// A binary .deb as data (what goes where, with which mode), the control-area
// texts computed from it (pure), and one function that stages it and calls
// dpkg-deb. Reproducible by construction: fixed modes, every mtime =
// SOURCE_DATE_EPOCH, root:root (dpkg-deb --root-owner-group), sorted
// md5sums, gzip -n, xz single-threaded; dpkg-deb itself sorts the tar members
// and stamps the ar header with SOURCE_DATE_EPOCH.
// Same as, by hand: dpkg-deb --root-owner-group -Zxz --build ROOT OUT.deb
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, copyFile, lutimes, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';

const run = promisify(execFile);

export type Content = { readonly file: string } | { readonly data: string | Buffer };

export interface DebFile {
  /** Absolute path inside the package, e.g. /usr/bin/dpu-agent. */
  readonly path: string;
  readonly mode: 0o644 | 0o755;
  readonly content: Content;
}

export interface DebSymlink {
  readonly path: string;
  readonly target: string;
}

export interface DebSpec {
  readonly name: string;
  readonly version: string;
  /** Debian architecture: amd64, arm64 (or all). */
  readonly arch: string;
  readonly maintainer: string;
  readonly section: string;
  readonly priority: 'optional';
  readonly homepage?: string;
  readonly depends: readonly string[];
  readonly recommends?: readonly string[];
  /** Short description (one line) and the long one (paragraphs, no leading spaces). */
  readonly summary: string;
  readonly description: string;
  readonly files: readonly DebFile[];
  readonly symlinks?: readonly DebSymlink[];
  /** Paths under /etc that dpkg must treat as conffiles (never clobbered when edited). */
  readonly conffiles?: readonly string[];
  /** Maintainer scripts by name (postinst, prerm, postrm, …). */
  readonly scripts?: Readonly<Record<string, Content>>;
}

/** Bytes of a Content. */
export async function bytes(c: Content): Promise<Buffer> {
  return 'file' in c ? readFile(c.file) : Buffer.from(c.data);
}

/** Every directory the files and links need, parents first (sorted). */
export function directories(paths: readonly string[]): string[] {
  const dirs = new Set<string>();
  for (const p of paths) {
    for (let d = dirname(p); d !== '/' && !dirs.has(d); d = dirname(d)) dirs.add(d);
  }
  return [...dirs].sort();
}

/**
 * Installed-Size in KiB the way dpkg-gencontrol counts it: each regular file's
 * size rounded up to a KiB, plus 1 for every directory and symlink.
 */
export function installedSizeKiB(fileSizes: readonly number[], otherEntries: number): number {
  return fileSizes.reduce((sum, s) => sum + Math.ceil(s / 1024), 0) + otherEntries;
}

/** deb-control(5) text. */
export function controlText(spec: DebSpec, installedSize: number): string {
  const lines = [
    `Package: ${spec.name}`,
    `Version: ${spec.version}`,
    `Architecture: ${spec.arch}`,
    `Maintainer: ${spec.maintainer}`,
    `Installed-Size: ${installedSize}`,
  ];
  if (spec.depends.length) lines.push(`Depends: ${spec.depends.join(', ')}`);
  if (spec.recommends?.length) lines.push(`Recommends: ${spec.recommends.join(', ')}`);
  lines.push(`Section: ${spec.section}`, `Priority: ${spec.priority}`);
  if (spec.homepage) lines.push(`Homepage: ${spec.homepage}`);
  lines.push(`Description: ${spec.summary}`);
  // Long description: one leading space per line, " ." for an empty line.
  for (const l of spec.description.trimEnd().split('\n')) lines.push(l.trim() === '' ? ' .' : ` ${l}`);
  return `${lines.join('\n')}\n`;
}

/** DEBIAN/md5sums: "<md5>  <path without leading slash>", sorted by path. */
export function md5sumsText(files: readonly { path: string; data: Buffer }[]): string {
  return [...files]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((f) => `${createHash('md5').update(f.data).digest('hex')}  ${f.path.slice(1)}\n`)
    .join('');
}

/** RFC 2822 date of a SOURCE_DATE_EPOCH, as debian/changelog wants it. */
export function rfc2822(epochSeconds: number): string {
  const d = new Date(epochSeconds * 1000);
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getUTCDay()];
  const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getUTCMonth()];
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${day}, ${p(d.getUTCDate())} ${mon} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** A one-entry Debian changelog for a native package built from a git commit. */
export function changelogText(name: string, version: string, maintainer: string, epochSeconds: number, note: string): string {
  return `${name} (${version}) unstable; urgency=medium\n\n  * ${note}\n\n -- ${maintainer}  ${rfc2822(epochSeconds)}\n`;
}

/** gzip without name or timestamp (gzip -9n). */
export function gzipN(data: Buffer | string): Buffer {
  const gz = gzipSync(Buffer.from(data), { level: 9 });
  gz.writeUInt32LE(0, 4); // MTIME: zlib writes 0 already; keep it explicit
  gz[9] = 3; // OS = Unix, whatever zlib's build says
  return gz;
}

export interface BuiltDeb {
  readonly path: string;
  readonly sha256: string;
  readonly size: number;
}

/**
 * Stages `spec` under `work` and builds `${out}/${name}_${version}_${arch}.deb`.
 * `epoch` is SOURCE_DATE_EPOCH (also passed to dpkg-deb).
 */
export async function buildDeb(spec: DebSpec, out: string, work: string, epoch: number): Promise<BuiltDeb> {
  const root = join(work, `${spec.name}_${spec.arch}`);
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  await chmod(root, 0o755);
  const links = spec.symlinks ?? [];
  const dirs = directories([...spec.files.map((f) => f.path), ...links.map((l) => l.path)]);
  for (const d of dirs) {
    await mkdir(join(root, d), { recursive: true });
    await chmod(join(root, d), 0o755);
  }
  const payload: { path: string; data: Buffer }[] = [];
  for (const f of spec.files) {
    const dst = join(root, f.path);
    if ('file' in f.content) await copyFile(f.content.file, dst);
    else await writeFile(dst, f.content.data);
    await chmod(dst, f.mode);
    payload.push({ path: f.path, data: await readFile(dst) });
  }
  for (const l of links) await symlink(l.target, join(root, l.path));

  const size = installedSizeKiB(payload.map((p) => p.data.length), dirs.length + links.length);
  const control = join(root, 'DEBIAN');
  await mkdir(control);
  await chmod(control, 0o755);
  await writeFile(join(control, 'control'), controlText(spec, size));
  await writeFile(join(control, 'md5sums'), md5sumsText(payload));
  const controlFiles = ['control', 'md5sums'];
  if (spec.conffiles?.length) {
    await writeFile(join(control, 'conffiles'), spec.conffiles.map((c) => `${c}\n`).join(''));
    controlFiles.push('conffiles');
  }
  for (const c of controlFiles) await chmod(join(control, c), 0o644);
  for (const [name, content] of Object.entries(spec.scripts ?? {})) {
    await writeFile(join(control, name), await bytes(content));
    await chmod(join(control, name), 0o755);
  }

  // Every mtime = SOURCE_DATE_EPOCH (dpkg-deb only clamps newer ones).
  const when = new Date(epoch * 1000);
  const all = [
    ...spec.files.map((f) => f.path),
    ...links.map((l) => l.path),
    ...dirs,
    '/DEBIAN',
    ...controlFiles.map((c) => `/DEBIAN/${c}`),
    ...Object.keys(spec.scripts ?? {}).map((s) => `/DEBIAN/${s}`),
  ];
  for (const p of all) await lutimes(join(root, p), when, when);
  await lutimes(root, when, when);

  await mkdir(out, { recursive: true });
  const deb = join(out, `${spec.name}_${spec.version}_${spec.arch}.deb`);
  await run('dpkg-deb', ['--root-owner-group', '-Zxz', '-z6', '--threads-max=1', '--build', root, deb], {
    env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch), TZ: 'UTC', LC_ALL: 'C.UTF-8' },
  });
  const data = await readFile(deb);
  return { path: deb, sha256: createHash('sha256').update(data).digest('hex'), size: data.length };
}
