import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { FakePool } from '../helpers/fake-pool.ts';
import { startHostApi, type HostApiHarness } from '../helpers/host-api.ts';
import { makePki, type Pki } from '../helpers/pki.ts';

// The real shim binary (host-shim/bin/dpu-host-shim) against a real host API
// server (FakePool behind it) over mTLS on 127.0.0.1. A veth pair stands for a
// VF (one end is the "VF" netdev in this netns, the other its "representor"),
// a temp dir emulates sysfs (<root>/class/net/<pf>/device/virtfnN/net/<name>),
// and a fresh netns is the pod. All names carry a per-run prefix; teardown
// removes them. No traffic is sent.

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SHIM = join(ROOT, 'host-shim/bin/dpu-host-shim');
const UID = '1b4e28ba-2fa1-11d2-883f-0016d3cca427';
const UID2 = '6fa459ea-ee8a-3ca4-894e-db77e160355e';

const canRun = process.getuid?.() === 0 && (await run('ip', ['-V']).then(() => true, () => false));

const P = `hs${process.pid % 100000}`;
const POD_NS = `${P}pod`;
const POD_NS_PATH = `/run/netns/${POD_NS}`;
const POD2_NS = `${P}pod2`;
const VF = [`${P}v0`, `${P}v1`];
const REP = [`${P}r0`, `${P}r1`];
const PF = `${P}pf`;

let pki: Pki;
let h: HostApiHarness;
let dir: string;
let sysfs: string;
let stateDir: string;
const pool = new FakePool({ total: 2 });

async function ip(...args: string[]): Promise<string> {
  return (await run('ip', args)).stdout;
}

async function cleanup(): Promise<void> {
  for (const ns of [POD_NS, POD2_NS]) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
  for (const dev of [...VF, ...REP]) await run('ip', ['link', 'del', dev]).catch(() => undefined);
}

if (canRun) registerTests();
else t.plan(0, 'needs root and iproute2 (netns + veth)');

