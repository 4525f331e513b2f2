import t from 'tap';
import { OvsdbClient } from '../../dpu-agent/src/ovsdb/client.ts';
import { NamedUuid, Uuid, strMap } from '../../dpu-agent/src/ovsdb/atoms.ts';
import { eq, op } from '../../dpu-agent/src/ovsdb/ops.ts';
import { silentLogger } from '../../dpu-agent/src/log.ts';
import { OvnView } from '../../dpu-agent/src/ports/ovn.ts';
import { PLUG_IFACE_OP, plugOps } from '../../dpu-agent/src/ports/lease.ts';
import { scrubMac } from '../../dpu-agent/src/hw/representor.ts';
import { VfPool } from '../../dpu-agent/src/ports/pool.ts';
import type { Quarantine } from '../../dpu-agent/src/hw/quarantine.ts';
import { type AttachmentKey, keyString } from '../../dpu-agent/src/ports/types.ts';
import { type CounterReader, type VfCounters, ZERO_COUNTERS } from '../../dpu-agent/src/hw/link-stats.ts';
import { FakeHw } from '../helpers/fake-hw.ts';
import { ovsVsctl } from '../helpers/ovsdb/cli.ts';
import { startOvsdbServer, type OvsdbServer } from '../helpers/ovsdb/server.ts';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const CHASSIS = 'dpu1';

class FakeQuarantine implements Quarantine {
  readonly quarantined = new Set<string>();
  /** Representors whose next lift fails (after a turn of the event loop, like a netlink call). */
  readonly failLift = new Set<string>();
  async apply(r: string): Promise<void> {
    this.quarantined.add(r);
  }
  async lift(r: string): Promise<void> {
    if (this.failLift.delete(r)) {
      await new Promise((res) => setImmediate(res));
      throw new Error(`lift ${r}: EBUSY (test)`);
    }
    this.quarantined.delete(r);
  }
}

const nbctl = (nb: OvsdbServer, ...args: string[]) => run('ovn-nbctl', [`--db=${nb.unixRemote}`, ...args]);

interface Rig {
  ovs: OvsdbServer;
  nb: OvsdbServer;
  pool: VfPool;
  hw: FakeHw;
  q: FakeQuarantine;
  ovsClient: OvsdbClient;
  writes: () => number;
  stopInstaller: () => void;
}

/**
 * Plays ovn-controller's one job that matters here: mark a plugged interface
 * ovn-installed — only if it carries the iface-id-ver its LSP pins, if any
 * (binding.c ovs_iface_matches_lport_iface_id_ver).
 */
function fakeOvnController(ovs: OvsdbServer, client: OvsdbClient, skip: Set<string>, pinned: (lsp: string) => string | undefined): () => void {
  const m = client.monitor({ Interface: { columns: ['name', 'external_ids'] } });
  m.on('change', (c) => {
    if (c.kind !== 'insert') return;
    const name = String(c.new?.['name']);
    if (!name.startsWith('pf0vf') || skip.has(name)) return;
    const ext = strMap(c.new?.['external_ids']);
    const lsp = ext.get('iface-id');
    if (lsp === undefined) return;
    const pin = pinned(lsp);
    if (pin === undefined || ext.get('iface-id-ver') === pin) {
      void ovsVsctl(ovs.unixRemote, 'set', 'Interface', name, 'external_ids:ovn-installed=true').catch(() => undefined);
    }
  });
  return () => m.close();
}

