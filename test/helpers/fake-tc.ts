// An in-memory stand-in for the tc library (`TcApi`): qdiscs and filters per
// ifindex, kernel-like answers (EEXIST/ENOENT as TcError, handles picked on add,
// not_in_hw in echoes and dumps, whole-prio deletes). For unit tests and the
// scrape bench only; the real kernel is exercised in the kernel lane.
import { TcError } from '../../dpu-agent/src/errors.ts';
import type { FilterId, ScanOptions, ViewVisitor, FlowerFilter, OtherFilter, Qdisc, TcFilter } from '../../dpu-agent/src/tc/index.ts';
import { RTM_NEWTFILTER, TC_H_CLSACT, TC_H_INGRESS_QDISC_HANDLE, TC_PARENT_EGRESS, decodeFilterMessage, encodeFilterMessage, isFlower, visitViews } from '../../dpu-agent/src/tc/index.ts';
import { type NlMessage, NLM_F_MULTI, parseMessages } from '../../dpu-agent/src/netlink/nl.ts';
import type { TcApi } from '../../dpu-agent/src/offload/tc-api.ts';

const ERRNO: Record<string, number> = { ENOENT: 2, EEXIST: 17, EINVAL: 22, EOPNOTSUPP: 95, ENODEV: 19 };
const err = (op: string, ifindex: number, name: string, extack?: string): TcError => new TcError(op, ifindex, ERRNO[name] ?? 0, name, extack);

export interface FakeTcOptions {
  /** Classifier kinds the "kernel" has (default flower, matchall, u32). */
  readonly kinds?: readonly string[];
  /** false: no sch_ingress/clsact (qdisc add fails EOPNOTSUPP). */
  readonly clsact?: boolean;
  /**
   * Where dumps come from instead of the stored filters (the bench's synthesized
   * kernel: freshly decoded each time, so not cloned). Each such dump first yields
   * to the event loop (setImmediate) as a real socket read does.
   */
  readonly dumpSource?: (ifindex: number, parent: number) => TcFilter[];
  /**
   * Where dumps come from as kernel reply datagrams (the scrape bench): every dump
   * decodes them, fully (dumpAnyFilters) or through the partial view (scanFilters).
   */
  readonly replies?: (ifindex: number, parent: number) => readonly Buffer[];
}

export class FakeTc implements TcApi {
  readonly qdiscs = new Map<number, string>();
  readonly filters = new Map<number, TcFilter[]>();
  /** Devices that exist (filters on others fail ENODEV); empty = every ifindex exists. */
  readonly devices = new Set<number>();
  readonly calls: string[] = [];
  dumps = 0;
  /** Next call of this op name throws this (one shot). */
  failNext = new Map<string, TcError>();
  private readonly kinds: Set<string>;

  constructor(private readonly o: FakeTcOptions = {}) {
    this.kinds = new Set(o.kinds ?? ['flower', 'matchall', 'u32']);
  }

  private enter(op: string, ifindex: number): void {
    this.calls.push(`${op} ${ifindex}`);
    const f = this.failNext.get(op);
    if (f) {
      this.failNext.delete(op);
      throw f;
    }
    if (this.devices.size > 0 && !this.devices.has(ifindex)) throw err(op, ifindex, 'ENODEV');
  }

  async ensureClsact(ifindex: number): Promise<{ created: boolean; kind: string }> {
    this.enter('qdisc add', ifindex);
    if (this.o.clsact === false) throw err('qdisc add', ifindex, 'ENOENT', 'Specified qdisc kind is unknown');
    const had = this.qdiscs.get(ifindex);
    if (had) return { created: false, kind: had };
    this.qdiscs.set(ifindex, 'clsact');
    return { created: true, kind: 'clsact' };
  }

  async dumpQdiscs(ifindex?: number): Promise<Qdisc[]> {
    return [...this.qdiscs]
      .filter(([i]) => ifindex === undefined || i === ifindex)
      .map(([i, kind]) => ({ ifindex: i, handle: TC_H_INGRESS_QDISC_HANDLE, parent: TC_H_CLSACT, kind }));
  }

  /** Adds a filter as someone else would (OVS, `tc filter add`): no checks but the qdisc. */
  inject(f: TcFilter): TcFilter {
    if (!this.qdiscs.has(f.ifindex)) this.qdiscs.set(f.ifindex, 'clsact');
    const list = this.filters.get(f.ifindex) ?? [];
    const stored = { ...f, handle: f.handle || this.nextHandle(list, f) } as TcFilter;
    list.push(stored);
    this.filters.set(f.ifindex, list);
    return stored;
  }

  private nextHandle(list: TcFilter[], f: FilterId): number {
    let h = 1;
    while (list.some((x) => same(x, { ...f, handle: h }))) h++;
    return h;
  }

