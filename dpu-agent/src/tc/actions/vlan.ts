// act_vlan (include/uapi/linux/tc_act/tc_vlan.h): pop/push/modify a VLAN tag. Pure.
import { hs32, writeS32 } from '../../netlink/nl.ts';
import { type GenParms, defineKind, GEN_LEN, genAt, genParms, needParms } from './gen.ts';

export const VLAN_ACTION = { POP: 1, PUSH: 2, MODIFY: 3, POP_ETH: 4, PUSH_ETH: 5 } as const;

export interface VlanParams extends GenParms {
  kind: 'vlan';
  vAction: number;
  /** Host-order u16 like flower's VLAN_ID (act_vlan: nla_get_u16). */
  id?: number;
  /** be16 ethertype (0x8100 / 0x88a8). */
  proto?: number;
  prio?: number;
  pushEthDst?: string;
  pushEthSrc?: string;
}

export const vlan = defineKind<VlanParams>({
  kind: 'vlan',
  tm: 1,
  parms: 2,
  pad: 5,
  spec: [
    ['id', 3, 'u16'],
    ['proto', 4, 'be16'],
    ['prio', 6, 'u8'],
    ['pushEthDst', 7, 'mac'],
    ['pushEthSrc', 8, 'mac'],
  ],
  // struct tc_vlan: tc_gen; s32 v_action
  parmsAt(b, o, n) {
    needParms(n, GEN_LEN + 4, 'tc_vlan');
    const p = genAt<VlanParams>({ kind: 'vlan', control: hs32(b, o + 8), vAction: 0 }, b, o);
    p.vAction = hs32(b, o + 20);
    return p;
  },
  writeParms(w, p) {
    const b = genParms(p, 4);
    writeS32(b, 20, p.vAction);
    w.bytes(2, b);
  },
});
