// scripts/build-image: Debian packages (and the BFB bf.cfg fragment) for BlueField
// images, built offline and reproducibly from the repo. See images/bluefield/README.md.
//
//   scripts/build-image [--arch arm64,amd64] [--version V] [--out DIR] [--fetch] [--fetch-only]
//
// Output under --out (default dist/):
//   dpu-agent_V_ARCH.deb       agent bundle + netlink/koffi for ARCH, launcher, unit, conffile
//   dpu-host-shim_V_ARCH.deb   CNI plugin (only once host-shim/src/main.ts exists)
//   bf.cfg                     BFB hook embedding the arm64 agent package (bf-ARCH.cfg for others)
//   SHA256SUMS
// Same commit + same lock + same cache → same bytes (SOURCE_DATE_EPOCH = last commit).
// Network: only --fetch/--fetch-only (npm pack of koffi's per-arch package for an
// architecture npm did not install here), verified against package-lock.json.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { copyrightText, runtimePackages } from './copyright.ts';
import { type DebFile, type DebSpec, buildDeb, changelogText, gzipN } from './deb.ts';
import { manPage } from './manpage.ts';
import { addonFiles, fetchTarball, glibcFloor, koffiPlatformDir, koffiPlatformName, lockEntry, nodeArch } from './vendor.ts';

const run = promisify(execFile);
const repo = new URL('../../', import.meta.url).pathname.replace(/\/$/, '');
const img = join(repo, 'images/bluefield');

const MAINTAINER = 'dpu-agent maintainers <dpu-agent@lists.example.org>';
/** Oldest Node the bundle runs on: diagnostics_channel.tracingChannel (pino, fastify) arrived in 18.19. */
const NODEJS_DEP = 'nodejs (>= 18.19)';

const USAGE = `usage: scripts/build-image [--arch arm64,amd64] [--version V] [--out DIR] [--cache DIR] [--fetch] [--fetch-only]

  --arch LIST     Debian architectures to build (default arm64,amd64)
  --version V     package version (default: package.json's)
  --out DIR       output directory (default dist/)
  --cache DIR     npm tarball cache (default $DPU_AGENT_CACHE or /var/cache/dpu-agent)
  --fetch         download missing per-arch npm tarballs first (npm pack; checked against package-lock.json)
  --fetch-only    only that
`;

interface Options {
  arches: string[];
  version: string;
  out: string;
  cache: string;
  fetch: boolean;
  fetchOnly: boolean;
}

