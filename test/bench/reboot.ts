// DPU reboot bench: a lab with 2 DPUs, N pods on dpu1 (default 8) and a peer pod on
// dpu2; dpu1 is restarted R times (every process SIGKILLed by pid, eSwitch state
// forgotten, conf.db kept, started as `up` does) while each pod pings the peer every
// 50 ms. Time to traffic = restart start → the pod's first reply (ping -D stamps),
// no CNI call in between. Run as root: `npm run bench -- reboot [--pods N] [--reps R]`.
// Ends with one JSON line {"bench":"reboot",…}.
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { checkConsistency } from '../../scripts/labkit/consistency.ts';
import { addPod, dpuOf } from '../../scripts/labkit/pods.ts';
import { forgetEswitchState, startDpuMeasured, stopDpu } from '../../scripts/labkit/reboot.ts';
import { quantile } from '../../scripts/labkit/quantile.ts';
import { down, missingPrerequisites, up } from '../../scripts/labkit/topology.ts';

const out = (s: string) => process.stdout.write(`${s}\n`);

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { pods: { type: 'string' }, reps: { type: 'string' } } });
  const nPods = Number(values.pods ?? 8);
  const reps = Number(values.reps ?? 3);
  const missing = await missingPrerequisites();
  if (missing.length > 0) throw new Error(`lab prerequisites missing: ${missing.join('; ')}`);
  const prefix = `dpbr${randomBytes(3).toString('hex')}`;
  const all: number[] = [];
  const agentReady: number[] = [];
  const daemons: number[] = [];
  let lost = 0;
  let problems: string[] = [];
  try {
    const run = await up({ prefix, dpus: 2, sbCluster: 1, vfs: Math.max(8, nPods) });
    const d1 = dpuOf(run, 1);
    const { pod: peer } = await addPod(run, { namespace: 'bench', name: 'peer' }, { node: 2 });
    const pods = [];
    for (let i = 0; i < nPods; i++) pods.push((await addPod(run, { namespace: 'bench', name: `r${i}` }, { node: 1 })).pod);
    for (let r = 0; r < reps; r++) {
      await stopDpu(run, d1);
      await forgetEswitchState(run, d1);
      const fig = await startDpuMeasured(run, d1, pods, peer.ip);
      lost += fig.perPod.filter((x) => x === undefined).length;
      all.push(...fig.perPod.filter((x): x is number => x !== undefined));
      agentReady.push(fig.timings.agentReadyMs);
      daemons.push(fig.timings.daemonsMs);
      out(`restart ${r + 1}/${reps}: time to traffic p50 ${fig.p50Ms} ms, max ${fig.maxMs} ms over ${nPods} pods; daemons ${Math.round(fig.timings.daemonsMs)} ms, agent ready ${Math.round(fig.timings.agentReadyMs)} ms`);
    }
    problems = (await checkConsistency(run)).problems;
    for (const p of problems) out(`inconsistent: ${p}`);
  } finally {
    await down(prefix);
  }
  const sorted = [...all].sort((a, b) => a - b);
  const med = (xs: number[]) => Math.round(quantile(xs, 0.5));
  out(`over ${reps} restart(s) × ${nPods} pods: p50 ${quantile(sorted, 0.5)} ms, p90 ${quantile(sorted, 0.9)} ms, max ${sorted.at(-1)} ms; ${lost} pod(s) without traffic`);
  out(
    JSON.stringify({
      bench: 'reboot',
      pods: nPods,
      reps,
      p50_ms: quantile(sorted, 0.5),
      p90_ms: quantile(sorted, 0.9),
      max_ms: sorted.at(-1),
      no_traffic: lost,
      daemons_ms_median: med(daemons),
      agent_ready_ms_median: med(agentReady),
      consistent: problems.length === 0,
    }),
  );
  return lost === 0 && problems.length === 0 ? 0 : 1;
}
