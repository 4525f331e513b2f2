import { OvsdbError } from '../errors.ts';
import type { OpResult, TransactOptions } from './client.ts';
import { type Operation, suffixNamedUuids } from './ops.ts';

// Group commit. ovsdb-server commits transactions one after another, and every
// commit wakes ovs-vswitchd (a bridge reconfiguration) and ovn-controller: a burst
// of 100 CNI ADDs was 100 commits, 100 reconfigurations, the last plug waiting for
// all of them. Here at most one transaction is in flight; whatever is submitted
// meanwhile goes out together as the next one (in submission order, named-uuids
// suffixed per member). Idle, a submission leaves after one event-loop turn.
//
// Failure keeps each caller's own answer: when the server refuses a combined
// transaction (an OvsdbError: nothing was committed), its members are sent again
// one by one; any other error (connection lost, timeout: the outcome is unknown)
// reaches every member, as it would have on its own.

export interface Transactor {
  transact(ops: readonly Operation[], opts?: TransactOptions): Promise<OpResult[]>;
}

interface Member {
  readonly ops: readonly Operation[];
  readonly resolve: (r: OpResult[]) => void;
  readonly reject: (e: unknown) => void;
}

export interface TxnBatcherOptions {
  /** Operations per combined transaction (default 1,000); a single larger member still goes alone. */
  readonly maxOps?: number;
  /** Told each combined transaction's member count (for logs/metrics). */
  readonly onBatch?: (members: number) => void;
}

export class TxnBatcher implements Transactor {
  private queue: Member[] = [];
  private running = false;
  private readonly maxOps: number;

  constructor(
    private readonly client: Transactor,
    private readonly opts: TxnBatcherOptions = {},
  ) {
    this.maxOps = opts.maxOps ?? 1000;
  }

  transact(ops: readonly Operation[]): Promise<OpResult[]> {
    if (ops.some((o) => o.op === 'commit' || o.op === 'abort')) {
      // Those speak for the whole transaction: never merged.
      return this.client.transact(ops);
    }
    return new Promise<OpResult[]>((resolve, reject) => {
      this.queue.push({ ops, resolve, reject });
      if (!this.running) {
        this.running = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) await this.run(this.take());
    } finally {
      this.running = false;
    }
  }

  private take(): Member[] {
    let n = 0;
    let ops = 0;
    while (n < this.queue.length && (n === 0 || ops + (this.queue[n] as Member).ops.length <= this.maxOps)) {
      ops += (this.queue[n] as Member).ops.length;
      n++;
    }
    return this.queue.splice(0, n);
  }

  private async run(batch: Member[]): Promise<void> {
    if (batch.length === 1) return this.alone(batch[0] as Member);
    this.opts.onBatch?.(batch.length);
    const all: Operation[] = [];
    const offsets: number[] = [];
    batch.forEach((m, i) => {
      offsets.push(all.length);
      all.push(...suffixNamedUuids(m.ops, `_b${i}`));
    });
    let results: OpResult[];
    try {
      results = await this.client.transact(all);
    } catch (err) {
      if (!(err instanceof OvsdbError)) {
        for (const m of batch) m.reject(err);
        return;
      }
      // Refused as a whole (one member's wait or constraint): nothing was committed.
      await Promise.all(batch.map((m) => this.alone(m)));
      return;
    }
    batch.forEach((m, i) => m.resolve(results.slice(offsets[i], (offsets[i] as number) + m.ops.length)));
  }

  private async alone(m: Member): Promise<void> {
    try {
      m.resolve(await this.client.transact(m.ops));
    } catch (err) {
      m.reject(err);
    }
  }
}
