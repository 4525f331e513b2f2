// The lab's eSwitch: a "VF" is one end of a veth pair in the host netns, its
// representor `pfXvfY` the other end in the DPU netns. The lab (or the agent on
// the DPU) plays the eSwitch firmware, so setting a VF MAC is done from the DPU
// side into the host netns — same role as devlink's `hw_addr` on BlueField; the
// host side never does it.
import { execFile } from 'node:child_process';
import { HwError } from '../errors.ts';
import { compareVf, normaliseVfMac, parseRepresentorName, representorName } from './representor.ts';
import type { CommandRunner, HwBackend, Representor, VfId } from './types.ts';

export interface EmulatedHwOptions {
  /** Netns holding the VF ends (the host). */
  hostNs: string;
  /** Netns holding the representors; undefined = the agent's own netns. */
  dpuNs?: string;
  /** Host-side netdev name of a VF; default `vf<vf>` for PF 0 and `pf<pf>vf<vf>-h` otherwise. */
  vfNetdev?: (v: VfId) => string;
  run?: CommandRunner;
}

export const defaultRunner: CommandRunner = (argv) =>
  new Promise((resolve, reject) => {
    const [file, ...args] = argv;
    if (!file) {
      reject(new HwError('empty command'));
      return;
    }
    execFile(file, args, { timeout: 10_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') reject(new HwError(`${file}: cannot run`, { cause: err }));
      else resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
  });

interface IpLink {
  ifindex: number;
  ifname: string;
  address?: string;
  operstate?: string;
  flags?: string[];
}

/** Parses `ip -j link show` into representors (pure; exported for tests). */
export function representorsFromIpJson(json: string): Representor[] {
  const links = JSON.parse(json) as IpLink[];
  const reps: Representor[] = [];
  for (const l of links) {
    const id = parseRepresentorName(l.ifname);
    if (!id) continue;
    reps.push({
      ...id,
      name: l.ifname,
      ifindex: l.ifindex,
      ...(l.address ? { mac: l.address } : {}),
      operUp: l.operstate === 'UP' || (l.flags ?? []).includes('LOWER_UP'),
    });
  }
  return reps.sort(compareVf);
}

export class EmulatedHw implements HwBackend {
  readonly kind = 'emulated' as const;
  private readonly run: CommandRunner;
  private readonly vfNetdev: (v: VfId) => string;

  constructor(private readonly opts: EmulatedHwOptions) {
    this.run = opts.run ?? defaultRunner;
    this.vfNetdev = opts.vfNetdev ?? ((v) => (v.pf === 0 ? `vf${v.vf}` : `pf${v.pf}vf${v.vf}-h`));
  }

  private ip(ns: string | undefined, args: string[]): string[] {
    return ns ? ['ip', '-n', ns, ...args] : ['ip', ...args];
  }

  private async must(argv: string[], what: string): Promise<string> {
    const r = await this.run(argv);
    if (r.code !== 0) throw new HwError(`${what}: ${r.stderr.trim() || `exit ${r.code}`}`);
    return r.stdout;
  }

  // same as: ip -j link show (in the DPU netns)
  async discoverRepresentors(): Promise<Representor[]> {
    const out = await this.must(this.ip(this.opts.dpuNs, ['-j', 'link', 'show']), 'list representors');
    return representorsFromIpJson(out);
  }

  representorName(vf: VfId): string {
    return representorName(vf);
  }

  vfOf(representor: string): VfId | undefined {
    return parseRepresentorName(representor);
  }

  // same as: ip -n HOST link set vfN address MAC   (devlink port function hw_addr on BlueField)
  async setVfMac(vf: VfId, mac: string): Promise<void> {
    const norm = normaliseVfMac(mac);
    const dev = this.vfNetdev(vf);
    representorName(vf); // validates the id
    const r = await this.run(['ip', '-n', this.opts.hostNs, 'link', 'set', 'dev', dev, 'address', norm]);
    if (r.code === 0) return;
    // Not in the host netns any more (moved into a pod): find it as the representor's peer.
    const at = /Cannot find device|does not exist/i.test(r.stderr) ? await this.locateVf(vf) : undefined;
    if (!at || at.ns === this.opts.hostNs) throw new HwError(`set MAC of VF ${vf.pf}/${vf.vf}: ${r.stderr.trim() || `exit ${r.code}`}`);
    await this.must(['ip', '-n', at.ns, 'link', 'set', 'dev', at.dev, 'address', norm], `set MAC of VF ${vf.pf}/${vf.vf}`);
  }

  async getVfMac(vf: VfId): Promise<string | undefined> {
    const at = await this.locateVf(vf);
    if (!at) return undefined;
    const r = await this.run(['ip', '-j', '-n', at.ns, 'link', 'show', 'dev', at.dev]);
    if (r.code !== 0) return undefined;
    const [l] = JSON.parse(r.stdout) as IpLink[];
    return l?.address;
  }

  /**
   * Where the VF's netdev is now. Real eSwitch firmware reaches a VF wherever the host
   * moved it (devlink works on the port function); a veth end moved into a pod netns
   * (and renamed eth0) is found as the representor's peer: link_netnsid/link_index of
   * the representor, the netns named by that nsid (same as: ip -j link show pf0vfN;
   * ip -j netns list-id; ip -j -n NS link show).
   */
  private async locateVf(vf: VfId): Promise<{ ns: string; dev: string } | undefined> {
    const dev = this.vfNetdev(vf);
    const inHost = await this.run(['ip', '-j', '-n', this.opts.hostNs, 'link', 'show', 'dev', dev]);
    if (inHost.code === 0) return { ns: this.opts.hostNs, dev };
    const rep = await this.run(this.ip(this.opts.dpuNs, ['-j', 'link', 'show', 'dev', representorName(vf)]));
    if (rep.code !== 0) return undefined;
    const [l] = JSON.parse(rep.stdout || '[]') as (IpLink & { link_index?: number; link_netnsid?: number })[];
    if (l?.link_index === undefined || l.link_netnsid === undefined) return undefined;
    const ids = await this.run(this.ip(this.opts.dpuNs, ['-j', 'netns', 'list-id']));
    if (ids.code !== 0) return undefined;
    const ns = (JSON.parse(ids.stdout || '[]') as { nsid: number; name?: string }[]).find((x) => x.nsid === l.link_netnsid)?.name;
    if (!ns) return undefined;
    const links = await this.run(['ip', '-j', '-n', ns, 'link', 'show']);
    if (links.code !== 0) return undefined;
    const peer = (JSON.parse(links.stdout || '[]') as IpLink[]).find((x) => x.ifindex === l.link_index);
    return peer ? { ns, dev: peer.ifname } : undefined;
  }
}
