// Proves the kernel lane: a flower filter (software only, skip_hw) on a veth's ingress
// drops ICMP and its counter moves. Two netns joined by a veth pair:
//   smoke-a: v0 192.0.2.1  <->  smoke-b: v1 192.0.2.2 (clsact + flower on v1 ingress)
// Same as:
//   tc -n B qdisc add dev v1 clsact
//   tc -n B filter add dev v1 ingress prio 1 protocol ip flower skip_hw ip_proto icmp action drop
//   ip netns exec A ping 192.0.2.2; tc -n B -s -j filter show dev v1 ingress
import { randomBytes } from 'node:crypto';
import { addNetns, addVeth, delNetns, ipn, linkUp } from '../../scripts/labkit/netns.ts';
import { inNs, run, sh } from '../../scripts/labkit/sh.ts';
import { check, filterPackets, kernelTest, requireModules, tcIngressFilters } from '../helpers/kernel.ts';

const tag = `kls${randomBytes(2).toString('hex')}`;
const [nsA, nsB] = [`${tag}-a`, `${tag}-b`];
const [ipA, ipB] = ['192.0.2.1', '192.0.2.2'];
const PINGS = 3;

await kernelTest('smoke', async (defer) => {
  requireModules('cls_flower', 'sch_ingress', 'act_gact', 'veth');
  for (const ns of [nsA, nsB]) {
    defer(() => delNetns(ns));
    await addNetns(ns);
  }
  await addVeth(nsA, 'v0', nsB, 'v1');
  await ipn(nsA, 'addr', 'add', `${ipA}/24`, 'dev', 'v0');
  await ipn(nsB, 'addr', 'add', `${ipB}/24`, 'dev', 'v1');
  await linkUp(nsA, 'v0');
  await linkUp(nsB, 'v1');

  // Baseline: the pair forwards before any filter (also resolves ARP, which flower lets through).
  const before = await run(inNs(nsA, ['ping', '-c', '1', '-W', '5', ipB]));
  check(before.code === 0, `ping before the filter failed: ${before.stdout}${before.stderr}`);

  await sh(['tc', '-n', nsB, 'qdisc', 'add', 'dev', 'v1', 'clsact']);
  await sh(['tc', '-n', nsB, 'filter', 'add', 'dev', 'v1', 'ingress', 'prio', '1', 'protocol', 'ip',
    'flower', 'skip_hw', 'ip_proto', 'icmp', 'action', 'drop']);
  const [installed] = await tcIngressFilters(nsB, 'v1');
  check(installed?.kind === 'flower', `no flower filter on v1 ingress: ${JSON.stringify(installed)}`);
  check(installed.options?.skip_hw === true && installed.options.not_in_hw === true,
    `expected skip_hw + not_in_hw: ${JSON.stringify(installed.options)}`);
  const packets0 = filterPackets(installed);

  const dropped = await run(inNs(nsA, ['ping', '-c', String(PINGS), '-i', '0.2', '-W', '1', ipB]));
  check(dropped.code !== 0, `ping went through the drop filter: ${dropped.stdout}`);

  const [after] = await tcIngressFilters(nsB, 'v1');
  check(after !== undefined, 'the flower filter vanished');
  const moved = filterPackets(after) - packets0;
  check(moved >= PINGS, `flower counter moved by ${moved}, expected >= ${PINGS}: ${JSON.stringify(after.options?.actions)}`);
  console.log(`smoke: flower dropped ${moved} ICMP packets (skip_hw, not_in_hw)`);
});
