// The BlueField eSwitch as the DPU's ARM side sees it (switchdev mode, ECPF):
// host VF representors are netdevs whose sysfs `phys_port_name` is `pfNvfM`
// (or `cXpfNvfM` on kernels that print the external controller) and whose
// `phys_switch_id` equals the uplink's. The VF's MAC is the devlink port
// function's `hw_addr`, set from here — the host cannot change it.
//   same as: devlink port function set pci/0000:03:00.0/4097 hw_addr 0a:58:…
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { HwError } from '../errors.ts';
import { defaultRunner } from './emulated.ts';
import { compareVf, normaliseVfMac, parseRepresentorName, representorName } from './representor.ts';
import type { CommandRunner, HwBackend, Representor, VfId } from './types.ts';

export interface BlueFieldHwOptions {
  /** The uplink whose eSwitch we manage (`p0`); its phys_switch_id identifies the switch. */
  readonly uplink: string;
  /** Default `/sys`; tests point it at a fake tree. */
  readonly sysfsRoot?: string;
  readonly run?: CommandRunner;
}

/** One entry of `devlink -j port show`. */
export interface DevlinkPort {
  readonly handle: string;
  readonly netdev?: string;
  readonly flavour?: string;
  readonly controller?: number;
  readonly pfnum?: number;
  readonly vfnum?: number;
  readonly external?: boolean;
  readonly hwAddr?: string;
}

/** Parses `devlink -j port show` (pure; exported for tests). */
export function parseDevlinkPorts(json: string): DevlinkPort[] {
  const doc = JSON.parse(json) as { port?: Record<string, Record<string, unknown>> };
  return Object.entries(doc.port ?? {}).map(([handle, p]) => {
    const fn = p['function'] as { hw_addr?: string } | undefined;
    return {
      handle,
      ...(typeof p['netdev'] === 'string' ? { netdev: p['netdev'] } : {}),
      ...(typeof p['flavour'] === 'string' ? { flavour: p['flavour'] } : {}),
      ...(typeof p['controller'] === 'number' ? { controller: p['controller'] } : {}),
      ...(typeof p['pfnum'] === 'number' ? { pfnum: p['pfnum'] } : {}),
      ...(typeof p['vfnum'] === 'number' ? { vfnum: p['vfnum'] } : {}),
      ...(typeof p['external'] === 'boolean' ? { external: p['external'] } : {}),
      ...(fn?.hw_addr ? { hwAddr: fn.hw_addr.toLowerCase() } : {}),
    };
  });
}

/** `pf0vf3` or `c1pf0vf3` → {pf, vf}. */
export function parsePhysPortName(name: string): VfId | undefined {
  const m = /^(?:c\d+)?(pf\d+vf\d+)$/.exec(name.trim());
  return m ? parseRepresentorName(m[1] as string) : undefined;
}

export class BlueFieldHw implements HwBackend {
  readonly kind = 'bluefield' as const;
  private readonly run: CommandRunner;
  private readonly sys: string;

  constructor(private readonly opts: BlueFieldHwOptions) {
    this.run = opts.run ?? defaultRunner;
    this.sys = opts.sysfsRoot ?? '/sys';
  }

  async discoverRepresentors(): Promise<Representor[]> {
    const net = join(this.sys, 'class/net');
    const switchId = await this.attr(this.opts.uplink, 'phys_switch_id');
    if (!switchId) throw new HwError(`uplink ${this.opts.uplink} has no phys_switch_id: is the eSwitch in switchdev mode?`);
    const reps: Representor[] = [];
    for (const dev of await readdir(net)) {
      const ppn = await this.attr(dev, 'phys_port_name');
      const id = ppn ? parsePhysPortName(ppn) : undefined;
      // Another switch's ports (the second BlueField port, a ConnectX) are not ours.
      if (!id || (await this.attr(dev, 'phys_switch_id')) !== switchId) continue;
      const ifindex = Number(await this.attr(dev, 'ifindex'));
      const mac = await this.attr(dev, 'address');
      reps.push({ ...id, name: dev, ifindex, ...(mac ? { mac } : {}), operUp: (await this.attr(dev, 'operstate')) === 'up' });
    }
    return reps.sort(compareVf);
  }

  representorName(vf: VfId): string {
    return representorName(vf);
  }

  vfOf(representor: string): VfId | undefined {
    return parseRepresentorName(representor);
  }

  async setVfMac(vf: VfId, mac: string): Promise<void> {
    const port = await this.port(vf);
    const norm = normaliseVfMac(mac);
    const r = await this.run(['devlink', 'port', 'function', 'set', port.handle, 'hw_addr', norm]);
    if (r.code !== 0) throw new HwError(`set hw_addr of ${port.handle}: ${r.stderr.trim() || `exit ${r.code}`}`);
  }

  async getVfMac(vf: VfId): Promise<string | undefined> {
    return (await this.port(vf)).hwAddr;
  }

  /** The devlink port of a host VF: flavour pcivf on the external (host) controller. */
  private async port(vf: VfId): Promise<DevlinkPort> {
    const r = await this.run(['devlink', '-j', 'port', 'show']);
    if (r.code !== 0) throw new HwError(`devlink port show: ${r.stderr.trim() || `exit ${r.code}`}`);
    const name = representorName(vf);
    const ports = parseDevlinkPorts(r.stdout);
    const p =
      ports.find((x) => x.flavour === 'pcivf' && x.netdev === name) ??
      ports.find((x) => x.flavour === 'pcivf' && x.external !== false && x.pfnum === vf.pf && x.vfnum === vf.vf);
    if (!p) throw new HwError(`no devlink port for VF ${vf.pf}/${vf.vf}`);
    return p;
  }

  private async attr(dev: string, name: string): Promise<string | undefined> {
    try {
      return (await readFile(join(this.sys, 'class/net', dev, name), 'utf8')).trim();
    } catch {
      // Virtual devices lack phys_* attributes (EOPNOTSUPP on read): not a representor.
      return undefined;
    }
  }
}
