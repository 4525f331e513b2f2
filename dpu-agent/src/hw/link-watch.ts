// Representors come and go at run time (the host changes sriov_numvfs; in the
// lab veth pairs are added/removed). The kernel says so on RTNLGRP_LINK; we
// listen instead of polling, so a new VF is quarantined at once and a vanished
// leased one is noticed right away (same as: ip monitor link).
import { EventEmitter } from 'node:events';
import type { Logger } from '../log.ts';
import { type NlMessage, getString, getU32, parseAttrs } from '../netlink/nl.ts';
import { NetlinkSubscriber } from '../netlink/subscriber.ts';
import { IFF_UP, IFINFOMSG_LEN, IFLA_IFNAME, IFLA_OPERSTATE, RTM_DELLINK, RTM_NEWLINK, RTNLGRP_LINK, ifinfoHeader } from './link-msg.ts';

export interface LinkEvent {
  readonly kind: 'new' | 'del';
  readonly ifindex: number;
  readonly name: string;
  /** IF_OPER_* (6 = up) when the kernel sent it. */
  readonly operstate: number | undefined;
  /** IFF_UP in ifi_flags: administratively up. */
  readonly adminUp: boolean;
}

/** Pure: an RTM_NEWLINK/RTM_DELLINK message → its event; undefined for other messages and nameless links. */
export function linkEvent(m: NlMessage): LinkEvent | undefined {
  if ((m.hdr.type !== RTM_NEWLINK && m.hdr.type !== RTM_DELLINK) || m.body.length < IFINFOMSG_LEN) return undefined;
  const { ifindex, flags } = ifinfoHeader(m.body);
  let name = '';
  let operstate: number | undefined;
  for (const a of parseAttrs(m.body, IFINFOMSG_LEN)) {
    if (a.type === IFLA_IFNAME) name = getString(a);
    else if (a.type === IFLA_OPERSTATE) operstate = a.data.length >= 1 ? (a.data.length >= 4 ? getU32(a) : a.data[0]) : undefined;
  }
  if (!name) return undefined;
  return { kind: m.hdr.type === RTM_NEWLINK ? 'new' : 'del', ifindex, name, operstate, adminUp: (flags & IFF_UP) !== 0 };
}

export declare interface LinkWatch {
  on(event: 'link', l: (e: LinkEvent) => void): this;
  /** Notifications were lost (ENOBUFS, an undecodable datagram): callers must rescan. */
  on(event: 'overrun', l: () => void): this;
}

export class LinkWatch extends EventEmitter {
  private sub: NetlinkSubscriber<LinkEvent> | undefined;

  constructor(private readonly log: Logger) {
    super();
  }

  /** Joins RTNLGRP_LINK; NetlinkSocketError when it cannot. */
  start(): void {
    this.sub = new NetlinkSubscriber({
      groups: [RTNLGRP_LINK],
      what: 'RTNLGRP_LINK',
      decode: linkEvent,
      onEvent: (e) => this.emit('link', e),
      onOverrun: () => this.emit('overrun'),
      log: this.log,
    });
  }

  stop(): void {
    this.sub?.close();
    this.sub = undefined;
  }
}
