import t from 'tap';
import { NetlinkMalformedError } from '../errors.ts';
import { silentLogger } from '../log.ts';
import { NetlinkSubscriber, decodeDatagram } from './subscriber.ts';
import { type NlMessage, encodeMessage } from './message.ts';

const msg = (type: number, seq: number): Buffer => encodeMessage({ type, flags: 0, seq }, Buffer.alloc(4));
const evenTypes = (m: NlMessage): number | undefined => (m.hdr.type % 2 === 0 ? m.hdr.seq : undefined);

t.test('a datagram decodes whole, in order, skipping what the listener does not want', async (t) => {
  t.same(decodeDatagram(Buffer.concat([msg(16, 1), msg(17, 2), msg(18, 3)]), evenTypes), [1, 3]);
  const truncated = msg(16, 1).subarray(0, 18);
  truncated.writeUInt32LE(255, 0);
  t.throws(() => decodeDatagram(truncated, evenTypes), NetlinkMalformedError);
});

/** A subscriber in no group (nothing arrives by itself), fed by hand. */
function fed(decode: (m: NlMessage) => number | undefined) {
  const seen: number[] = [];
  let overruns = 0;
  const sub = new NetlinkSubscriber({ groups: [], what: 'test', decode, onEvent: (e) => seen.push(e), onOverrun: () => overruns++, log: silentLogger() });
  const inner = sub as unknown as { onDatagram(b: Buffer): void; sock: NodeJS.EventEmitter };
  return { sub, seen, overruns: () => overruns, deliver: (b: Buffer) => inner.onDatagram(b), sockError: (code: string) => inner.sock.emit('error', Object.assign(new Error(code), { code })) };
}

t.test('events are delivered; an undecodable datagram is an overrun and delivers nothing', async (t) => {
  const f = fed((m) => {
    if (m.hdr.type === 99) throw new NetlinkMalformedError('bad');
    return evenTypes(m);
  });
  t.teardown(() => f.sub.close());
  f.deliver(Buffer.concat([msg(16, 1), msg(18, 2)]));
  t.same(f.seen, [1, 2]);
  f.deliver(Buffer.concat([msg(16, 3), msg(99, 4)]));
  t.same(f.seen, [1, 2], 'nothing of a datagram that does not decode whole');
  t.equal(f.overruns(), 1);
  f.deliver(Buffer.from([255, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
  t.equal(f.overruns(), 2, 'a length that overruns the datagram');
});

t.test('a socket error (ENOBUFS: notifications dropped) is an overrun', async (t) => {
  const f = fed(evenTypes);
  t.teardown(() => f.sub.close());
  f.sockError('ENOBUFS');
  f.sockError('EIO');
  t.equal(f.overruns(), 2);
});
