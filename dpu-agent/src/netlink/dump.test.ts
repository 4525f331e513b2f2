import t from 'tap';
import { NetlinkError, NetlinkMalformedError, NetlinkSocketError } from '../errors.ts';
import { DUMP_ATTEMPTS, type Dumper, dumpInterruptedError, dumpRetrying, isDumpInterrupted } from './dump.ts';
import { encodeMessage, parseMessages } from './message.ts';

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
