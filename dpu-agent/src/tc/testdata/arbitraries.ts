// fast-check generators for every flower key, action kind and stats field, in the
// canonical form the decoder produces (zero tc_gen fields omitted, addresses in
// canonical text). Used by the round-trip tests.
import fc from 'fast-check';
import { bytesToHex, bytesToIpv4, bytesToIpv6, bytesToMac } from '../../netlink/addr.ts';
import type { ActionParams, Bitfield32, RateSpec, TcAction } from '../actions/index.ts';
import { gotoChain, jump } from '../actions/index.ts';
import type { EncOpts } from '../encopts.ts';
import type { FlowerFilter } from '../filter.ts';
import type { FlowerFlags, FlowerKey } from '../flower.ts';
import type { RawAttr } from '../../netlink/nl.ts';
import type { ActionStats, TcfTm } from '../stats.ts';

const opt = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(a, { nil: undefined });
const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const pos32 = fc.integer({ min: 1, max: 0x7fffffff });
const u64 = fc.maxSafeNat();
const bytes = (n: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: n, maxLength: n });
export const mac = bytes(6).map(bytesToMac);
export const ipv4 = bytes(4).map(bytesToIpv4);
// Mix sparse addresses in so the "::" compression paths run.
export const ipv6 = fc
  .oneof(bytes(16), fc.array(fc.constantFrom(0, 0, 0, 1, 0xfe, 0xff), { minLength: 16, maxLength: 16 }).map((a) => Uint8Array.from(a)))
  .map(bytesToIpv6);
const hex16 = bytes(16).map(bytesToHex);

/** Raw attributes with ids from `min` up (ids the decoder does not know). */
export const rawAttrs = (min: number, max = 0x3fff): fc.Arbitrary<RawAttr[] | undefined> =>
  opt(
    fc.array(
      fc.record({ type: fc.integer({ min, max }), data: fc.uint8Array({ maxLength: 24 }) }),
      { minLength: 1, maxLength: 3 },
    ),
  );

/** fc.record with every key optional, and undefined values dropped (decoder never emits them). */
function partial<T extends object>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model as never, { requiredKeys: [] }).map((o) => strip(o as T));
}
export function strip<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

/** Deep copy into ordinary objects (fc.record builds null-prototype ones), typed arrays kept. */
export function plain<T>(x: T): T {
  if (x instanceof Uint8Array || x === null || typeof x !== 'object') return x;
  if (Array.isArray(x)) return x.map(plain) as T;
  return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, plain(v)])) as T;
}

export const encOpts: fc.Arbitrary<EncOpts> = partial<EncOpts>({
  geneve: fc.array(
    fc.record({ class: u16, type: u8, data: fc.integer({ min: 0, max: 4 }).chain((n) => bytes(n * 4).map(bytesToHex)) }),
    { minLength: 1, maxLength: 3 },
  ),
  vxlanGbp: u32,
  unknown: rawAttrs(3, 200).filter((x) => x !== undefined) as fc.Arbitrary<RawAttr[]>,
});

