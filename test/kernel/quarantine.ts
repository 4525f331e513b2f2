// Kernel-lane test of the TC quarantine (offload/quarantine.ts) on a real kernel:
//   ns H: vf0 192.0.2.31 (the host's VF)  <->  pf0vf0 (the "representor", in the guest's own
//   netns with this process: the guest is disposable, and one node start under TCG costs ~10 s)
// 1. flower drop filter via TcQuarantine with a link stub that leaves the link up (as an
//    eSwitch forwards regardless of the representor's state): ICMP from the VF side is
//    dropped at pf0vf0 ingress — our filter's counter moves, R's ICMP InEchos does not;
//    lifted → the same ping passes.
// 2. matchall fallback (flower refused): same drop, decoded from a real matchall dump.
// 3. with the real LinkQuarantine: apply leaves pf0vf0 down, addressless, filtered; lift
//    brings it up with no filter left.
// Same as: tc filter replace dev pf0vf0 ingress prio 1 handle 1 protocol all flower action drop cookie …
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { TcError } from '../../dpu-agent/src/errors.ts';
import { silentLogger } from '../../dpu-agent/src/log.ts';
import { TcQuarantine, isQuarantineFilter, filterActions, QUARANTINE_COOKIE } from '../../dpu-agent/src/offload/quarantine.ts';
import type { TcApi } from '../../dpu-agent/src/offload/tc-api.ts';
import { LinkQuarantine } from '../../dpu-agent/src/hw/quarantine.ts';
import { Tc, TC_PARENT_INGRESS } from '../../dpu-agent/src/tc/index.ts';
import { check, kernelTest, requireModules } from '../helpers/kernel.ts';

const sh = (...a: string[]): string => execFileSync(a[0]!, a.slice(1), { encoding: 'utf8' });
const [H_IP, R_IP] = ['192.0.2.31', '192.0.2.32'];
const nsH = `qh-${process.pid}`;

// ---------------------------------------------------------------------------------
let ifindex = 0;
const inEchos = (): number => {
  const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Icmp:'));
  const names = lines[0]!.split(/\s+/);
  return Number(lines[1]!.split(/\s+/)[names.indexOf('InEchos')]);
};
const ping = (n: number): boolean => spawnSync('ip', ['netns', 'exec', nsH, 'ping', '-c', String(n), '-i', '0.2', '-W', '1', R_IP]).status === 0;
const noLink = { apply: async () => undefined, lift: async () => undefined };
const run = async (argv: readonly string[]) => {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
};

async function dropThenPass(tc: TcApi & Tc, q: TcQuarantine, label: string): Promise<void> {
  await q.apply('pf0vf0');
  const ours = (await tc.dumpAnyFilters(ifindex, TC_PARENT_INGRESS)).filter(isQuarantineFilter);
  check(ours.length === 1, `${label}: our filter is in the kernel's dump (${ours.length})`);
  check(filterActions(ours[0]!)[0]?.cookie === QUARANTINE_COOKIE, `${label}: cookie round-trips`);
  // Scaffolding only: give R an address again and H a static neighbour (ARP is dropped too).
  sh('ip', 'addr', 'replace', `${R_IP}/24`, 'dev', 'pf0vf0');
  const mac = readFileSync('/sys/class/net/pf0vf0/address', 'utf8').trim();
  sh('ip', '-n', nsH, 'neigh', 'replace', R_IP, 'lladdr', mac, 'dev', 'vf0');
  const echos0 = inEchos();
  check(!ping(3), `${label}: ping passed the quarantine`);
  check(inEchos() === echos0, `${label}: echo requests reached the representor's stack (${inEchos() - echos0})`);
  const tcJson = JSON.parse(sh('tc', '-s', '-j', 'filter', 'show', 'dev', 'pf0vf0', 'ingress')) as Array<{ options?: { actions?: Array<{ stats?: { packets?: number } }> } }>;
  const dropped = Math.max(0, ...tcJson.flatMap((f) => f.options?.actions ?? []).map((a) => a.stats?.packets ?? 0));
  check(dropped >= 3, `${label}: drop counter moved by ${dropped}, expected >= 3`);
  await q.lift('pf0vf0');
  check((await tc.dumpAnyFilters(ifindex, TC_PARENT_INGRESS)).length === 0, `${label}: no filter after lift`);
  check(ping(2), `${label}: ping after lift failed`);
  check(inEchos() > echos0, `${label}: nothing arrived after lift`);
  console.log(`quarantine: ${label}: ${dropped} packets dropped at ingress, then passed after lift`);
}

