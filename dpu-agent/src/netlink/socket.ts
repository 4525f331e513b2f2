// A netlink request socket over the `netlink` package's RawNetlinkSocket:
// sequence-numbered request/ACK, NLM_F_DUMP collection until NLMSG_DONE, bounded
// waits, ENOBUFS. rtnetlink (NETLINK_ROUTE, the default) for tc and links; the same
// class speaks generic netlink (NETLINK_GENERIC: devlink/) — the framing, ACKs,
// dumps and extack are the same, only the message bodies differ.
// Thin I/O: framing and decoding live in message.ts/error.ts, tc/filter.ts and devlink/codec.ts.
import { RawNetlinkSocket } from 'netlink';
import type { Logger } from '../log.ts';
import { silentLogger } from '../log.ts';
import { NetlinkSocketError, TimeoutError } from '../errors.ts';
import { dumpInterruptedError } from './dump.ts';
import { netlinkError, parseDone, parseError } from './error.ts';
import { type NlMessage, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, NLM_F_DUMP_INTR, parseMessages } from './message.ts';
import { NETLINK_CAP_ACK, NETLINK_EXT_ACK, enableNetlinkOption } from './sockopt.ts';

export const NETLINK_ROUTE = 0;
export const NETLINK_GENERIC = 16;

export interface RtNetlinkOptions {
  /** Netlink protocol (default NETLINK_ROUTE; NETLINK_GENERIC for devlink). */
  protocol?: number;
  /** Bound on every request/dump (default 5000 ms). */
  timeoutMs?: number;
  /** SO_RCVBUF (default 4 MiB: a 10k-filter dump arrives in ~32 KiB datagrams, paced by our reads). */
  recvBufferSize?: number;
  /**
   * Bytes read per recvmsg (default 64 KiB). The kernel sizes a dump's datagrams
   * by the largest buffer we have read with (af_netlink.c max_recvmsg_len, capped
   * near 32 KiB): with the package's default peek-then-read, which passes each
   * datagram's exact size, dumps stay at one page (~4 KiB) per datagram — 8× the
   * datagrams, 2 syscalls each. iproute2 reads with ≥ 32 KiB for the same reason.
   */
  msgBufferSize?: number;
  log?: Logger;
}

interface Pending {
  seq: number;
  dump: boolean;
  what: string;
  replies: NlMessage[];
  interrupted: boolean;
  timer: NodeJS.Timeout;
  resolve: (m: NlMessage[]) => void;
  reject: (e: Error) => void;
}

/**
 * One netlink socket (rtnetlink unless `protocol` says otherwise). Requests may
 * overlap; replies are matched by nlmsg_seq. Same as what `tc`/`ip`/`devlink` do
 * with libmnl, minus the blocking recv.
 */
export class RtNetlink {
  private readonly sock: RawNetlinkSocket;
  private readonly pending = new Map<number, Pending>();
  private seq: number;
  private closed = false;
  private readonly timeoutMs: number;
  private readonly log: Logger;
  readonly protocol: number;
  /** NETLINK_EXT_ACK is on: errors carry the kernel's extack text. */
  readonly extAck: boolean;
  private dumpTail: Promise<unknown> = Promise.resolve();
  /** Replies that matched no request (late after a timeout, or notifications). */
  strayMessages = 0;

  constructor(opts: RtNetlinkOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.log = opts.log ?? silentLogger();
    this.protocol = opts.protocol ?? NETLINK_ROUTE;
    try {
      this.sock = new RawNetlinkSocket(this.protocol, {
        recvBufferSize: opts.recvBufferSize ?? 4 << 20,
        sendBufferSize: 1 << 20,
        messagePeeking: false,
        msgBufferSize: opts.msgBufferSize ?? 64 << 10,
      });
    } catch (err) {
      throw new NetlinkSocketError(`cannot open ${this.kind} socket`, (err as { code?: string }).code, { cause: err });
    }
    const port = this.sock.address().port;
    this.extAck = enableNetlinkOption(port, this.protocol, NETLINK_EXT_ACK);
    // CAP_ACK: errors echo only the request header, not the whole request.
    if (this.extAck) enableNetlinkOption(port, this.protocol, NETLINK_CAP_ACK);
    if (!this.extAck) this.log.warn({ port, protocol: this.protocol }, `NETLINK_EXT_ACK unavailable: ${this.kind} errors will carry errno only`);
    this.seq = (Math.random() * 0x7fffffff) >>> 0;
    this.sock.on('message', (buf) => this.onMessage(buf));
    this.sock.on('error', (err) => this.onError(err));
    // A datagram larger than msgBufferSize (none the kernel sends for tc: dumps are
    // ≤ 32 KiB, echoes one page) would be cut: whatever it answered is lost.
    this.sock.on('truncatedMessage', (_buf, info) => {
      this.log.error({ size: info.truncated }, 'netlink datagram truncated');
      this.failAll(new NetlinkSocketError(`netlink datagram of ${info.truncated} B truncated, replies lost`, 'EMSGSIZE'));
    });
    this.sock.unref();
  }

