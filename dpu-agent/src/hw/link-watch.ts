// Representors come and go at run time (the host changes sriov_numvfs; in the
// lab veth pairs are added/removed). The kernel says so on RTNLGRP_LINK; we
// listen instead of polling, so a new VF is quarantined at once and a vanished
// leased one is noticed right away (same as: ip monitor link).
import { EventEmitter } from 'node:events';
import { RawNetlinkSocket } from 'netlink';
import { NetlinkSocketError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { getString, getU32, parseAttrs, parseMessages, readU32 } from '../netlink/nl.ts';

const NETLINK_ROUTE = 0;
export const RTNLGRP_LINK = 1;
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
const IFINFOMSG_LEN = 16;
const IFLA_IFNAME = 3;
const IFLA_OPERSTATE = 16;
const IFF_UP = 0x1;

export interface LinkEvent {
  readonly kind: 'new' | 'del';
  readonly ifindex: number;
  readonly name: string;
  /** IF_OPER_* (6 = up) when the kernel sent it. */
  readonly operstate: number | undefined;
  /** IFF_UP in ifi_flags: administratively up. */
  readonly adminUp: boolean;
}

/** Pure: RTM_NEWLINK/RTM_DELLINK messages in a datagram → events (others ignored). */
export function parseLinkEvents(buf: Buffer): LinkEvent[] {
  const out: LinkEvent[] = [];
  for (const m of parseMessages(buf)) {
    if ((m.hdr.type !== RTM_NEWLINK && m.hdr.type !== RTM_DELLINK) || m.body.length < IFINFOMSG_LEN) continue;
    // struct ifinfomsg { u8 family, pad; u16 type; s32 index; u32 flags, change; }
    const ifindex = readU32(m.body, 4) | 0;
    const adminUp = (readU32(m.body, 8) & IFF_UP) !== 0;
    let name = '';
    let operstate: number | undefined;
    for (const a of parseAttrs(m.body, IFINFOMSG_LEN)) {
      if (a.type === IFLA_IFNAME) name = getString(a);
      else if (a.type === IFLA_OPERSTATE) operstate = a.data.length >= 1 ? (a.data.length >= 4 ? getU32(a) : a.data[0]) : undefined;
    }
    if (!name) continue;
    out.push({ kind: m.hdr.type === RTM_NEWLINK ? 'new' : 'del', ifindex, name, operstate, adminUp });
  }
  return out;
}

export declare interface LinkWatch {
  on(event: 'link', l: (e: LinkEvent) => void): this;
  /** The socket overran (ENOBUFS): events were lost, callers must rescan. */
  on(event: 'overrun', l: () => void): this;
}

export class LinkWatch extends EventEmitter {
  private sock: RawNetlinkSocket | undefined;

  constructor(private readonly log: Logger) {
    super();
  }

  start(): void {
    try {
      this.sock = new RawNetlinkSocket(NETLINK_ROUTE, { recvBufferSize: 1 << 20, sendBufferSize: 1 << 16 });
      this.sock.addMembership(RTNLGRP_LINK);
    } catch (err) {
      throw new NetlinkSocketError('cannot join RTNLGRP_LINK', (err as { code?: string }).code, { cause: err });
    }
    this.sock.on('message', (buf: Buffer) => {
      let events: LinkEvent[];
      try {
        events = parseLinkEvents(buf);
      } catch (err) {
        this.log.warn({ err }, 'undecodable link notification; rescanning');
        this.emit('overrun');
        return;
      }
      for (const e of events) this.emit('link', e);
    });
    this.sock.on('error', (err: NodeJS.ErrnoException) => {
      // ENOBUFS: the kernel dropped notifications; only a rescan can recover (as `ip monitor` warns).
      this.log.warn({ err }, 'link notification socket error; rescanning');
      this.emit('overrun');
    });
    this.sock.unref();
  }

  stop(): void {
    this.sock?.close();
    this.sock = undefined;
  }
}
