// act_gact (include/uapi/linux/tc_act/tc_gact.h): a verdict, optionally random
// (TCA_GACT_PROB). `action drop`, `action goto chain N`. Pure.
import { type AttrWriter, hs32, hu16, writeS32, writeU16 } from '../../netlink/nl.ts';
import { KEEP_RAW, type Custom } from '../../netlink/walk.ts';
import { type GenParms, defineKind, GEN_LEN, genAt, genParms, needParms } from './gen.ts';

export interface GactParams extends GenParms {
  kind: 'gact';
  prob?: { ptype: number; pval: number; paction: number };
}

/** struct tc_gact_p {u16 ptype; u16 pval; s32 paction}; shorter ones are kept raw. */
const prob: Custom = {
  read: (b, p, n) => (n >= 8 ? { ptype: hu16(b, p), pval: hu16(b, p + 2), paction: hs32(b, p + 4) } : KEEP_RAW),
  write(w: AttrWriter, type: number, v: NonNullable<GactParams['prob']>): void {
    const b = Buffer.alloc(8);
    writeU16(b, 0, v.ptype);
    writeU16(b, 2, v.pval);
    writeS32(b, 4, v.paction);
    w.bytes(type, b);
  },
};

export const gact = defineKind<GactParams>({
  kind: 'gact',
  tm: 1,
  parms: 2,
  pad: 4,
  spec: [['prob', 3, prob]],
  parmsAt(b, o, n) {
    needParms(n, GEN_LEN, 'tc_gen');
    return genAt<GactParams>({ kind: 'gact', control: hs32(b, o + 8) }, b, o);
  },
  writeParms(w, p) {
    w.bytes(2, genParms(p, 0));
  },
});