  private store(op: string, f: TcFilter): TcFilter {
    if (!this.kinds.has(f.kind)) throw err(op, f.ifindex, 'ENOENT', 'TC classifier not found');
    if (!this.qdiscs.has(f.ifindex)) throw err(op, f.ifindex, 'EINVAL', 'Parent Qdisc doesn\'t exists');
    const list = this.filters.get(f.ifindex) ?? [];
    const clash = list.find((x) => x.prio === f.prio && (x.chain ?? 0) === (f.chain ?? 0) && x.parent === f.parent && (x.protocol !== f.protocol || x.kind !== f.kind));
    if (clash) throw err(op, f.ifindex, 'EINVAL', 'Filter kind and protocol must match existing filter');
    const handle = f.handle || this.nextHandle(list, f);
    const i = list.findIndex((x) => same(x, { ...f, handle }));
    let stored: TcFilter = { ...f, handle };
    if (isFlower(stored)) {
      const { skipHw, skipSw } = stored.flags ?? {};
      stored = { ...stored, flags: { ...(skipHw ? { skipHw } : {}), ...(skipSw ? { skipSw } : {}), notInHw: true } };
      if (skipSw) throw err(op, f.ifindex, 'EOPNOTSUPP', 'no hardware to offload to (fake)');
    }
    if (i >= 0) list[i] = stored;
    else list.push(stored);
    this.filters.set(f.ifindex, list);
    return stored;
  }

  async replaceFilter(f: FlowerFilter): Promise<FlowerFilter> {
    this.enter('filter replace', f.ifindex);
    return this.store('filter replace', f) as FlowerFilter;
  }

  async replaceOtherFilter(f: OtherFilter): Promise<void> {
    this.enter('filter replace', f.ifindex);
    this.store('filter replace', f);
  }

  async deleteFilter(id: FilterId & { kind?: string }): Promise<boolean> {
    this.enter('filter del', id.ifindex);
    const list = this.filters.get(id.ifindex) ?? [];
    const i = list.findIndex((x) => same(x, id));
    if (i < 0) return false;
    list.splice(i, 1);
    return true;
  }

  async deleteFilterPrio(id: Omit<FilterId, 'handle'> & { kind: string }): Promise<boolean> {
    this.enter('filter del', id.ifindex);
    const list = this.filters.get(id.ifindex) ?? [];
    const keep = list.filter((x) => !(x.parent === id.parent && (x.chain ?? 0) === (id.chain ?? 0) && x.prio === id.prio && x.protocol === id.protocol));
    this.filters.set(id.ifindex, keep);
    return keep.length !== list.length;
  }

  async dumpAnyFilters(ifindex: number, parent: number, o: { chain?: number; terse?: boolean } = {}): Promise<TcFilter[]> {
    this.enter('filter dump', ifindex);
    this.dumps++;
    if (parent === TC_PARENT_EGRESS && this.qdiscs.get(ifindex) !== 'clsact') throw err('filter dump', ifindex, 'EINVAL');
    const keep = (f: TcFilter): boolean => f.parent === parent && (o.chain === undefined || (f.chain ?? 0) === o.chain);
    if (this.o.replies) {
      await new Promise((r) => setImmediate(r));
      const out: TcFilter[] = [];
      for (const m of this.replyMessages(ifindex, parent)) {
        const f = decodeFilterMessage(m);
        if (f.handle !== 0 && keep(f)) out.push(f);
      }
      return out;
    }
    if (this.o.dumpSource) {
      await new Promise((r) => setImmediate(r));
      return this.o.dumpSource(ifindex, parent).filter(keep);
    }
    return (this.filters.get(ifindex) ?? []).filter(keep).map((f) => structuredClone(f));
  }

  async dumpFilters(ifindex: number, parent: number, o: { chain?: number; terse?: boolean } = {}): Promise<FlowerFilter[]> {
    return (await this.dumpAnyFilters(ifindex, parent, o)).filter(isFlower);
  }

  /** The real partial decode over the dump's bytes: the reply datagrams, or this fake's filters encoded as the kernel would. */
  async scanFilters(ifindex: number, parent: number, o: ScanOptions, visit: ViewVisitor): Promise<number> {
    let msgs: NlMessage[];
    if (this.o.replies) {
      this.enter('filter dump', ifindex);
      this.dumps++;
      await this.socketTurn();
      msgs = this.replyMessages(ifindex, parent);
    } else {
      msgs = (await this.dumpAnyFilters(ifindex, parent, o)).flatMap((f) => parseMessages(encodeFilterMessage(f, { flags: NLM_F_MULTI, seq: 1 })));
    }
    return visitViews(msgs, visit, o);
  }

  /** Reply datagrams come as a socket delivers them: one dump after another, each in its own event-loop turn (netlink/socket.ts). */
  private socketTurn(): Promise<void> {
    const turn = this.queue.then(() => new Promise<void>((r) => setImmediate(r)));
    this.queue = turn;
    return turn;
  }

  private queue: Promise<void> = Promise.resolve();

  private replyMessages(ifindex: number, parent: number): NlMessage[] {
    return (this.o.replies?.(ifindex, parent) ?? []).flatMap((g) => parseMessages(g)).filter((m) => m.hdr.type === RTM_NEWTFILTER);
  }

  /** Test helper: the stored filters of one device. */
  on(ifindex: number): TcFilter[] {
    return this.filters.get(ifindex) ?? [];
  }
}

function same(a: FilterId, b: FilterId): boolean {
  return a.ifindex === b.ifindex && a.parent === b.parent && (a.chain ?? 0) === (b.chain ?? 0) && a.prio === b.prio && a.protocol === b.protocol && a.handle === b.handle;
}
