// The `central` netns: OVN NB and SB ovsdb-servers (SB optionally a 3-member Raft
// cluster) and ovn-northd, plus the underlay bridge every DPU uplink joins.
import { ipn } from './netns.ts';
import { centralIp, centralNs, NB_PORT, sbClientPort, sbRaftPort, sbRemotes, UNDERLAY_CIDR_BITS } from './plan.ts';
import { startOvsDaemon } from './procs.ts';
import type { LabRun } from './run.ts';
import { inNs, poll, sh } from './sh.ts';

const NB_SCHEMA = '/usr/share/ovn/ovn-nb.ovsschema';
const SB_SCHEMA = '/usr/share/ovn/ovn-sb.ovsschema';
export const UNDERLAY_BRIDGE = 'br-ul';

export async function upCentral(run: LabRun): Promise<void> {
  const ns = centralNs(run.prefix);
  const dir = run.mkdir('central');
  const ip = centralIp();
  const members = run.state.options.sbCluster;
  await run.addNetns(ns);
  // same as: ip -n C link add br-ul type bridge; ip -n C addr add 100.64.0.1/24 dev br-ul
  await ipn(ns, 'link', 'add', UNDERLAY_BRIDGE, 'type', 'bridge');
  run.recordLink(`${ns}/${UNDERLAY_BRIDGE}`);
  await ipn(ns, 'addr', 'add', `${ip}/${UNDERLAY_CIDR_BITS}`, 'dev', UNDERLAY_BRIDGE);
  await ipn(ns, 'link', 'set', UNDERLAY_BRIDGE, 'up');
  // TCP to the SB crosses the DPUs' userspace datapath, which does not fill in
  // offloaded checksums (DESIGN §6): checksum in software on this side too.
  await sh(inNs(ns, ['ethtool', '-K', UNDERLAY_BRIDGE, 'tx', 'off']));

  const nbSock = `${dir}/nb.sock`;
  const sbSocks = Array.from({ length: members }, (_, i) => `${dir}/sb${i}.sock`);
  run.state.central = { ns, ip, dir, nbSock, sbSocks, sbRemotes: sbRemotes(members) };
  run.save();

  await sh(['ovsdb-tool', 'create', `${dir}/nb.db`, NB_SCHEMA]);
  if (members === 1) {
    await sh(['ovsdb-tool', 'create', `${dir}/sb0.db`, SB_SCHEMA]);
  } else {
    const raft = (i: number) => `tcp:${ip}:${sbRaftPort(i)}`;
    await sh(['ovsdb-tool', 'create-cluster', `${dir}/sb0.db`, SB_SCHEMA, raft(0)]);
    for (let i = 1; i < members; i++) await sh(['ovsdb-tool', 'join-cluster', `${dir}/sb${i}.db`, 'OVN_Southbound', raft(i), raft(0)]);
  }

  const env = { OVS_RUNDIR: dir, OVN_RUNDIR: dir };
  const starts = [
    startOvsDaemon(
      { name: 'central/nb', ns, dir, stem: 'nb', env, argv: ['ovsdb-server', `${dir}/nb.db`, `--remote=punix:${nbSock}`, `--remote=ptcp:${NB_PORT}:${ip}`] },
      run.recordProc,
    ),
  ];
  for (let i = 0; i < members; i++) {
    starts.push(
      startOvsDaemon(
        { name: `central/sb${i}`, ns, dir, stem: `sb${i}`, env, argv: ['ovsdb-server', `${dir}/sb${i}.db`, `--remote=punix:${sbSocks[i]}`, `--remote=ptcp:${sbClientPort(i)}:${ip}`] },
        run.recordProc,
      ),
    );
  }
  await Promise.all(starts);
  if (members > 1) await waitSbCluster(run);
  await sh(['ovn-nbctl', `--db=unix:${nbSock}`, '--no-wait', 'init']);
  await startOvsDaemon(
    { name: 'central/northd', ns, dir, stem: 'ovn-northd', env, argv: ['ovn-northd', `--ovnnb-db=unix:${nbSock}`, `--ovnsb-db=${sbSocks.map((s) => `unix:${s}`).join(',')}`] },
    run.recordProc,
  );
}

/** `cluster/status` of SB member i, or undefined if it does not answer. */
export async function sbClusterStatus(run: LabRun, i: number): Promise<string | undefined> {
  const ctl = run.state.procs.find((p) => p.name === `central/sb${i}`)?.ctl;
  if (!ctl) return undefined;
  try {
    return await sh(['ovs-appctl', '-t', ctl, 'cluster/status', 'OVN_Southbound'], { timeoutMs: 5000 });
  } catch {
    return undefined;
  }
}

/** Index of the SB Raft leader, or undefined. */
export async function sbLeader(run: LabRun): Promise<number | undefined> {
  for (let i = 0; i < run.state.options.sbCluster; i++) {
    const s = await sbClusterStatus(run, i);
    if (s && /^Role: leader$/m.test(s)) return i;
  }
  return undefined;
}

async function waitSbCluster(run: LabRun): Promise<void> {
  const n = run.state.options.sbCluster;
  await poll(
    'SB Raft cluster to form',
    async () => {
      let members = 0;
      for (let i = 0; i < n; i++) if (/^Status: cluster member$/m.test((await sbClusterStatus(run, i)) ?? '')) members++;
      return members === n && (await sbLeader(run)) !== undefined ? true : undefined;
    },
    { tries: 200, intervalMs: 50 },
  );
}

/** The SB as ovn-sbctl should address it from the root netns (unix sockets of all members). */
export function sbDb(run: LabRun): string {
  const c = run.state.central;
  if (!c) throw new Error('central is not up');
  return c.sbSocks.map((s) => `unix:${s}`).join(',');
}

export function nbDb(run: LabRun): string {
  const c = run.state.central;
  if (!c) throw new Error('central is not up');
  return `unix:${c.nbSock}`;
}
