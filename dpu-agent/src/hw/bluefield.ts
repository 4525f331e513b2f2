// The BlueField eSwitch as the DPU's ARM side sees it (switchdev mode, ECPF):
// host VF representors are netdevs whose sysfs `phys_port_name` is `pfNvfM`
// (or `cXpfNvfM` on kernels that print the external controller) and whose
// `phys_switch_id` equals the uplink's. The VF's MAC is the devlink port
// function's `hw_addr`, set from here — the host cannot change it.
//   same as: devlink port function set pci/0000:03:00.0/4097 hw_addr 0a:58:…
//
// devlink is spoken over generic netlink (devlink/), not by running `devlink`: one
// request where the tool costs two process spawns per allocation (~10 ms each on
// the ARM cores).
// The port list (a dump) is cached: a VF's port is found there, and the list is
// dumped again on a miss, a stale handle (ENODEV), or when the agent sees a link
// come or go (invalidatePorts, from its RTNLGRP_LINK watch) — so setVfMac is one
// DEVLINK_CMD_PORT_SET.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Devlink, type DevlinkApi } from '../devlink/client.ts';
import type { DevlinkPort } from '../devlink/codec.ts';
import { DevlinkError, HwError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { compareVf, normaliseVfMac, parseRepresentorName, representorName } from './representor.ts';
import type { HwBackend, Representor, VfId } from './types.ts';

export type { DevlinkPort } from '../devlink/codec.ts';

export interface BlueFieldHwOptions {
  /** The uplink whose eSwitch we manage (`p0`); its phys_switch_id identifies the switch. */
  readonly uplink: string;
  /** Default `/sys`; tests point it at a fake tree. */
  readonly sysfsRoot?: string;
  /** devlink; default a generic netlink client of our own (opened on first use). */
  readonly devlink?: DevlinkApi;
  readonly log?: Logger;
}

/** `pf0vf3` or `c1pf0vf3` → {pf, vf}. */
export function parsePhysPortName(name: string): VfId | undefined {
  const m = /^(?:c\d+)?(pf\d+vf\d+)$/.exec(name.trim());
  return m ? parseRepresentorName(m[1] as string) : undefined;
}

/** The devlink port of a host VF among `ports`: flavour pcivf, by netdev name, else by pf/vf number on the external (host) controller. Pure. */
export function findVfPort(ports: readonly DevlinkPort[], vf: VfId): DevlinkPort | undefined {
  const name = representorName(vf);
  return (
    ports.find((x) => x.flavour === 'pcivf' && x.netdev === name) ??
    ports.find((x) => x.flavour === 'pcivf' && x.external !== false && x.pfnum === vf.pf && x.vfnum === vf.vf)
  );
}

export class BlueFieldHw implements HwBackend {
  readonly kind = 'bluefield' as const;
  private readonly sys: string;
  private client: DevlinkApi | undefined;
  /** Our own client (closed by close()); undefined when one was injected. */
  private own: Devlink | undefined;
  /** The cached port dump, or the dump in flight. */
  private portList: Promise<DevlinkPort[]> | undefined;
  /** Port dumps made (cache misses and refreshes): what the cache saves is visible in tests. */
  portDumps = 0;

  constructor(private readonly opts: BlueFieldHwOptions) {
    this.sys = opts.sysfsRoot ?? '/sys';
    this.client = opts.devlink;
  }

  private get devlink(): DevlinkApi {
    if (!this.client) {
      try {
        this.own = new Devlink(this.opts.log ? { log: this.opts.log } : {});
      } catch (err) {
        throw new HwError(`cannot open a devlink (generic netlink) socket: ${(err as Error).message}`, { cause: err });
      }
      this.client = this.own;
    }
    return this.client;
  }

  /** Forgets the cached port list: the next lookup dumps again. Called on link notifications (a VF came or went). */
  invalidatePorts(): void {
    this.portList = undefined;
  }

  close(): void {
    this.own?.close();
    this.own = undefined;
    this.client = this.opts.devlink;
    this.portList = undefined;
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
    const norm = normaliseVfMac(mac);
    let port = await this.port(vf);
    try {
      await this.devlink.setHwAddr(port.handle, norm);
      return;
    } catch (err) {
      // ENODEV: the port we cached is gone (VFs re-created: new port indexes). Look again, once.
      if (!(err instanceof DevlinkError && err.errnoName === 'ENODEV')) throw this.setError(port, err);
      this.invalidatePorts();
      const again = await this.port(vf);
      if (again.handle === port.handle) throw this.setError(port, err);
      port = again;
    }
    try {
      await this.devlink.setHwAddr(port.handle, norm);
    } catch (err) {
      throw this.setError(port, err);
    }
  }

  /** The VF's MAC now (one DEVLINK_CMD_PORT_GET of its cached port; a dump when the port moved). */
  async getVfMac(vf: VfId): Promise<string | undefined> {
    const port = await this.port(vf);
    const now = await this.call(() => this.devlink.port(port.handle));
    if (now) return now.hwAddr;
    this.invalidatePorts();
    return (await this.port(vf)).hwAddr;
  }

  /** The MACs of many VFs from one fresh dump (the pool's start), keyed by representor name. */
  async getVfMacs(vfs: readonly VfId[]): Promise<Map<string, string>> {
    this.invalidatePorts();
    const ports = await this.ports();
    const out = new Map<string, string>();
    for (const vf of vfs) {
      const mac = findVfPort(ports, vf)?.hwAddr;
      if (mac !== undefined) out.set(representorName(vf), mac);
    }
    return out;
  }

  /** The devlink port of a host VF, from the cached dump; dumped again once on a miss. */
  private async port(vf: VfId): Promise<DevlinkPort> {
    const cached = this.portList !== undefined;
    let p = findVfPort(await this.ports(), vf);
    if (!p && cached) {
      this.invalidatePorts();
      p = findVfPort(await this.ports(), vf);
    }
    if (!p) throw new HwError(`no devlink port for VF ${vf.pf}/${vf.vf}`);
    return p;
  }

  private ports(): Promise<DevlinkPort[]> {
    if (!this.portList) {
      this.portDumps++;
      const dump = this.call(() => this.devlink.ports());
      this.portList = dump;
      // A failed dump is not cached.
      dump.catch(() => {
        if (this.portList === dump) this.portList = undefined;
      });
    }
    return this.portList;
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw err instanceof HwError ? err : new HwError((err as Error).message, { cause: err });
    }
  }

  private setError(port: DevlinkPort, err: unknown): HwError {
    return new HwError(`set hw_addr of ${port.handle}: ${(err as Error).message}`, { cause: err });
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