async function options(argv: string[]): Promise<Options> {
  const { values } = parseArgs({
    args: argv,
    options: {
      arch: { type: 'string', default: 'arm64,amd64' },
      version: { type: 'string' },
      out: { type: 'string', default: join(repo, 'dist') },
      cache: { type: 'string', default: join(process.env['DPU_AGENT_CACHE'] ?? '/var/cache/dpu-agent', 'npm') },
      fetch: { type: 'boolean', default: false },
      'fetch-only': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const arches = values.arch.split(',').map((a) => a.trim()).filter(Boolean);
  for (const a of arches) nodeArch(a);
  const pkg = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8')) as { version: string };
  const version = values.version ?? pkg.version;
  // deb-version(7): upstream part starts with a digit; no revision (native package).
  if (!/^\d[A-Za-z0-9.+~]*$/.test(version)) throw new Error(`--version ${JSON.stringify(version)} is not a Debian native version`);
  return { arches, version, out: values.out, cache: values.cache, fetch: values.fetch || values['fetch-only'], fetchOnly: values['fetch-only'] };
}

async function git(...args: string[]): Promise<string> {
  return (await run('git', args, { cwd: repo })).stdout.trim();
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** External packages (esbuild `external`) a bundle actually loads. */
export function externalsOf(bundle: string): string[] {
  const found = new Set<string>();
  for (const m of bundle.matchAll(/(?:\bfrom\s*|\brequire\(\s*|\bimport\(\s*)["'](netlink|koffi)["']/g)) found.add(m[1]!);
  return [...found].sort();
}

interface Ctx {
  readonly opts: Options;
  readonly epoch: number;
  readonly describe: string;
  readonly lock: unknown;
  readonly work: string;
  readonly bundleDir: string;
}

async function nativeDeps(ctx: Ctx, arch: string, libDir: string): Promise<{ files: DebFile[]; depends: string[] }> {
  const koffiDir = await koffiPlatformDir(repo, ctx.lock, arch, ctx.opts.cache, ctx.work);
  const files = await addonFiles(repo, arch, libDir, koffiDir);
  const elf = files.filter((f) => f.path.endsWith('.node')).map((f) => (f.content as { file: string }).file);
  return { files, depends: [`libc6 (>= ${await glibcFloor(elf)})`, 'libgcc-s1', 'libstdc++6'] };
}

function year(ctx: Ctx): number {
  return new Date(ctx.epoch * 1000).getUTCFullYear();
}

function docFiles(ctx: Ctx, name: string, copyright: string, note: string): DebFile[] {
  return [
    { path: `/usr/share/doc/${name}/copyright`, mode: 0o644, content: { data: copyright } },
    {
      path: `/usr/share/doc/${name}/changelog.gz`,
      mode: 0o644,
      content: { data: gzipN(changelogText(name, ctx.opts.version, MAINTAINER, ctx.epoch, note)) },
    },
  ];
}

async function agentSpec(ctx: Ctx, arch: string): Promise<DebSpec> {
  const lib = '/usr/lib/dpu-agent';
  const bundle = join(ctx.bundleDir, 'dpu-agent.mjs');
  const native = await nativeDeps(ctx, arch, lib);
  const help = (await run(process.execPath, [bundle, '--help'], { cwd: ctx.bundleDir })).stdout;
  const bundleVersion = (await run(process.execPath, [bundle, '--version'], { cwd: ctx.bundleDir })).stdout.trim();
  const man = manPage({
    name: 'dpu-agent',
    section: 8,
    version: bundleVersion,
    date: new Date(ctx.epoch * 1000).toISOString().slice(0, 10),
    summary: 'owns OVS br-int, the OVN chassis and the VF pool on a BlueField DPU',
    help,
    files: [
      { path: '/etc/dpu-agent/agent.json', what: 'configuration (a conffile: local edits survive upgrades)' },
      { path: '/etc/default/dpu-agent', what: 'per-DPU environment overrides read by dpu-agent.service (written by the BFB hook)' },
      { path: '/etc/dpu-agent/pki/', what: 'TLS keys and certificates named by the configuration' },
      { path: '/usr/lib/dpu-agent/selftest.mjs', what: 'native addon self-test: node /usr/lib/dpu-agent/selftest.mjs' },
    ],
    seeAlso: ['systemctl(1)', 'ovs-vsctl(8)', 'ovn-controller(8)', '/usr/share/doc/dpu-agent/README.md'],
  });
  const bundled = runtimePackages(ctx.lock, (n) => n === koffiPlatformName(arch));
  const copyright = copyrightText('dpu-agent', year(ctx), bundled, 'usr/lib/dpu-agent/dpu-agent.mjs', ['usr/lib/dpu-agent/node_modules/*']);
  const files: DebFile[] = [
    { path: '/usr/bin/dpu-agent', mode: 0o755, content: { file: join(img, 'agent/dpu-agent') } },
    { path: `${lib}/dpu-agent.mjs`, mode: 0o755, content: { file: bundle } },
    { path: `${lib}/dpu-agent-ready.mjs`, mode: 0o644, content: { file: join(img, 'agent/dpu-agent-ready.mjs') } },
    { path: `${lib}/selftest.mjs`, mode: 0o644, content: { file: join(img, 'agent/selftest.mjs') } },
    ...native.files,
    { path: '/lib/systemd/system/dpu-agent.service', mode: 0o644, content: { file: join(img, 'agent/dpu-agent.service') } },
    { path: '/etc/dpu-agent/agent.json', mode: 0o644, content: { file: join(img, 'agent/agent.json') } },
    { path: '/usr/share/man/man8/dpu-agent.8.gz', mode: 0o644, content: { data: gzipN(man) } },
    { path: '/usr/share/lintian/overrides/dpu-agent', mode: 0o644, content: { file: join(img, 'agent/lintian-overrides') } },
    { path: '/usr/share/doc/dpu-agent/README.md', mode: 0o644, content: { file: join(img, 'README.md') } },
    { path: '/usr/share/doc/dpu-agent/examples/dpu-agent.default', mode: 0o644, content: { file: join(img, 'agent/dpu-agent.default') } },
    { path: '/usr/share/doc/dpu-agent/examples/prometheus.yml', mode: 0o644, content: { file: join(img, 'monitoring/prometheus.yml') } },
    { path: '/usr/share/doc/dpu-agent/examples/grafana-dashboard.json', mode: 0o644, content: { file: join(img, 'monitoring/grafana-dashboard.json') } },
    ...docFiles(ctx, 'dpu-agent', copyright, `Built from git ${ctx.describe} by scripts/build-image.`),
  ];
  return {
    name: 'dpu-agent',
    version: ctx.opts.version,
    arch,
    maintainer: MAINTAINER,
    section: 'net',
    priority: 'optional',
    depends: [NODEJS_DEP, ...native.depends, 'openvswitch-switch', 'ovn-host'],
    summary: 'DPU agent: OVS br-int, OVN chassis and VF pool on BlueField',
    description: [
      'Runs on the ARM cores of an NVIDIA BlueField DPU and alone owns Open vSwitch',
      'br-int, the OVN chassis identity, the VF representors and TC offload. The',
      'untrusted host reaches it only through the host API (mutual-TLS gRPC), via',
      'the dpu-host-shim CNI plugin.',
      '',
      'Configuration: /etc/dpu-agent/agent.json plus /etc/default/dpu-agent.',
    ].join('\n'),
    files,
    conffiles: ['/etc/dpu-agent/agent.json'],
    scripts: {
      postinst: { file: join(img, 'agent/postinst') },
      prerm: { file: join(img, 'agent/prerm') },
      postrm: { file: join(img, 'agent/postrm') },
    },
  };
}

async function shimSpec(ctx: Ctx, arch: string): Promise<DebSpec> {
  const lib = '/usr/lib/dpu-host-shim';
  const bundlePath = join(ctx.bundleDir, 'dpu-host-shim.mjs');
  const externals = externalsOf(await readFile(bundlePath, 'utf8'));
  // The host side stays minimal: addons only when the shim's bundle loads them.
  const native = externals.length ? await nativeDeps(ctx, arch, lib) : { files: [], depends: [] };
  const bundled = runtimePackages(ctx.lock, (n) => externals.length > 0 && n === koffiPlatformName(arch));
  const copyright = copyrightText('dpu-host-shim', year(ctx), bundled, 'usr/lib/dpu-host-shim/dpu-host-shim.mjs', native.files.length ? ['usr/lib/dpu-host-shim/node_modules/*'] : []);
  return {
    name: 'dpu-host-shim',
    version: ctx.opts.version,
    arch,
    maintainer: MAINTAINER,
    section: 'net',
    priority: 'optional',
    // ip (iproute2) and nsenter (util-linux, essential) move and configure the VF in the pod netns.
    depends: [NODEJS_DEP, ...native.depends, 'iproute2'],
    summary: 'CNI plugin asking a BlueField DPU agent for pod VFs',
    description: [
      'The only dpu-agent component on the (untrusted) host: a CNI plugin that asks',
      'the DPU agent, over mutual-TLS gRPC, for a VF for a pod already placed on',
      'this node and moves it into the pod. Installed as /opt/cni/bin/dpu-host-shim;',
      'an example network configuration is in /usr/share/doc/dpu-host-shim/examples.',
    ].join('\n'),
    files: [
      { path: '/opt/cni/bin/dpu-host-shim', mode: 0o755, content: { file: join(img, 'host-shim/dpu-host-shim') } },
      { path: `${lib}/dpu-host-shim.mjs`, mode: 0o755, content: { file: bundlePath } },
      ...native.files,
      { path: '/usr/share/doc/dpu-host-shim/README.md', mode: 0o644, content: { file: join(repo, 'host-shim/README.md') } },
      { path: '/usr/share/doc/dpu-host-shim/examples/10-dpu.conflist', mode: 0o644, content: { file: join(repo, 'host-shim/example.conflist') } },
      { path: '/usr/share/lintian/overrides/dpu-host-shim', mode: 0o644, content: { file: join(img, 'host-shim/lintian-overrides') } },
      ...docFiles(ctx, 'dpu-host-shim', copyright, `Built from git ${ctx.describe} by scripts/build-image.`),
    ],
  };
}

/** bf.cfg: the template with the agent package embedded (base64, 76 columns) and its sha256. */
export function renderBfCfg(template: string, v: { version: string; arch: string; deb: string; debBytes: Buffer }): string {
  const payload = v.debBytes.toString('base64').replace(/.{76}/g, '$&\n').replace(/\n$/, '');
  const subst: Record<string, string> = { VERSION: v.version, ARCH: v.arch, DEB: v.deb, SHA256: sha256(v.debBytes), PAYLOAD: payload };
  return template.replace(/@([A-Z0-9]+)@/g, (m, k: string) => subst[k] ?? m);
}

async function main(): Promise<void> {
  const opts = await options(process.argv.slice(2));
  const lock = JSON.parse(await readFile(join(repo, 'package-lock.json'), 'utf8')) as unknown;

  if (opts.fetch) {
    for (const arch of opts.arches) {
      const name = koffiPlatformName(arch);
      if (existsSync(join(repo, 'node_modules', name, 'package.json'))) continue;
      const path = await fetchTarball(opts.cache, lockEntry(lock, name));
      process.stderr.write(`fetched ${path}\n`);
    }
    if (opts.fetchOnly) return;
  }

  const epoch = Number(process.env['SOURCE_DATE_EPOCH'] ?? (await git('log', '-1', '--format=%ct')));
  if (!Number.isInteger(epoch) || epoch <= 0) throw new Error('SOURCE_DATE_EPOCH is not a positive integer');
  const describe = await git('describe', '--always', '--dirty', '--abbrev=12');
  // Under the repo (.run/ is ignored) so the bundle's external imports resolve
  // from the repo's node_modules when it is run for --help.
  await mkdir(join(repo, '.run'), { recursive: true });
  const work = await mkdtemp(join(repo, '.run', 'build-image-'));
  try {
    const bundleDir = join(work, 'bundle');
    await run(process.execPath, ['--import', 'tsx', join(repo, 'scripts/build.ts')], {
      cwd: repo,
      env: { ...process.env, DIST_DIR: bundleDir },
    });
    const ctx: Ctx = { opts, epoch, describe, lock, work, bundleDir };
    const shim = existsSync(join(bundleDir, 'dpu-host-shim.mjs'));
    if (!shim) process.stderr.write('note: host-shim/src/main.ts not there yet; no dpu-host-shim package\n');

    const built: { name: string; path: string }[] = [];
    for (const arch of opts.arches) {
      const agent = await buildDeb(await agentSpec(ctx, arch), opts.out, join(work, 'stage'), epoch);
      built.push({ name: agent.path.slice(opts.out.length + 1), path: agent.path });
      const deb = agent.path.slice(opts.out.length + 1);
      const cfg = renderBfCfg(await readFile(join(img, 'bf.cfg.in'), 'utf8'), {
        version: opts.version,
        arch,
        deb,
        debBytes: await readFile(agent.path),
      });
      const cfgName = arch === 'arm64' ? 'bf.cfg' : `bf-${arch}.cfg`;
      await writeFile(join(opts.out, cfgName), cfg);
      built.push({ name: cfgName, path: join(opts.out, cfgName) });
      if (shim) {
        const s = await buildDeb(await shimSpec(ctx, arch), opts.out, join(work, 'stage'), epoch);
        built.push({ name: s.path.slice(opts.out.length + 1), path: s.path });
      }
    }
    const sums: string[] = [];
    for (const b of built.sort((x, y) => (x.name < y.name ? -1 : 1))) {
      const data = await readFile(b.path);
      sums.push(`${sha256(data)}  ${b.name}`);
      process.stdout.write(`${b.name}\t${data.length}\t${sha256(data)}\n`);
    }
    await writeFile(join(opts.out, 'SHA256SUMS'), `${sums.join('\n')}\n`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`scripts/build-image: ${(err as Error).message}\n`);
    process.exitCode = 1;
  });
}