async function rig(t: Tap, opts: { vfs?: number; cap?: number; timeoutMs?: number; graceMs?: number; noInstall?: Set<string>; ovs?: OvsdbServer; nb?: OvsdbServer; hw?: FakeHw; counters?: CounterReader } = {}): Promise<Rig> {
  const ovs = opts.ovs ?? (await startOvsdbServer(t));
  const nb = opts.nb ?? (await startOvsdbServer(t, { schema: 'ovn-nb' }));
  if (!opts.ovs) await ovsVsctl(ovs.unixRemote, 'add-br', 'br-int');
  if (!opts.nb) {
    await nbctl(nb, 'ls-add', 'node1', '--', 'set', 'Logical_Switch', 'node1', 'other_config:subnet=10.244.1.0/24');
    await nbctl(nb, 'lr-add', 'cluster-router', '--', 'lrp-add', 'cluster-router', 'rtos-node1', '0a:58:0a:f4:01:01', '10.244.1.1/24');
    await nbctl(nb, 'lsp-add', 'node1', 'stor-node1', '--', 'lsp-set-type', 'stor-node1', 'router', '--', 'lsp-set-options', 'stor-node1', 'router-port=rtos-node1', '--', 'lsp-set-addresses', 'stor-node1', 'router');
  }
  const ovsClient = new OvsdbClient({ remotes: ovs.unixRemote, database: 'Open_vSwitch' });
  const nbClient = new OvsdbClient({ remotes: nb.unixRemote, database: 'OVN_Northbound' });
  const helper = new OvsdbClient({ remotes: ovs.unixRemote, database: 'Open_vSwitch' });
  t.teardown(async () => {
    pool.stop();
    await Promise.all([ovsClient.stop(), nbClient.stop(), helper.stop()]);
  });
  await ovsClient.start();
  await helper.start();
  let writes = 0;
  const real = ovsClient.transact.bind(ovsClient);
  ovsClient.transact = (ops, o) => {
    writes++;
    return real(ops, o);
  };
  const ovn = new OvnView({ client: nbClient, logger: silentLogger(), podUidKey: 'pod-uid' });
  await ovn.start();
  const hw = opts.hw ?? new FakeHw(opts.vfs ?? 4);
  const q = new FakeQuarantine();
  const pool = new VfPool({
    ovs: ovsClient,
    ovn,
    hw,
    quarantine: q,
    logger: silentLogger(),
    bridge: 'br-int',
    chassisNames: [CHASSIS, 'dpu1.example'],
    mtu: 1400,
    ovnInstalledTimeoutMs: opts.timeoutMs ?? 3000,
    encapIp: '192.0.2.10',
    maxLeasesPerPeer: opts.cap ?? 100,
    orphanGraceMs: opts.graceMs ?? 0,
    ...(opts.counters ? { counters: opts.counters } : {}),
  });
  const stopInstaller = fakeOvnController(ovs, helper, opts.noInstall ?? new Set(), (lsp) => ovn.lookup(lsp)?.ifaceIdVer);
  await pool.start();
  return { ovs, nb, pool, hw, q, ovsClient, writes: () => writes, stopInstaller };
}
type Tap = { teardown(fn: () => unknown): void };

