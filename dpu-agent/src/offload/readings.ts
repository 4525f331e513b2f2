// One device's filter counters from its last dump, for the offload collector's
// growth arithmetic: ids and the four counters in typed arrays, in dump order —
// no object per filter. The kernel dumps a hook in a stable order (chains, then
// prios, then each classifier's handles), so the previous reading of the k-th
// filter is almost always at the cursor after the last match: `find` compares
// there first and hashes (an index built once, on the first miss) only when
// filters came or went in between. Pure.

/** Counter columns: hw packets, hw bytes, sw packets, sw bytes. */
const COLS = 4;

export class Readings {
  n = 0;
  private chain: Uint32Array;
  /** prio << 16 | protocol. */
  private pp: Uint32Array;
  private handle: Uint32Array;
  private c: Float64Array;
  private cursor = 0;
  private index: Map<string, number> | undefined;

  constructor(capacity: number) {
    const cap = Math.max(4, capacity);
    this.chain = new Uint32Array(cap);
    this.pp = new Uint32Array(cap);
    this.handle = new Uint32Array(cap);
    this.c = new Float64Array(cap * COLS);
  }

  push(chain: number, prio: number, protocol: number, handle: number, hwP: number, hwB: number, swP: number, swB: number): void {
    if (this.n === this.chain.length) this.grow();
    const i = this.n++;
    this.chain[i] = chain;
    this.pp[i] = ((prio << 16) | protocol) >>> 0;
    this.handle[i] = handle;
    const o = i * COLS;
    this.c[o] = hwP;
    this.c[o + 1] = hwB;
    this.c[o + 2] = swP;
    this.c[o + 3] = swB;
  }

  /** Counter `col` (0 hw packets, 1 hw bytes, 2 sw packets, 3 sw bytes) of slot `i`. */
  get(i: number, col: number): number {
    return this.c[i * COLS + col]!;
  }

  /** The slot of the filter with this id, or -1. */
  find(chain: number, prio: number, protocol: number, handle: number): number {
    const pp = ((prio << 16) | protocol) >>> 0;
    const j = this.cursor;
    if (j < this.n && this.handle[j] === handle && this.pp[j] === pp && this.chain[j] === chain) {
      this.cursor = j + 1;
      return j;
    }
    if (!this.index) {
      this.index = new Map();
      for (let i = 0; i < this.n; i++) this.index.set(key(this.chain[i]!, this.pp[i]!, this.handle[i]!), i);
    }
    const at = this.index.get(key(chain, pp, handle));
    if (at === undefined) return -1;
    this.cursor = at + 1;
    return at;
  }

  private grow(): void {
    const cap = this.chain.length * 2;
    const widen = <T extends Uint32Array | Float64Array>(a: T, n: number): T => {
      const b = new (a.constructor as new (n: number) => T)(n);
      b.set(a);
      return b;
    };
    this.chain = widen(this.chain, cap);
    this.pp = widen(this.pp, cap);
    this.handle = widen(this.handle, cap);
    this.c = widen(this.c, cap * COLS);
  }
}

const key = (chain: number, pp: number, handle: number): string => `${chain}/${pp}/${handle}`;
