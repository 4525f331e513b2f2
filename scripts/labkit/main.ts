// `scripts/lab`: the lab CLI. Output for the user goes to stdout; the agent's
// own logs go to <run>/dpuK/dpu-agent.log.
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { nbDb, sbDb } from './central.ts';
import { DEFAULT_VFS, MAX_VFS, parsePodRef, podKey, randomPrefix, validatePrefix } from './plan.ts';
import { addVfs, presentVfs, removeVfs } from './dpu.ts';
import { addPod, delPod } from './pods.ts';
import { restartDpu } from './reboot.ts';
import { allowPolicy, denyPolicy } from './policy.ts';
import { LabRun } from './run.ts';
import { listRuns, loadState, withLock, type DpuState } from './state.ts';
import { down, missingPrerequisites, PrerequisiteError, status, up } from './topology.ts';

const HELP = `lab — multi-DPU OVN over Geneve in network namespaces (run as root)

  lab up [--dpus N] [--sb-cluster 1|3] [--vfs N] [--prefix P]
  lab status [--json]
  lab down [--all]
  lab pod add NS/NAME --node hostK [--ip A.B.C.D] [--requested-chassis dpuJ] [--no-lsp]
  lab pod del NS/NAME
  lab exec central|dpuK|hostK|NS/NAME -- CMD [ARGS…]
  lab policy deny NS/NAME [--from NS2/NAME2]
  lab policy allow NS/NAME [--from NS2/NAME2]
  lab dpu restart dpuK [--soft]
  lab vf add dpuK N
  lab vf del dpuK J [J…]

--prefix P (or DPU_LAB_PREFIX) names the run; without it, the only run there is
is used (up picks a fresh "dpl…" prefix when there is none). Run state lives in
/run/dpu-lab/<prefix>/ (state.json, daemon logs, agent logs, pki/, hostK/net.d/).

pod add: the control plane creates the LSP (unless --no-lsp), then host-shim runs
as CNI ADD in hostK and the DPU agent hands out the VF; a refusal prints the CNI error.
pod del: CNI DEL, then the LSP goes.
dpu restart: a DPU reboot — every dpuK process stopped by its recorded pid (SIGKILL;
--soft: SIGTERM), the eSwitch's representor state and VF MACs forgotten, conf.db
kept; then started again as by up. Pods stay on the host; no CNI call is made.
vf add / vf del: hot-add N VFs after the highest (veth pair + host sysfs entry), or
remove VFs J… (the representor and its VF end, wherever that is).
`;

const out = (s: string) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
// `lab up | head` must not crash the CLI half-way through recording state.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
});

function resolvePrefix(given: string | undefined, forUp: boolean): string {
  const p = given ?? process.env['DPU_LAB_PREFIX'];
  if (p) return validatePrefix(p);
  const runs = listRuns();
  if (runs.length === 1) return runs[0]!;
  if (runs.length === 0) {
    if (forUp) return randomPrefix();
    throw new Error('no lab run found (lab up first)');
  }
  throw new Error(`several lab runs (${runs.join(', ')}): pass --prefix`);
}

function openRun(prefix: string): LabRun {
  const s = loadState(prefix);
  if (!s) throw new Error(`lab ${prefix} has no state (lab up first)`);
  return new LabRun(s);
}

