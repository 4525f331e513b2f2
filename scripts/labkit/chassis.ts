// Chassis configuration is the agent's job (system-id, ovn-remote, encap, br-int):
// the lab only writes the agent's config file, starts it in the DPU netns and
// waits until the Open_vSwitch DB shows the chassis configured.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { agentConfig, vsctl, vsctlArgv } from './dpu.ts';
import { isAlive, spawnDetached, stopProc, type ProcRecord } from './procs.ts';
import type { LabRun } from './run.ts';
import { poll, run as runCmd } from './sh.ts';
import type { DpuState } from './state.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** same as: ip netns exec dpuK node --import tsx dpu-agent/src/main.ts --config <dir>/agent.json */
export async function startAgent(run: LabRun, d: DpuState): Promise<ProcRecord> {
  const cfg = `${d.dir}/agent.json`;
  writeFileSync(cfg, JSON.stringify(agentConfig(run, d), null, 2) + '\n');
  return spawnDetached(
    {
      name: `${d.name}/dpu-agent`,
      ns: d.ns,
      argv: [process.execPath, '--import', 'tsx', 'dpu-agent/src/main.ts', '--config', cfg],
      cwd: REPO_ROOT,
      log: `${d.dir}/dpu-agent.log`,
    },
    run.recordProc,
  );
}

/** Reads what the agent is there to set: undefined until system-id is set and br-int exists. */
export async function chassisConfigured(d: DpuState): Promise<{ systemId: string } | undefined> {
  const sid = (await vsctl(d, '--if-exists', 'get', 'Open_vSwitch', '.', 'external_ids:system-id')).replace(/^"|"$/g, '');
  if (sid !== d.name) return undefined;
  const br = await runCmd(vsctlArgv(d, ['br-exists', 'br-int']));
  return br.code === 0 ? { systemId: sid } : undefined;
}

/** Starts the agent and waits (bounded) until it has configured the chassis and serves the host API. */
export async function configureChassis(run: LabRun, d: DpuState): Promise<void> {
  const since = logSize(`${d.dir}/dpu-agent.log`);
  const agent = await startAgent(run, d);
  const outcome = await poll(
    `${d.name}: dpu-agent to set system-id and create br-int`,
    async () => (isAlive(agent) ? chassisConfigured(d) : 'died'),
    { tries: 600, intervalMs: 50 },
  );
  if (outcome === 'died') throw new AgentDied(d, agent);
  await waitAgentReady(d, agent, since);
  d.chassisReady = true;
  run.save();
}

function logSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * Waits (bounded) for the agent's "agent ready" log line written after byte `since`
 * of its log: VF pool rebuilt from OVSDB, NB view synced, host API listening. Reads
 * the log file (no process per probe).
 */
export async function waitAgentReady(d: DpuState, agent: ProcRecord, since: number, tries = 600): Promise<void> {
  const outcome = await poll(
    `${d.name}: dpu-agent "agent ready"`,
    () => {
      if (!isAlive(agent)) return 'died';
      const text = readFileSync(agent.log).subarray(since).toString('utf8');
      return text.includes('"msg":"agent ready"') ? 'ready' : undefined;
    },
    { tries, intervalMs: 50 },
  );
  if (outcome === 'died') throw new AgentDied(d, agent);
}

/**
 * Restarts dpuK's agent: SIGTERM (or `signal`, e.g. SIGKILL for a crash) to the
 * recorded pid, then start it again and wait until it is ready. Returns the new record.
 */
export async function restartAgent(run: LabRun, d: DpuState, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<ProcRecord> {
  const old = run.proc(`${d.name}/dpu-agent`);
  if (signal === 'SIGKILL' && isAlive(old)) process.kill(old.pid, 'SIGKILL');
  if (!(await stopProc(old))) throw new Error(`${d.name}: dpu-agent pid ${old.pid} did not stop`);
  const since = logSize(old.log);
  const agent = await startAgent(run, d);
  await waitAgentReady(d, agent, since);
  return agent;
}

class AgentDied extends Error {
  constructor(d: DpuState, agent: ProcRecord) {
    let tail = '';
    try {
      tail = readFileSync(agent.log, 'utf8').trim().split('\n').slice(-5).join('\n');
    } catch {
      /* no log */
    }
    super(`${d.name}: dpu-agent exited (pid ${agent.pid}); last log lines:\n${tail}`);
  }
}