export const flowerKey: fc.Arbitrary<FlowerKey> = partial<FlowerKey>({
  indev: fc.stringMatching(/^[a-z][a-z0-9]{0,14}$/),
  ethDst: mac,
  ethDstMask: mac,
  ethSrc: mac,
  ethSrcMask: mac,
  ethType: u16,
  ipProto: u8,
  ipv4Src: ipv4,
  ipv4SrcMask: ipv4,
  ipv4Dst: ipv4,
  ipv4DstMask: ipv4,
  ipv6Src: ipv6,
  ipv6SrcMask: ipv6,
  ipv6Dst: ipv6,
  ipv6DstMask: ipv6,
  tcpSrc: u16,
  tcpSrcMask: u16,
  tcpDst: u16,
  tcpDstMask: u16,
  udpSrc: u16,
  udpSrcMask: u16,
  udpDst: u16,
  udpDstMask: u16,
  sctpSrc: u16,
  sctpSrcMask: u16,
  sctpDst: u16,
  sctpDstMask: u16,
  vlanId: fc.integer({ min: 0, max: 4095 }),
  vlanPrio: fc.integer({ min: 0, max: 7 }),
  vlanEthType: u16,
  cvlanId: fc.integer({ min: 0, max: 4095 }),
  cvlanPrio: fc.integer({ min: 0, max: 7 }),
  cvlanEthType: u16,
  encKeyId: u32,
  encIpv4Src: ipv4,
  encIpv4SrcMask: ipv4,
  encIpv4Dst: ipv4,
  encIpv4DstMask: ipv4,
  encIpv6Src: ipv6,
  encIpv6SrcMask: ipv6,
  encIpv6Dst: ipv6,
  encIpv6DstMask: ipv6,
  encUdpSrcPort: u16,
  encUdpSrcPortMask: u16,
  encUdpDstPort: u16,
  encUdpDstPortMask: u16,
  encIpTos: u8,
  encIpTosMask: u8,
  encIpTtl: u8,
  encIpTtlMask: u8,
  encOpts,
  encOptsMask: encOpts,
  keyFlags: u32,
  keyFlagsMask: u32,
  icmpv4Type: u8,
  icmpv4TypeMask: u8,
  icmpv4Code: u8,
  icmpv4CodeMask: u8,
  icmpv6Type: u8,
  icmpv6TypeMask: u8,
  icmpv6Code: u8,
  icmpv6CodeMask: u8,
  arpSip: ipv4,
  arpSipMask: ipv4,
  arpTip: ipv4,
  arpTipMask: ipv4,
  arpOp: u8,
  arpOpMask: u8,
  arpSha: mac,
  arpShaMask: mac,
  arpTha: mac,
  arpThaMask: mac,
  mplsTtl: u8,
  mplsBos: fc.integer({ min: 0, max: 1 }),
  mplsTc: fc.integer({ min: 0, max: 7 }),
  mplsLabel: fc.integer({ min: 0, max: 0xfffff }),
  tcpFlags: u16,
  tcpFlagsMask: u16,
  ipTos: u8,
  ipTosMask: u8,
  ipTtl: u8,
  ipTtlMask: u8,
  portSrcMin: u16,
  portSrcMax: u16,
  portDstMin: u16,
  portDstMax: u16,
  ctState: u16,
  ctStateMask: u16,
  ctZone: u16,
  ctZoneMask: u16,
  ctMark: u32,
  ctMarkMask: u32,
  ctLabels: hex16,
  ctLabelsMask: hex16,
  numOfVlans: u8,
});

const control = fc.oneof(
  fc.constantFrom(-1, 0, 1, 2, 3, 4, 6, 7, 8),
  fc.integer({ min: 0, max: 0xffff }).map(gotoChain),
  fc.integer({ min: 1, max: 32 }).map(jump),
);

const gen = {
  control,
  index: opt(pos32),
  capab: opt(pos32),
  refcnt: opt(pos32),
  bindcnt: opt(pos32),
  unknown: rawAttrs(100, 200),
};

const rateSpec: fc.Arbitrary<RateSpec> = fc.record({
  cellLog: u8,
  linklayer: u8,
  overhead: u16,
  cellAlign: fc.integer({ min: -0x8000, max: 0x7fff }),
  mpu: u16,
  rate: fc.integer({ min: 1, max: 0xffffffff }),
});

const params: fc.Arbitrary<ActionParams> = fc.oneof(
  fc.record({ kind: fc.constant('gact' as const), ...gen, prob: opt(fc.record({ ptype: u16, pval: u16, paction: control })) }),
  fc.record({ kind: fc.constant('mirred' as const), ...gen, eaction: fc.integer({ min: 1, max: 4 }), ifindex: pos32, blockid: opt(u32) }),
  fc.record({
    kind: fc.constant('vlan' as const),
    ...gen,
    vAction: fc.integer({ min: 1, max: 5 }),
    id: opt(fc.integer({ min: 0, max: 4095 })),
    proto: opt(fc.constantFrom(0x8100, 0x88a8)),
    prio: opt(fc.integer({ min: 0, max: 7 })),
    pushEthDst: opt(mac),
    pushEthSrc: opt(mac),
  }),
  fc.record({
    kind: fc.constant('tunnel_key' as const),
    ...gen,
    tAction: fc.integer({ min: 1, max: 2 }),
    ipv4Src: opt(ipv4),
    ipv4Dst: opt(ipv4),
    ipv6Src: opt(ipv6),
    ipv6Dst: opt(ipv6),
    keyId: opt(u32),
    dstPort: opt(u16),
    noCsum: opt(fc.boolean()),
    encOpts: opt(encOpts),
    tos: opt(u8),
    ttl: opt(u8),
    noFrag: opt(fc.constant(true)),
  }),
  fc.record({
    kind: fc.constant('ct' as const),
    ...gen,
    ctAction: opt(fc.integer({ min: 0, max: 63 })),
    zone: opt(u16),
    mark: opt(u32),
    markMask: opt(u32),
    labels: opt(hex16),
    labelsMask: opt(hex16),
    natIpv4Min: opt(ipv4),
    natIpv4Max: opt(ipv4),
    natIpv6Min: opt(ipv6),
    natIpv6Max: opt(ipv6),
    natPortMin: opt(u16),
    natPortMax: opt(u16),
    helperName: opt(fc.constantFrom('ftp', 'tftp', 'sip')),
    helperFamily: opt(fc.constantFrom(2, 10)),
    helperProto: opt(fc.constantFrom(6, 17)),
  }),
  fc.boolean().chain((extended) =>
    fc.record({
      kind: fc.constant('pedit' as const),
      ...gen,
      flags: opt(fc.integer({ min: 1, max: 255 })),
      extended: fc.constant(extended),
      keys: fc.array(
        fc.record({
          mask: u32,
          val: u32,
          off: fc.integer({ min: -0x80000000, max: 0x7fffffff }),
          at: u32,
          offmask: u32,
          shift: u32,
          htype: extended ? fc.integer({ min: 0, max: 5 }) : fc.constant(undefined),
          cmd: extended ? fc.integer({ min: 0, max: 1 }) : fc.constant(undefined),
        }).map(strip),
        { maxLength: 5 },
      ),
    }),
  ),
  fc.record({ kind: fc.constant('csum' as const), ...gen, updateFlags: u32 }),
  fc.record({
    kind: fc.constant('police' as const),
    ...gen,
    burst: u32,
    rate: rateSpec,
    limit: opt(fc.integer({ min: 1, max: 0xffffffff })),
    mtu: opt(fc.integer({ min: 1, max: 0xffffffff })),
    peakrate: opt(rateSpec),
    rate64: opt(u64),
    peakrate64: opt(u64),
    pktrate64: opt(u64),
    pktburst64: opt(u64),
    avrate: opt(u32),
    result: opt(u32),
    rtab: opt(bytes(1024)),
  }),
).map((p) => strip(p as ActionParams));

