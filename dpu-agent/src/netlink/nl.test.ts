import t from 'tap';
import { getString, getU32, parseAttrs, readAt, NLA_F_NESTED } from './attr.ts';
import { AttrWriter } from './attr-writer.ts';
import { readU16, readU64 } from './bytes.ts';
import { errnoName, netlinkError, parseDone, parseError } from './error.ts';
import { encodeMessage, parseMessages, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_MULTI } from './message.ts';
import { NetlinkMalformedError } from '../errors.ts';

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

t.test('attributes are 4-aligned, nla_len excludes padding', async (t) => {
  const w = new AttrWriter(4);
  w.u8(1, 7).u16(2, 0x1234).be16(3, 0x0800).string(4, 'flower').u64(5, 2 ** 40 + 3);
  const b = w.toBuffer();
  t.equal(b.length, 8 + 8 + 8 + 12 + 12);
  if (LE) t.equal(b.subarray(0, 8).toString('hex'), '0500010007000000');
  const attrs = parseAttrs(b);
  t.same(attrs.map((a) => a.type), [1, 2, 3, 4, 5]);
  t.equal(readAt(attrs[1]!, 0, readU16), 0x1234);
  t.equal(attrs[2]!.data.readUInt16BE(0), 0x0800);
  t.equal(attrs[2]!.data.toString('hex'), '0800', 'be16 is network order in memory');
  t.equal(getString(attrs[3]!), 'flower');
  t.equal(attrs[3]!.data.length, 7, 'string carries its NUL');
  t.equal(readAt(attrs[4]!, 0, readU64), 2 ** 40 + 3);
});

t.test('nests patch their length; NLA_F_NESTED is masked off the type but kept in flags', async (t) => {
  const w = new AttrWriter();
  w.nest(2, (w) => w.u32(1, 5).nest(3, (w) => w.flag(9), true), true);
  const [outer] = parseAttrs(w.toBuffer());
  t.equal(outer!.type, 2);
  t.equal(outer!.flags, NLA_F_NESTED);
  t.equal(outer!.data.length, 8 + 8);
  const inner = parseAttrs(outer!.data);
  t.equal(getU32(inner[0]!), 5);
  t.equal(inner[1]!.type, 3);
  t.equal(parseAttrs(inner[1]!.data)[0]!.data.length, 0, 'flag attribute has no payload');
});

t.test('a length that overruns its container is a typed error', async (t) => {
  const b = Buffer.from([0x10, 0, 1, 0, 0, 0, 0, 0]);
  t.throws(() => parseAttrs(b), NetlinkMalformedError);
  t.throws(() => parseAttrs(Buffer.from([2, 0, 1, 0])), { code: 'DPU_ERR_NETLINK_MALFORMED' });
  t.throws(() => getU32(parseAttrs(Buffer.from([6, 0, 1, 0, 1, 2, 0, 0]))[0]!), { code: 'DPU_ERR_NETLINK_MALFORMED' });
});

t.test('a datagram with several messages splits; DONE and ERROR parse', async (t) => {
  const a = encodeMessage({ type: 44, flags: NLM_F_MULTI, seq: 9 }, Buffer.alloc(20));
  const done = encodeMessage({ type: NLMSG_DONE, flags: NLM_F_MULTI, seq: 9 }, Buffer.alloc(4));
  const msgs = parseMessages(Buffer.concat([a, a, done]));
  t.same(msgs.map((m) => m.hdr.type), [44, 44, NLMSG_DONE]);
  t.same(parseDone(msgs[2]!), { errno: 0, extack: {} });
  t.throws(() => parseMessages(a.subarray(0, 30)), NetlinkMalformedError);
});

function errMsg(errno: number, flags: number, request: Buffer, tlvs?: Buffer): Buffer {
  const e = Buffer.alloc(4);
  e.writeInt32LE(-errno, 0);
  // Uncapped: the whole request, padded to 4 (af_netlink.c netlink_ack: nlmsg_append).
  const echoed = flags & NLM_F_CAPPED ? request.subarray(0, 16) : Buffer.concat([request, Buffer.alloc((4 - (request.length % 4)) % 4)]);
  return encodeMessage({ type: NLMSG_ERROR, flags, seq: 1 }, Buffer.concat([e, echoed, tlvs ?? Buffer.alloc(0)]));
}

t.test('nlmsgerr with extack, capped and uncapped', { skip: !LE && 'little-endian fixture' }, async (t) => {
  const request = encodeMessage({ type: 44, flags: 0x605, seq: 1 }, Buffer.alloc(22, 0xaa)); // 38 B: echo pads to 40
  const tlv = new AttrWriter().string(1, 'TC classifier not found').u32(2, 36).toBuffer();
  for (const capped of [true, false]) {
    const [m] = parseMessages(errMsg(2, (capped ? NLM_F_CAPPED : 0) | NLM_F_ACK_TLVS, request, tlv));
    const e = parseError(m!);
    t.equal(e.errno, 2);
    t.equal(e.request.type, 44);
    t.same(e.extack, { msg: 'TC classifier not found', offset: 36 }, capped ? 'capped' : 'full echo');
    const ne = netlinkError(e);
    t.match(ne, { code: 'DPU_ERR_NETLINK', errno: 2, errnoName: 'ENOENT', extack: 'TC classifier not found', extackOffset: 36 });
  }
  const [ack] = parseMessages(errMsg(0, NLM_F_CAPPED, request));
  t.same(parseError(ack!), { errno: 0, request: parseError(ack!).request, extack: {} }, 'ACK: errno 0, no extack');
});

t.test('errno names', async (t) => {
  t.equal(errnoName(95), 'EOPNOTSUPP');
  t.equal(errnoName(2), 'ENOENT');
  t.equal(errnoName(17), 'EEXIST');
  t.equal(errnoName(105), 'ENOBUFS');
  t.equal(errnoName(99999), 'E99999');
});
