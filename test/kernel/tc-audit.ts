// Kernel-lane test of the TC policy-integrity audit (offload/tc-audit.ts), driven by
// real RTNLGRP_TC notifications (offload/tc-events.ts), in the guest's own netns (one node
// process: the guest is disposable) with pf0vf0 (unleased: our drop filter), pf0vf1 (leased),
// p0 (the uplink), each a veth.
// Filters added behind the agent's back with iproute2:
//   tc filter add dev pf0vf1 ingress prio 7 protocol ip flower ip_proto icmp action drop      → foreign, removed
//   tc filter add dev p0 ingress prio 9 protocol ip matchall action drop                      → foreign, removed
//   tc filter add dev pf0vf1 ingress prio 2 protocol ip flower … action pass cookie <16 B>    → OVS-shaped, kept
//   tc filter del dev pf0vf0 ingress prio 1 handle 1 protocol all flower                      → quarantine-missing, reinstalled
// The audit's interval is 10 min: only the notifications can make it act in time.
import { execFileSync, spawnSync } from 'node:child_process';
import { silentLogger } from '../../dpu-agent/src/log.ts';
import { TcQuarantine, isQuarantineFilter } from '../../dpu-agent/src/offload/quarantine.ts';
import { sysfsIfindex } from '../../dpu-agent/src/offload/tc-api.ts';
import { TcAudit, type DriftKind } from '../../dpu-agent/src/offload/tc-audit.ts';
import { TcEvents } from '../../dpu-agent/src/offload/tc-events.ts';
import { LinkQuarantine } from '../../dpu-agent/src/hw/quarantine.ts';
import { Tc, TC_PARENT_INGRESS } from '../../dpu-agent/src/tc/index.ts';
import { check, kernelTest, requireModules } from '../helpers/kernel.ts';

const sh = (...a: string[]): string => execFileSync(a[0]!, a.slice(1), { encoding: 'utf8' });
const OVS_COOKIE = '00112233445566778899aabbccddeeff';
const DEVS = [['pf0vf0', 'vf0'], ['pf0vf1', 'vf1'], ['p0', 'wire']] as const;

async function until(what: string, cond: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

await kernelTest('tc-audit', async (defer) => {
  requireModules('cls_flower', 'sch_ingress', 'act_gact', 'veth');
  for (const [a, b] of DEVS) {
    defer(() => spawnSync('ip', ['link', 'del', a]));
    sh('ip', 'link', 'add', a, 'type', 'veth', 'peer', 'name', b);
    sh('ip', 'link', 'set', a, 'up');
  }
  const tc = new Tc({ timeoutMs: 20_000 });
  defer(() => tc.close());
  const events = new TcEvents(silentLogger());
  defer(() => events.close());
  {
    const run = async (argv: readonly string[]) => {
      const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
      return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
    };
    const q = new TcQuarantine({ tc, link: new LinkQuarantine(run), tcPolicy: 'none', logger: silentLogger(), run });
    await q.apply('pf0vf0');
    await q.apply('pf0vf1');
    await q.lift('pf0vf1');
    check(q.mode === 'flower', `quarantine mode ${q.mode}`);
    const [vf0, vf1, p0] = (await Promise.all(['pf0vf0', 'pf0vf1', 'p0'].map(sysfsIfindex))) as [number, number, number];
    const audit = new TcAudit({ tc, quarantine: q, uplinks: ['p0'], repair: true, intervalMs: 600_000, confirmMs: 300, debounceMs: 200, logger: silentLogger() });
    const drift: Array<[DriftKind, number]> = [];
    audit.on('drift', (kind, f) => drift.push([kind, f.length]));
    check((await audit.schedule()).length === 0, 'clean start: no findings');
    audit.start(events);

    sh('tc', 'qdisc', 'add', 'dev', 'p0', 'clsact');
    sh('tc', 'filter', 'add', 'dev', 'pf0vf1', 'ingress', 'prio', '2', 'protocol', 'ip', 'flower', 'dst_ip', '10.0.0.2', 'action', 'pass', 'cookie', OVS_COOKIE);
    sh('tc', 'filter', 'add', 'dev', 'pf0vf1', 'ingress', 'prio', '7', 'protocol', 'ip', 'flower', 'ip_proto', 'icmp', 'action', 'drop');
    sh('tc', 'filter', 'add', 'dev', 'p0', 'ingress', 'prio', '9', 'protocol', 'ip', 'matchall', 'action', 'drop');
    sh('tc', 'filter', 'del', 'dev', 'pf0vf0', 'ingress', 'prio', '1', 'handle', '1', 'protocol', 'all', 'flower');
    const t0 = Date.now();
    await until('foreign filters removed and the drop filter back', async () => {
      const [a, b, c] = await Promise.all([vf0, vf1, p0].map((i) => tc.dumpAnyFilters(i, TC_PARENT_INGRESS)));
      return a!.some(isQuarantineFilter) && b!.length === 1 && c!.length === 0;
    });
    check(events.events > 0, 'RTNLGRP_TC notifications received');
    const kept = await tc.dumpFilters(vf1, TC_PARENT_INGRESS);
    check(kept.length === 1 && kept[0]!.prio === 2 && kept[0]!.actions[0]?.cookie === OVS_COOKIE, `OVS-shaped filter kept: ${JSON.stringify(kept.map((f) => f.prio))}`);
    const tcJson = sh('tc', '-j', 'filter', 'show', 'dev', 'p0', 'ingress');
    check(!tcJson.includes('matchall'), `tc still lists the matchall filter on p0: ${tcJson}`);
    const count = (k: DriftKind) => drift.filter(([kind]) => kind === k).reduce((s, [, n]) => s + n, 0);
    check(count('foreign-tc-filter') === 2, `foreign-tc-filter counted ${count('foreign-tc-filter')}, expected 2: ${JSON.stringify(drift)}`);
    check(count('quarantine-missing') === 1, `quarantine-missing counted ${count('quarantine-missing')}: ${JSON.stringify(drift)}`);
    console.log(`tc-audit: foreign flower + matchall removed, quarantine reinstalled, OVS-shaped kept, ${events.events} notifications, ${Date.now() - t0} ms after the changes, ${audit.passes} passes`);
    audit.stop();
    check((await audit.schedule()).length === 0, 'clean afterwards');
  }
});
