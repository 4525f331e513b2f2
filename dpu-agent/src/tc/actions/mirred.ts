// act_mirred (include/uapi/linux/tc_act/tc_mirred.h): redirect or mirror to a
// device (or a block). `action mirred egress redirect dev X`. Pure.
import { hs32, hu32, writeS32, writeU32 } from '../../netlink/nl.ts';
import { type GenParms, defineKind, GEN_LEN, genAt, genParms, needParms } from './gen.ts';

export const MIRRED = { EGRESS_REDIR: 1, EGRESS_MIRROR: 2, INGRESS_REDIR: 3, INGRESS_MIRROR: 4 } as const;

export interface MirredParams extends GenParms {
  kind: 'mirred';
  eaction: number;
  ifindex: number;
  blockid?: number;
}

export const mirred = defineKind<MirredParams>({
  kind: 'mirred',
  tm: 1,
  parms: 2,
  pad: 3,
  spec: [['blockid', 4, 'u32']],
  // struct tc_mirred: tc_gen; s32 eaction; u32 ifindex
  parmsAt(b, o, n) {
    needParms(n, GEN_LEN + 8, 'tc_mirred');
    const p = genAt<MirredParams>({ kind: 'mirred', control: hs32(b, o + 8), eaction: 0, ifindex: 0 }, b, o);
    p.eaction = hs32(b, o + 20);
    p.ifindex = hu32(b, o + 24);
    return p;
  },
  writeParms(w, p) {
    const b = genParms(p, 8);
    writeS32(b, 20, p.eaction);
    writeU32(b, 24, p.ifindex);
    w.bytes(2, b);
  },
});
