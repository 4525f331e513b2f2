// Network namespaces and links, through iproute2. Links are always created
// directly inside the run's netns (never in the root netns), so deleting the
// netns removes them: nothing can leak into the machine's own namespace.
import { run, sh } from './sh.ts';

/** `ip -n NS …` */
export function ipn(ns: string, ...args: string[]): Promise<string> {
  return sh(['ip', '-n', ns, ...args]);
}

export async function listNetns(): Promise<string[]> {
  const out = await sh(['ip', 'netns', 'list']);
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

export async function netnsExists(name: string): Promise<boolean> {
  return (await listNetns()).includes(name);
}

/** Creates a netns with `lo` up. Same as: ip netns add NAME; ip -n NAME link set lo up */
export async function addNetns(name: string): Promise<void> {
  await sh(['ip', 'netns', 'add', name]);
  await ipn(name, 'link', 'set', 'lo', 'up');
}

/** Idempotent: absent is success. */
export async function delNetns(name: string): Promise<void> {
  const r = await run(['ip', 'netns', 'del', name]);
  if (r.code !== 0 && (await netnsExists(name))) throw new Error(`ip netns del ${name}: ${r.stderr.trim()}`);
}

/** Same as: ip -n NSA link add A type veth peer name B netns NSB */
export async function addVeth(nsA: string, a: string, nsB: string, b: string, mtu?: number): Promise<void> {
  const extra = mtu ? ['mtu', String(mtu)] : [];
  await ipn(nsA, 'link', 'add', a, ...extra, 'type', 'veth', 'peer', 'name', b, ...extra, 'netns', nsB);
}

export async function linkUp(ns: string, dev: string): Promise<void> {
  await ipn(ns, 'link', 'set', dev, 'up');
}

export async function linkExists(ns: string, dev: string): Promise<boolean> {
  return (await run(['ip', '-n', ns, 'link', 'show', 'dev', dev])).code === 0;
}

export interface LinkInfo {
  ifname: string;
  address?: string;
  mtu?: number;
  operstate?: string;
  flags?: string[];
  stats64?: { rx?: { packets?: number }; tx?: { packets?: number } };
}

export async function linkShow(ns: string, dev?: string, stats = false): Promise<LinkInfo[]> {
  const args = ['-j', ...(stats ? ['-s'] : []), '-n', ns, 'link', 'show', ...(dev ? ['dev', dev] : [])];
  return JSON.parse(await sh(['ip', ...args])) as LinkInfo[];
}
