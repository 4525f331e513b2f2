// Tunnel options nest shared by flower (TCA_FLOWER_KEY_ENC_OPTS[_MASK]) and
// tunnel_key (TCA_TUNNEL_KEY_ENC_OPTS): the inner ids are the same in both
// (pkt_cls.h TCA_FLOWER_KEY_ENC_OPTS_* / tc_tunnel_key.h TCA_TUNNEL_KEY_ENC_OPTS_*).
// One GENEVE nest per option, as iproute2 (flower_parse_geneve_opts) and the
// kernel dump (fl_dump_key_geneve_opt) do.
import { hexToBytes } from '../netlink/addr.ts';
import { type AttrWriter, type NlAttr, type RawAttr, NLA_TYPE_MASK, attrBuf, attrLen, attrOff, hu16, hu32, nbe16, needLen, overrun, rawAttrAt } from '../netlink/nl.ts';

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

export const decodeEncOpts = (a: NlAttr): EncOpts => decodeEncOptsAt(attrBuf(a), attrOff(a), attrOff(a) + attrLen(a));

/** The children of an ENC_OPTS nest at `b[start, end)`, read in place. */
export function decodeEncOptsAt(b: Buffer, start: number, end: number): EncOpts {
  const out: EncOpts = {};
  for (let o = start; o + 4 <= end; ) {
    const len = hu16(b, o);
    const type = hu16(b, o + 2) & NLA_TYPE_MASK;
    if (len < 4 || o + len > end) throw overrun(type, len, o, end);
    const cEnd = o + len;
    if (type === ENC_OPTS_GENEVE) {
      const g: GeneveOpt = { class: 0, type: 0, data: '' };
      for (let f = o + 4; f + 4 <= cEnd; ) {
        const fl = hu16(b, f);
        const ft = hu16(b, f + 2) & NLA_TYPE_MASK;
        if (fl < 4 || f + fl > cEnd) throw overrun(ft, fl, f, cEnd);
        if (ft === ENC_OPT_GENEVE_CLASS) {
          needLen(fl - 4, 2, 'be16', ft);
          g.class = nbe16(b, f + 4);
        } else if (ft === ENC_OPT_GENEVE_TYPE) {
          needLen(fl - 4, 1, 'u8', ft);
          g.type = b[f + 4]!;
        } else if (ft === ENC_OPT_GENEVE_DATA) g.data = b.toString('hex', f + 4, f + fl);
        f += (fl + 3) & ~3;
      }
      (out.geneve ??= []).push(g);
    } else if (type === ENC_OPTS_VXLAN) {
      for (let f = o + 4; f + 4 <= cEnd; ) {
        const fl = hu16(b, f);
        const ft = hu16(b, f + 2) & NLA_TYPE_MASK;
        if (fl < 4 || f + fl > cEnd) throw overrun(ft, fl, f, cEnd);
        if (ft === ENC_OPT_VXLAN_GBP) {
          needLen(fl - 4, 4, 'u32', ft);
          out.vxlanGbp = hu32(b, f + 4);
        }
        f += (fl + 3) & ~3;
      }
    } else {
      (out.unknown ??= []).push(rawAttrAt(b, o));
    }
    o += (len + 3) & ~3;
  }
  return out;
}