function positiveInt(name: string, v: string | undefined, dflt: number, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${name} must be an integer 1..${max}`);
  return n;
}

async function main(argv: string[]): Promise<number> {
  const dd = argv.indexOf('--');
  const cmdArgs = dd >= 0 ? argv.slice(dd + 1) : [];
  const { values, positionals } = parseArgs({
    args: dd >= 0 ? argv.slice(0, dd) : argv,
    allowPositionals: true,
    options: {
      prefix: { type: 'string' },
      dpus: { type: 'string' },
      'sb-cluster': { type: 'string' },
      vfs: { type: 'string' },
      node: { type: 'string' },
      ip: { type: 'string' },
      'requested-chassis': { type: 'string' },
      'no-lsp': { type: 'boolean' },
      soft: { type: 'boolean' },
      from: { type: 'string' },
      json: { type: 'boolean' },
      all: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [cmd, sub, arg, ...more] = positionals;
  if (values.help || !cmd) {
    out(HELP);
    return cmd ? 0 : 2;
  }
  switch (cmd) {
    case 'up': {
      const prefix = resolvePrefix(values.prefix, true);
      const sbCluster = positiveInt('sb-cluster', values['sb-cluster'], 1, 5);
      if (sbCluster !== 1 && sbCluster !== 3 && sbCluster !== 5) throw new Error('--sb-cluster must be 1, 3 or 5');
      // Before the lock: a missing prerequisite must not leave even a run dir behind.
      const missing = await missingPrerequisites();
      if (missing.length > 0) throw new PrerequisiteError(missing);
      const run = await withLock(prefix, () =>
        up(
          { prefix, dpus: positiveInt('dpus', values.dpus, 2, 32), sbCluster, vfs: positiveInt('vfs', values.vfs, DEFAULT_VFS, MAX_VFS) },
          out,
        ),
      );
      out(`prefix: ${prefix}   (export DPU_LAB_PREFIX=${prefix})`);
      out(`try: scripts/lab exec dpu1 -- ovs-vsctl show   |   scripts/lab exec central -- ovn-sbctl show`);
      out(`timings: ${JSON.stringify(run.state.timings)}`);
      return 0;
    }
    case 'down': {
      const prefixes = values.all ? listRuns() : values.prefix || process.env['DPU_LAB_PREFIX'] || listRuns().length > 0 ? [resolvePrefix(values.prefix, false)] : [];
      if (prefixes.length === 0) out('no lab runs');
      let left = 0;
      for (const prefix of prefixes) {
        const r = await down(prefix);
        out(`lab ${prefix} down: stopped ${r.killed.length} process(es), removed ${r.netns.length} netns`);
        for (const l of r.leftovers) out(`  left behind: ${l}`);
        left += r.leftovers.length;
      }
      return left === 0 ? 0 : 1;
    }
    case 'status': {
      const run = openRun(resolvePrefix(values.prefix, false));
      const s = await status(run);
      if (values.json) {
        out(JSON.stringify(s, null, 2));
        return 0;
      }
      out(`lab ${s.prefix}: ${s.phase}${s.healthy ? ' (healthy)' : ' (NOT healthy)'}  dir ${run.state.dir}`);
      for (const p of s.procs) out(`  ${p.name.padEnd(24)} pid ${String(p.pid).padEnd(8)} ${p.alive ? `up   ${(p.rssKiB / 1024).toFixed(1)} MiB` : 'DEAD'}`);
      for (const [c, ok] of Object.entries(s.chassis)) out(`  chassis ${c.padEnd(16)} ${ok ? 'configured by dpu-agent' : 'NOT configured'}`);
      for (const p of Object.values(s.pods)) out(`  pod ${`${p.namespace}/${p.name}`.padEnd(20)} host${p.node} vf${p.vf} ${p.ip} ${p.mac}`);
      return s.healthy ? 0 : 1;
    }
    case 'exec': {
      const run = openRun(resolvePrefix(values.prefix, false));
      if (!sub || cmdArgs.length === 0) throw new Error('usage: lab exec central|dpuK|hostK|NS/NAME -- CMD');
      const { ns, env } = execTarget(run, sub);
      const r = spawnSync('ip', ['netns', 'exec', ns, ...cmdArgs], { stdio: 'inherit', env: { ...process.env, ...env } });
      return r.status ?? 1;
    }
    case 'pod': {
      const prefix = resolvePrefix(values.prefix, false);
      if (!arg) throw new Error('usage: lab pod add|del NS/NAME');
      const ref = parsePodRef(arg);
      return withLock(prefix, async () => {
        const run = openRun(prefix);
        if (sub === 'add') {
          const node = /^host(\d+)$/.exec(values.node ?? '');
          if (!node) throw new Error('lab pod add needs --node hostK');
          const p = await addPod(run, ref, {
            node: Number(node[1]),
            ...(values.ip ? { ip: values.ip } : {}),
            ...(values['requested-chassis'] ? { requestedChassis: values['requested-chassis'] } : {}),
            ...(values['no-lsp'] ? { createLsp: false } : {}),
          });
          out(`pod ${podKey(ref)}: host${p.pod.node} vf${p.pod.vf} ${p.pod.ip} ${p.pod.mac} netns ${p.pod.netns}, attached through host-shim in ${p.installedMs} ms (ovn-installed)`);
          return 0;
        }
        if (sub === 'del') {
          out((await delPod(run, ref)) ? `pod ${podKey(ref)} deleted` : `pod ${podKey(ref)} was not there`);
          return 0;
        }
        throw new Error(`unknown pod command ${sub}`);
      });
    }
    case 'policy': {
      const prefix = resolvePrefix(values.prefix, false);
      if (!arg || (sub !== 'deny' && sub !== 'allow')) throw new Error('usage: lab policy deny|allow NS/NAME [--from NS/NAME]');
      return withLock(prefix, async () => {
        const run = openRun(prefix);
        const target = parsePodRef(arg);
        const from = values.from ? parsePodRef(values.from) : undefined;
        const t0 = performance.now();
        if (sub === 'deny') await denyPolicy(run, target, from);
        else await allowPolicy(run, target, from);
        out(`policy ${sub} ${podKey(target)}${from ? ` from ${podKey(from)}` : ''}: applied on all chassis in ${Math.round(performance.now() - t0)} ms`);
        return 0;
      });
    }
    case 'dpu': {
      const prefix = resolvePrefix(values.prefix, false);
      if (sub !== 'restart' || !arg) throw new Error('usage: lab dpu restart dpuK');
      return withLock(prefix, async () => {
        const run = openRun(prefix);
        const d = dpuByName(run, arg);
        const t = await restartDpu(run, d, { signal: values.soft ? 'SIGTERM' : 'SIGKILL' });
        out(`${d.name} restarted: daemons in ${Math.round(t.daemonsMs)} ms, agent ready in ${Math.round(t.agentReadyMs)} ms`);
        return 0;
      });
    }
    case 'vf': {
      const prefix = resolvePrefix(values.prefix, false);
      if ((sub !== 'add' && sub !== 'del') || !arg || more.length === 0) throw new Error('usage: lab vf add dpuK N | lab vf del dpuK J [J…]');
      const nums = more.map((x) => {
        const n = Number(x);
        if (!Number.isInteger(n) || n < 0 || n > MAX_VFS) throw new Error(`not a VF count/index: ${x}`);
        return n;
      });
      return withLock(prefix, async () => {
        const run = openRun(prefix);
        const d = dpuByName(run, arg);
        const present = await presentVfs(d);
        if (sub === 'add') {
          const from = present.length > 0 ? Math.max(...present) + 1 : 0;
          const idx = Array.from({ length: nums[0] ?? 0 }, (_, i) => from + i);
          if (from + idx.length > MAX_VFS) throw new Error(`at most ${MAX_VFS} VFs`);
          await addVfs(run, d, idx);
          out(`${d.name}: added VFs ${idx.join(' ')} (${d.vfs} now)`);
        } else {
          const missing = nums.filter((j) => !present.includes(j));
          if (missing.length > 0) throw new Error(`${d.name} has no VF ${missing.join(' ')}`);
          await removeVfs(run, d, nums);
          out(`${d.name}: removed VFs ${nums.join(' ')} (${d.vfs} now)`);
        }
        return 0;
      });
    }
    default:
      out(HELP);
      return 2;
  }
}

function dpuByName(run: LabRun, name: string): DpuState {
  const m = /^dpu(\d+)$/.exec(name);
  const d = m ? run.state.dpus.find((x) => x.k === Number(m[1])) : undefined;
  if (!d) throw new Error(`no DPU ${name} in lab ${run.prefix}`);
  return d;
}

/** Netns and OVS/OVN environment for `lab exec` (so ovs-vsctl, ovn-nbctl… find their DBs). */
export function execTarget(run: LabRun, target: string): { ns: string; env: NodeJS.ProcessEnv } {
  const s = run.state;
  const env: NodeJS.ProcessEnv = s.central ? { OVN_NB_DB: nbDb(run), OVN_SB_DB: sbDb(run) } : {};
  if (target === 'central' && s.central) return { ns: s.central.ns, env: { ...env, OVS_RUNDIR: s.central.dir, OVN_RUNDIR: s.central.dir } };
  const m = /^(dpu|host)(\d+)$/.exec(target);
  const d = m ? s.dpus.find((x) => x.k === Number(m[2])) : undefined;
  if (m && d) {
    if (m[1] === 'host') return { ns: d.hostNs, env };
    return { ns: d.ns, env: { ...env, OVS_RUNDIR: d.dir, OVN_RUNDIR: d.dir } };
  }
  if (target.includes('/')) {
    const p = s.pods[podKey(parsePodRef(target))];
    if (p) return { ns: p.netns, env: {} };
  }
  throw new Error(`no such lab node ${target} (central, dpuK, hostK or a pod NS/NAME)`);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof PrerequisiteError) process.stderr.write(`${err.message}\n`);
    else process.stderr.write(`lab: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
