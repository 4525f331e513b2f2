// TC change notifications: a second rtnetlink socket that joins RTNLGRP_TC (4) and
// reports which devices' qdiscs/filters changed (RTM_{NEW,DEL}{TFILTER,QDISC,CHAIN}).
// Same as: `tc monitor` / `ip monitor` (iproute2 joins the group with
// NETLINK_ADD_MEMBERSHIP, as the `netlink` package's addMembership does).
// Separate from the request socket so a burst of events never delays replies.
// Overruns (ENOBUFS: the kernel dropped events) are reported as `overrun`: the
// listener must then assume anything changed.
import { EventEmitter } from 'node:events';
import { RawNetlinkSocket } from 'netlink';
import type { Logger } from '../log.ts';
import { parseMessages } from '../netlink/nl.ts';
import { RTM_DELCHAIN, RTM_DELQDISC, RTM_DELTFILTER, RTM_NEWCHAIN, RTM_NEWQDISC, RTM_NEWTFILTER, RTNLGRP_TC, decodeTcMsg } from '../tc/tcmsg.ts';

const TC_TYPES = new Set([RTM_NEWTFILTER, RTM_DELTFILTER, RTM_NEWQDISC, RTM_DELQDISC, RTM_NEWCHAIN, RTM_DELCHAIN]);

export declare interface TcEvents {
  on(event: 'change', l: (ifindex: number, type: number) => void): this;
  on(event: 'overrun', l: () => void): this;
}

export class TcEvents extends EventEmitter {
  private readonly sock: RawNetlinkSocket;
  events = 0;

  constructor(private readonly log: Logger) {
    super();
    this.sock = new RawNetlinkSocket(0, { recvBufferSize: 4 << 20, sendBufferSize: 64 << 10 });
    this.sock.addMembership(RTNLGRP_TC);
    this.sock.on('message', (buf: Buffer) => this.onMessage(buf));
    this.sock.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'ENOBUFS') this.emit('overrun');
      else this.log.warn({ err }, 'tc notification socket error');
    });
    this.sock.unref();
  }

  private onMessage(buf: Buffer): void {
    let msgs;
    try {
      msgs = parseMessages(buf);
    } catch {
      this.emit('overrun'); // cannot tell which device: treat as "anything changed"
      return;
    }
    for (const m of msgs) {
      if (!TC_TYPES.has(m.hdr.type) || m.body.length < 20) continue;
      this.events++;
      this.emit('change', decodeTcMsg(m.body).ifindex, m.hdr.type);
    }
  }

  close(): void {
    this.sock.close();
  }
}