let podSeq = 0;
/** An LSP as ovn-kubernetes writes it: options:iface-id-ver = the pod UID unless `ifaceIdVer` says otherwise (null: none). */
async function addPod(r: Rig, name: string, o: { chassis?: string; uid?: string; ip?: string; ifaceIdVer?: string | null } = {}): Promise<AttachmentKey> {
  const n = ++podSeq + 10;
  const mac = `0a:58:0a:f4:01:${n.toString(16).padStart(2, '0')}`;
  const ip = o.ip ?? `10.244.1.${n}`;
  const uid = o.uid ?? `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
  const lsp = `default_${name}`;
  const ver = o.ifaceIdVer === undefined ? uid : o.ifaceIdVer;
  await nbctl(r.nb, 'lsp-add', 'node1', lsp, '--', 'lsp-set-addresses', lsp, `${mac} ${ip}`, '--', 'lsp-set-port-security', lsp, `${mac} ${ip}`, '--', 'lsp-set-options', lsp, `requested-chassis=${o.chassis ?? CHASSIS}`, ...(ver === null ? [] : [`iface-id-ver=${ver}`]), '--', 'set', 'Logical_Switch_Port', lsp, `external_ids:pod-uid=${uid}`);
  await until(() => r.pool['opts'].ovn.lookup(lsp) !== undefined);
  return { pod: { namespace: 'default', name, uid }, sandboxId: `sb-${name}`, ifname: 'eth0' };
}

async function until(cond: () => boolean, tries = 200): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (cond()) return;
    await new Promise((res) => setTimeout(res, 20));
  }
  throw new Error('condition not met');
}

async function brPorts(r: Rig): Promise<string[]> {
  return (await ovsVsctl(r.ovs.unixRemote, 'list-ports', 'br-int')).split('\n').filter(Boolean).sort();
}

t.test("the plug's Interface insert sits at PLUG_IFACE_OP (the ovn-installed wait watches the row it creates)", async (t) => {
  const ops = plugOps({ bridge: 'br-int', representor: 'pf0vf0', pf: 0, vf: 0, lsp: 'default_x', mac: '0a:58:0a:f4:01:0a', key: { pod: { namespace: 'default', name: 'x', uid: '00000000-0000-4000-8000-000000000001' }, sandboxId: 's', ifname: 'eth0' }, peer: 'host1', leaseTime: new Date(0).toISOString() });
  t.match(ops[PLUG_IFACE_OP], { op: 'insert', table: 'Interface', row: { name: 'pf0vf0' } });
});

t.test('allocate: authorised against OVN, MAC/IP from OVN, one plug txn, quarantine lifted; retry returns the same VF', async (t) => {
  const r = await rig(t);
  t.equal(r.q.quarantined.size, 4, 'all representors quarantined at start');
  const key = await addPod(r, 'web');
  const before = r.writes();
  const a = await r.pool.allocate(key, 'host1');
  t.equal(r.writes() - before, 1, 'lease + plug in one OVSDB transaction');
  t.equal(a.vfIndex, 0);
  t.match(a.mac, /^0a:58:0a:f4:01:/);
  t.same(a.ips.map((i) => i.address), [`10.244.1.${a.mac.split(':')[5] ? parseInt(a.mac.split(':')[5] as string, 16) : 0}/24`]);
  t.same(a.routes, [{ dst: '0.0.0.0/0', gateway: '10.244.1.1' }]);
  t.equal(a.mtu, 1400);
  t.equal(a.state, 'ready');
  t.equal(r.hw.macs.get('pf0vf0'), a.mac, 'VF MAC set from OVN before handing it out');
  t.notOk(r.q.quarantined.has('pf0vf0'), 'quarantine lifted');
  t.same(await brPorts(r), ['pf0vf0']);
  const ext = await ovsVsctl(r.ovs.unixRemote, 'get', 'Interface', 'pf0vf0', 'external_ids');
  t.match(ext, /iface-id=default_web/);
  t.match(ext, /"dpu-agent\/sandbox"=sb-web/);
  t.match(ext, /"dpu-agent\/peer"=host1/);

  const again = await r.pool.allocate(key, 'host1');
  t.equal(again.vfIndex, a.vfIndex, 'idempotent per sandbox');
  t.equal(r.writes() - before, 1, 'the retry wrote nothing');
  const [x, y] = await Promise.all([r.pool.allocate({ ...key, ifname: 'eth0' }, 'host1'), r.pool.allocate(key, 'host1')]);
  t.equal(x.vfIndex, y.vfIndex);
});

t.test("options:iface-id-ver: the plug copies the LSP's value (OVN's, not the host's) so ovn-controller may claim it", async (t) => {
  const r = await rig(t, { vfs: 3 });
  const pinned = await addPod(r, 'pinned', { ifaceIdVer: 'ver-from-ovn' });
  const plain = await addPod(r, 'plain', { ifaceIdVer: null });
  const before = r.writes();
  const a = await r.pool.allocate(pinned, 'host1');
  t.equal(r.writes() - before, 1, 'still one transaction');
  t.equal(a.state, 'ready', 'installed: the fake ovn-controller installs only a matching version');
  const ext = await ovsVsctl(r.ovs.unixRemote, 'get', 'Interface', a.representor, 'external_ids');
  t.match(ext, /iface-id-ver=ver-from-ovn/);
  t.notMatch(ext, new RegExp(`iface-id-ver="?${pinned.pod.uid}`), 'not the pod UID the host sent (only the dpu-agent/pod-uid record has that)');
  t.equal(r.pool.leases().find((l) => l.lsp === 'default_pinned')?.ifaceIdVer, 'ver-from-ovn', 'decoded into the lease');
  const b = await r.pool.allocate(plain, 'host1');
  t.notMatch(await ovsVsctl(r.ovs.unixRemote, 'get', 'Interface', b.representor, 'external_ids'), /iface-id-ver/, 'an LSP without one: none written');
  t.equal(b.state, 'ready');

  r.pool.stop();
  const r2 = await rig(t, { ovs: r.ovs, nb: r.nb, hw: r.hw });
  t.equal(r2.writes(), 0, 'restart rebuilds with zero writes');
  t.same(r2.pool.list('host1').map((x) => [x.key.pod.name, x.state]).sort(), [['pinned', 'ready'], ['plain', 'ready']]);
});

