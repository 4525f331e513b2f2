import t from 'tap';
import { EmulatedHw, representorsFromIpJson } from './emulated.ts';
import type { CommandRunner } from './types.ts';

const IP_JSON = JSON.stringify([
  { ifindex: 1, ifname: 'lo', address: '00:00:00:00:00:00', operstate: 'UNKNOWN' },
  { ifindex: 7, ifname: 'pf0vf1', address: 'aa:00:00:00:00:01', operstate: 'UP' },
  { ifindex: 5, ifname: 'pf0vf0', address: 'aa:00:00:00:00:00', operstate: 'DOWN', flags: ['BROADCAST'] },
  { ifindex: 9, ifname: 'p0', address: 'aa:00:00:00:00:09', operstate: 'UP' },
  { ifindex: 11, ifname: 'pf0vf10', operstate: 'LOWERLAYERDOWN', flags: ['LOWER_UP'] },
]);

function fakeRunner(replies: Record<string, { code: number; stdout?: string; stderr?: string }>) {
  const calls: string[] = [];
  const run: CommandRunner = async (argv) => {
    const k = argv.join(' ');
    calls.push(k);
    const r = replies[k] ?? { code: 1, stderr: `unexpected ${k}` };
    return { code: r.code, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  };
  return { calls, run };
}

t.test('representors are parsed from ip -j link and sorted', async (t) => {
  const reps = representorsFromIpJson(IP_JSON);
  t.same(
    reps.map((r) => [r.name, r.vf, r.ifindex, r.operUp]),
    [
      ['pf0vf0', 0, 5, false],
      ['pf0vf1', 1, 7, true],
      ['pf0vf10', 10, 11, true],
    ],
  );
  t.equal(reps[2]!.mac, undefined);
});

t.test('discovery runs ip in the DPU netns when given, else in our own', async (t) => {
  const a = fakeRunner({ 'ip -n d1 -j link show': { code: 0, stdout: IP_JSON } });
  t.equal((await new EmulatedHw({ hostNs: 'h1', dpuNs: 'd1', run: a.run }).discoverRepresentors()).length, 3);
  const b = fakeRunner({ 'ip -j link show': { code: 0, stdout: '[]' } });
  t.same(await new EmulatedHw({ hostNs: 'h1', run: b.run }).discoverRepresentors(), []);
});

t.test('setVfMac writes the host-side VF end, normalised; errors are HwError', async (t) => {
  const f = fakeRunner({
    'ip -n h1 link set dev vf3 address 0a:58:c6:12:01:0a': { code: 0 },
    'ip -n h1 link set dev vf4 address 0a:58:c6:12:01:0b': { code: 1, stderr: 'Cannot find device "vf4"' },
  });
  const hw = new EmulatedHw({ hostNs: 'h1', dpuNs: 'd1', run: f.run });
  await hw.setVfMac({ pf: 0, vf: 3 }, '0A:58:C6:12:01:0A');
  await t.rejects(hw.setVfMac({ pf: 0, vf: 4 }, '0a:58:c6:12:01:0b'), { code: 'DPU_ERR_HW', message: /Cannot find device/ });
  await t.rejects(hw.setVfMac({ pf: 0, vf: 3 }, 'ff:ff:ff:ff:ff:ff'), { code: 'DPU_ERR_HW' });
  t.same(f.calls.slice(0, 2), [
    'ip -n h1 link set dev vf3 address 0a:58:c6:12:01:0a',
    'ip -n h1 link set dev vf4 address 0a:58:c6:12:01:0b',
  ]);
  // vf4 is not in the host netns: the backend then looks for it as pf0vf4's veth peer (a pod took it).
  t.same(f.calls.slice(2), ['ip -j -n h1 link show dev vf4', 'ip -n d1 -j link show dev pf0vf4'], 'then looks for the moved VF; an invalid MAC never reaches the tool');
});

t.test('VF id ⇄ representor name via the backend', async (t) => {
  const hw = new EmulatedHw({ hostNs: 'h1' });
  t.equal(hw.representorName({ pf: 0, vf: 5 }), 'pf0vf5');
  t.same(hw.vfOf('pf0vf5'), { pf: 0, vf: 5 });
  t.equal(hw.vfOf('p0'), undefined);
});
