// `npm run bench -- lab --kernel`: OVN on OVS's kernel datapath with TC offload (issue 18).
// Boots the kernel lane and runs test/kernel/ovn-offload.ts there (two chassis, Geneve,
// stateful + stateless ACLs, see that file), then reports per chassis what its probe
// (test/helpers/ovn-probe.ts) measured on the pod traffic's datapath flows:
//   flows offloaded to TC / all datapath flows (dpctl type=tc vs type=ovs), and
//   filters whose decode equals `tc -s -j filter show` field by field / all filters.
// Ends with one JSON line {"bench":"lab-kernel",…}. Exit 0 when the lane test passed and
// every offloaded flow's decode equals tc's.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const out = (s: string) => process.stdout.write(`${s}\n`);

interface ProbeFigures {
  chassis: string;
  tcFlows: number;
  ovsFlows: number;
  share: number;
  filters: number;
  fieldsCompared: number;
  fieldErrors: number;
  decodeEqual: number;
}

/** The last `ovn-probe-bench {…}` line of each chassis in the lane's output. Pure. */
export function probeFigures(output: string): ProbeFigures[] {
  const last = new Map<string, ProbeFigures>();
  for (const m of output.matchAll(/^ovn-probe-bench (\{.*\})\s*$/gm)) {
    const f = JSON.parse(m[1]!) as ProbeFigures;
    last.set(f.chassis, f);
  }
  return [...last.values()];
}

export async function main(_argv: string[]): Promise<number> {
  const t0 = performance.now();
  const argv = ['--timeout', '600', '--env', 'NODE_OPTIONS=--jitless', '--env', 'KERNEL_TEST_TIMEOUT_S=540', '--', 'node', '--import', 'tsx', 'test/kernel/run.ts', 'ovn-offload'];
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn(`${ROOT}scripts/kernel-lane`, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    child.on('error', reject);
    child.on('close', (c) => resolve({ code: c, output }));
  });
  const wallS = Math.round((performance.now() - t0) / 100) / 10;
  const passed = /^PASS ovn-offload \(/m.test(output);
  const figures = probeFigures(output);
  for (const f of figures) {
    out(`${f.chassis}: flows offloaded to TC ${f.tcFlows}/${f.tcFlows + f.ovsFlows} (${(100 * f.share).toFixed(1)} %); decode == tc -s -j for ${f.decodeEqual}/${f.filters} filters (${f.fieldsCompared} fields, ${f.fieldErrors} differ)`);
  }
  const tc = figures.reduce((s, f) => s + f.tcFlows, 0);
  const all = figures.reduce((s, f) => s + f.tcFlows + f.ovsFlows, 0);
  const filters = figures.reduce((s, f) => s + f.filters, 0);
  const equal = figures.reduce((s, f) => s + f.decodeEqual, 0);
  out(`total: ${tc}/${all} datapath flows in TC; decode == tc -s -j for ${equal}/${filters} (${filters ? ((100 * equal) / filters).toFixed(0) : 0} %); lane ${passed ? 'passed' : `FAILED (exit ${code})`} in ${wallS} s`);
  if (!passed) out(output.trimEnd().split('\n').slice(-30).join('\n'));
  out(JSON.stringify({ bench: 'lab-kernel', passed, wallS, tcFlows: tc, allFlows: all, share: all ? tc / all : null, filters, decodeEqual: equal, chassis: figures }));
  return passed && filters > 0 && equal === filters ? 0 : 1;
}
