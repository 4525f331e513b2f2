// Multicast notifications: a NETLINK_ROUTE socket joined to rtnetlink groups
// (RTNLGRP_LINK, RTNLGRP_TC, …), same as `ip monitor` / `tc monitor` (iproute2 joins
// with NETLINK_ADD_MEMBERSHIP, as the `netlink` package's addMembership does). Apart
// from the request socket (socket.ts), so a burst of events never delays replies.
// A datagram is split and decoded whole before any of its events is delivered. A
// datagram that does not decode, or a socket error (ENOBUFS: the kernel dropped
// notifications for us), is an overrun: events were lost and only a rescan by the
// listener can recover (as `ip monitor` warns).
import { RawNetlinkSocket } from 'netlink';
import { NetlinkSocketError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { type NlMessage, parseMessages } from './message.ts';
import { NETLINK_ROUTE } from './socket.ts';

export interface SubscriberOptions<T> {
  /** RTNLGRP_* groups to join. */
  readonly groups: readonly number[];
  /** For logs and errors, e.g. `RTNLGRP_LINK`. */
  readonly what: string;
  /** The event of one message; undefined skips it. May throw NetlinkMalformedError. */
  readonly decode: (m: NlMessage) => T | undefined;
  readonly onEvent: (e: T) => void;
  /** Events were lost: the listener must assume anything changed. */
  readonly onOverrun: () => void;
  readonly log: Logger;
  /** SO_RCVBUF: how big a burst fits before the kernel drops (default 1 MiB). */
  readonly recvBufferSize?: number;
}

/** Pure: the events of one datagram, in order. Throws NetlinkMalformedError when any part does not decode. */
export function decodeDatagram<T>(buf: Buffer, decode: (m: NlMessage) => T | undefined): T[] {
  const out: T[] = [];
  for (const m of parseMessages(buf)) {
    const e = decode(m);
    if (e !== undefined) out.push(e);
  }
  return out;
}

/** One multicast socket; does not keep the process alive. */
export class NetlinkSubscriber<T> {
  private readonly sock: RawNetlinkSocket;

  /** Opens the socket and joins the groups; NetlinkSocketError when it cannot. */
  constructor(private readonly opts: SubscriberOptions<T>) {
    let sock: RawNetlinkSocket | undefined;
    try {
      sock = new RawNetlinkSocket(NETLINK_ROUTE, { recvBufferSize: opts.recvBufferSize ?? 1 << 20, sendBufferSize: 64 << 10 });
      for (const g of opts.groups) sock.addMembership(g);
    } catch (err) {
      sock?.close();
      throw new NetlinkSocketError(`cannot join ${opts.what}`, (err as { code?: string }).code, { cause: err });
    }
    this.sock = sock;
    sock.on('message', (buf: Buffer) => this.onDatagram(buf));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      opts.log.warn({ err }, `${opts.what} notification socket error; rescanning`);
      opts.onOverrun();
    });
    sock.unref();
  }

  private onDatagram(buf: Buffer): void {
    let events: T[];
    try {
      events = decodeDatagram(buf, this.opts.decode);
    } catch (err) {
      this.opts.log.warn({ err }, `undecodable ${this.opts.what} notification; rescanning`);
      this.opts.onOverrun();
      return;
    }
    for (const e of events) this.opts.onEvent(e);
  }

  close(): void {
    this.sock.close();
  }
}
