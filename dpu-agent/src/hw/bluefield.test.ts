import t from 'tap';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DevlinkApi } from '../devlink/client.ts';
import type { DevlinkPort } from '../devlink/codec.ts';
import { parseDevlinkPortsJson } from '../devlink/iproute2.ts';
import { DevlinkError } from '../errors.ts';
import { BlueFieldHw, parsePhysPortName } from './bluefield.ts';

const fixture = new URL('./testdata/devlink-port-show-bf2.json', import.meta.url);

/** A /sys/class/net tree as mlx5 in switchdev mode presents it. */
async function fakeSys(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'bfsys-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const dev = async (name: string, attrs: Record<string, string>): Promise<void> => {
    const d = join(root, 'class/net', name);
    await mkdir(d, { recursive: true });
    for (const [k, v] of Object.entries(attrs)) await writeFile(join(d, k), `${v}\n`);
  };
  await dev('p0', { phys_switch_id: '1a2b3c', phys_port_name: 'p0', ifindex: '4', address: '0c:42:a1:00:00:01', operstate: 'up' });
  await dev('pf0hpf', { phys_switch_id: '1a2b3c', phys_port_name: 'pf0', ifindex: '5', operstate: 'up' });
  await dev('pf0vf1', { phys_switch_id: '1a2b3c', phys_port_name: 'c1pf0vf1', ifindex: '7', address: '3e:11:00:00:00:01', operstate: 'down' });
  await dev('pf0vf0', { phys_switch_id: '1a2b3c', phys_port_name: 'pf0vf0', ifindex: '6', address: '3e:11:00:00:00:00', operstate: 'up' });
  await dev('pf1vf0', { phys_switch_id: 'ffeedd', phys_port_name: 'pf1vf0', ifindex: '9', operstate: 'up' }); // another eSwitch
  await dev('lo', { ifindex: '1', address: '00:00:00:00:00:00', operstate: 'unknown' });
  await dev('tmfifo_net0', { ifindex: '3', operstate: 'up' });
  return root;
}

t.test('phys_port_name forms', async (t) => {
  t.same(parsePhysPortName('pf0vf3'), { pf: 0, vf: 3 });
  t.same(parsePhysPortName('c1pf0vf12'), { pf: 0, vf: 12 });
  t.equal(parsePhysPortName('p0'), undefined);
  t.equal(parsePhysPortName('pf0'), undefined);
  t.equal(parsePhysPortName('pf0sf1'), undefined);
});

/** A devlink that answers from a port list and records what was asked (no socket). */
function fakeDevlink(initial: DevlinkPort[]) {
  const calls: string[] = [];
  const state = { ports: initial, refuse: new Map<string, DevlinkError>() };
  const api: DevlinkApi = {
    async ports() {
      calls.push('dump');
      return state.ports.map((p) => ({ ...p }));
    },
    async port(handle) {
      calls.push(`get ${handle}`);
      return state.ports.find((p) => p.handle === handle);
    },
    async setHwAddr(handle, mac) {
      calls.push(`set ${handle} ${mac}`);
      const refusal = state.refuse.get(mac);
      if (refusal) throw refusal;
      const p = state.ports.find((x) => x.handle === handle);
      if (!p) throw new DevlinkError('port function set', handle, 19, 'ENODEV', undefined);
      state.ports = state.ports.map((x) => (x === p ? { ...x, hwAddr: mac } : x));
    },
  };
  return { api, calls, state };
}

const fixturePorts = async (): Promise<DevlinkPort[]> => parseDevlinkPortsJson(await readFile(fixture, 'utf8'));

t.test('discovers only this eSwitch VF representors, sorted', async (t) => {
  const hw = new BlueFieldHw({ uplink: 'p0', sysfsRoot: await fakeSys(t), devlink: fakeDevlink([]).api });
  const reps = await hw.discoverRepresentors();
  t.same(reps.map((r) => [r.name, r.pf, r.vf, r.ifindex, r.operUp]), [
    ['pf0vf0', 0, 0, 6, true],
    ['pf0vf1', 0, 1, 7, false],
  ]);
  await t.rejects(new BlueFieldHw({ uplink: 'lo', sysfsRoot: await fakeSys(t) }).discoverRepresentors(), { code: 'DPU_ERR_HW' }, 'uplink not in switchdev');
});

