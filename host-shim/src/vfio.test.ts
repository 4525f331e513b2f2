import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cmdAdd, cmdCheck, cmdDel, type Deps } from './commands.ts';
import { parseNetConf } from './cni.ts';
import { loadState } from './state.ts';
import { type SysfsIo, Vfio } from './vfio.ts';

// A fake kernel behind the same SysfsIo interface: enough of the PCI core's
// driver_override / unbind / drivers_probe behaviour to test the sequence.
// Real binding needs an IOMMU and a VF; that part is only checked on hardware.
class FakePci implements SysfsIo {
  readonly links = new Map<string, string>();
  readonly override = new Map<string, string>();
  readonly writes: string[] = [];
  constructor(
    private readonly root: string,
    private readonly loaded: Set<string>,
  ) {}
  addVf(pf: string, vf: number, addr: string, driver: string): void {
    this.links.set(join(this.root, 'class/net', pf, 'device', `virtfn${vf}`), `../${addr}`);
    this.links.set(join(this.root, 'bus/pci/devices', addr, 'driver'), `../../../bus/pci/drivers/${driver}`);
  }
  async readlink(path: string): Promise<string | undefined> {
    return this.links.get(path);
  }
  async write(path: string, value: string): Promise<void> {
    this.writes.push(`${path.slice(this.root.length)}=${value.trim()}`);
    const m = /bus\/pci\/devices\/([^/]+)\/(driver_override|driver\/unbind)$/.exec(path);
    if (m?.[2] === 'driver_override') {
      if (value.trim() === '') this.override.delete(m[1] as string);
      else this.override.set(m[1] as string, value.trim());
    } else if (m?.[2] === 'driver/unbind') {
      this.links.delete(join(this.root, 'bus/pci/devices', value, 'driver'));
    } else if (path.endsWith('bus/pci/drivers_probe')) {
      const drv = this.override.get(value) ?? 'mlx5_core';
      if (this.loaded.has(drv) && !this.links.has(join(this.root, 'bus/pci/devices', value, 'driver'))) {
        this.links.set(join(this.root, 'bus/pci/devices', value, 'driver'), `../../../bus/pci/drivers/${drv}`);
      }
    }
  }
}

const ADDR = '0000:3b:00.3';

t.test('bind/unbind sequence and idempotency', async (t) => {
  const k = new FakePci('/sys', new Set(['mlx5_core', 'vfio-pci']));
  k.addVf('ens1f0', 1, ADDR, 'mlx5_core');
  const v = new Vfio('/sys', k);
  t.equal(await v.pciAddress('ens1f0', 1), ADDR);
  await t.rejects(v.pciAddress('ens1f0', 9), { code: 105 }, 'unknown VF');
  t.equal(await v.bind(ADDR), 'mlx5_core', 'returns the previous driver');
  t.equal(await v.driver(ADDR), 'vfio-pci');
  t.same(k.writes, [`/bus/pci/devices/${ADDR}/driver_override=vfio-pci`, `/bus/pci/devices/${ADDR}/driver/unbind=${ADDR}`, `/bus/pci/drivers_probe=${ADDR}`]);
  t.equal(await v.bind(ADDR), undefined, 'already bound: no writes');
  t.equal(k.writes.length, 3);
  await v.unbind(ADDR);
  t.equal(await v.driver(ADDR), 'mlx5_core', 'back on the host driver');
  await v.unbind(ADDR); // again: harmless
  t.equal(await v.driver(ADDR), 'mlx5_core');
});

t.test('no vfio-pci module: a clear error', async (t) => {
  const k = new FakePci('/sys', new Set(['mlx5_core']));
  k.addVf('ens1f0', 0, ADDR, 'mlx5_core');
  await t.rejects(new Vfio('/sys', k).bind(ADDR), { code: 6 + 100, message: /did not bind to vfio-pci/ }, 'NETDEV_CONFIG_FAILED');
});

t.test('ADD/CHECK/DEL in vfio mode: pciID in the result, lease released, state kept for DEL', async (t) => {
  const stateDir = await mkdtemp(join(tmpdir(), 'shim-vfio-'));
  t.teardown(() => rm(stateDir, { recursive: true, force: true }));
  const k = new FakePci('/sys', new Set(['mlx5_core', 'vfio-pci']));
  k.addVf('ens1f0', 3, ADDR, 'mlx5_core');
  const calls: string[] = [];
  const vf = { vfIndex: 3, mac: '0a:58:0a:f4:01:07', mtu: 1400, ips: [{ address: '10.244.1.7/24', gateway: '10.244.1.1' }], routes: [], leaseTime: '', state: 0 };
  const client = {
    allocateVf: async () => (calls.push('allocate'), { vf }),
    releaseVf: async () => (calls.push('release'), { released: true }),
    getVf: async () => (calls.push('get'), { vf }),
  } as unknown as Deps['client'];
  const conf = parseNetConf(JSON.stringify({ cniVersion: '1.1.0', name: 'dpu', type: 'dpu-host-shim', agentUrl: 'https://192.0.2.1:50051', tls: { key: '/k', cert: '/c', ca: '/a' }, pf: 'ens1f0', deviceMode: 'vfio', stateDir }));
  const env = { command: 'ADD', containerId: 'sandbox1', netns: '/var/run/netns/p1', ifname: 'net1', path: [], pod: { namespace: 'vm', name: 'kv1', uid: '00000000-0000-4000-8000-000000000001' } };
  // Only the sandbox check may touch the netdev side in vfio mode.
  const netFail = new Proxy({}, { get: (_o, k) => (k === 'netnsExists' ? () => Promise.resolve(true) : () => Promise.reject(new Error(`netdev path (${String(k)}) must not be used in vfio mode`))) });
  const d = { env, conf, client, net: netFail, warn: () => undefined, vfio: new Vfio('/sys', k) } as unknown as Deps;
  const res = (await cmdAdd(d)) as { interfaces: Array<Record<string, unknown>>; ips: unknown[] };
  t.same(res.interfaces, [{ name: 'net1', mac: '0a:58:0a:f4:01:07', mtu: 1400, pciID: ADDR }]);
  t.equal(res.ips.length, 1, 'addresses from OVN are still reported (KubeVirt passes them to the guest)');
  t.equal(await new Vfio('/sys', k).driver(ADDR), 'vfio-pci');
  t.match(await loadState(stateDir, 'sandbox1', 'net1'), { pciId: ADDR, originalDriver: 'mlx5_core' });
  await cmdCheck({ ...d, env: { ...env, command: 'CHECK' } } as unknown as Deps);
  await cmdDel({ ...d, env: { ...env, command: 'DEL' } } as unknown as Deps);
  t.equal(await new Vfio('/sys', k).driver(ADDR), 'mlx5_core', 'DEL gives the VF back to the host driver');
  t.same(calls, ['allocate', 'get', 'release']);
  t.equal(await loadState(stateDir, 'sandbox1', 'net1'), undefined);
  await t.rejects(cmdCheck({ ...d, env: { ...env, command: 'CHECK' } } as unknown as Deps), { code: 104 }, 'CHECK sees a VF not on vfio-pci');
});
