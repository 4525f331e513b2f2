// TC change notifications: RTNLGRP_TC on its own socket (netlink/subscriber.ts),
// reporting which devices' qdiscs/filters changed (RTM_{NEW,DEL}{TFILTER,QDISC,CHAIN}).
// Same as: `tc monitor`. Overruns (ENOBUFS: the kernel dropped events) are reported
// as `overrun`: the listener must then assume anything changed.
import { EventEmitter } from 'node:events';
import type { Logger } from '../log.ts';
import type { NlMessage } from '../netlink/nl.ts';
import { NetlinkSubscriber } from '../netlink/subscriber.ts';
import { RTM_DELCHAIN, RTM_DELQDISC, RTM_DELTFILTER, RTM_NEWCHAIN, RTM_NEWQDISC, RTM_NEWTFILTER, RTNLGRP_TC, TCMSG_LEN, decodeTcMsg } from '../tc/tcmsg.ts';

const TC_TYPES = new Set([RTM_NEWTFILTER, RTM_DELTFILTER, RTM_NEWQDISC, RTM_DELQDISC, RTM_NEWCHAIN, RTM_DELCHAIN]);

interface TcChange {
  readonly ifindex: number;
  readonly type: number;
}

/** Pure: the device and message type of a tc change notification; undefined for anything else. */
export function tcChange(m: NlMessage): TcChange | undefined {
  if (!TC_TYPES.has(m.hdr.type) || m.body.length < TCMSG_LEN) return undefined;
  return { ifindex: decodeTcMsg(m.body).ifindex, type: m.hdr.type };
}

export declare interface TcEvents {
  on(event: 'change', l: (ifindex: number, type: number) => void): this;
  on(event: 'overrun', l: () => void): this;
}

export class TcEvents extends EventEmitter {
  private readonly sub: NetlinkSubscriber<TcChange>;
  events = 0;

  /** Joins RTNLGRP_TC; NetlinkSocketError when it cannot. */
  constructor(log: Logger) {
    super();
    this.sub = new NetlinkSubscriber({
      groups: [RTNLGRP_TC],
      what: 'RTNLGRP_TC',
      decode: tcChange,
      onEvent: (c) => {
        this.events++;
        this.emit('change', c.ifindex, c.type);
      },
      onOverrun: () => this.emit('overrun'),
      log,
      recvBufferSize: 4 << 20,
    });
  }

  close(): void {
    this.sub.close();
  }
}
