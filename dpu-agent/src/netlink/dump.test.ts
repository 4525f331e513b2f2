import t from 'tap';
import { NetlinkError, NetlinkMalformedError, NetlinkSocketError } from '../errors.ts';
import { DUMP_ATTEMPTS, type Dumper, dumpInterruptedError, dumpRetrying, isDumpInterrupted } from './dump.ts';
import { NLMSG_DONE, NLMSG_NOOP, NLM_F_DUMP_INTR, NLM_F_MULTI, encodeMessage, parseMessages } from './message.ts';
import { RtNetlink } from './socket.ts';

/** A socket whose dumps fail with the given errors first, then answer one message. */
function fakeDumper(failures: Error[]): Dumper & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async dump(build, what) {
      calls.push(what);
      const msg = build(calls.length);
      const err = failures.shift();
      if (err) throw err;
      return parseMessages(msg);
    },
  };
}
const build = (seq: number): Buffer => encodeMessage({ type: 18, flags: 0x301, seq }, Buffer.alloc(16));

t.test('an interrupted dump is run again, each run with a fresh request', async (t) => {
  const nl = fakeDumper([dumpInterruptedError(), dumpInterruptedError()]);
  const msgs = await dumpRetrying(nl, build, 'link dump');
  t.equal(nl.calls.length, 3, 'third run answered');
  t.equal(msgs[0]!.hdr.seq, 3, 'the answer of the last run');
});

t.test(`at most ${DUMP_ATTEMPTS} runs: the last EINTR is thrown as is`, async (t) => {
  const last = dumpInterruptedError();
  const nl = fakeDumper([dumpInterruptedError(), dumpInterruptedError(), last, dumpInterruptedError()]);
  await t.rejects(dumpRetrying(nl, build, 'link dump'), last);
  t.equal(nl.calls.length, DUMP_ATTEMPTS);
  t.equal(DUMP_ATTEMPTS, 3);
});

t.test('any other failure is thrown at once', async (t) => {
  for (const err of [new NetlinkError(16, 'EBUSY', undefined), new NetlinkMalformedError('x'), new NetlinkSocketError('lost', 'ENOBUFS')]) {
    const nl = fakeDumper([err]);
    await t.rejects(dumpRetrying(nl, build, 'filter dump'), err);
    t.equal(nl.calls.length, 1, err.message);
  }
});

t.test('what counts as interrupted', async (t) => {
  t.ok(isDumpInterrupted(dumpInterruptedError()));
  t.match(dumpInterruptedError(), { code: 'DPU_ERR_NETLINK', errno: 4, errnoName: 'EINTR' });
  t.ok(isDumpInterrupted(new NetlinkError(4, 'EINTR', undefined)), 'NLMSG_DONE carrying -EINTR too');
  t.notOk(isDumpInterrupted(new NetlinkError(16, 'EBUSY', undefined)));
  t.notOk(isDumpInterrupted(Object.assign(new Error('x'), { errno: 4 })), 'only a NetlinkError');
});

/** Replies fed straight into a real socket's receive path: a dump part (NLM_F_DUMP_INTR when `intr`) and NLMSG_DONE. */
function feedDump(nl: RtNetlink, seq: number, intr: boolean): void {
  const part = encodeMessage({ type: 16, flags: NLM_F_MULTI | (intr ? NLM_F_DUMP_INTR : 0), seq }, Buffer.alloc(16));
  const done = encodeMessage({ type: NLMSG_DONE, flags: NLM_F_MULTI, seq }, Buffer.alloc(4));
  (nl as unknown as { onMessage(b: Buffer): void }).onMessage(Buffer.concat([part, done]));
}

t.test('over the socket: a part flagged NLM_F_DUMP_INTR fails the run with EINTR, and the dump is run again', async (t) => {
  const nl = new RtNetlink({ timeoutMs: 2000 });
  t.teardown(() => nl.close());
  for (const interrupted of [1, 3]) {
    let runs = 0;
    // The request itself is an NLMSG_NOOP without NLM_F_REQUEST: the kernel answers nothing, the replies are ours.
    const build = (seq: number): Buffer => {
      runs++;
      const intr = runs <= interrupted;
      setImmediate(() => feedDump(nl, seq, intr));
      return encodeMessage({ type: NLMSG_NOOP, flags: 0, seq }, Buffer.alloc(0));
    };
    if (interrupted < DUMP_ATTEMPTS) {
      const msgs = await dumpRetrying(nl, build, 'fed dump');
      t.equal(runs, interrupted + 1);
      t.same(msgs.map((m) => m.hdr.type), [16], 'the parts of the clean run');
    } else {
      await t.rejects(dumpRetrying(nl, build, 'fed dump'), { code: 'DPU_ERR_NETLINK', errno: 4, errnoName: 'EINTR' });
      t.equal(runs, DUMP_ATTEMPTS);
    }
  }
});
