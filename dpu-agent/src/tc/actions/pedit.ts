// act_pedit (include/uapi/linux/tc_act/tc_pedit.h): rewrite header bytes by
// 32-bit keys. OVS sends PARMS_EX + KEYS_EX (one KEY_EX {HTYPE, CMD} per key, in
// key order) and the kernel dumps that form when keys_ex exist; plain PARMS otherwise. Pure.
import { hs32, hu32, writeS32, writeU32 } from '../../netlink/nl.ts';
import { type Custom, type Target, attrTable, readAttrs, tlvLen } from '../../netlink/walk.ts';
import { type GenParms, defineKind, genAt, genParms } from './gen.ts';
import { NetlinkMalformedError, TcInvalidError } from '../../errors.ts';

export const PEDIT_HTYPE = { NETWORK: 0, ETH: 1, IP4: 2, IP6: 3, TCP: 4, UDP: 5 } as const;
export const PEDIT_CMD = { SET: 0, ADD: 1 } as const;

export interface PeditKey {
  mask: number;
  val: number;
  off: number;
  at: number;
  offmask: number;
  shift: number;
  /** From TCA_PEDIT_KEYS_EX (extended form only). */
  htype?: number;
  cmd?: number;
}

export interface PeditParams extends GenParms {
  kind: 'pedit';
  flags?: number;
  keys: PeditKey[];
  /** PARMS_EX + KEYS_EX (what OVS sends and the kernel dumps when keys_ex exist) vs plain PARMS. */
  extended: boolean;
}

const TCA_PEDIT_PARMS = 2;
const TCA_PEDIT_PARMS_EX = 4;
const TCA_PEDIT_KEYS_EX = 5;
const TCA_PEDIT_KEY_EX = 6;
const KEY_LEN = 24; // struct tc_pedit_key
const SEL_LEN = 24; // struct tc_pedit_sel without keys: tc_gen; u8 nkeys; u8 flags; 2 B hole

/** TCA_PEDIT_KEY_EX_{HTYPE,CMD}; other ids are ignored. */
const KEY_EX = attrTable(
  [
    ['htype', 1, 'u16'],
    ['cmd', 2, 'u16'],
  ],
  { keepUnknown: false },
);

/** KEYS_EX: the n-th KEY_EX completes the n-th key of PARMS_EX (extra ones are checked, not read). */
const keysEx: Custom = {
  read(b, p, n, _type, out) {
    const keys = (out as unknown as PeditParams).keys;
    let i = 0;
    for (let x = p; x + 4 <= p + n; ) {
      const xl = tlvLen(b, x, p + n);
      const k = keys[i++];
      if (k) readAttrs(b, x + 4, x + xl, KEY_EX, k as unknown as Target, k as unknown as Target);
      x += (xl + 3) & ~3;
    }
    return undefined;
  },
};

export const pedit = defineKind<PeditParams>({
  kind: 'pedit',
  tm: 1,
  parms: TCA_PEDIT_PARMS,
  parmsAlt: TCA_PEDIT_PARMS_EX,
  pad: 3,
  spec: [['keys', TCA_PEDIT_KEYS_EX, keysEx]],
  parmsAt(b, o, n, type) {
    if (n < SEL_LEN) throw new NetlinkMalformedError(`tc_pedit_sel of ${n} B`);
    const nkeys = b[o + 20]!;
    if (n < SEL_LEN + KEY_LEN * nkeys) throw new NetlinkMalformedError(`tc_pedit_sel with ${nkeys} keys in ${n} B`);
    const keys: PeditKey[] = [];
    for (let i = 0; i < nkeys; i++) {
      const k = o + SEL_LEN + i * KEY_LEN;
      keys.push({ mask: hu32(b, k), val: hu32(b, k + 4), off: hs32(b, k + 8), at: hu32(b, k + 12), offmask: hu32(b, k + 16), shift: hu32(b, k + 20) });
    }
    const p = genAt<PeditParams>({ kind: 'pedit', control: hs32(b, o + 8), keys, extended: type === TCA_PEDIT_PARMS_EX }, b, o);
    if (b[o + 21]) p.flags = b[o + 21]!;
    return p;
  },
  writeParms(w, p) {
    if (p.keys.length > 255) throw new TcInvalidError(`pedit with ${p.keys.length} keys (nkeys is a u8)`);
    const b = genParms(p, SEL_LEN - 20 + KEY_LEN * p.keys.length);
    b.writeUInt8(p.keys.length, 20);
    b.writeUInt8(p.flags ?? 0, 21);
    p.keys.forEach((k, i) => {
      const o = SEL_LEN + i * KEY_LEN;
      writeU32(b, o, k.mask);
      writeU32(b, o + 4, k.val);
      writeS32(b, o + 8, k.off);
      writeU32(b, o + 12, k.at);
      writeU32(b, o + 16, k.offmask);
      writeU32(b, o + 20, k.shift);
    });
    if (!p.extended) {
      w.bytes(TCA_PEDIT_PARMS, b);
      return;
    }
    w.bytes(TCA_PEDIT_PARMS_EX, b);
    w.nest(
      TCA_PEDIT_KEYS_EX,
      (w) => {
        for (const k of p.keys) {
          w.nest(
            TCA_PEDIT_KEY_EX,
            (w) => {
              w.u16(1, k.htype ?? 0);
              w.u16(2, k.cmd ?? 0);
            },
            true,
          );
        }
      },
      true,
    );
  },
});
