// act_police (include/uapi/linux/tc_act/tc_police.h, struct tc_police in
// linux/pkt_sched.h): token-bucket rate limit. PARMS is option 1 and its own
// struct (not tc_gen first): index, action (the exceed verdict), limit, burst,
// mtu, rate, peakrate, refcnt, bindcnt, capab. Pure.
import { hs32, hu16, hu32, writeS32, writeU16, writeU32 } from '../../netlink/nl.ts';
import { type GenParms, defineKind, needParms } from './gen.ts';

export interface RateSpec {
  cellLog: number;
  linklayer: number;
  overhead: number;
  cellAlign: number;
  mpu: number;
  rate: number;
}

/** act_police. `control` is tc_police.action, the exceed verdict; `result` the conform verdict. */
export interface PoliceParams extends GenParms {
  kind: 'police';
  limit?: number;
  /** In psched ticks (64 ns), like tc_police.burst. */
  burst: number;
  mtu?: number;
  rate: RateSpec;
  peakrate?: RateSpec;
  rate64?: number;
  peakrate64?: number;
  pktrate64?: number;
  pktburst64?: number;
  avrate?: number;
  result?: number;
  /** 1024-byte rate table (TCA_POLICE_RATE), request only — the kernel does not dump it. */
  rtab?: Uint8Array;
}

const TCA_POLICE_TBF = 1;
const POLICE_LEN = 56;

export const police = defineKind<PoliceParams>({
  kind: 'police',
  tm: 6,
  parms: TCA_POLICE_TBF,
  pad: 7,
  spec: [
    ['rtab', 2, 'bytes'],
    ['', 3, 'skip'], // TCA_POLICE_PEAKRATE table: ignored
    ['avrate', 4, 'u32'],
    ['result', 5, 'u32'],
    ['rate64', 8, 'u64'],
    ['peakrate64', 9, 'u64'],
    ['pktrate64', 10, 'u64'],
    ['pktburst64', 11, 'u64'],
  ],
  parmsAt(b, o, n) {
    needParms(n, POLICE_LEN, 'tc_police');
    const p: PoliceParams = { kind: 'police', control: hs32(b, o + 4), burst: hu32(b, o + 12), rate: rateSpecAt(b, o + 20) };
    const index = hu32(b, o);
    const limit = hu32(b, o + 8);
    const mtu = hu32(b, o + 16);
    const peak = rateSpecAt(b, o + 32);
    const refcnt = hs32(b, o + 44);
    const bindcnt = hs32(b, o + 48);
    const capab = hu32(b, o + 52);
    if (index) p.index = index;
    if (limit) p.limit = limit;
    if (mtu) p.mtu = mtu;
    if (peak.rate || peak.cellLog || peak.mpu || peak.overhead || peak.cellAlign || peak.linklayer) p.peakrate = peak;
    if (refcnt) p.refcnt = refcnt;
    if (bindcnt) p.bindcnt = bindcnt;
    if (capab) p.capab = capab;
    return p;
  },
  writeParms(w, p) {
    const b = Buffer.alloc(POLICE_LEN);
    writeU32(b, 0, p.index ?? 0);
    writeS32(b, 4, p.control);
    writeU32(b, 8, p.limit ?? 0);
    writeU32(b, 12, p.burst);
    writeU32(b, 16, p.mtu ?? 0);
    writeRateSpec(b, 20, p.rate);
    if (p.peakrate) writeRateSpec(b, 32, p.peakrate);
    writeS32(b, 44, p.refcnt ?? 0);
    writeS32(b, 48, p.bindcnt ?? 0);
    writeU32(b, 52, p.capab ?? 0);
    w.bytes(TCA_POLICE_TBF, b);
  },
});

// struct tc_ratespec: u8 cell_log; u8 linklayer; u16 overhead; s16 cell_align; u16 mpu; u32 rate
function writeRateSpec(b: Buffer, at: number, r: RateSpec): void {
  b.writeUInt8(r.cellLog, at);
  b.writeUInt8(r.linklayer, at + 1);
  writeU16(b, at + 2, r.overhead);
  writeU16(b, at + 4, r.cellAlign & 0xffff);
  writeU16(b, at + 6, r.mpu);
  writeU32(b, at + 8, r.rate);
}

function rateSpecAt(b: Buffer, at: number): RateSpec {
  const ca = hu16(b, at + 4);
  return {
    cellLog: b[at]!,
    linklayer: b[at + 1]!,
    overhead: hu16(b, at + 2),
    cellAlign: ca >= 0x8000 ? ca - 0x10000 : ca,
    mpu: hu16(b, at + 6),
    rate: hu32(b, at + 8),
  };
}
