// act_ct (include/uapi/linux/tc_act/tc_ct.h): conntrack, commit, NAT. PARMS is
// option 1 and TM option 2 here, the reverse of most kinds. Pure.
import { hs32 } from '../../netlink/nl.ts';
import { type GenParms, defineKind, GEN_LEN, genAt, genParms, needParms } from './gen.ts';

export const CT_ACTION = { COMMIT: 1, FORCE: 2, CLEAR: 4, NAT: 8, NAT_SRC: 16, NAT_DST: 32 } as const;

export interface CtParams extends GenParms {
  kind: 'ct';
  /** CT_ACTION bits (host-order u16). */
  ctAction?: number;
  zone?: number;
  mark?: number;
  markMask?: number;
  labels?: string;
  labelsMask?: string;
  natIpv4Min?: string;
  natIpv4Max?: string;
  natIpv6Min?: string;
  natIpv6Max?: string;
  natPortMin?: number;
  natPortMax?: number;
  helperName?: string;
  helperFamily?: number;
  helperProto?: number;
}

export const ct = defineKind<CtParams>({
  kind: 'ct',
  tm: 2,
  parms: 1,
  pad: 15,
  spec: [
    ['ctAction', 3, 'u16'],
    ['zone', 4, 'u16'],
    ['mark', 5, 'u32'],
    ['markMask', 6, 'u32'],
    ['labels', 7, 'hex16'],
    ['labelsMask', 8, 'hex16'],
    ['natIpv4Min', 9, 'ipv4'],
    ['natIpv4Max', 10, 'ipv4'],
    ['natIpv6Min', 11, 'ipv6'],
    ['natIpv6Max', 12, 'ipv6'],
    ['natPortMin', 13, 'be16'],
    ['natPortMax', 14, 'be16'],
    ['helperName', 16, 'string'],
    ['helperFamily', 17, 'u8'],
    ['helperProto', 18, 'u8'],
  ],
  // struct tc_ct: tc_gen only
  parmsAt(b, o, n) {
    needParms(n, GEN_LEN, 'tc_gen');
    return genAt<CtParams>({ kind: 'ct', control: hs32(b, o + 8) }, b, o);
  },
  writeParms(w, p) {
    w.bytes(1, genParms(p, 0));
  },
});
