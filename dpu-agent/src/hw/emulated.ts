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
    await this.must(['ip', '-n', this.opts.hostNs, 'link', 'set', 'dev', dev, 'address', norm], `set MAC of VF ${vf.pf}/${vf.vf}`);
  }

  async getVfMac(vf: VfId): Promise<string | undefined> {
    const r = await this.run(['ip', '-j', '-n', this.opts.hostNs, 'link', 'show', 'dev', this.vfNetdev(vf)]);
    if (r.code !== 0) return undefined;
    const [l] = JSON.parse(r.stdout) as IpLink[];
    return l?.address;
  }
}