t.test('an LSP re-versioned under the same name (pod re-created: new UID): the old lease is broken, not re-bound, and released', async (t) => {
  const r = await rig(t, { vfs: 3, graceMs: 0 });
  const k1 = await addPod(r, 'sts-0');
  const k2 = await addPod(r, 'sts-1');
  await r.pool.allocate(k1, 'host1');
  await r.pool.allocate(k2, 'host1');
  const newUid = '00000000-0000-4000-8000-00000000beef';
  for (const lsp of ['default_sts-0', 'default_sts-1']) {
    await nbctl(r.nb, 'set', 'Logical_Switch_Port', lsp, `options:iface-id-ver=${newUid}`, `external_ids:pod-uid=${newUid}`);
    await until(() => r.pool['opts'].ovn.lookup(lsp)?.ifaceIdVer === newUid);
  }
  t.equal(r.pool.get(k1, 'host1')?.state, 'broken', 'reported broken (CNI CHECK fails) although ovn-installed is still on the row');
  t.match(await ovsVsctl(r.ovs.unixRemote, 'get', 'Interface', 'pf0vf0', 'external_ids'), new RegExp(`iface-id-ver="?${k1.pod.uid}`), 'the old version is kept: the old pod must not get the new one\'s port');
  const before = r.writes();
  await t.rejects(r.pool.allocate(k1, 'host1'), { code: 'DPU_ERR_PORTS', reason: 'ovn-not-installed' }, 'a retry of the old ADD: the lease can never be bound');
  t.ok(r.writes() > before, 'and it was released');
  t.same(r.pool.list('host1').map((a) => a.key.pod.name), ['sts-1']);
  t.equal(await r.pool.sweepOrphans(), 1, 'the orphan sweep releases a re-versioned lease');
  t.same(r.pool.list('host1'), []);
  const k1new = { ...k1, pod: { ...k1.pod, uid: newUid }, sandboxId: 'sb-sts-0-new' };
  const a = await r.pool.allocate(k1new, 'host1');
  t.equal(a.state, 'ready', 'the re-created pod attaches');
  t.match(await ovsVsctl(r.ovs.unixRemote, 'get', 'Interface', a.representor, 'external_ids'), new RegExp(`iface-id-ver="?${newUid}`));
});

t.test('refusals leave nothing behind', async (t) => {
  const r = await rig(t, { vfs: 2 });
  const ghost = { pod: { namespace: 'default', name: 'ghost', uid: '00000000-0000-4000-8000-000000000999' }, sandboxId: 'sb', ifname: 'eth0' };
  await t.rejects(r.pool.allocate(ghost, 'host1'), { code: 'DPU_ERR_PORTS', reason: 'pod-not-found' }, 'pod-not-found');
  const other = await addPod(r, 'elsewhere', { chassis: 'dpu2' });
  await t.rejects(r.pool.allocate(other, 'host1'), { code: 'DPU_ERR_PORTS', reason: 'pod-not-on-this-chassis' }, 'pod-not-on-this-chassis');
  const k = await addPod(r, 'uidpod');
  await t.rejects(r.pool.allocate({ ...k, pod: { ...k.pod, uid: '00000000-0000-4000-8000-000000000000' } }, 'host1'), { code: 'DPU_ERR_PORTS', reason: 'pod-uid-mismatch' }, 'pod-uid-mismatch');
  t.same(await brPorts(r), [], 'nothing plugged');
  t.equal(r.q.quarantined.size, 2, 'everything still quarantined');
  t.equal(r.pool.status().free, 2);

  await r.pool.allocate(k, 'host1');
  await t.rejects(r.pool.allocate({ ...k, sandboxId: 'sb-other' }, 'host1'), { code: 'DPU_ERR_PORTS', reason: 'sandbox-conflict' }, 'another sandbox for an attached pod');
  await t.rejects(r.pool.allocate(k, 'host2'), { code: 'DPU_ERR_PORTS', reason: 'not-owner' }, 'another host asking for the same attachment');
  await t.rejects(r.pool.release(k, 'host2'), { code: 'DPU_ERR_PORTS', reason: 'not-owner' }, 'another host cannot release it');
  t.same(await r.pool.release({ ...k, sandboxId: 'stale' }, 'host1'), { released: false }, 'stale DEL does not touch the live lease');
  t.same(
    await r.pool.release({ ...k, pod: { ...k.pod, uid: '6f1d2c3b-0000-4000-8000-000000000001' } }, 'host1'),
    { released: false },
    'a DEL naming another pod uid (same name and sandbox) does not touch the live lease',
  );
  t.same(await brPorts(r), ['pf0vf0']);
  const k2 = await addPod(r, 'second');
  await r.pool.allocate(k2, 'host1');
  const k3 = await addPod(r, 'third');
  await t.rejects(r.pool.allocate(k3, 'host1'), { code: 'DPU_ERR_PORTS', reason: 'vf-pool-empty' }, 'vf-pool-empty');
});

