// devlink client: one generic netlink socket (netlink/socket.ts with NETLINK_GENERIC),
// the family id resolved once through nlctrl. Thin I/O over codec.ts, instead of a
// `devlink` process per call (~10 ms each on the DPU's ARM cores):
//   same as: devlink -j port show; devlink -j port show pci/…/N;
//            devlink port function set pci/…/N hw_addr MAC
import { DevlinkError, NetlinkError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { AttrWriter, NlMessage } from '../netlink/nl.ts';
import { dumpRetrying } from '../netlink/dump.ts';
import { NETLINK_GENERIC, RtNetlink, type RtNetlinkOptions } from '../netlink/socket.ts';
import {
  DEVLINK_GENL_NAME,
  type DevlinkPort,
  type GenlFamily,
  decodeFamily,
  decodePort,
  encodeDevlinkRequest,
  encodeGetFamily,
  encodePortDump,
  encodePortGet,
  encodePortSetHwAddr,
  parseHandle,
} from './codec.ts';

/** What the BlueField backend needs of devlink; unit tests pass a fake. */
export interface DevlinkApi {
  ports(): Promise<DevlinkPort[]>;
  port(handle: string): Promise<DevlinkPort | undefined>;
  setHwAddr(handle: string, mac: string): Promise<void>;
}

export interface DevlinkOptions extends Omit<RtNetlinkOptions, 'protocol'> {
  log?: Logger;
}

/** The kernel's NetlinkError as a DevlinkError naming the operation; anything else unchanged. */
function devlinkError(op: string, handle: string | undefined, err: unknown): unknown {
  if (!(err instanceof NetlinkError)) return err;
  return new DevlinkError(op, handle, err.errno, err.errnoName, err.extack, err.extackOffset, { cause: err });
}

export class Devlink implements DevlinkApi {
  readonly nl: RtNetlink;
  private family: Promise<GenlFamily> | undefined;

  constructor(opts: DevlinkOptions = {}) {
    // Replies are small (a port is ~150 B; a dump of 1,000 ports ~150 KiB in ≤ 32 KiB datagrams).
    this.nl = new RtNetlink({ recvBufferSize: 1 << 20, ...opts, protocol: NETLINK_GENERIC });
  }

  /** The devlink family (id, version), resolved once; a failed lookup is retried on the next call. */
  familyInfo(): Promise<GenlFamily> {
    this.family ??= this.resolveFamily(DEVLINK_GENL_NAME).catch((err: unknown) => {
      this.family = undefined;
      throw err;
    });
    return this.family;
  }

  /** CTRL_CMD_GETFAMILY for any generic netlink family (ENOENT: not registered — no devlink in this kernel). */
  async resolveFamily(name: string): Promise<GenlFamily> {
    let replies;
    try {
      replies = await this.nl.request((seq) => encodeGetFamily(seq, name), `genl family ${name}`);
    } catch (err) {
      throw devlinkError(`family ${name}`, undefined, err);
    }
    for (const m of replies) {
      const f = decodeFamily(m);
      if (f) return f;
    }
    throw new DevlinkError(`family ${name}`, undefined, 0, 'ENOMSG', 'nlctrl answered without a family id');
  }

  /** Every port of every devlink instance (same as: devlink -j port show); an interrupted dump is run again. */
  async ports(): Promise<DevlinkPort[]> {
    const { id } = await this.familyInfo();
    let msgs: NlMessage[];
    try {
      msgs = await dumpRetrying(this.nl, (seq) => encodePortDump(seq, id), 'devlink port dump');
    } catch (err) {
      throw devlinkError('port show', undefined, err);
    }
    const out: DevlinkPort[] = [];
    for (const m of msgs) {
      const p = decodePort(m, id);
      if (p) out.push(p);
    }
    return out;
  }

  /** One port, or undefined when the device or port does not exist (ENODEV). */
  async port(handle: string): Promise<DevlinkPort | undefined> {
    const { id } = await this.familyInfo();
    const h = parseHandle(handle);
    try {
      const replies = await this.nl.request((seq) => encodePortGet(seq, id, h), `devlink port get ${handle}`);
      for (const m of replies) {
        const p = decodePort(m, id);
        if (p) return p;
      }
      return undefined;
    } catch (err) {
      if (err instanceof NetlinkError && err.errnoName === 'ENODEV') return undefined;
      throw devlinkError('port show', handle, err);
    }
  }

  /** same as: devlink port function set HANDLE hw_addr MAC. Throws DevlinkError with the driver's extack. */
  async setHwAddr(handle: string, mac: string): Promise<void> {
    const { id } = await this.familyInfo();
    const h = parseHandle(handle);
    try {
      await this.nl.request((seq) => encodePortSetHwAddr(seq, id, h, mac), `devlink port function set ${handle}`);
    } catch (err) {
      throw devlinkError('port function set', handle, err);
    }
  }

  /** Any devlink command (ACKed), replies undecoded: for what the typed calls above do not cover. */
  async request(cmd: number, fill: (w: AttrWriter) => void, what = `devlink cmd ${cmd}`): Promise<void> {
    const { id } = await this.familyInfo();
    try {
      await this.nl.request((seq) => encodeDevlinkRequest(seq, id, cmd, fill), what);
    } catch (err) {
      throw devlinkError(what, undefined, err);
    }
  }

  close(): void {
    this.nl.close();
  }
}
