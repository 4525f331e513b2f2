// Tunnel options nest shared by flower (TCA_FLOWER_KEY_ENC_OPTS[_MASK]) and
// tunnel_key (TCA_TUNNEL_KEY_ENC_OPTS): the inner ids are the same in both
// (pkt_cls.h TCA_FLOWER_KEY_ENC_OPTS_* / tc_tunnel_key.h TCA_TUNNEL_KEY_ENC_OPTS_*).
// One GENEVE nest per option, as iproute2 (flower_parse_geneve_opts) and the
// kernel dump (fl_dump_key_geneve_opt) do. Pure.
import type { AttrWriter, RawAttr } from '../netlink/nl.ts';
import { type Custom, type Target, attrTable, readAttrs, writeAttrs } from '../netlink/walk.ts';

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

// Inside one option nest, ids this code does not know are dropped.
const GENEVE = attrTable(
  [
    ['class', ENC_OPT_GENEVE_CLASS, 'be16'],
    ['type', ENC_OPT_GENEVE_TYPE, 'u8'],
    ['data', ENC_OPT_GENEVE_DATA, 'hex'],
  ],
  { keepUnknown: false },
);
const VXLAN = attrTable([['vxlanGbp', ENC_OPT_VXLAN_GBP, 'u32']], { keepUnknown: false });

const geneve: Custom = {
  read(b, p, n, _type, out) {
    const g: GeneveOpt = { class: 0, type: 0, data: '' };
    readAttrs(b, p, p + n, GENEVE, g as unknown as Target, g as unknown as Target);
    ((out as EncOpts).geneve ??= []).push(g);
    return undefined;
  },
};
const vxlan: Custom = {
  read(b, p, n, _type, out) {
    readAttrs(b, p, p + n, VXLAN, out, out);
    return undefined;
  },
};
const ENC_OPTS = attrTable([
  ['geneve', ENC_OPTS_GENEVE, geneve],
  ['', ENC_OPTS_VXLAN, vxlan],
]);

function encodeEncOpts(w: AttrWriter, type: number, o: EncOpts): void {
  w.nest(
    type,
    (w) => {
      for (const g of o.geneve ?? []) w.nest(ENC_OPTS_GENEVE, (w) => writeAttrs(w, g, GENEVE), true);
      if (o.vxlanGbp !== undefined) w.nest(ENC_OPTS_VXLAN, (w) => writeAttrs(w, o, VXLAN), true);
      w.rawAttrs(o.unknown);
    },
    true,
  );
}

/** The children of an ENC_OPTS nest at `b[start, end)`, read in place. */
function decodeEncOptsAt(b: Buffer, start: number, end: number): EncOpts {
  const out: EncOpts = {};
  readAttrs(b, start, end, ENC_OPTS, out as Target, out as Target);
  return out;
}

/** The ENC_OPTS nest as a table codec (flower keys, tunnel_key). */
export const encOpts: Custom = {
  read: (b, p, n) => decodeEncOptsAt(b, p, p + n),
  write: (w: AttrWriter, type: number, v: EncOpts) => encodeEncOpts(w, type, v),
};
