// Tunnel options nest shared by flower (TCA_FLOWER_KEY_ENC_OPTS[_MASK]) and
// tunnel_key (TCA_TUNNEL_KEY_ENC_OPTS): the inner ids are the same in both
// (pkt_cls.h TCA_FLOWER_KEY_ENC_OPTS_* / tc_tunnel_key.h TCA_TUNNEL_KEY_ENC_OPTS_*).
// One GENEVE nest per option, as iproute2 (flower_parse_geneve_opts) and the
// kernel dump (fl_dump_key_geneve_opt) do.
import { bytesToHex, hexToBytes } from './addr.ts';
import { type AttrWriter, type NlAttr, type RawAttr, getBe16, getU32, getU8, parseNested, toRaw } from './nl.ts';

export const ENC_OPTS_GENEVE = 1;
export const ENC_OPTS_VXLAN = 2;
export const ENC_OPT_GENEVE_CLASS = 1;
export const ENC_OPT_GENEVE_TYPE = 2;
export const ENC_OPT_GENEVE_DATA = 3;
export const ENC_OPT_VXLAN_GBP = 1;

export interface GeneveOpt {
  /** Option class (be16). */
  class: number;
  type: number;
  /** Option data, hex, a multiple of 4 bytes (up to 124). */
  data: string;
}

export interface EncOpts {
  geneve?: GeneveOpt[];
  /** VXLAN Group Based Policy id. */
  vxlanGbp?: number;
  /** ERSPAN, GTP, newer: kept verbatim. */
  unknown?: RawAttr[];
}

export function encodeEncOpts(w: AttrWriter, type: number, o: EncOpts): void {
  w.nest(
    type,
    (w) => {
      for (const g of o.geneve ?? []) {
        w.nest(
          ENC_OPTS_GENEVE,
          (w) => {
            w.be16(ENC_OPT_GENEVE_CLASS, g.class);
            w.u8(ENC_OPT_GENEVE_TYPE, g.type);
            w.bytes(ENC_OPT_GENEVE_DATA, hexToBytes(g.data));
          },
          true,
        );
      }
      if (o.vxlanGbp !== undefined) w.nest(ENC_OPTS_VXLAN, (w) => w.u32(ENC_OPT_VXLAN_GBP, o.vxlanGbp!), true);
      w.rawAttrs(o.unknown);
    },
    true,
  );
}

export function decodeEncOpts(a: NlAttr): EncOpts {
  const out: EncOpts = {};
  for (const c of parseNested(a)) {
    if (c.type === ENC_OPTS_GENEVE) {
      const g: GeneveOpt = { class: 0, type: 0, data: '' };
      for (const f of parseNested(c)) {
        if (f.type === ENC_OPT_GENEVE_CLASS) g.class = getBe16(f);
        else if (f.type === ENC_OPT_GENEVE_TYPE) g.type = getU8(f);
        else if (f.type === ENC_OPT_GENEVE_DATA) g.data = bytesToHex(f.data);
      }
      (out.geneve ??= []).push(g);
    } else if (c.type === ENC_OPTS_VXLAN) {
      for (const f of parseNested(c)) if (f.type === ENC_OPT_VXLAN_GBP) out.vxlanGbp = getU32(f);
    } else {
      (out.unknown ??= []).push(toRaw(c));
    }
  }
  return out;
}