t.test('per-host cap', async (t) => {
  const r = await rig(t, { vfs: 4, cap: 1 });
  const a = await addPod(r, 'capa');
  const b = await addPod(r, 'capb');
  await r.pool.allocate(a, 'host1');
  await t.rejects(r.pool.allocate(b, 'host1'), { code: 'DPU_ERR_PORTS', reason: 'host-lease-cap' }, 'host-lease-cap');
  t.equal(r.pool.status().free, 3, 'the refused request took nothing');
  // Authorisation is by OVN; the cap is per host identity.
  t.equal((await r.pool.allocate(b, 'host2')).vfIndex, 1, 'another host has its own cap');
});

t.test('ovn-installed never comes: DEADLINE, rolled back (no port, MAC scrubbed, quarantined)', async (t) => {
  const noInstall = new Set(['pf0vf0']);
  const r = await rig(t, { vfs: 2, timeoutMs: 300, noInstall });
  const k = await addPod(r, 'slow');
  await t.rejects(r.pool.allocate(k, 'host1'), { code: 'DPU_ERR_PORTS', reason: 'ovn-not-installed' }, 'ovn-not-installed');
  await until(() => true);
  t.same(await brPorts(r), [], 'port removed');
  t.equal(r.hw.macs.get('pf0vf0'), scrubMac(0, 0), 'MAC scrubbed');
  t.ok(r.q.quarantined.has('pf0vf0'), 'quarantined again');
  t.same(r.pool.leases(), [], 'no lease');
  // Once ovn-controller works again the retry succeeds on the scrubbed, freed VF.
  noInstall.clear();
  const a = await r.pool.allocate(k, 'host1');
  t.equal(a.vfIndex, 0, 'the freed VF is reused');
  t.equal(r.hw.macs.get('pf0vf0'), a.mac);
  t.equal(r.pool.status().free, 1);
});

t.test('a failed quarantine lift: nothing plugged, the VF scrubbed and quarantined, the retry works', async (t) => {
  const r = await rig(t, { vfs: 2 });
  const k = await addPod(r, 'liftfail');
  r.q.failLift.add('pf0vf0');
  const writes = r.writes();
  await t.rejects(r.pool.allocate(k, 'host1'), { code: 'DPU_ERR_PORTS', reason: 'plug-failed' }, 'plug-failed');
  t.equal(r.writes(), writes, 'no plug transaction: the lift comes first');
  t.same(await brPorts(r), [], 'nothing on the bridge');
  t.equal(r.hw.macs.get('pf0vf0'), scrubMac(0, 0), 'MAC scrubbed');
  t.ok(r.q.quarantined.has('pf0vf0'), 'quarantined');
  t.same(r.pool.leases(), [], 'no lease');
  const a = await r.pool.allocate(k, 'host1');
  t.equal(a.vfIndex, 0, 'the retry gets the same, cleaned VF');
});