t.test('VF MAC through the devlink port function: one dump, then one request per call', async (t) => {
  const dl = fakeDevlink(await fixturePorts());
  const hw = new BlueFieldHw({ uplink: 'p0', sysfsRoot: await fakeSys(t), devlink: dl.api });
  t.equal(await hw.getVfMac({ pf: 0, vf: 0 }), '0a:58:0a:f4:01:05');
  t.same(dl.calls, ['dump', 'get pci/0000:03:00.0/4097'], 'the port list once, then the port itself');
  dl.calls.length = 0;
  await hw.setVfMac({ pf: 0, vf: 1 }, '0A-58-0A-F4-01-09');
  await hw.setVfMac({ pf: 0, vf: 0 }, '0a:58:0a:f4:01:07');
  t.same(dl.calls, ['set pci/0000:03:00.0/4098 0a:58:0a:f4:01:09', 'set pci/0000:03:00.0/4097 0a:58:0a:f4:01:07'], 'cached ports: a set is one request');
  t.equal(await hw.getVfMac({ pf: 0, vf: 1 }), '0a:58:0a:f4:01:09', 'read back');
  t.equal(hw.portDumps, 1);

  dl.state.refuse.set('0a:58:0a:f4:01:0a', new DevlinkError('port function set', 'pci/0000:03:00.0/4098', 95, 'EOPNOTSUPP', 'mlx5_core: Operation not supported'));
  await t.rejects(hw.setVfMac({ pf: 0, vf: 1 }, '0a:58:0a:f4:01:0a'), { code: 'DPU_ERR_HW', message: /4098: devlink port function set .*EOPNOTSUPP: mlx5_core: Operation not supported/ }, 'driver refusal surfaces with its extack');
  dl.calls.length = 0;
  await t.rejects(hw.setVfMac({ pf: 0, vf: 7 }, '0a:58:0a:f4:01:0a'), { code: 'DPU_ERR_HW', message: /no devlink port/ }, 'unknown VF');
  t.same(dl.calls, ['dump'], 'a miss dumps again once');
  dl.calls.length = 0;
  await t.rejects(hw.setVfMac({ pf: 0, vf: 0 }, '01:00:5e:00:00:01'), { code: 'DPU_ERR_HW', message: /multicast/ }, 'multicast MAC refused');
  t.same(dl.calls, [], 'before asking the kernel');
});

t.test('port found by pf/vf number when the representor has another netdev name', async (t) => {
  const ports = (await fixturePorts()).map((p) => (p.netdev === 'pf0vf1' ? { ...p, netdev: 'eth7' } : p));
  const hw = new BlueFieldHw({ uplink: 'p0', sysfsRoot: await fakeSys(t), devlink: fakeDevlink(ports).api });
  t.equal(await hw.getVfMac({ pf: 0, vf: 1 }), '00:00:00:00:00:00');
});

t.test('the port cache: invalidation, a stale handle, a VF that appears later', async (t) => {
  const dl = fakeDevlink(await fixturePorts());
  const hw = new BlueFieldHw({ uplink: 'p0', sysfsRoot: await fakeSys(t), devlink: dl.api });
  await hw.setVfMac({ pf: 0, vf: 0 }, '0a:58:0a:f4:01:01');
  hw.invalidatePorts();
  dl.calls.length = 0;
  await hw.setVfMac({ pf: 0, vf: 0 }, '0a:58:0a:f4:01:02');
  t.same(dl.calls, ['dump', 'set pci/0000:03:00.0/4097 0a:58:0a:f4:01:02'], 'after a link notification the list is dumped again');

  // VFs re-created behind our back: pf0vf0's port has a new index, the cached one is gone.
  dl.state.ports = dl.state.ports.map((p) => (p.netdev === 'pf0vf0' ? { ...p, index: 4200, handle: 'pci/0000:03:00.0/4200' } : p));
  dl.calls.length = 0;
  await hw.setVfMac({ pf: 0, vf: 0 }, '0a:58:0a:f4:01:03');
  t.same(dl.calls, ['set pci/0000:03:00.0/4097 0a:58:0a:f4:01:03', 'dump', 'set pci/0000:03:00.0/4200 0a:58:0a:f4:01:03'], 'ENODEV: dump, retry on the new port');
  t.equal(dl.state.ports.find((p) => p.index === 4200)?.hwAddr, '0a:58:0a:f4:01:03');

  // A VF added after the cache was filled (no notification seen yet): a miss dumps again.
  const vf2: DevlinkPort = { bus: 'pci', dev: '0000:03:00.0', index: 4201, handle: 'pci/0000:03:00.0/4201', flavour: 'pcivf', netdev: 'pf0vf2', pfnum: 0, vfnum: 2, external: true, hwAddr: '00:00:00:00:00:00' };
  dl.state.ports = [...dl.state.ports, vf2];
  dl.calls.length = 0;
  await hw.setVfMac({ pf: 0, vf: 2 }, '0a:58:0a:f4:01:04');
  t.same(dl.calls, ['dump', 'set pci/0000:03:00.0/4201 0a:58:0a:f4:01:04']);

  // Many MACs at once (the pool's start): one fresh dump.
  dl.calls.length = 0;
  const macs = await hw.getVfMacs([{ pf: 0, vf: 0 }, { pf: 0, vf: 2 }, { pf: 3, vf: 3 }]);
  t.same([...macs], [['pf0vf0', '0a:58:0a:f4:01:03'], ['pf0vf2', '0a:58:0a:f4:01:04']]);
  t.same(dl.calls, ['dump']);
});

t.test('a failed dump is not cached', async (t) => {
  const dl = fakeDevlink(await fixturePorts());
  let fail = true;
  const api: DevlinkApi = { ...dl.api, ports: () => (fail ? Promise.reject(new DevlinkError('port show', undefined, 105, 'ENOBUFS', undefined)) : dl.api.ports()) };
  const hw = new BlueFieldHw({ uplink: 'p0', sysfsRoot: await fakeSys(t), devlink: api });
  await t.rejects(hw.getVfMac({ pf: 0, vf: 0 }), { code: 'DPU_ERR_HW', message: /ENOBUFS/ });
  fail = false;
  t.equal(await hw.getVfMac({ pf: 0, vf: 0 }), '0a:58:0a:f4:01:05');
});
