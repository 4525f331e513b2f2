// The lab's eSwitch: a "VF" is one end of a veth pair in the host netns, its
// representor `pfXvfY` the other end in the DPU netns. The lab (or the agent on
// the DPU) plays the eSwitch firmware, so setting a VF MAC is done from the DPU
// side into the host netns — same role as devlink's `hw_addr` on BlueField; the
// host side never does it.
//
// All over rtnetlink (hw/rtlink.ts), no `ip` process: the VF is found as the
// representor's veth peer — its IFLA_LINK_NETNSID + IFLA_LINK — wherever the host
// moved it (a pod netns, renamed eth0), the way real eSwitch firmware reaches a VF
// through its port function. Reads go to that nsid from our socket
// (IFLA_TARGET_NETNSID on RTM_GETLINK); the MAC write cannot (on RTM_SETLINK that
// attribute MOVES the device, see RtLinks), so it goes through a socket opened inside
// the VF's netns: one kept for the host netns (where every free VF is, so the whole
// allocation path), and a short-lived one for a pod netns found by its nsid among
// /run/netns (a leased VF at restart, a scrub on release).
import { HwError, NetlinkError } from '../errors.ts';
import type { RtNetlink } from '../netlink/socket.ts';
import { listNetns, openRtNetlinkIn } from './netns.ts';
import { compareVf, normaliseVfMac, parseRepresentorName, representorName } from './representor.ts';
import { type LinkInfo, RtLinks } from './rtlink.ts';
import type { HwBackend, Representor, VfId } from './types.ts';

/** What the backend needs of rtnetlink in the representors' netns; the real one is RtLinks, unit tests pass a fake. */
export type LinkApi = Pick<RtLinks, 'dump' | 'get' | 'setAddress' | 'nsidOfNetns'>;

/** Link writes inside one named netns (a socket opened there). */
export interface NetnsLinks {
  readonly api: Pick<RtLinks, 'setAddress'>;
  close(): void;
}

/** Default: an rtnetlink socket opened inside the netns (setns), small buffers (a few requests only). */
export function openNetnsLinks(name: string): NetnsLinks {
  const nl = openRtNetlinkIn(name, { recvBufferSize: 1 << 16 });
  return { api: new RtLinks(nl), close: () => nl.close() };
}

export interface EmulatedHwOptions {
  /**
   * Netns holding the VF ends (the host) when they are created. Informational: a VF is
   * found through its representor wherever it is now, so the name is never needed.
   */
  hostNs: string;
  /** Netns holding the representors; undefined = the agent's own netns (the agent runs there). */
  dpuNs?: string;
  /** An rtnetlink socket in the representors' netns to share (the agent's TC socket). */
  nl?: RtNetlink;
  /** Injected link operations (unit tests); default RtLinks on `nl` or on a socket of our own. */
  links?: LinkApi;
  /** Opens link writes inside a named netns; default openNetnsLinks. */
  openIn?: (netns: string) => NetnsLinks;
  /** Named netns; default the entries of /run/netns. */
  listNetns?: () => Promise<string[]>;
}

/** Representors among the links of the DPU netns, sorted by (pf, vf). Pure. */
export function representorsFromLinks(links: readonly LinkInfo[]): Representor[] {
  const reps: Representor[] = [];
  for (const l of links) {
    const id = parseRepresentorName(l.name);
    if (!id) continue;
    reps.push({ ...id, name: l.name, ifindex: l.ifindex, ...(l.mac ? { mac: l.mac } : {}), operUp: l.operUp, adminUp: l.up });
  }
  return reps.sort(compareVf);
}

/** Where a VF's netdev is: its ifindex, in the netns with that nsid (undefined: the representors' own). */
interface VfAt {
  ifindex: number;
  nsid: number | undefined;
}

const vfAt = (rep: LinkInfo | undefined): VfAt | undefined => (rep?.link !== undefined ? { ifindex: rep.link, nsid: rep.linkNetnsid } : undefined);

export class EmulatedHw implements HwBackend {
  readonly kind = 'emulated' as const;
  private linkApi: LinkApi | undefined;
  private ownSocket: RtNetlink | undefined;
  /** Writes into the host netns, with the nsid the representors' netns gives it. */
  private host: { nsid: number; links: NetnsLinks } | undefined;
  /** Last nsid → netns name found by a scan (checked again before use). */
  private readonly nsNames = new Map<number, string>();
  private readonly openIn: (netns: string) => NetnsLinks;

  constructor(private readonly opts: EmulatedHwOptions) {
    this.linkApi = opts.links ?? (opts.nl ? new RtLinks(opts.nl) : undefined);
    this.openIn = opts.openIn ?? openNetnsLinks;
  }

  /** Closes the sockets the backend opened for itself (not one it was given). */
  close(): void {
    this.host?.links.close();
    this.host = undefined;
    this.ownSocket?.close();
    if (this.ownSocket) this.linkApi = undefined;
    this.ownSocket = undefined;
  }

