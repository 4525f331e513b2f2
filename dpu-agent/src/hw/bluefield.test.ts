import t from 'tap';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlueFieldHw, parseDevlinkPorts, parsePhysPortName } from './bluefield.ts';
import type { CommandRunner } from './types.ts';

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

t.test('devlink port JSON', async (t) => {
  const ports = parseDevlinkPorts(await readFile(fixture, 'utf8'));
  t.equal(ports.length, 5);
  t.match(ports.find((p) => p.netdev === 'pf0vf0'), { handle: 'pci/0000:03:00.0/4097', flavour: 'pcivf', pfnum: 0, vfnum: 0, external: true, hwAddr: '0a:58:0a:f4:01:05' });
});

t.test('discovers only this eSwitch VF representors, sorted', async (t) => {
  const hw = new BlueFieldHw({ uplink: 'p0', sysfsRoot: await fakeSys(t), run: async () => ({ code: 0, stdout: '', stderr: '' }) });
  const reps = await hw.discoverRepresentors();
  t.same(reps.map((r) => [r.name, r.pf, r.vf, r.ifindex, r.operUp]), [
    ['pf0vf0', 0, 0, 6, true],
    ['pf0vf1', 0, 1, 7, false],
  ]);
  await t.rejects(new BlueFieldHw({ uplink: 'lo', sysfsRoot: await fakeSys(t) }).discoverRepresentors(), { code: 'DPU_ERR_HW' }, 'uplink not in switchdev');
});

t.test('VF MAC through the devlink port function, found by netdev then by pf/vf number', async (t) => {
  const calls: string[][] = [];
  const json = await readFile(fixture, 'utf8');
  const run: CommandRunner = async (argv) => {
    calls.push([...argv]);
    if (argv.includes('show')) return { code: 0, stdout: json, stderr: '' };
    if (argv.includes('hw_addr') && argv.at(-1) === '0a:58:0a:f4:01:09') return { code: 0, stdout: '', stderr: '' };
    return { code: 1, stdout: '', stderr: 'Error: mlx5_core: Operation not supported.' };
  };
  const hw = new BlueFieldHw({ uplink: 'p0', sysfsRoot: await fakeSys(t), run });
  t.equal(await hw.getVfMac({ pf: 0, vf: 0 }), '0a:58:0a:f4:01:05');
  await hw.setVfMac({ pf: 0, vf: 1 }, '0A-58-0A-F4-01-09');
  t.same(calls.at(-1), ['devlink', 'port', 'function', 'set', 'pci/0000:03:00.0/4098', 'hw_addr', '0a:58:0a:f4:01:09']);
  await t.rejects(hw.setVfMac({ pf: 0, vf: 1 }, '0a:58:0a:f4:01:0a'), { code: 'DPU_ERR_HW', message: /Operation not supported/ }, 'driver refusal surfaces with its text');
  await t.rejects(hw.setVfMac({ pf: 0, vf: 7 }, '0a:58:0a:f4:01:0a'), { code: 'DPU_ERR_HW', message: /no devlink port/ }, 'unknown VF');
  await t.rejects(hw.setVfMac({ pf: 0, vf: 0 }, '01:00:5e:00:00:01'), { code: 'DPU_ERR_HW', message: /multicast/ }, 'multicast MAC refused');
});