t.test('release is idempotent and scrubs; restart rebuilds leases with zero writes', async (t) => {
  const r = await rig(t, { vfs: 3 });
  const k1 = await addPod(r, 'r1');
  const k2 = await addPod(r, 'r2');
  const a1 = await r.pool.allocate(k1, 'host1');
  await r.pool.allocate(k2, 'host1');
  t.same(await r.pool.release(k1, 'host1'), { released: true });
  t.same(await r.pool.release(k1, 'host1'), { released: false }, 'DEL twice');
  t.ok(r.q.quarantined.has(a1.representor));
  t.equal(r.hw.macs.get(a1.representor), scrubMac(0, a1.vfIndex), 'previous tenant MAC gone');
  t.same(await brPorts(r), ['pf0vf1']);

  r.pool.stop();
  // A rebooted DPU: fresh eSwitch (no VF MACs), representors down.
  const hw2 = new FakeHw(3);
  hw2.macs.set('pf0vf2', '0a:58:0a:f4:01:99'); // an agent killed after setting the MAC, before the plug
  hw2.macs.set('pf0vf0', scrubMac(0, 0));
  hw2.batch = true;
  const r2 = await rig(t, { ovs: r.ovs, nb: r.nb, hw: hw2 });
  t.same([hw2.batchReads, hw2.singleReads], [1, 1], 'VF MACs read in one batch; one by one only for the VF the batch did not know (pf0vf1, MAC lost in the reboot)');
  t.equal(r2.writes(), 0, 'rebuilt from OVSDB with zero writes');
  t.equal(r2.hw.macs.get('pf0vf1'), r.hw.macs.get('pf0vf1'), 'leased VF MAC restored from the lease');
  t.notOk(r2.q.quarantined.has('pf0vf1'), 'leased representor not quarantined');
  t.equal(hw2.macs.get('pf0vf2'), scrubMac(0, 2), 'a free VF left with a tenant MAC is scrubbed');
  t.same(r2.pool.list('host1').map((a) => [a.key.pod.name, a.vfIndex, a.state]), [['r2', 1, 'ready']]);
  t.same([...r2.q.quarantined].sort(), ['pf0vf0', 'pf0vf2'], 'only unleased representors quarantined');
  t.same(r2.pool.get(k2, 'host1')?.vfIndex, 1);
  t.equal(r2.pool.get(k2, 'host2'), undefined, 'another host cannot see it');
});

/** Representor counters that only grow (as the kernel's do), per name. */
class FakeCounters implements CounterReader {
  readonly links = new Map<string, VfCounters>();
  add(name: string, packets: number): void {
    const c = this.links.get(name) ?? ZERO_COUNTERS;
    this.links.set(name, { ...c, rxPackets: c.rxPackets + packets, rxBytes: c.rxBytes + 100 * packets, txPackets: c.txPackets + packets, txBytes: c.txBytes + 100 * packets });
  }
  async read(names: readonly string[]): Promise<Map<string, VfCounters>> {
    return new Map(names.flatMap((n) => (this.links.has(n) ? [[n, this.links.get(n) as VfCounters] as const] : [])));
  }
}

t.test("counters are re-based per lease: the next tenant of a VF never sees the previous one's traffic, also after a restart", async (t) => {
  const counters = new FakeCounters();
  for (let i = 0; i < 2; i++) counters.add(`pf0vf${i}`, 0);
  counters.add('pf0vf0', 7); // traffic from before any lease (e.g. a previous agent's tenant)
  const r = await rig(t, { vfs: 1, counters });
  const k1 = await addPod(r, 'c1');
  const a1 = await r.pool.allocate(k1, 'host1');
  t.strictSame((await r.pool.counters([a1])).get(keyString(k1)), ZERO_COUNTERS, 'a fresh lease starts at zero');
  counters.add('pf0vf0', 1000);
  const first = (await r.pool.counters([a1])).get(keyString(k1));
  t.equal(first?.rxPackets, 1000, 'the tenant sees its own traffic');
  t.equal(first?.txBytes, 100_000);
  await r.pool.release(k1, 'host1');

  const k2 = await addPod(r, 'c2');
  const a2 = await r.pool.allocate(k2, 'host1');
  t.equal(a2.representor, a1.representor, 'same VF');
  counters.add('pf0vf0', 3);
  t.strictSame((await r.pool.counters([a2])).get(keyString(k2))?.rxPackets, 3, "only the new tenant's 3 packets, not the previous 1,007");

  r.pool.stop();
  const r2 = await rig(t, { ovs: r.ovs, nb: r.nb, hw: r.hw, counters });
  const again = r2.pool.get(k2, 'host1');
  t.ok(again);
  if (again) t.equal((await r2.pool.counters([again])).get(keyString(k2))?.rxPackets, 3, 'the base survives an agent restart (kept in the lease)');
  // A DPU reboot re-creates the representor: its counters restart below the base.
  counters.links.set('pf0vf0', { ...ZERO_COUNTERS, rxPackets: 2 });
  if (again) t.equal((await r2.pool.counters([again])).get(keyString(k2))?.rxPackets, 2, 'counters below the base: counted from the re-creation');
  counters.links.delete('pf0vf0');
  if (again) t.equal((await r2.pool.counters([again])).size, 0, 'a vanished VF has no counters');
});