  private links(): LinkApi {
    if (!this.linkApi) {
      try {
        this.ownSocket = openRtNetlinkIn(this.opts.dpuNs);
      } catch (err) {
        throw new HwError(`rtnetlink socket${this.opts.dpuNs ? ` in netns ${this.opts.dpuNs}` : ''}: ${errText(err)}`, { cause: err });
      }
      this.linkApi = new RtLinks(this.ownSocket);
    }
    return this.linkApi;
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof HwError) throw err;
      throw new HwError(`${what}: ${errText(err)}`, { cause: err });
    }
  }

  // same as: ip -j link show (in the DPU netns)
  async discoverRepresentors(): Promise<Representor[]> {
    return this.call('list representors', async () => representorsFromLinks(await this.links().dump()));
  }

  representorName(vf: VfId): string {
    return representorName(vf);
  }

  vfOf(representor: string): VfId | undefined {
    return parseRepresentorName(representor);
  }

  // same as: ip -n <VF's netns> link set dev <VF> address MAC   (devlink port function hw_addr on BlueField)
  async setVfMac(vf: VfId, mac: string): Promise<void> {
    const norm = normaliseVfMac(mac);
    const rep = representorName(vf); // validates the id
    const what = `set MAC of VF ${vf.pf}/${vf.vf}`;
    await this.call(what, async () => {
      for (let attempt = 1; ; attempt++) {
        const at = vfAt(await this.links().get({ name: rep }));
        if (!at) throw new HwError(`${what}: no representor ${rep} with a VF peer`);
        try {
          await this.writeMac(at, norm);
          return;
        } catch (err) {
          // The host moved the VF between the two requests (new netns, maybe new ifindex): look again, once.
          if (attempt < 2 && err instanceof NetlinkError && (err.errnoName === 'ENODEV' || err.errnoName === 'EINVAL')) continue;
          throw err;
        }
      }
    });
  }

  /** Sets the MAC of the netdev at (ifindex, nsid) through a socket inside its netns. */
  private async writeMac(at: VfAt, mac: string): Promise<void> {
    if (at.nsid === undefined) return this.links().setAddress(at.ifindex, mac); // peer in the representors' netns
    const host = await this.hostLinks();
    if (host?.nsid === at.nsid) return host.links.api.setAddress(at.ifindex, mac);
    const name = await this.netnsWithNsid(at.nsid);
    if (!name) throw new HwError(`the VF is in a netns without a name under /run/netns (nsid ${at.nsid})`);
    if (name === this.opts.hostNs) {
      // The host netns was made anew (the old one is kept alive by our socket only): follow it.
      this.host?.links.close();
      this.host = { nsid: at.nsid, links: this.openIn(name) };
      return this.host.links.api.setAddress(at.ifindex, mac);
    }
    const w = this.openIn(name);
    try {
      await w.api.setAddress(at.ifindex, mac);
    } finally {
      w.close();
    }
  }

  /** The kept socket in the host netns, once the representors' netns has an nsid for it. */
  private async hostLinks(): Promise<{ nsid: number; links: NetnsLinks } | undefined> {
    if (this.host) return this.host;
    const nsid = await this.links().nsidOfNetns(this.opts.hostNs);
    if (nsid === undefined) return undefined;
    this.host = { nsid, links: this.openIn(this.opts.hostNs) };
    return this.host;
  }

  /** The name (under /run/netns) of the netns with that nsid (same as: ip netns list-id). */
  private async netnsWithNsid(nsid: number): Promise<string | undefined> {
    const cached = this.nsNames.get(nsid);
    if (cached !== undefined && (await this.links().nsidOfNetns(cached)) === nsid) return cached;
    this.nsNames.delete(nsid);
    for (const name of await (this.opts.listNetns ?? listNetns)()) {
      if ((await this.links().nsidOfNetns(name)) !== nsid) continue;
      this.nsNames.set(nsid, name);
      return name;
    }
    return undefined;
  }

  async getVfMac(vf: VfId): Promise<string | undefined> {
    return this.call(`read MAC of VF ${vf.pf}/${vf.vf}`, async () => {
      const at = vfAt(await this.links().get({ name: representorName(vf) }));
      if (!at) return undefined;
      return (await this.links().get({ ifindex: at.ifindex, ...(at.nsid !== undefined ? { nsid: at.nsid } : {}) }))?.mac;
    });
  }

  /**
   * The MACs of many VFs at once (the pool's start): one link dump of the DPU netns,
   * then one per netns the VFs are in (the host's, each pod's) — instead of two
   * requests per VF. Keyed by representor name; a VF that cannot be found is absent.
   */
  async getVfMacs(vfs: readonly VfId[]): Promise<Map<string, string>> {
    return this.call('read VF MACs', async () => {
      const own = await this.links().dump();
      const byName = new Map(own.map((l) => [l.name, l]));
      const wanted = new Map<number | undefined, { rep: string; ifindex: number }[]>();
      for (const vf of vfs) {
        const rep = representorName(vf);
        const at = vfAt(byName.get(rep));
        if (!at) continue;
        const list = wanted.get(at.nsid) ?? [];
        list.push({ rep, ifindex: at.ifindex });
        wanted.set(at.nsid, list);
      }
      const out = new Map<string, string>();
      for (const [nsid, list] of wanted) {
        let links = own;
        if (nsid !== undefined) {
          try {
            links = await this.links().dump(nsid);
          } catch {
            continue; // that netns just went away (a pod deleted): its VFs are read one by one later
          }
        }
        const macOf = new Map(links.map((l) => [l.ifindex, l.mac]));
        for (const { rep, ifindex } of list) {
          const mac = macOf.get(ifindex);
          if (mac) out.set(rep, mac);
        }
      }
      return out;
    });
  }
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
