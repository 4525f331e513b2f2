// EmulatedHw against real netns and veth pairs (needs root and iproute2).
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EmulatedHw } from '../../dpu-agent/src/hw/emulated.ts';

const root = process.getuid?.() === 0;
if (!root) {
  t.plan(0, 'needs root (netns)');
} else {
  const tag = `hwt${randomBytes(3).toString('hex')}`;
  const host = `${tag}-host`;
  const dpu = `${tag}-dpu`;
  const ip = (...a: string[]) => execFileSync('ip', a, { encoding: 'utf8' });

  const pod = `${tag}-pod`;
  t.teardown(() => {
    hw.close();
    for (const ns of [host, dpu, pod]) {
      try {
        ip('netns', 'del', ns);
      } catch {
        /* already gone */
      }
    }
  });

  t.before(() => {
    ip('netns', 'add', host);
    ip('netns', 'add', dpu);
    ip('netns', 'add', pod);
    for (const j of [0, 1, 2]) ip('-n', host, 'link', 'add', `vf${j}`, 'type', 'veth', 'peer', 'name', `pf0vf${j}`, 'netns', dpu);
    ip('-n', dpu, 'link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'ul0'); // not representors
    ip('-n', dpu, 'link', 'set', 'pf0vf1', 'up');
  });

  // Runs outside the DPU netns: its rtnetlink socket is opened inside it (setns).
  const hw = new EmulatedHw({ hostNs: host, dpuNs: dpu });
  const macIn = (ns: string, dev: string): string => (JSON.parse(ip('-j', '-n', ns, 'link', 'show', 'dev', dev)) as { address: string }[])[0]!.address;

  t.test('discovers the representors in the DPU netns only', async (t) => {
    const reps = await hw.discoverRepresentors();
    t.same(reps.map((r) => r.name), ['pf0vf0', 'pf0vf1', 'pf0vf2']);
    t.ok(reps.every((r) => r.ifindex > 0 && /^[0-9a-f:]{17}$/.test(r.mac ?? '')));
  });

  t.test('setVfMac changes the host-side VF end, not the representor', async (t) => {
    const before = await hw.discoverRepresentors();
    await hw.setVfMac({ pf: 0, vf: 2 }, '0A:58:C6:12:02:0B');
    t.equal(await hw.getVfMac({ pf: 0, vf: 2 }), '0a:58:c6:12:02:0b');
    const after = await hw.discoverRepresentors();
    t.same(after.map((r) => r.mac), before.map((r) => r.mac), 'representor MACs unchanged');
  });

  t.test('setVfMac follows a VF the host moved into a pod netns and renamed', async (t) => {
    ip('-n', host, 'link', 'set', 'vf0', 'netns', pod);
    ip('-n', pod, 'link', 'set', 'vf0', 'name', 'eth0');
    await hw.setVfMac({ pf: 0, vf: 0 }, '0a:58:0a:00:00:42');
    t.equal(macIn(pod, 'eth0'), '0a:58:0a:00:00:42', 'set in the pod netns');
    t.equal(await hw.getVfMac({ pf: 0, vf: 0 }), '0a:58:0a:00:00:42');
    await hw.setVfMac({ pf: 0, vf: 1 }, '0a:58:0a:00:00:43');
    t.equal(macIn(host, 'vf1'), '0a:58:0a:00:00:43', 'one still in the host netns');
    const macs = await hw.getVfMacs([0, 1, 2, 9].map((vf) => ({ pf: 0, vf })));
    t.same(Object.fromEntries(macs), { pf0vf0: '0a:58:0a:00:00:42', pf0vf1: '0a:58:0a:00:00:43', pf0vf2: '0a:58:c6:12:02:0b' }, 'batch read across both netns');
    t.same(
      (await hw.discoverRepresentors()).map((r) => [r.name, r.adminUp]),
      [['pf0vf0', false], ['pf0vf1', true], ['pf0vf2', false]],
      'admin state from the same dump',
    );
  });

  t.test('a VF that does not exist is a HwError', async (t) => {
    await t.rejects(hw.setVfMac({ pf: 0, vf: 9 }, '0a:58:c6:12:02:0c'), { code: 'DPU_ERR_HW' });
    t.equal(await hw.getVfMac({ pf: 0, vf: 9 }), undefined);
  });
}
