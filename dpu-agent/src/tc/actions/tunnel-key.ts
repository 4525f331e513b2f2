// act_tunnel_key (include/uapi/linux/tc_act/tc_tunnel_key.h): set or release the
// tunnel metadata (OVS set(tunnel(...)) / tunnel decap). Pure.
import { hs32, writeS32 } from '../../netlink/nl.ts';
import { encOpts, type EncOpts } from '../encopts.ts';
import { type GenParms, defineKind, GEN_LEN, genAt, genParms, needParms } from './gen.ts';

export const TUNNEL_KEY_ACTION = { SET: 1, RELEASE: 2 } as const;

export interface TunnelKeyParams extends GenParms {
  kind: 'tunnel_key';
  tAction: number;
  ipv4Src?: string;
  ipv4Dst?: string;
  ipv6Src?: string;
  ipv6Dst?: string;
  keyId?: number;
  dstPort?: number;
  noCsum?: boolean;
  encOpts?: EncOpts;
  tos?: number;
  ttl?: number;
  noFrag?: boolean;
}

export const tunnelKey = defineKind<TunnelKeyParams>({
  kind: 'tunnel_key',
  tm: 1,
  parms: 2,
  pad: 8,
  spec: [
    ['ipv4Src', 3, 'ipv4'],
    ['ipv4Dst', 4, 'ipv4'],
    ['ipv6Src', 5, 'ipv6'],
    ['ipv6Dst', 6, 'ipv6'],
    ['keyId', 7, 'be32'],
    ['dstPort', 9, 'be16'],
    ['noCsum', 10, 'bool8'],
    ['encOpts', 11, encOpts],
    ['tos', 12, 'u8'],
    ['ttl', 13, 'u8'],
    ['noFrag', 14, 'flag'],
  ],
  // struct tc_tunnel_key: tc_gen; s32 t_action
  parmsAt(b, o, n) {
    needParms(n, GEN_LEN + 4, 'tc_tunnel_key');
    const p = genAt<TunnelKeyParams>({ kind: 'tunnel_key', control: hs32(b, o + 8), tAction: 0 }, b, o);
    p.tAction = hs32(b, o + 20);
    return p;
  },
  writeParms(w, p) {
    const b = genParms(p, 4);
    writeS32(b, 20, p.tAction);
    w.bytes(2, b);
  },
});
