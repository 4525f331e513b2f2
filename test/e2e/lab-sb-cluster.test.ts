// --sb-cluster 3: kill the SB Raft leader; a new leader is elected and new pods
// still come up (northd and ovn-controller follow the cluster).
import t from 'tap';
import { sbLeader } from '../../scripts/labkit/central.ts';
import { addPod } from '../../scripts/labkit/pods.ts';
import { ping, triesUntil } from '../../scripts/labkit/probe.ts';
import { stopProc } from '../../scripts/labkit/procs.ts';
import { poll } from '../../scripts/labkit/sh.ts';
import { labFor, labSkipReason } from '../helpers/lab.ts';

const skip = await labSkipReason();
if (skip) {
  t.plan(0, skip);
} else {
  t.test('SB leader killed: new pods still come up', async (t) => {
    const run = await labFor(t, 'dpls', { dpus: 2, sbCluster: 3 });
    t.equal(run.state.central?.sbRemotes.length, 3);
    const { pod: a } = await addPod(run, { namespace: 'raft', name: 'a' }, { node: 1 });

    const leader = await sbLeader(run);
    t.ok(leader !== undefined, `SB leader is member ${leader}`);
    const p = run.proc(`central/sb${leader}`);
    t.ok(await stopProc({ pid: p.pid, startTime: p.startTime }, 0), `leader pid ${p.pid} killed`);

    const next = await poll('a new SB leader', async () => {
      const l = await sbLeader(run);
      return l !== undefined && l !== leader ? l : undefined;
    }, { tries: 100, intervalMs: 100 });
    t.not(next, leader, `member ${next} took over`);

    const { pod: b, installedMs } = await addPod(run, { namespace: 'raft', name: 'b' }, { node: 2, timeoutMs: 40_000 });
    t.ok(installedMs > 0, `new pod attached (CNI ADD incl. ovn-installed) in ${installedMs} ms`);
    // dpu1's ovn-controller may have been on the killed member and reconnects with
    // backoff before it learns where b is: allow that, bounded (50 probes).
    const tries = await triesUntil(a, b.ip, 'reachable', 50);
    t.ok(tries !== undefined, `old pod reaches the new one (after ${tries} probe(s))`);
    t.equal((await ping(b, a.ip, { count: 3 })).received, 3, 'and the new one the old');
  });
}