  private get kind(): string {
    return this.protocol === NETLINK_ROUTE ? 'rtnetlink' : this.protocol === NETLINK_GENERIC ? 'generic netlink' : `netlink protocol ${this.protocol}`;
  }

  get port(): number {
    return this.sock.address().port;
  }

  /**
   * Sends one request (built with the given seq) and resolves with the messages
   * that came before its ACK (e.g. the ECHO of a new filter). Rejects with
   * NetlinkError on NLMSG_ERROR, TimeoutError after timeoutMs.
   */
  request(build: (seq: number) => Buffer, what: string): Promise<NlMessage[]> {
    return this.send(build, what, false);
  }

  /**
   * Sends a NLM_F_DUMP request and resolves with every part until NLMSG_DONE.
   * Dumps on one socket run one after another: the kernel keeps one dump
   * callback per socket and answers a second NLM_F_DUMP with EBUSY
   * (af_netlink.c __netlink_dump_start). Plain requests still overlap them.
   */
  dump(build: (seq: number) => Buffer, what: string): Promise<NlMessage[]> {
    const run = this.dumpTail.then(() => this.send(build, what, true));
    this.dumpTail = run.catch(() => undefined);
    return run;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new NetlinkSocketError(`${this.kind} socket closed`));
    this.sock.close();
  }

  private nextSeq(): number {
    do this.seq = (this.seq + 1) >>> 0;
    while (this.seq === 0 || this.pending.has(this.seq));
    return this.seq;
  }

  private send(build: (seq: number) => Buffer, what: string, dump: boolean): Promise<NlMessage[]> {
    if (this.closed) return Promise.reject(new NetlinkSocketError(`${this.kind} socket closed`));
    const seq = this.nextSeq();
    const msg = build(seq);
    return new Promise<NlMessage[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.finish(seq);
        reject(new TimeoutError(`netlink ${what}`, this.timeoutMs));
      }, this.timeoutMs);
      this.pending.set(seq, { seq, dump, what, replies: [], interrupted: false, timer, resolve, reject });
      if (this.pending.size === 1) this.sock.ref();
      this.sock.send(msg, {}, (err) => {
        if (err && this.finish(seq)) reject(new NetlinkSocketError(`send ${what}: ${err.message}`, err.code, { cause: err }));
      });
    });
  }

  /** Removes a pending entry; true if it was still there. */
  private finish(seq: number): boolean {
    const p = this.pending.get(seq);
    if (!p) return false;
    clearTimeout(p.timer);
    this.pending.delete(seq);
    if (this.pending.size === 0 && !this.closed) this.sock.unref();
    return true;
  }

  private onMessage(buf: Buffer): void {
    let msgs: NlMessage[];
    try {
      msgs = parseMessages(buf);
    } catch (err) {
      this.log.error({ err }, 'unparseable netlink datagram');
      return;
    }
    for (const m of msgs) {
      const p = this.pending.get(m.hdr.seq);
      if (!p) {
        this.strayMessages++;
        continue;
      }
      if (m.hdr.flags & NLM_F_DUMP_INTR) p.interrupted = true;
      if (m.hdr.type === NLMSG_NOOP || m.hdr.type === NLMSG_OVERRUN) continue;
      if (m.hdr.type === NLMSG_ERROR) {
        const e = parseError(m);
        this.finish(p.seq);
        if (e.errno === 0) p.resolve(p.replies);
        else p.reject(netlinkError(e));
        continue;
      }
      if (m.hdr.type === NLMSG_DONE && p.dump) {
        const d = parseDone(m);
        this.finish(p.seq);
        if (d.errno !== 0) p.reject(netlinkError(d));
        else if (p.interrupted) {
          // The table changed while we walked it (NLM_F_DUMP_INTR): dumpRetrying runs it again.
          p.reject(dumpInterruptedError());
        } else p.resolve(p.replies);
        continue;
      }
      // No copy: the package hands over a fresh buffer per datagram (binding.cc
      // Recvmsg: Napi::Buffer::New with ownership), never reused.
      p.replies.push(m);
    }
  }

  private onError(err: Error & { code?: string }): void {
    if (err.code === 'ENOBUFS') {
      // The kernel dropped messages for us: any in-flight reply may be among them.
      this.log.warn({ pending: this.pending.size }, 'netlink ENOBUFS: receive buffer overrun');
      this.failAll(new NetlinkSocketError('netlink receive buffer overrun (ENOBUFS), replies lost', 'ENOBUFS'));
      return;
    }
    this.log.error({ err }, 'netlink socket error');
    this.failAll(new NetlinkSocketError(`netlink socket error: ${err.message}`, err.code, { cause: err }));
  }

  private failAll(e: Error): void {
    for (const p of [...this.pending.values()]) {
      this.finish(p.seq);
      p.reject(e);
    }
  }
}
