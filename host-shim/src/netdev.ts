import { execFile } from 'node:child_process';
import { access, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CNI_ERR } from '../../contract/cni.ts';
import type { AppliedInterface } from './cni.ts';
import { CniError } from './errors.ts';

// The host-side netdev work, through iproute2 (`ip`) and util-linux
// (`nsenter`). iproute2 accepts a netns *path* in `ip link set … netns PATH`
// (netns_get_fd opens any name containing '/'), but `ip -n` only takes names
// under /run/netns, so commands inside the pod's namespace run as
// `nsenter --net=PATH ip …` (CNI_NETNS is a path, e.g. /var/run/netns/cni-…
// or /proc/PID/ns/net).

const run = promisify(execFile);

export interface LinkState {
  readonly ifname: string;
  readonly mac: string;
  readonly mtu: number;
  readonly up: boolean;
  /** "10.244.0.10/24" style, global scope only. */
  readonly addresses: readonly string[];
}

export interface NetOps {
  /** Host netdev of VF `vf` of `pf`: `<sysfsRoot>/class/net/<pf>/device/virtfn<vf>/net/<name>`. */
  vfNetdev(sysfsRoot: string, pf: string, vf: number): Promise<string | undefined>;
  netnsExists(netns: string): Promise<boolean>;
  /** The link `ifname` inside `netns`, or undefined if there is none. */
  inspect(netns: string, ifname: string): Promise<LinkState | undefined>;
  /** Move host netdev `dev` into `netns` and rename it to `ifname`. */
  moveIn(dev: string, netns: string, ifname: string): Promise<void>;
  /** Set MAC (if different), MTU, addresses, up, routes on `ifname` inside `netns`. Idempotent. */
  configure(netns: string, cfg: AppliedInterface): Promise<void>;
  /** Move `ifname` out of `netns` back to the shim's own netns as `hostName`. false if nothing was there. */
  restore(netns: string, ifname: string, hostName: string): Promise<boolean>;
}

interface IpAddrInfo {
  family?: string;
  local?: string;
  prefixlen?: number;
  scope?: string;
}
interface IpLink {
  ifname?: string;
  address?: string;
  mtu?: number;
  flags?: string[];
  addr_info?: IpAddrInfo[];
}

export class IpNetOps implements NetOps {
  constructor(
    private readonly ipBin = 'ip',
    private readonly nsenterBin = 'nsenter',
  ) {}

  async vfNetdev(sysfsRoot: string, pf: string, vf: number): Promise<string | undefined> {
    const dir = join(sysfsRoot, 'class/net', pf, 'device', `virtfn${vf}`, 'net');
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return undefined;
    }
    return names.length === 1 ? names[0] : undefined;
  }

  async netnsExists(netns: string): Promise<boolean> {
    if (netns === '') return false;
    try {
      await access(netns);
      return true;
    } catch {
      return false;
    }
  }

  async inspect(netns: string, ifname: string): Promise<LinkState | undefined> {
    let out: string;
    try {
      // same as: nsenter --net=NETNS ip -j addr show dev IFNAME
      out = await this.inNs(netns, ['-j', 'addr', 'show', 'dev', ifname]);
    } catch (err) {
      if (/does not exist|Cannot find device/i.test((err as { stderr?: string }).stderr ?? '')) return undefined;
      throw err;
    }
    const links = JSON.parse(out || '[]') as IpLink[];
    const l = links[0];
    if (!l) return undefined;
    return {
      ifname: l.ifname ?? ifname,
      mac: (l.address ?? '').toLowerCase(),
      mtu: l.mtu ?? 0,
      up: (l.flags ?? []).includes('UP'),
      addresses: (l.addr_info ?? []).filter((a) => a.scope === 'global' && a.local).map((a) => `${a.local}/${a.prefixlen}`),
    };
  }

  async moveIn(dev: string, netns: string, ifname: string): Promise<void> {
    await this.ip(['link', 'set', 'dev', dev, 'down']);
    await this.ip(['link', 'set', 'dev', dev, 'netns', netns]);
    if (dev !== ifname) await this.inNs(netns, ['link', 'set', 'dev', dev, 'name', ifname]);
  }

  async configure(netns: string, cfg: AppliedInterface): Promise<void> {
    const dev = cfg.ifname;
    const cur = await this.inspect(netns, dev);
    if (!cur) throw new CniError(CNI_ERR.NETDEV_CONFIG_FAILED, `interface ${dev} vanished from the pod`);
    // The DPU already set the VF's MAC (devlink port function); set it here only
    // where it differs (the lab's veth VFs), since an untrusted VF may refuse it.
    if (cfg.mac && cur.mac !== cfg.mac.toLowerCase()) await this.inNs(netns, ['link', 'set', 'dev', dev, 'address', cfg.mac]);
    if (cfg.mtu > 0 && cur.mtu !== cfg.mtu) await this.inNs(netns, ['link', 'set', 'dev', dev, 'mtu', String(cfg.mtu)]);
    for (const ip of cfg.ips) await this.inNs(netns, ['addr', 'replace', ip.address, 'dev', dev]);
    await this.inNs(netns, ['link', 'set', 'dev', dev, 'up']);
    // On-link routes first, so a gateway route's next hop is reachable.
    const routes = [...cfg.routes].sort((a, b) => Number(a.gateway !== '') - Number(b.gateway !== ''));
    for (const r of routes) {
      const family = r.dst.includes(':') ? '-6' : '-4';
      await this.inNs(netns, [family, 'route', 'replace', r.dst, ...(r.gateway ? ['via', r.gateway] : []), 'dev', dev]);
    }
  }

  async restore(netns: string, ifname: string, hostName: string): Promise<boolean> {
    if (!(await this.netnsExists(netns))) return false;
    if (!(await this.inspect(netns, ifname))) return false;
    await this.inNs(netns, ['link', 'set', 'dev', ifname, 'down']);
    if (ifname !== hostName) await this.inNs(netns, ['link', 'set', 'dev', ifname, 'name', hostName]);
    // `ip` runs inside the pod netns here: name our own netns by our pid.
    await this.inNs(netns, ['link', 'set', 'dev', hostName, 'netns', `/proc/${process.pid}/ns/net`]);
    return true;
  }

  private async ip(args: string[]): Promise<string> {
    return this.exec(this.ipBin, args);
  }

  private async inNs(netns: string, args: string[]): Promise<string> {
    return this.exec(this.nsenterBin, [`--net=${netns}`, this.ipBin, ...args]);
  }

  private async exec(bin: string, args: string[]): Promise<string> {
    try {
      const { stdout } = await run(bin, args, { timeout: 10_000 });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      const wrapped = new CniError(
        CNI_ERR.NETDEV_CONFIG_FAILED,
        'configuring the pod interface failed',
        `${bin} ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`,
        { cause: err },
      );
      (wrapped as unknown as { stderr?: string }).stderr = e.stderr;
      throw wrapped;
    }
  }
}
