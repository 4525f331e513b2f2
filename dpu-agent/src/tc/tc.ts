// The tc API the agent uses: clsact qdisc, flower filter add/replace/delete/get,
// dumps. Requests are built by the pure codecs and sent over one RtNetlink socket.
// Kernel refusals become TcError (errno name + extack text; for logs only).
import { NetlinkError, TcError, TcInvalidError } from '../errors.ts';
import {
  type FilterId,
  type FlowerFilter,
  type OtherFilter,
  type TcFilter,
  decodeFilterMessage,
  encodeDumpRequest,
  encodeFilterBody,
  encodeFilterRequest,
  isFlower,
} from './filter.ts';
import { checkFlowerKey } from './flower.ts';
import { FilterView, readFilterView } from './view.ts';
import {
  AttrWriter,
  type NlMessage,
  encodeMessage,
  getString,
  parseAttrs,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  NLM_F_REQUEST,
} from '../netlink/nl.ts';
import { dumpRetrying } from '../netlink/dump.ts';
import { RtNetlink, type RtNetlinkOptions } from '../netlink/socket.ts';
import {
  RTM_DELQDISC,
  RTM_DELTFILTER,
  RTM_GETQDISC,
  RTM_NEWQDISC,
  RTM_NEWTFILTER,
  TCA_KIND,
  TCA_OPTIONS,
  TCMSG_LEN,
  TC_H_CLSACT,
  TC_H_INGRESS_QDISC_HANDLE,
  decodeTcMsg,
  encodeTcMsg,
} from './tcmsg.ts';

export interface Qdisc {
  ifindex: number;
  handle: number;
  parent: number;
  kind: string;
}

export class Tc {
  readonly nl: RtNetlink;
  private readonly ownsSocket: boolean;

  /** Pass an RtNetlink to share one socket, or options to open one. */
  constructor(nl?: RtNetlink | RtNetlinkOptions) {
    if (nl instanceof RtNetlink) {
      this.nl = nl;
      this.ownsSocket = false;
    } else {
      this.nl = new RtNetlink(nl);
      this.ownsSocket = true;
    }
  }

  close(): void {
    if (this.ownsSocket) this.nl.close();
  }

  /**
   * Makes sure the device has a clsact (or ingress) qdisc: `tc qdisc add dev X clsact`.
   * Idempotent: EEXIST is success when a clsact/ingress qdisc is already there
   * (ingress is enough for ingress filters; `kind` says which one).
   */
  async ensureClsact(ifindex: number): Promise<{ created: boolean; kind: string }> {
    try {
      await this.call('qdisc add', ifindex, () => this.nl.request((seq) => qdiscRequest(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, ifindex, 'clsact', seq), 'qdisc add'));
      return { created: true, kind: 'clsact' };
    } catch (err) {
      if (!(err instanceof TcError) || err.errnoName !== 'EEXIST') throw err;
      const q = await this.ingressQdisc(ifindex);
      if (q && (q.kind === 'clsact' || q.kind === 'ingress')) return { created: false, kind: q.kind };
      throw err;
    }
  }

  /** `tc qdisc del dev X clsact|ingress`. Idempotent: false when there was none. */
  async deleteQdisc(ifindex: number, kind: 'clsact' | 'ingress' = 'clsact'): Promise<boolean> {
    try {
      await this.call('qdisc del', ifindex, () => this.nl.request((seq) => qdiscRequest(RTM_DELQDISC, 0, ifindex, kind, seq), 'qdisc del'));
      return true;
    } catch (err) {
      // Deleting an absent clsact answers EINVAL "Invalid handle" (sch_api.c tc_get_qdisc).
      if (err instanceof TcError && (err.errnoName === 'EINVAL' || err.errnoName === 'ENOENT')) {
        const q = await this.ingressQdisc(ifindex);
        if (!q || q.kind !== kind) return false;
      }
      throw err;
    }
  }

  /** RTM_GETQDISC dump, filtered here by ifindex (the kernel ignores it without strict checking). */
  async dumpQdiscs(ifindex?: number): Promise<Qdisc[]> {
    const msgs = await this.call('qdisc dump', ifindex ?? 0, () =>
      this.nl.dump((seq) => {
        const w = new AttrWriter(32);
        w.raw(encodeTcMsg({ family: 0, ifindex: ifindex ?? 0, handle: 0, parent: 0, info: 0 }));
        return encodeMessage({ type: RTM_GETQDISC, flags: NLM_F_REQUEST | NLM_F_DUMP, seq }, w.toBuffer());
      }, 'qdisc dump'),
    );
    const out: Qdisc[] = [];
    for (const m of msgs) {
      const q = decodeQdisc(m);
      if (ifindex === undefined || q.ifindex === ifindex) out.push(q);
    }
    return out;
  }