await kernelTest('quarantine', async (defer) => {
  requireModules('cls_flower', 'sch_ingress', 'act_gact', 'veth');
  defer(() => spawnSync('ip', ['netns', 'del', nsH]));
  defer(() => spawnSync('ip', ['link', 'del', 'pf0vf0']));
  sh('ip', 'netns', 'add', nsH);
  sh('ip', 'link', 'add', 'pf0vf0', 'type', 'veth', 'peer', 'name', 'vf0', 'netns', nsH);
  sh('ip', '-n', nsH, 'addr', 'add', `${H_IP}/24`, 'dev', 'vf0');
  sh('ip', '-n', nsH, 'link', 'set', 'vf0', 'up');
  sh('ip', 'link', 'set', 'pf0vf0', 'up');
  ifindex = Number(readFileSync('/sys/class/net/pf0vf0/ifindex', 'utf8'));
  const tc = new Tc({ timeoutMs: 20_000 });
  defer(() => tc.close());
  {
    const q = new TcQuarantine({ tc, link: noLink, tcPolicy: 'none', logger: silentLogger(), run });
    await dropThenPass(tc, q, 'flower');
    check(q.mode === 'flower', `mode ${q.mode}`);

    // matchall: a Tc whose flower add is refused as on a kernel without cls_flower.
    const noFlower = Object.assign(Object.create(tc) as Tc, {
      replaceFilter: async () => {
        throw new TcError('filter replace', ifindex, 2, 'ENOENT', 'TC classifier not found');
      },
    });
    const qm = new TcQuarantine({ tc: noFlower, link: noLink, tcPolicy: 'none', logger: silentLogger(), run });
    try {
      await dropThenPass(noFlower, qm, 'matchall');
      check(qm.mode === 'matchall', `mode ${qm.mode}`);
    } catch (err) {
      if (qm.mode === 'link-only') console.log('# skip matchall: cls_matchall not available in this kernel');
      else throw err;
    }

    // The real link quarantine underneath: down, addressless, filtered; lift undoes it.
    const ql = new TcQuarantine({ tc, link: new LinkQuarantine(run), tcPolicy: 'none', logger: silentLogger(), run });
    sh('ip', 'addr', 'replace', `${R_IP}/24`, 'dev', 'pf0vf0');
    await ql.apply('pf0vf0');
    const link = JSON.parse(sh('ip', '-j', 'addr', 'show', 'dev', 'pf0vf0')) as Array<{ flags: string[]; addr_info: unknown[] }>;
    check(!link[0]!.flags.includes('UP'), `pf0vf0 still up: ${link[0]!.flags.join(',')}`);
    check(link[0]!.addr_info.length === 0, `pf0vf0 kept addresses: ${JSON.stringify(link[0]!.addr_info)}`);
    check((await tc.dumpAnyFilters(ifindex, TC_PARENT_INGRESS)).some(isQuarantineFilter), 'no drop filter under link quarantine');
    await ql.lift('pf0vf0');
    const up = JSON.parse(sh('ip', '-j', 'link', 'show', 'dev', 'pf0vf0')) as Array<{ flags: string[] }>;
    check(up[0]!.flags.includes('UP'), 'pf0vf0 not up after lift');
    check((await tc.dumpAnyFilters(ifindex, TC_PARENT_INGRESS)).length === 0, 'filter left after lift');
    console.log('quarantine: link quarantine underneath: down + addressless + filtered, lift undoes all');
  }
});
