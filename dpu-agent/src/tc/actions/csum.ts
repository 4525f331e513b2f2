// act_csum (include/uapi/linux/tc_act/tc_csum.h): recompute checksums after
// pedit. PARMS is option 1, TM option 2. Pure.
import { hs32, hu32, writeU32 } from '../../netlink/nl.ts';
import { type GenParms, defineKind, GEN_LEN, genAt, genParms, needParms } from './gen.ts';

export interface CsumParams extends GenParms {
  kind: 'csum';
  updateFlags: number;
}

export const csum = defineKind<CsumParams>({
  kind: 'csum',
  tm: 2,
  parms: 1,
  pad: 3,
  // struct tc_csum: tc_gen; u32 update_flags
  parmsAt(b, o, n) {
    needParms(n, GEN_LEN + 4, 'tc_csum');
    const p = genAt<CsumParams>({ kind: 'csum', control: hs32(b, o + 8), updateFlags: 0 }, b, o);
    p.updateFlags = hu32(b, o + 20);
    return p;
  },
  writeParms(w, p) {
    const b = genParms(p, 4);
    writeU32(b, 20, p.updateFlags);
    w.bytes(1, b);
  },
});