  private async ingressQdisc(ifindex: number): Promise<Qdisc | undefined> {
    return (await this.dumpQdiscs(ifindex)).find((q) => q.parent === TC_H_CLSACT);
  }

  /**
   * `tc filter add … flower …`: fails with TcError EEXIST if the handle is taken.
   * Resolves with the kernel's echo of the filter (handle filled in, in_hw flags).
   */
  addFilter(f: FlowerFilter): Promise<FlowerFilter> {
    return this.newFilter('add', f);
  }

  /** `tc filter replace …`: creates or changes the filter at (prio, protocol, handle). */
  replaceFilter(f: FlowerFilter): Promise<FlowerFilter> {
    return this.newFilter('replace', f);
  }

  private async newFilter(op: 'add' | 'replace', f: FlowerFilter): Promise<FlowerFilter> {
    checkFlowerKey(f.key);
    if (f.prio === 0) throw new TcInvalidError(`${op} needs an explicit prio (OVS never lets the kernel pick one)`);
    const replies = await this.call(`filter ${op}`, f.ifindex, () =>
      this.nl.request((seq) => encodeFilterRequest(op, f, seq, f), `filter ${op}`),
    );
    const echo = replies.find((m) => m.hdr.type === RTM_NEWTFILTER);
    if (!echo) return f; // a kernel that did not echo: the request is what we know
    const got = decodeFilterMessage(echo);
    return isFlower(got) ? got : f;
  }

  /**
   * `tc filter replace … matchall|u32|…`: a filter of another classifier with its
   * TCA_OPTIONS given raw (e.g. matchall's TCA_MATCHALL_ACT nest). No echo decode.
   */
  async replaceOtherFilter(f: OtherFilter): Promise<void> {
    if (f.prio === 0) throw new TcInvalidError('replace needs an explicit prio');
    await this.call('filter replace', f.ifindex, () =>
      this.nl.request(
        (seq) => encodeMessage({ type: RTM_NEWTFILTER, flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, seq }, encodeFilterBody(f, f)),
        'filter replace',
      ),
    );
  }

  /**
   * `tc filter del dev X ingress [chain C] prio P protocol Y KIND` (no handle):
   * removes every filter of that (chain, prio, protocol), i.e. the whole classifier
   * instance — how a foreign u32/matchall/bpf is removed with its hash tables.
   * Idempotent: false when absent. Refuses prio 0 (that would flush the chain).
   */
  async deleteFilterPrio(id: Omit<FilterId, 'handle'> & { kind: string }): Promise<boolean> {
    if (id.prio === 0) throw new TcInvalidError('deleteFilterPrio needs a prio (prio 0 flushes the chain)');
    try {
      await this.call('filter del', id.ifindex, () =>
        this.nl.request(
          (seq) => encodeMessage({ type: RTM_DELTFILTER, flags: NLM_F_REQUEST | NLM_F_ACK, seq }, encodeFilterBody({ ...id, handle: 0 })),
          'filter del',
        ),
      );
      return true;
    } catch (err) {
      if (err instanceof TcError && (err.errnoName === 'ENOENT' || err.errnoName === 'EINVAL')) {
        const all = await this.dumpAnyFilters(id.ifindex, id.parent, id.chain !== undefined ? { chain: id.chain } : {});
        if (!all.some((f) => f.prio === id.prio && f.protocol === id.protocol && (f.chain ?? 0) === (id.chain ?? 0))) return false;
      }
      throw err;
    }
  }

  /**
   * `tc filter del … prio P protocol X handle H flower`. Idempotent: false when
   * absent. `kind` must match the filter's classifier (the kernel checks it).
   */
  async deleteFilter(id: FilterId & { kind?: string }): Promise<boolean> {
    try {
      await this.call('filter del', id.ifindex, () =>
        this.nl.request((seq) => encodeFilterRequest('delete', { ...id, kind: id.kind ?? 'flower' }, seq), 'filter del'),
      );
      return true;
    } catch (err) {
      if (err instanceof TcError && (await this.absent(err, id))) return false;
      throw err;
    }
  }

  /** `tc filter get …`: the filter, or undefined when absent. */
  async getFilter(id: FilterId & { kind?: string }): Promise<TcFilter | undefined> {
    try {
      const replies = await this.call('filter get', id.ifindex, () =>
        this.nl.request((seq) => encodeFilterRequest('get', { ...id, kind: id.kind ?? 'flower' }, seq), 'filter get'),
      );
      const m = replies.find((r) => r.hdr.type === RTM_NEWTFILTER);
      return m ? decodeFilterMessage(m) : undefined;
    } catch (err) {
      if (err instanceof TcError && (await this.absent(err, id))) return undefined;
      throw err;
    }
  }

  /** Flower filters of one hook (`tc -s filter show dev X ingress [chain N]`). */
  async dumpFilters(ifindex: number, parent: number, o: { chain?: number; terse?: boolean } = {}): Promise<FlowerFilter[]> {
    return (await this.dumpAnyFilters(ifindex, parent, o)).filter(isFlower);
  }

