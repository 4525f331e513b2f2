// The netlink codec in one import: framing (message.ts), attributes as objects
// (attr.ts) and in place (attr-range.ts), the attribute writer (attr-writer.ts),
// host-order byte access (bytes.ts). What tc/, hw/, devlink/ and the tests use.
// The kernel's error replies (error.ts) are the socket's business (socket.ts).
export { HOST_LE, hs32, hu16, hu32, hu64, nbe16, nbe32, readS32, readU16, readU32, readU64, writeS32, writeU16, writeU32, writeU64 } from './bytes.ts';
export {
  NLMSG_DONE,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_ECHO,
  NLM_F_EXCL,
  NLM_F_MULTI,
  NLM_F_REPLACE,
  NLM_F_REQUEST,
  type NlMessage,
  encodeMessage,
  parseHeader,
  parseMessages,
} from './message.ts';
export { NLA_F_NESTED, NLA_TYPE_MASK, type NlAttr, type RawAttr, attrBuf, attrLen, attrOff, getBytes, getString, getU32, parseAttrs, parseNested, readAt, toRaw } from './attr.ts';
export { exactLen, needLen, overrun, rawAttrAt, stringAt } from './attr-range.ts';
export { AttrWriter } from './attr-writer.ts';