t.test('an ADD right after the control plane created the LSP is not refused: the pool catches up with NB first', async (t) => {
  const r = await rig(t, { vfs: 2 });
  // The control plane's own NB session, as ovn-kubernetes has: its commit reply can beat
  // the monitor update on the agent's session.
  const cp = new OvsdbClient({ remotes: r.nb.unixRemote, database: 'OVN_Northbound' });
  await cp.start();
  t.teardown(() => cp.stop());
  const sel = (await cp.transact([op.select('Logical_Switch', [eq('name', 'node1')], ['_uuid'])]))[0];
  const uuidCell = sel?.rows?.[0]?.['_uuid'];
  const ls = uuidCell instanceof Uuid ? uuidCell.value : String(uuidCell ?? '');
  t.ok(ls, 'the switch');
  let refused = 0;
  const N = 25;
  for (let i = 0; i < N; i++) {
    const n = 200 + i;
    const lsp = `default_race-${i}`;
    const uid = `00000000-0000-4000-9000-${String(n).padStart(12, '0')}`;
    const mac = `0a:58:0a:f4:02:${n.toString(16).padStart(2, '0')}`;
    const addr = `${mac} 10.244.1.${n - 150}`;
    await cp.transact([
      op.insert('Logical_Switch_Port', { name: lsp, addresses: [addr], options: new Map([['requested-chassis', CHASSIS], ['iface-id-ver', uid]]) }, 'lsp'),
      op.mutate('Logical_Switch', [eq('_uuid', new Uuid(ls))], [['ports', 'insert', [new NamedUuid('lsp')]]]),
    ]);
    const key = { pod: { namespace: 'default', name: `race-${i}`, uid }, sandboxId: `sb-race-${i}`, ifname: 'eth0' };
    try {
      await r.pool.allocate(key, 'host1');
      await r.pool.release(key, 'host1');
    } catch (err) {
      refused++;
      t.comment(`${lsp}: ${String(err)}`);
    }
  }
  t.equal(refused, 0, `${N} ADDs straight after their LSP's commit: none refused`);
});

t.test('GC: leases the host no longer names, and leases whose OVN port vanished', async (t) => {
  const r = await rig(t, { vfs: 3, graceMs: 0 });
  const k1 = await addPod(r, 'g1');
  const k2 = await addPod(r, 'g2');
  await r.pool.allocate(k1, 'host1');
  await r.pool.allocate(k2, 'host1');
  t.same(await r.pool.gc('host1', [k1]), { released: 1 });
  t.same(r.pool.list('host1').map((a) => a.key.pod.name), ['g1']);
  await nbctl(r.nb, 'lsp-del', 'default_g1');
  await until(() => r.pool['opts'].ovn.lookup('default_g1') === undefined);
  t.equal(r.pool.list('host1')[0]?.state, 'broken', 'reported broken while its port is gone');
  t.equal(await r.pool.sweepOrphans(), 1);
  t.same(r.pool.list('host1'), []);
  t.same(await brPorts(r), []);
});

t.test('concurrent allocations get distinct VFs and the pool is exact', async (t) => {
  const r = await rig(t, { vfs: 6 });
  const keys = [];
  for (let i = 0; i < 7; i++) keys.push(await addPod(r, `c${i}`));
  const results = await Promise.allSettled(keys.map((k) => r.pool.allocate(k, 'host1')));
  const ok = results.filter((x) => x.status === 'fulfilled').map((x) => (x as PromiseFulfilledResult<{ vfIndex: number }>).value.vfIndex);
  t.equal(ok.length, 6);
  t.equal(new Set(ok).size, 6, 'no VF handed out twice');
  t.match(results.find((x) => x.status === 'rejected'), { reason: { reason: 'vf-pool-empty' } });
  t.equal((await brPorts(r)).length, 6);
});