  /**
   * Every filter of one hook, any classifier. The per-(prio, protocol) heads
   * that the kernel lists with handle 0 are left out. Retries a dump that the
   * kernel flagged NLM_F_DUMP_INTR (the table changed under it).
   */
  async dumpAnyFilters(ifindex: number, parent: number, o: { chain?: number; terse?: boolean } = {}): Promise<TcFilter[]> {
    const msgs = await this.call('filter dump', ifindex, () =>
      dumpRetrying(this.nl, (seq) => encodeDumpRequest(ifindex, parent, seq, o), 'filter dump'),
    );
    const out: TcFilter[] = [];
    for (const m of msgs) {
      if (m.hdr.type !== RTM_NEWTFILTER) continue;
      const f = decodeFilterMessage(m);
      if (f.handle !== 0) out.push(f);
    }
    return out;
  }

  /**
   * One dump of a hook read through the partial decode (view.ts): `visit` gets
   * each filter (per-prio heads with handle 0 left out; any classifier, options
   * read for flower only) in ONE FilterView, refilled per filter — copy what you
   * keep; the message rides along for a caller that decodes some in full.
   * Resolves with the number visited. Same dump and retry as dumpAnyFilters.
   */
  async scanFilters(ifindex: number, parent: number, o: ScanOptions, visit: ViewVisitor): Promise<number> {
    const msgs = await this.call('filter dump', ifindex, () =>
      dumpRetrying(this.nl, (seq) => encodeDumpRequest(ifindex, parent, seq, o), 'filter dump'),
    );
    return visitViews(msgs, visit, o);
  }

  /**
   * Whether a delete/get error means "no such filter": ENOENT (no such
   * prio/protocol or handle), or EINVAL when the chain itself is gone ("Cannot find
   * specified filter chain", cls_api.c) — EINVAL is checked against a dump.
   */
  private async absent(err: TcError, id: FilterId): Promise<boolean> {
    if (err.errnoName === 'ENOENT') return true;
    if (err.errnoName !== 'EINVAL') return false;
    const all = await this.dumpAnyFilters(id.ifindex, id.parent, id.chain !== undefined ? { chain: id.chain } : {});
    return !all.some((f) => f.prio === id.prio && f.protocol === id.protocol && f.handle === id.handle && (f.chain ?? 0) === (id.chain ?? 0));
  }

  /** Maps a NetlinkError to TcError (op, ifindex, errno, extack); other errors pass. */
  private async call<T>(op: string, ifindex: number, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof NetlinkError) throw new TcError(op, ifindex, err.errno, err.errnoName, err.extack, { cause: err });
      throw err;
    }
  }
}

function qdiscRequest(type: number, extraFlags: number, ifindex: number, kind: string, seq: number): Buffer {
  // Same as OVS tc_add_del_qdisc: handle ffff:, parent TC_H_INGRESS (== TC_H_CLSACT), kind, no options needed.
  const w = new AttrWriter(64);
  w.raw(encodeTcMsg({ family: 0, ifindex, handle: TC_H_INGRESS_QDISC_HANDLE, parent: TC_H_CLSACT, info: 0 }));
  w.string(TCA_KIND, kind);
  if (type === RTM_NEWQDISC) w.nest(TCA_OPTIONS, () => {});
  return encodeMessage({ type, flags: NLM_F_REQUEST | NLM_F_ACK | extraFlags, seq }, w.toBuffer());
}

/** A dump's options (dumpAnyFilters') and what the view reads: `cookie: false` leaves the action cookies unread. */
export interface ScanOptions {
  chain?: number;
  terse?: boolean;
  cookie?: boolean;
}

/** Gets each filter's view (reused: copy what you keep) and the message it was read from (for a full decode of the few that need one). */
export type ViewVisitor = (v: FilterView, m: NlMessage) => void;

/** readFilterView over the RTM_NEWTFILTER messages of a dump, one reused view; heads (handle 0) skipped. */
export function visitViews(msgs: readonly NlMessage[], visit: ViewVisitor, o: { cookie?: boolean } = {}): number {
  const v = new FilterView();
  v.wantCookie = o.cookie ?? true;
  let n = 0;
  for (const m of msgs) {
    if (m.hdr.type !== RTM_NEWTFILTER) continue;
    if (readFilterView(m.body, v).handle === 0) continue;
    visit(v, m);
    n++;
  }
  return n;
}

export function decodeQdisc(m: NlMessage): Qdisc {
  const t = decodeTcMsg(m.body);
  let kind = '';
  for (const a of parseAttrs(m.body, TCMSG_LEN)) if (a.type === TCA_KIND) kind = getString(a);
  return { ifindex: t.ifindex, handle: t.handle, parent: t.parent, kind };
}
