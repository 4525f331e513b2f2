// BlueField image packaging (images/bluefield, scripts/build-image), end to end:
// build twice → same bytes; package metadata and contents; lintian; the unit
// (systemd-analyze verify + security score); install both amd64 packages into a
// debootstrap'ed Debian 12 chroot and run them on Debian's own nodejs; upgrade
// keeps an edited conffile and takes the restart path; purge; the bf.cfg hook
// against the chroot mounted at /mnt; the arm64 package under qemu-aarch64 with
// Debian's arm64 nodejs (version, config check, netlink + koffi self-test).
//
// Cost: warm ~1.5 min (rootfs tarballs cached under /var/cache/dpu-agent);
// cold adds the two debootstraps (~1.5 min, once per machine). Needs root.
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, lstatSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cachedRootfs, inChroot, runCapture, unpackRootfs } from '../helpers/rootfs.ts';

const run = promisify(execFile);
const repo = new URL('../../', import.meta.url).pathname.replace(/\/$/, '');
const pkg = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8')) as { version: string };
const V1 = pkg.version;
const V2 = `${pkg.version}+upgrade1`;
// What a DPU image has around the agent: node, OVS/OVN, systemd (for `systemd-analyze verify` in the
// tree the unit is installed into; it is not running), iproute2 for the host-shim package.
const AMD64_INCLUDE = ['nodejs', 'openvswitch-switch', 'ovn-host', 'ca-certificates', 'systemd', 'iproute2'];

const root = t;
t.setTimeout(900_000); // cold: two debootstraps; warm runs take a fraction of this

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A path exists as itself (a symlink counts even when its absolute target is outside the chroot). */
function present(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

const timings: Record<string, number> = {};
async function timed<T>(name: string, f: () => Promise<T>): Promise<T> {
  const s = Date.now();
  try {
    return await f();
  } finally {
    timings[name] = (Date.now() - s) / 1000;
  }
}

if (process.getuid?.() !== 0) {
  t.plan(0, 'needs root (chroot, mount namespaces, debootstrap)');
  process.exit(0);
}

/** Debian packages this test drives; installed when missing (like scripts/test does for its own). */
const TOOLS: Record<string, string> = {
  debootstrap: 'debootstrap',
  lintian: 'lintian',
  'qemu-aarch64-static': 'qemu-user-static',
  readelf: 'binutils',
  'systemd-analyze': 'systemd',
};
const missing = Object.entries(TOOLS)
  .filter(([cmd]) => !['/usr/bin', '/usr/sbin', '/bin', '/sbin'].some((d) => existsSync(join(d, cmd))))
  .map(([, p]) => p);
if (missing.length) {
  await timed('apt-get install tools', async () => {
    await run('apt-get', ['update', '-q'], { maxBuffer: 64 << 20 });
    await run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      maxBuffer: 64 << 20,
    });
  });
}