function registerTests(): void {
  t.before(async () => {
    await cleanup();
    pki = await makePki();
    h = await startHostApi(pki, { pool, limits: { ratePerSecond: 1000, rateBurst: 1000 } });
    dir = await mkdtemp(join(tmpdir(), 'dpu-shim-'));
    sysfs = join(dir, 'sys');
    stateDir = join(dir, 'state');
    for (let i = 0; i < 2; i++) {
      await ip('link', 'add', VF[i] as string, 'type', 'veth', 'peer', 'name', REP[i] as string);
      await mkdir(join(sysfs, 'class/net', PF, 'device', `virtfn${i}`, 'net', VF[i] as string), { recursive: true });
    }
    await ip('netns', 'add', POD_NS);
    await ip('netns', 'add', POD2_NS);
  });

  t.teardown(async () => {
    await h?.close();
    await cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
    await pki?.cleanup();
  });

  function conf(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      cniVersion: '1.1.0',
      name: 'dpu',
      type: 'dpu-host-shim',
      agentUrl: `https://127.0.0.1:${h.port}`,
      tls: { key: pki.host1.keyPath, cert: pki.host1.certPath, ca: pki.caPath },
      pf: PF,
      sysfsRoot: sysfs,
      stateDir,
      ...extra,
    };
  }

  interface ShimRun {
    readonly code: number | null;
    readonly out: Record<string, unknown> | undefined;
    readonly stdout: string;
    readonly stderr: string;
    readonly ms: number;
  }

  function shim(command: string, opts: { netns?: string; ifname?: string; containerId?: string; args?: string; conf?: Record<string, unknown> } = {}): Promise<ShimRun> {
    const env: Record<string, string> = {
      PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      // Test the source, never a stale dist/ bundle.
    DPU_HOST_SHIM_FROM_SOURCE: '1',
    CNI_COMMAND: command,
      CNI_CONTAINERID: opts.containerId ?? 'sandbox-1',
      CNI_NETNS: opts.netns ?? POD_NS_PATH,
      CNI_IFNAME: opts.ifname ?? 'eth0',
      CNI_ARGS: opts.args ?? `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=${UID}`,
      CNI_PATH: '/opt/cni/bin',
    };
    const started = Date.now();
    return new Promise((resolve, reject) => {
      const child = spawn(SHIM, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => {
        let out: Record<string, unknown> | undefined;
        try {
          out = stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : undefined;
        } catch {
          out = { unparsable: stdout };
        }
        resolve({ code, out, stdout, stderr, ms: Date.now() - started });
      });
      child.stdin.end(JSON.stringify(opts.conf ?? conf()));
    });
  }

  async function linkIn(ns: string, dev: string): Promise<{ address: string; mtu: number; flags: string[]; addr_info: { local: string; prefixlen: number }[] } | undefined> {
    try {
      const out = await ip('-n', ns, '-j', 'addr', 'show', 'dev', dev);
      return (JSON.parse(out) as never[])[0];
    } catch {
      return undefined;
    }
  }

  t.test('VERSION and STATUS', async (t) => {
    const v = await shim('VERSION');
    t.equal(v.code, 0);
    t.strictSame(v.out, { cniVersion: '1.1.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
    const s = await shim('STATUS');
    t.equal(s.code, 0, s.stdout + s.stderr);
    t.equal(s.stdout, '', 'STATUS success prints nothing');
    pool.ovnConnected = false;
    const ns = await shim('STATUS');
    pool.ovnConnected = true;
    t.equal(ns.code, 1);
    t.match(ns.out, { code: 50, msg: 'DPU agent not ready', details: /ovn-not-connected/ });
  });

  t.test('ADD moves and configures the VF; idempotent; CHECK; DEL gives it back', async (t) => {
    const add = await shim('ADD');
    t.equal(add.code, 0, add.stdout + add.stderr);
    t.strictSame(add.out, {
      cniVersion: '1.1.0',
      interfaces: [{ name: 'eth0', mac: '0a:58:0a:f4:00:0a', sandbox: POD_NS_PATH, mtu: 1400 }],
      ips: [{ address: '10.244.0.10/24', gateway: '10.244.0.1', interface: 0 }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.244.0.1' }, { dst: '10.96.0.0/12' }],
      dns: {},
    });
    t.equal(await linkIn('', VF[0] as string).catch(() => undefined), undefined, 'the VF left the host netns');
    const l = await linkIn(POD_NS, 'eth0');
    t.equal(l?.address, '0a:58:0a:f4:00:0a', 'MAC from the agent');
    t.equal(l?.mtu, 1400);
    t.ok(l?.flags.includes('UP'));
    t.strictSame(l?.addr_info.filter((a) => a.local.includes('.')).map((a) => `${a.local}/${a.prefixlen}`), ['10.244.0.10/24']);
    const routes = await ip('-n', POD_NS, 'route', 'show');
    t.match(routes, /default via 10\.244\.0\.1 dev eth0/);
    t.match(routes, /10\.96\.0\.0\/12 dev eth0/);
    t.equal(pool.list('host1').length, 1, 'lease held by host1 (client cert CN)');

    const again = await shim('ADD');
    t.equal(again.code, 0, 'ADD retry succeeds');
    t.strictSame(again.out, add.out, 'same result');

    t.equal((await shim('CHECK')).code, 0, 'CHECK passes');
    await ip('-n', POD_NS, 'addr', 'flush', 'dev', 'eth0');
    const broken = await shim('CHECK');
    t.equal(broken.code, 1);
    t.match(broken.out, { code: 104, details: /address 10\.244\.0\.10\/24 missing/ });

    const del = await shim('DEL');
    t.equal(del.code, 0, del.stdout + del.stderr);
    t.equal(await linkIn(POD_NS, 'eth0'), undefined, 'gone from the pod');
    t.ok(await linkIn('', VF[0] as string).catch(() => undefined) ?? (await ip('link', 'show', 'dev', VF[0] as string)), 'back in the host netns under its own name');
    t.equal(pool.list('host1').length, 0, 'lease released');
    t.equal((await shim('DEL')).code, 0, 'DEL twice');
    t.equal((await shim('DEL', { containerId: 'never-added', args: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=other;K8S_POD_UID=${UID2}` })).code, 0, 'DEL without ADD');
    t.equal((await shim('DEL', { netns: '/run/netns/does-not-exist' })).code, 0, 'DEL with the netns gone');
    const noArgs = await shim('DEL', { netns: '', args: '' });
    t.equal(noArgs.code, 0, 'DEL with no netns and no pod args');
    const chk = await shim('CHECK');
    t.match(chk.out, { code: 108 }, 'CHECK after DEL: no lease');
  });

  t.test('ADD refused by the agent: CNI code, nothing leaked', async (t) => {
    pool.failNext('pod-not-on-this-chassis');
    const r = await shim('ADD');
    t.equal(r.code, 1);
    t.match(r.out, { cniVersion: '1.1.0', code: 101, details: /reason pod-not-on-this-chassis/ });
    t.equal(pool.list('host1').length, 0);
    pool.failNext('vf-pool-empty');
    t.match((await shim('ADD')).out, { code: 102 });
    t.match((await shim('ADD', { ifname: 'a/b' })).out, { code: 4 }, 'invalid CNI_IFNAME');
    t.match((await shim('ADD', { netns: `/run/netns/${P}nope` })).out, { code: 3 }, 'netns missing');
    t.match((await shim('ADD', { conf: conf({ ipam: { type: 'host-local' } }) })).out, { code: 2 }, 'ipam unsupported');
    const bad = await new Promise<ShimRun>((resolve) => {
      const child = spawn(SHIM, [], { env: { PATH: process.env['PATH'] ?? '', DPU_HOST_SHIM_FROM_SOURCE: '1', CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'x', CNI_NETNS: POD_NS_PATH, CNI_IFNAME: 'eth0', CNI_ARGS: `K8S_POD_NAMESPACE=a;K8S_POD_NAME=b;K8S_POD_UID=${UID}` } });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.on('close', (code) => resolve({ code, out: JSON.parse(out) as Record<string, unknown>, stdout: out, stderr: '', ms: 0 }));
      child.stdin.end('{not json');
    });
    t.match(bad.out, { code: 6 }, 'stdin not JSON');
  });

  t.test('ADD fails after the lease (no netdev for the VF): lease released (self-undoing ADD)', async (t) => {
    const r = await shim('ADD', { conf: conf({ pf: `${P}nopf` }) });
    t.equal(r.code, 1);
    t.match(r.out, { code: 105 });
    t.equal(pool.list('host1').length, 0, 'no lease left behind');
  });

  t.test('GC releases leases not in cni.dev/valid-attachments', async (t) => {
    t.equal((await shim('ADD')).code, 0);
    const second = await shim('ADD', { containerId: 'sandbox-2', netns: `/run/netns/${POD2_NS}`, args: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-1;K8S_POD_UID=${UID2}` });
    t.equal(second.code, 0, second.stdout + second.stderr);
    t.equal(pool.list('host1').length, 2);
    const gc = await shim('GC', { conf: conf({ 'cni.dev/valid-attachments': [{ containerID: 'sandbox-1', ifname: 'eth0' }] }) });
    t.equal(gc.code, 0, gc.stdout + gc.stderr);
    t.strictSame(pool.list('host1').map((a) => a.key.sandboxId), ['sandbox-1']);
    t.equal((await shim('DEL')).code, 0);
    t.equal((await shim('DEL', { containerId: 'sandbox-2', netns: `/run/netns/${POD2_NS}`, args: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-1;K8S_POD_UID=${UID2}` })).code, 0);
  });

  t.test('the release bundle (scripts/build.ts) runs STATUS and ADD/DEL the same', async (t) => {
    const dist = join(dir, 'dist');
    await run(process.execPath, ['--import', 'tsx', 'scripts/build.ts'], { cwd: ROOT, env: { ...process.env, DIST_DIR: dist } });
    const bundle = async (command: string): Promise<{ code: number; stdout: string }> => {
      const env = {
        PATH: process.env['PATH'] ?? '',
        CNI_COMMAND: command,
        CNI_CONTAINERID: 'sandbox-b',
        CNI_NETNS: POD_NS_PATH,
        CNI_IFNAME: 'eth0',
        CNI_ARGS: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-b;K8S_POD_UID=${UID}`,
      };
      return new Promise((resolve) => {
        const child = spawn(process.execPath, [join(dist, 'dpu-host-shim.mjs')], { env });
        let stdout = '';
        child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
        child.on('close', (code) => resolve({ code: code ?? -1, stdout }));
        child.stdin.end(JSON.stringify(conf()));
      });
    };
    t.equal((await bundle('STATUS')).code, 0);
    const add = await bundle('ADD');
    t.equal(add.code, 0, add.stdout);
    t.match(JSON.parse(add.stdout), { interfaces: [{ name: 'eth0' }] });
    t.equal((await bundle('DEL')).code, 0);
    t.equal(pool.list('host1').length, 0);
  });

  t.test('wrong client certificate: permission denied; agent down: STATUS 50 fast, ADD 11', async (t) => {
    const rogue = await shim('STATUS', { conf: conf({ tls: { key: pki.rogue.keyPath, cert: pki.rogue.certPath, ca: pki.caPath } }) });
    t.equal(rogue.code, 1);
    t.match(rogue.out, { code: 50 }, 'a host the DPU does not trust is not available');
    await h.close();
    const down = await shim('STATUS', { conf: conf({ timeouts: { statusMs: 1000 } }) });
    t.match(down.out, { code: 50, msg: 'DPU agent unreachable' });
    t.ok(down.ms < 4000, `STATUS answered in ${down.ms} ms`);
    const add = await shim('ADD');
    t.match(add.out, { code: 11 }, 'ADD: try again later');
  });
}