const counters = fc.record({ bytes: u64, packets: u64 });
export const actionStats: fc.Arbitrary<ActionStats> = partial<ActionStats>({
  basic: counters,
  basicHw: counters,
  queue: fc.record({ qlen: u32, backlog: u32, drops: u32, requeues: u32, overlimits: u32 }),
  rateEst: fc.record({ bps: u32, pps: u32 }),
  rateEst64: fc.record({ bps: u64, pps: u64 }),
  unknown: rawAttrs(9, 200).filter((x) => x !== undefined) as fc.Arbitrary<RawAttr[]>,
});

const tm: fc.Arbitrary<TcfTm> = fc
  .record({ install: u64, lastuse: u64, expires: u64, firstuse: opt(u64) })
  .map(strip);
const bitfield: fc.Arbitrary<Bitfield32> = fc.record({ value: u32, selector: u32 });

const common = {
  actIndex: opt(u32),
  cookie: opt(fc.uint8Array({ minLength: 1, maxLength: 16 }).map(bytesToHex)),
  flags: opt(bitfield),
  hwStats: opt(bitfield),
  usedHwStats: opt(bitfield),
  inHwCount: opt(u32),
  stats: opt(actionStats),
  tm: opt(tm),
  unknown: rawAttrs(11, 200),
};

export const action: fc.Arbitrary<TcAction> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ params, ...common }).map((a) => strip({ kind: a.params.kind, ...a }) as TcAction) },
  // A kind we do not decode: options stay raw, no tm (its id is kind-specific).
  {
    weight: 1,
    arbitrary: fc
      .record({ kind: fc.constantFrom('skbedit', 'mpls', 'sample'), options: rawAttrs(1, 200), ...common, tm: fc.constant(undefined) })
      .map((a) => strip(a) as TcAction),
  },
);

const flowerFlags: fc.Arbitrary<FlowerFlags> = partial<FlowerFlags>({
  skipHw: fc.constant(true),
  skipSw: fc.constant(true),
  inHw: fc.constant(true),
  notInHw: fc.constant(true),
  verbose: fc.constant(true),
  other: fc.integer({ min: 1, max: 0x7ffffff }).map((n) => n * 32),
});

export const flowerFilter: fc.Arbitrary<FlowerFilter> = fc
  .record({
    kind: fc.constant('flower' as const),
    ifindex: pos32,
    parent: u32,
    chain: opt(u32),
    prio: fc.integer({ min: 1, max: 0xffff }),
    protocol: u16,
    handle: u32,
    key: flowerKey,
    actions: fc.array(action, { maxLength: 4 }),
    flags: opt(flowerFlags),
    inHwCount: opt(u32),
    classid: opt(u32),
    hwOffload: opt(u8),
    // Above the highest flower id we know (102) and the current uapi max (111).
    optionsUnknown: rawAttrs(112, 300),
    unknown: rawAttrs(17, 300),
  })
  .map((f) => plain(strip(f as FlowerFilter)));