const work = await mkdtemp(join(tmpdir(), 'image-test-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const outA = join(work, 'a');
const outB = join(work, 'b');
const outV2 = join(work, 'v2');
const deb = (out: string, name: string, arch: string, v = V1): string => join(out, `${name}_${v}_${arch}.deb`);

async function buildImage(out: string, ...args: string[]): Promise<string> {
  const r = await runCapture(join(repo, 'scripts/build-image'), ['--out', out, ...args], { timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`build-image failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

let built = false;
t.test('build: both architectures, twice, byte-identical', async (t) => {
  // Colleagues commit while this runs: two builds only have to agree when the inputs
  // (HEAD and the working tree) did not move between them, so retry once if they did.
  const inputs = async () => (await run('git', ['-C', repo, 'rev-parse', 'HEAD'])).stdout + (await run('git', ['-C', repo, 'status', '--porcelain'])).stdout;
  let listing = '';
  for (let attempt = 1; ; attempt++) {
    const before = await inputs();
    listing = await timed('build #1 (fetch + 2 arches)', () => buildImage(outA, '--fetch'));
    await timed('build #2', () => buildImage(outB));
    if ((await inputs()) === before || attempt === 2) break;
    t.comment('the tree changed between the two builds; building both again');
  }
  await timed('build v2 (amd64)', () => buildImage(outV2, '--arch', 'amd64', '--version', V2));
  t.comment(`artefacts (name, bytes, sha256):\n${listing.trim()}`);
  const a = await readFile(join(outA, 'SHA256SUMS'), 'utf8');
  t.equal(await readFile(join(outB, 'SHA256SUMS'), 'utf8'), a, 'SHA256SUMS identical');
  for (const f of ['dpu-agent_%_arm64.deb', 'dpu-agent_%_amd64.deb', 'dpu-host-shim_%_arm64.deb', 'dpu-host-shim_%_amd64.deb', 'bf.cfg', 'bf-amd64.cfg']) {
    t.match(a, new RegExp(`^[0-9a-f]{64}  ${f.replace('%', V1.replace(/[.+]/g, '\\$&'))}$`, 'm'), `${f} built`);
  }
  built = true;
});

async function debInfo(path: string, field: string): Promise<string> {
  return (await run('dpkg-deb', ['-f', path, field])).stdout.trim();
}
async function debList(path: string): Promise<string[]> {
  const { stdout } = await run('dpkg-deb', ['-c', path], { maxBuffer: 16 << 20 });
  return stdout.trim().split('\n');
}

t.test('package metadata and contents', async (t) => {
  if (!built) return t.plan(0, 'skipped: the build failed');
  for (const arch of ['arm64', 'amd64']) {
    const other = arch === 'arm64' ? 'x64' : 'arm64';
    const na = arch === 'arm64' ? 'arm64' : 'x64';
    const agent = deb(outA, 'dpu-agent', arch);
    t.equal(await debInfo(agent, 'Architecture'), arch);
    const depends = await debInfo(agent, 'Depends');
    for (const d of ['nodejs (>= 18.19)', 'openvswitch-switch', 'ovn-host', 'libc6 (>=', 'libstdc++6']) t.ok(depends.includes(d), `${arch} Depends has ${d}`);
    const { stdout: conffiles } = await run('dpkg-deb', ['-I', agent, 'conffiles']);
    t.equal(conffiles.trim(), '/etc/dpu-agent/agent.json', 'agent.json is the conffile');
    const list = await debList(agent);
    const paths = list.map((l) => l.split(/\s+/).slice(5).join(' ').replace(/^\./, ''));
    for (const p of [
      '/usr/bin/dpu-agent',
      '/usr/lib/dpu-agent/dpu-agent.mjs',
      '/usr/lib/dpu-agent/dpu-agent-ready.mjs',
      `/usr/lib/dpu-agent/node_modules/netlink/prebuilds/linux-${na}/node.napi.node`,
      `/usr/lib/dpu-agent/node_modules/@koromix/koffi-linux-${na}/linux_${na}/koffi.node`,
      '/usr/lib/dpu-agent/node_modules/koffi/src/koffi/index.cjs',
      '/usr/lib/dpu-agent/node_modules/node-gyp-build/index.js',
      '/lib/systemd/system/dpu-agent.service',
      '/etc/dpu-agent/agent.json',
      '/usr/share/man/man8/dpu-agent.8.gz',
      '/usr/share/doc/dpu-agent/copyright',
    ]) t.ok(paths.includes(p), `${arch}: ${p}`);
    t.notOk(paths.some((p) => p.includes(`linux-${other}`) || p.includes('musl') || p.includes('linux-arm/') || p.includes('ia32')), `${arch}: no other architecture's binaries`);
    t.notOk(paths.some((p) => /\.(ts|map|cc|hh)$/.test(p)), `${arch}: no sources, typings or maps`);
    t.ok(list.every((l) => l.includes('root/root')), `${arch}: every entry root:root`);
    const modes = new Map(list.map((l) => [l.split(/\s+/).slice(5).join(' ').replace(/^\./, ''), l.split(/\s+/)[0]]));
    t.equal(modes.get('/usr/bin/dpu-agent'), '-rwxr-xr-x');
    t.equal(modes.get('/etc/dpu-agent/agent.json'), '-rw-r--r--');

    // The binaries really are for the target (readelf works across architectures).
    const x = join(work, `x-${arch}`);
    await run('dpkg-deb', ['-x', agent, x]);
    for (const so of [`netlink/prebuilds/linux-${na}/node.napi.node`, `@koromix/koffi-linux-${na}/linux_${na}/koffi.node`]) {
      const { stdout } = await run('readelf', ['-h', join(x, 'usr/lib/dpu-agent/node_modules', so)]);
      t.match(stdout, arch === 'arm64' ? /Machine:\s+AArch64/ : /Machine:\s+Advanced Micro Devices X86-64/, `${arch}: ${so} machine`);
    }

    const shim = deb(outA, 'dpu-host-shim', arch);
    const shimPaths = (await debList(shim)).map((l) => l.split(/\s+/).slice(5).join(' ').replace(/^\./, '')).filter((p) => !p.endsWith('/'));
    t.same(shimPaths.sort(), [
      '/opt/cni/bin/dpu-host-shim',
      '/usr/lib/dpu-host-shim/dpu-host-shim.mjs',
      '/usr/share/doc/dpu-host-shim/README.md',
      '/usr/share/doc/dpu-host-shim/changelog.gz',
      '/usr/share/doc/dpu-host-shim/copyright',
      '/usr/share/doc/dpu-host-shim/examples/10-dpu.conflist',
      '/usr/share/lintian/overrides/dpu-host-shim',
    ], `${arch}: host-shim ships the plugin, its bundle and docs, nothing else`);
    t.ok((await debInfo(shim, 'Depends')).startsWith('nodejs (>= 18.19)'), 'host-shim Depends nodejs');
  }
});

t.test('lintian: no errors or warnings', async (t) => {
  if (!built) return t.plan(0, 'skipped: the build failed');
  const debs = ['dpu-agent', 'dpu-host-shim'].flatMap((n) => ['amd64', 'arm64'].map((a) => deb(outA, n, a)));
  const r = await timed('lintian', () => runCapture('lintian', ['--pedantic', '--info', ...debs], { timeoutMs: 300_000 }));
  const tags = r.stdout.split('\n').filter((l) => /^[EWIPX]: /.test(l));
  const bad = tags.filter((l) => /^[EW]: /.test(l));
  t.same(bad, [], 'no E:/W: tags');
  t.comment(`lintian (info/pedantic, reported not fixed):\n${[...new Set(tags.map((l) => l.replace(/\[.*\]$/, '').trim()))].join('\n') || 'none'}`);
});

t.test('systemd unit: security exposure ≤ 2.0', async (t) => {
  if (!built) return t.plan(0, 'skipped: the build failed');
  const unit = join(work, 'x-amd64', 'lib/systemd/system/dpu-agent.service');
  const s = await runCapture('systemd-analyze', ['security', '--offline=yes', unit]);
  const score = Number(/Overall exposure level for dpu-agent\.service: ([\d.]+)/.exec(s.stdout)?.[1]);
  t.comment(`systemd-analyze security --offline=yes: ${score}`);
  t.ok(score <= 2.0, `exposure ${score} ≤ 2.0`);
});

t.test('readiness helper: /readyz of the effective config; remote-only reasons count as started', async (t) => {
  if (!built) return t.plan(0, 'skipped: the build failed');
  const answers = ['not ready: ovsdb-not-connected', 'not ready: chassis-not-applied, ovn-controller-not-connected', 'ready'];
  let calls = 0;
  let remoteOnly = false;
  const srv = createServer((req, res) => {
    if (req.url !== '/readyz') return void res.writeHead(404).end();
    const a = remoteOnly ? 'not ready: ovn-controller-not-connected, ovn-not-connected' : answers[Math.min(calls, answers.length - 1)]!;
    calls++;
    res.writeHead(a === 'ready' ? 200 : 503, { 'content-type': 'text/plain' }).end(`${a}\n`);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => srv.close());
  const port = (srv.address() as AddressInfo).port;
  const cfg = join(work, 'ready.json');
  await writeFile(cfg, JSON.stringify({ chassis: { systemId: 'r', ovnRemote: 'tcp:127.0.0.1:6642', encapIp: '192.0.2.1' } }));
  const ready = join(work, 'x-amd64', 'usr/lib/dpu-agent/dpu-agent-ready.mjs');
  // The helper asks the bundle beside it for the effective config, so this env override is seen.
  const env = { ...process.env, DPU_AGENT_METRICS_PORT: String(port) };
  const helper = (...a: string[]) => runCapture(process.execPath, [ready, '--config', cfg, '--interval-ms', '50', ...a], { env });

  const missing = await helper('--timeout-ms', '1000', '--agent', join(work, 'no-such-agent.mjs'));
  t.equal(missing.code, 2, 'no agent to ask for the config: usage/config failure (2)');
  const good = await helper('--timeout-ms', '10000');
  t.equal(good.code, 0, `ready after local reasons cleared: ${good.stderr}`);
  t.equal(calls, 3, 'kept polling while a local reason (chassis-not-applied) remained');
  remoteOnly = true;
  const remote = await helper('--timeout-ms', '10000');
  t.equal(remote.code, 0, 'only OVN-central reasons: started');
  t.match(remote.stderr, /still waiting on OVN central: ovn-controller-not-connected, ovn-not-connected/);
  const strict = await helper('--timeout-ms', '300', '--remote-reason', 'none');
  t.equal(strict.code, 1, 'with no remote reasons allowed, the same answer times out (1)');
  t.match(strict.stderr, /not ready after 300 ms \(last: HTTP 503: not ready: ovn-controller-not-connected, ovn-not-connected\)/);
  srv.close();
  const down = await helper('--timeout-ms', '300');
  t.equal(down.code, 1, 'nothing listening → 1');
  t.match(down.stderr, /\(last: connection: ECONNREFUSED\)/);
});

let chroot = '';
t.test('Debian 12 chroot: install, run on Debian nodejs, upgrade, purge', async (t) => {
  if (!built) return t.plan(0, 'skipped: the build failed');
  const fs = await timed('rootfs amd64 (cache or debootstrap)', () => cachedRootfs({ arch: 'amd64', kind: 'native', include: AMD64_INCLUDE }));
  if (fs.cold) t.comment(`cold: debootstrap + tarball took ${fs.buildSeconds.toFixed(0)} s`);
  const dir = await timed('rootfs amd64 unpack', () => unpackRootfs(fs.tarball, 'image-chroot-'));
  chroot = dir;
  root.teardown(() => rm(dir, { recursive: true, force: true })); // the bf.cfg test reuses it
  const sh = (script: string, env?: Record<string, string>) => inChroot(chroot, ['sh', '-c', script], { ...(env ? { env } : {}), timeoutMs: 180_000 });
  const node = await sh('node --version');
  t.comment(`chroot nodejs ${node.stdout.trim()} (Debian's)`);

  for (const [name, path] of [['dpu-agent', deb(outA, 'dpu-agent', 'amd64')], ['dpu-host-shim', deb(outA, 'dpu-host-shim', 'amd64')], ['v2', deb(outV2, 'dpu-agent', 'amd64', V2)]] as const) {
    await run('cp', [path, join(chroot, 'tmp', `${name}.deb`)]);
  }
  const install = await timed('dpkg -i (agent + shim)', () => sh('dpkg -i /tmp/dpu-agent.deb /tmp/dpu-host-shim.deb'));
  t.equal(install.code, 0, `dpkg -i: ${install.stderr}`);
  t.match(install.stdout, /dpu-agent: systemd is not running; dpu-agent\.service not \(re\)started/);
  t.ok(present(join(chroot, 'etc/systemd/system/multi-user.target.wants/dpu-agent.service')), 'enabled (deb-systemd-helper)');
  t.equal(await readlink(join(chroot, 'etc/systemd/system/multi-user.target.wants/dpu-agent.service')), '/lib/systemd/system/dpu-agent.service');

  // verify in the tree the unit is installed into (systemd installed, not running).
  const verify = await sh('systemd-analyze verify /lib/systemd/system/dpu-agent.service');
  t.equal(verify.code, 0, 'systemd-analyze verify exits 0');
  t.equal(`${verify.stdout}${verify.stderr}`.trim(), '', `systemd-analyze verify is silent: ${verify.stdout}${verify.stderr}`);

  const ver = await sh('dpu-agent --version');
  t.equal(ver.stdout.trim(), V1, `dpu-agent --version: ${ver.stderr}`);
  const unconfigured = await sh('dpu-agent --check --config /etc/dpu-agent/agent.json');
  t.equal(unconfigured.code, 2, 'the shipped config alone is incomplete (exit 2) …');
  t.match(unconfigured.stderr, /chassis\.systemId/, '… and says which key is missing');
  await writeFile(
    join(chroot, 'etc/default/dpu-agent'),
    'DPU_AGENT_CHASSIS_SYSTEM_ID=chroot-dpu\nDPU_AGENT_CHASSIS_OVN_REMOTE=tcp:192.0.2.10:6642\nDPU_AGENT_CHASSIS_ENCAP_IP=198.51.100.7\nDPU_AGENT_API_LISTEN_ADDRESS=203.0.113.1\n',
  );
  const check = await sh('set -a; . /etc/default/dpu-agent; dpu-agent --check --config /etc/dpu-agent/agent.json');
  t.equal(check.code, 0, `--check with the unit's environment file: ${check.stderr}`);
  t.match(JSON.parse(check.stdout), { chassis: { systemId: 'chroot-dpu', encapIp: '198.51.100.7' }, api: { listenAddress: '203.0.113.1', port: 50051 }, hw: { backend: 'bluefield' } });

  const self = await sh('node /usr/lib/dpu-agent/selftest.mjs');
  t.equal(self.code, 0, `selftest: ${self.stdout}${self.stderr}`);
  t.match(JSON.parse(self.stdout), { ok: true, koffi: { getpid: true } });

  // The installed agent on Debian's node configures a real (chroot) ovsdb-server, the
  // unit's readiness check passes against it, and it stops cleanly.
  const mgmtPort = await freePort();
  const live = await timed('agent vs ovsdb-server in chroot', () =>
    sh(
      [
        'set -e',
        'ovsdb-tool create /tmp/conf.db /usr/share/openvswitch/vswitch.ovsschema',
        'ovsdb-server /tmp/conf.db --remote=punix:/tmp/db.sock --unixctl=/tmp/ovsdb.ctl --pidfile=/tmp/ovsdb.pid --detach --no-chdir --log-file=/tmp/ovsdb.log',
        `printf '{"ovsdb":{"remote":"unix:/tmp/db.sock"},"chassis":{"systemId":"chroot-dpu","ovnRemote":"tcp:192.0.2.10:6642","encapIp":"198.51.100.7"},"metrics":{"listenAddress":"127.0.0.1","port":${mgmtPort}}}' > /tmp/agent.json`,
        'dpu-agent --config /tmp/agent.json > /tmp/agent.log 2>&1 & pid=$!',
        // What ExecStartPost= runs: returns once the chassis is applied (ovn-controller is absent here).
        'node /usr/lib/dpu-agent/dpu-agent-ready.mjs --config /tmp/agent.json --timeout-ms 20000 2>&1',
        'ovs-vsctl --db=unix:/tmp/db.sock get Open_vSwitch . external_ids:system-id',
        'kill -TERM $pid; wait $pid; echo "exit=$?"',
      ].join('\n'),
    ),
  );
  t.equal(live.code, 0, `agent run: ${live.stderr}`);
  t.match(live.stdout, /dpu-agent-ready: local start-up done; still waiting on OVN central: ovn-controller-not-connected/, 'readiness helper passes on the real agent');
  t.match(live.stdout, /^"?chroot-dpu"?\s+exit=0/m, 'chassis configured, SIGTERM → exit 0');

  const cni = await inChroot(chroot, ['/opt/cni/bin/dpu-host-shim'], { env: { CNI_COMMAND: 'VERSION' }, input: '{"cniVersion":"1.1.0"}' });
  t.equal(cni.code, 0, `CNI VERSION: ${cni.stdout}${cni.stderr}`);
  t.match(JSON.parse(cni.stdout || '{}'), { supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });

  // --- upgrade without systemd: edited conffile kept, restart path reports it skipped.
  const conf = join(chroot, 'etc/dpu-agent/agent.json');
  const edited = (await readFile(conf, 'utf8')).replace('"level": "info"', '"level": "debug"');
  t.not(edited, await readFile(conf, 'utf8'), 'edit applied');
  await writeFile(conf, edited);
  const up = await timed('dpkg -i v2', () => sh('dpkg -i /tmp/v2.deb'));
  t.equal(up.code, 0, `upgrade: ${up.stderr}`);
  t.match(up.stdout, /systemd is not running; dpu-agent\.service not \(re\)started/);
  t.equal(await readFile(conf, 'utf8'), edited, 'edited agent.json kept');
  t.notOk(existsSync(`${conf}.dpkg-dist`) || existsSync(`${conf}.dpkg-new`), 'no .dpkg-dist/.dpkg-new (the shipped config did not change)');
  t.equal((await sh("dpkg-query -W -f='${Version}' dpu-agent")).stdout, V2);

  // --- the same with systemd "running": a stub systemctl and a logging policy-rc.d
  // show what the maintainer scripts ask of systemd (what systemd then does cannot be
  // checked without it).
  await mkdir(join(chroot, 'run/systemd/system'), { recursive: true });
  await run('mv', [join(chroot, 'usr/bin/systemctl'), join(chroot, 'usr/bin/systemctl.real')]);
  await writeFile(join(chroot, 'usr/bin/systemctl'), '#!/bin/sh\necho "systemctl $*" >> /tmp/systemctl.log\nexit 0\n');
  await writeFile(join(chroot, 'usr/sbin/policy-rc.d'), '#!/bin/sh\necho "policy-rc.d $*" >> /tmp/systemctl.log\nexit 0\n');
  await chmod(join(chroot, 'usr/bin/systemctl'), 0o755);
  await chmod(join(chroot, 'usr/sbin/policy-rc.d'), 0o755);
  const again = await sh('dpkg -i /tmp/v2.deb');
  t.equal(again.code, 0, `reinstall with systemd: ${again.stderr}`);
  t.match(again.stdout, new RegExp(`upgraded from ${V2.replace(/[.+]/g, '\\$&')}; restarting dpu-agent\\.service if it is running`));
  const log1 = await readFile(join(chroot, 'tmp/systemctl.log'), 'utf8');
  t.match(log1, /systemctl --system daemon-reload/, 'daemon-reload');
  t.match(log1, /policy-rc\.d dpu-agent\.service try-restart/, 'policy-rc.d consulted for try-restart');
  t.match(log1, /systemctl try-restart dpu-agent\.service/, 'try-restart requested (a stopped agent stays stopped)');
  t.equal(await readFile(conf, 'utf8'), edited, 'edited agent.json still kept');

  // --- remove + purge: stop on remove, everything of ours gone on purge.
  await writeFile(join(chroot, 'tmp/systemctl.log'), '');
  const purge = await sh('dpkg --purge dpu-agent dpu-host-shim');
  t.equal(purge.code, 0, `purge: ${purge.stderr}`);
  const log2 = await readFile(join(chroot, 'tmp/systemctl.log'), 'utf8');
  t.match(log2, /systemctl --quiet stop dpu-agent\.service|systemctl stop dpu-agent\.service/, 'stopped on remove');
  for (const p of ['etc/dpu-agent', 'etc/default/dpu-agent', 'usr/lib/dpu-agent', 'opt/cni/bin/dpu-host-shim', 'etc/systemd/system/multi-user.target.wants/dpu-agent.service']) {
    t.notOk(present(join(chroot, p)), `purged: /${p}`);
  }
  await rm(join(chroot, 'run/systemd'), { recursive: true, force: true });
  await run('mv', [join(chroot, 'usr/bin/systemctl.real'), join(chroot, 'usr/bin/systemctl')]);
  await rm(join(chroot, 'usr/sbin/policy-rc.d'));
});

t.test('bf.cfg: bfb_modify_os installs, configures and enables (target mounted at /mnt)', async (t) => {
  if (!built) return t.plan(0, 'skipped: the build failed');
  if (!chroot || !existsSync(join(chroot, 'usr/bin/dpkg'))) {
    t.fail('no chroot from the previous test');
    return;
  }
  const cfg = await readFile(join(outA, 'bf-amd64.cfg'), 'utf8');
  t.ok(cfg.length < 1.5 * 1024 * 1024, `bf.cfg is ${(cfg.length / 1024).toFixed(0)} KiB`);
  const n = await runCapture('bash', ['-n', join(outA, 'bf-amd64.cfg')]);
  t.equal(n.code, 0, 'bash -n (the installer checks the syntax)');
  // The installer sources the site's bf.cfg; ours is appended and keeps its hook.
  const site = [
    'DPU_AGENT_SYSTEM_ID=bfb-dpu-1',
    'DPU_AGENT_OVN_REMOTE=ssl:192.0.2.10:6642,ssl:192.0.2.11:6642',
    'DPU_AGENT_ENCAP_IP=198.51.100.9',
    'DPU_AGENT_API_LISTEN_ADDRESS=203.0.113.9',
    'DPU_AGENT_METRICS_LISTEN_ADDRESS=192.0.2.57',
    'DPU_AGENT_UPLINK=p0',
    'bfb_modify_os() { touch /mnt/tmp/site-hook-ran; }',
    'ilog() { echo "ilog: $*"; }',
    '',
  ].join('\n');
  await writeFile(join(work, 'full.cfg'), site + cfg);
  // A payload damaged in transit (e.g. bytes lost on the rshim FIFO) must install nothing.
  const lines = cfg.split('\n');
  const i = lines.findIndex((l) => l === "\tbase64 -d <<'DPU_AGENT_DEB_EOF'") + 40;
  lines[i] = `${lines[i]!.slice(0, 10)}${lines[i]![10] === 'A' ? 'B' : 'A'}${lines[i]!.slice(11)}`;
  await writeFile(join(work, 'corrupt.cfg'), site + lines.join('\n'));

  const hook = (file: string) =>
    // env -i: the installer's environment, not this test runner's (tap adds NODE_OPTIONS).
    runCapture('env', ['-i', `PATH=${process.env['PATH']}`, 'unshare', '--mount', '--propagation', 'private', '--', 'bash', '-c',
      `mount --bind "$0" /mnt && mount -t proc proc /mnt/proc && source "$1" && bfb_modify_os; echo "rc=$?"`, chroot, file], { timeoutMs: 180_000 });

  const bad = await hook(join(work, 'corrupt.cfg'));
  t.match(bad.stdout, /embedded dpu-agent_.*_amd64\.deb is corrupt \(sha256 mismatch\); not installed/);
  t.match(bad.stdout, /rc=1/);
  t.notOk(existsSync(join(chroot, 'usr/bin/dpu-agent')), 'nothing installed from a corrupt payload');

  const good = await timed('bf.cfg hook (apt-get install in /mnt)', () => hook(join(work, 'full.cfg')));
  t.match(good.stdout, /rc=0/, `hook: ${good.stdout.slice(-1500)}${good.stderr.slice(-1500)}`);
  t.ok(existsSync(join(chroot, 'tmp/site-hook-ran')), "the site's own bfb_modify_os ran too");
  t.match(good.stdout, /ilog: dpu-agent: installed dpu-agent /);
  t.match(good.stdout, /ilog: dpu-agent: configuration OK/);
  t.equal(
    await readFile(join(chroot, 'etc/default/dpu-agent'), 'utf8'),
    '# Written by the BFB hook (bf.cfg) at install time; see dpu-agent --help.\n' +
      'DPU_AGENT_CHASSIS_SYSTEM_ID=bfb-dpu-1\nDPU_AGENT_CHASSIS_OVN_REMOTE=ssl:192.0.2.10:6642,ssl:192.0.2.11:6642\n' +
      'DPU_AGENT_CHASSIS_ENCAP_IP=198.51.100.9\nDPU_AGENT_API_LISTEN_ADDRESS=203.0.113.9\nDPU_AGENT_METRICS_LISTEN_ADDRESS=192.0.2.57\n' +
      'DPU_AGENT_HW_UPLINK=p0\n',
  );
  for (const unit of ['dpu-agent', 'openvswitch-switch', 'ovn-host']) {
    t.ok(present(join(chroot, `etc/systemd/system/multi-user.target.wants/${unit}.service`)), `${unit} enabled`);
  }
  t.notOk(existsSync(join(chroot, 'usr/sbin/policy-rc.d')), 'temporary policy-rc.d removed');
  t.notOk(existsSync(join(chroot, 'tmp/dpu-agent_' + V1 + '_amd64.deb')), 'payload removed');
});

t.test('arm64 package under qemu-aarch64 with Debian arm64 nodejs', async (t) => {
  if (!built) return t.plan(0, 'skipped: the build failed');
  const fs = await timed('sysroot arm64 (cache or debootstrap --foreign)', () => cachedRootfs({ arch: 'arm64', kind: 'foreign', include: ['nodejs'] }));
  if (fs.cold) t.comment(`cold: debootstrap --foreign + unpack took ${fs.buildSeconds.toFixed(0)} s`);
  const sysroot = await timed('sysroot arm64 unpack', () => unpackRootfs(fs.tarball, 'image-arm64-'));
  t.teardown(() => rm(sysroot, { recursive: true, force: true }));
  const x = join(work, 'x-arm64');
  const shim = join(work, 'x-arm64-shim');
  await run('dpkg-deb', ['-x', deb(outA, 'dpu-host-shim', 'arm64'), shim]);
  // -L: the ELF interpreter and libraries (and any path that exists there) come from the sysroot.
  // `env -i`: tap's process tracking adds NODE_OPTIONS (an --import that needs Node 20) to every child.
  const qemu = (args: string[], env: Record<string, string> = {}, input?: string) =>
    runCapture('env', ['-i', `PATH=${process.env['PATH']}`, ...Object.entries(env).map(([k, v]) => `${k}=${v}`), 'qemu-aarch64-static', '-L', sysroot, join(sysroot, 'usr/bin/node'), ...args], {
      timeoutMs: 120_000,
      ...(input !== undefined ? { input } : {}),
    });
  const node = (args: string[], env: Record<string, string> = {}) => qemu(args, env);
  const arch = await node(['-p', 'process.arch + " " + process.version']);
  t.match(arch.stdout, /^arm64 v\d+\./, `qemu node: ${arch.stdout.trim()}${arch.stderr}`);
  t.comment(`arm64 nodejs under qemu: ${arch.stdout.trim()}`);
  const ver = await timed('qemu: --version', () => node([join(x, 'usr/lib/dpu-agent/dpu-agent.mjs'), '--version']));
  t.equal(ver.stdout.trim(), V1, `--version: ${ver.stderr}`);
  const check = await node([join(x, 'usr/lib/dpu-agent/dpu-agent.mjs'), '--check', '--config', join(x, 'etc/dpu-agent/agent.json')], {
    DPU_AGENT_CHASSIS_SYSTEM_ID: 'arm', DPU_AGENT_CHASSIS_OVN_REMOTE: 'tcp:192.0.2.10:6642', DPU_AGENT_CHASSIS_ENCAP_IP: '198.51.100.7', DPU_AGENT_API_LISTEN_ADDRESS: '203.0.113.1',
  });
  t.equal(check.code, 0, `--check: ${check.stderr}`);
  const self = await timed('qemu: selftest', () => node([join(x, 'usr/lib/dpu-agent/selftest.mjs')]));
  t.equal(self.code, 0, `selftest: ${self.stdout}${self.stderr}`);
  const r = JSON.parse(self.stdout) as { arch: string; netlink: { links: string[] }; koffi: { getpid: boolean } };
  t.equal(r.arch, 'arm64');
  t.ok(r.netlink.links.includes('lo'), `rtnetlink link dump through the arm64 netlink addon: ${r.netlink.links.join(', ')}`);
  t.equal(r.koffi.getpid, true, 'libc getpid() through the arm64 koffi addon');
  const cni = await qemu([join(shim, 'usr/lib/dpu-host-shim/dpu-host-shim.mjs')], { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.1.0"}');
  t.match(cni.stdout, /"supportedVersions"/, `host-shim VERSION on arm64: ${cni.stderr}`);
});

t.teardown(() => {
  t.comment(`timings (s): ${JSON.stringify(timings)}`);
});