t.test('several attachments per pod: one VF and one OVN port per interface name', async (t) => {
  const r = await rig(t, { vfs: 3 });
  const k = await addPod(r, 'multi');
  await nbctl(r.nb, 'lsp-add', 'node1', 'default_multi_net1', '--', 'lsp-set-addresses', 'default_multi_net1', '0a:58:0a:f4:01:fe 10.244.1.254', '--', 'lsp-set-options', 'default_multi_net1', `requested-chassis=${CHASSIS}`, '--', 'set', 'Logical_Switch_Port', 'default_multi_net1', `external_ids:pod-uid=${k.pod.uid}`);
  await until(() => r.pool['opts'].ovn.lookup('default_multi_net1') !== undefined);
  const a = await r.pool.allocate(k, 'host1');
  const b = await r.pool.allocate({ ...k, ifname: 'net1' }, 'host1');
  t.not(a.vfIndex, b.vfIndex);
  t.equal(b.mac, '0a:58:0a:f4:01:fe', 'second attachment addressed from its own OVN port');
  t.ok(a.routes.some((x) => x.dst === '0.0.0.0/0'), 'the primary interface carries the default route');
  t.same(b.routes, [], 'a further attachment none (it would replace eth0\'s in the pod)');
  await t.rejects(r.pool.allocate({ ...k, ifname: 'net2' }, 'host1'), { code: 'DPU_ERR_PORTS', reason: 'pod-not-found' }, 'an interface OVN knows nothing about is refused');
  t.same(await r.pool.release({ ...k, ifname: 'net1' }, 'host1'), { released: true });
  t.same(r.pool.list('host1').map((x) => x.key.ifname), ['eth0'], 'the other attachment is untouched');
});

t.test('hot pool changes: new VFs quarantined at once, a vanished leased VF marks its lease broken, and comes back restored', async (t) => {
  const r = await rig(t, { vfs: 2 });
  const k = await addPod(r, 'hot');
  const a = await r.pool.allocate(k, 'host1');
  r.hw.n = 4; // the host raised sriov_numvfs
  await r.pool.rescan();
  t.equal(r.pool.status().total, 4);
  t.ok(r.q.quarantined.has('pf0vf2') && r.q.quarantined.has('pf0vf3'), 'new representors quarantined');
  t.equal(r.hw.macs.get('pf0vf3'), scrubMac(0, 3), 'and scrubbed');

  r.hw.missing.add(a.vfIndex); // the leased VF disappeared
  await r.pool.rescan();
  t.equal(r.pool.get(k, 'host1')?.state, 'broken', 'GetVf reports the lease broken');
  t.equal(r.pool.status().total, 3);
  t.match(r.pool.status(), { leased: 1, broken: 1, free: 3 }, 'the broken lease holds none of the 3 present VFs');
  t.same(await brPorts(r), [a.representor], 'no port pulled from under OVN while the pod may come back');

  r.hw.macs.delete(a.representor);
  r.hw.missing.delete(a.vfIndex); // it came back (e.g. a VF reset)
  await r.pool.rescan();
  t.equal(r.pool.get(k, 'host1')?.state, 'ready', 'restored');
  t.equal(r.hw.macs.get(a.representor), a.mac, 'with its MAC from the lease');
  t.notOk(r.q.quarantined.has(a.representor));

  r.hw.missing.add(a.vfIndex);
  await r.pool.rescan();
  t.same(await r.pool.release(k, 'host1'), { released: true }, 'a broken lease can still be released');
  t.same(await brPorts(r), []);
  r.hw.n = 1; // shrink back
  r.hw.missing.clear();
  await r.pool.rescan();
  t.equal(r.pool.status().total, 1);
});

t.test('a free representor that comes up (hot-add, network manager) is quarantined again; leased ones are left alone', async (t) => {
  const r = await rig(t, { vfs: 2 });
  const k = await addPod(r, 'up');
  const a = await r.pool.allocate(k, 'host1');
  const free = a.representor === 'pf0vf0' ? 'pf0vf1' : 'pf0vf0';
  r.q.quarantined.delete(free); // someone set it up after we quarantined it
  const seen: string[] = [];
  r.pool.on('requarantined', (n) => seen.push(n));
  await r.pool.keepQuarantined(free);
  t.ok(r.q.quarantined.has(free), 'the free one is down again');
  await r.pool.keepQuarantined(a.representor);
  t.notOk(r.q.quarantined.has(a.representor), 'the leased one stays up');
  await r.pool.keepQuarantined('pf0vf9');
  t.same(seen, [free], 'only the free one counted; an unknown name is ignored');
});
