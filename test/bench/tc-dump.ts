// tc-dump bench: decode a 10,000-filter flower dump with OUR decoder, versus the
// work an agent that shells out to iproute2 must at least do: JSON.parse of what
// `tc -s -j filter show dev X ingress` prints for the same filters.
//   npm run bench -- tc-dump [--filters 10000] [--runs 7]
// Ends with one JSON line {"bench":"tc-dump",…,"source":"fixtures"}.
//
// Source "fixtures": this machine's kernel has no cls_flower, so the dump reply
// bytes are synthesized with our encoder (OVS-like megaflows: 5-tuples with masks,
// VLAN, Geneve decap with options, ct state/zone; actions with UFID cookies,
// BASIC/BASIC_HW stats, tcf_t, in_hw flags), packed into ≤32 KiB datagrams as the
// kernel's dump does (netlink_dump). The tc JSON is generated from the same filters
// in iproute2's shape (f_flower.c / m_*.c print_json field names). A real `tc -j`
// run (process spawn + kernel dump + iproute2's own decode and printing) is not
// possible here; the baseline therefore counts only the JSON.parse and flatters tc.
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import {
  TC_ACT,
  TCA_ACT_FLAGS_NO_PERCPU_STATS,
  TC_PARENT_INGRESS,
  TUNNEL_KEY_ACTION,
  ETH_P_8021Q,
  ETH_P_IP,
  CT_ACTION,
  gotoChain,
  mirredAction,
  verdictName,
  type FlowerFilter,
  type TcAction,
  type TcFilter,
} from '../../dpu-agent/src/tc/index.ts';
import { decodeFilterMessage, encodeFilterMessage } from '../../dpu-agent/src/tc/filter.ts';
import { encodeMessage, parseMessages, NLMSG_DONE, NLM_F_MULTI } from '../../dpu-agent/src/tc/nl.ts';

const out = (s: string): void => void process.stdout.write(`${s}\n`);
const DATAGRAM = 32 * 1024;

/** Deterministic PRNG (mulberry32) so every run measures the same dump. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function synthesize(n: number): FlowerFilter[] {
  const r = rng(42);
  const int = (max: number): number => Math.floor(r() * max);
  const ip = (): string => `10.${int(256)}.${int(256)}.${int(256)}`;
  const hex = (bytes: number): string => Array.from({ length: bytes }, () => int(256).toString(16).padStart(2, '0')).join('');
  const out: FlowerFilter[] = [];
  for (let i = 0; i < n; i++) {
    const shape = i % 4;
    const total = { bytes: int(1e10), packets: int(1e7) };
    const hw = { bytes: Math.floor(total.bytes * 0.9), packets: Math.floor(total.packets * 0.9) };
    const common = (a: TcAction, index: number): TcAction => ({
      ...a,
      params: a.params ? { ...a.params, index, refcnt: 1, bindcnt: 1 } : undefined,
      cookie: hex(16),
      flags: { value: TCA_ACT_FLAGS_NO_PERCPU_STATS, selector: TCA_ACT_FLAGS_NO_PERCPU_STATS },
      stats: { basic: total, basicHw: hw, queue: { qlen: 0, backlog: 0, drops: 0, requeues: 0, overlimits: 0 } },
      tm: { install: 10000 + int(1000), lastuse: int(500), expires: 0, firstuse: 9000 },
      inHwCount: 1,
    }) as TcAction;
    const redirect = common(mirredAction(2 + int(64)), 2 * i + 1);
    let f: FlowerFilter;
    const base = { kind: 'flower' as const, ifindex: 7, parent: TC_PARENT_INGRESS, handle: i + 1, flags: { skipSw: true, inHw: true }, inHwCount: 1 };
    if (shape === 0) {
      f = { ...base, chain: 0, prio: 2, protocol: ETH_P_IP, key: { ethType: ETH_P_IP, ethDst: '0a:58:0a:f4:00:01', ethDstMask: 'ff:ff:ff:ff:ff:ff', ethSrc: '0a:58:0a:f4:00:05', ethSrcMask: 'ff:ff:ff:ff:ff:ff', ipProto: 6, ipv4Src: ip(), ipv4SrcMask: '255.255.255.255', ipv4Dst: ip(), ipv4DstMask: '255.255.255.255', tcpDst: int(65536), tcpDstMask: 0xffff, keyFlags: 0, keyFlagsMask: 1 }, actions: [redirect] };
    } else if (shape === 1) {
      f = { ...base, chain: 0, prio: 4, protocol: ETH_P_8021Q, key: { ethType: ETH_P_8021Q, vlanId: int(4096), vlanPrio: 0, vlanEthType: ETH_P_IP, ipProto: 17, ipv4Dst: ip(), ipv4DstMask: '255.255.255.0', udpDst: int(65536), udpDstMask: 0xffff }, actions: [common({ kind: 'vlan', params: { kind: 'vlan', control: TC_ACT.PIPE, vAction: 1 } }, 2 * i), redirect] };
    } else if (shape === 2) {
      f = { ...base, chain: 0, prio: 2, protocol: ETH_P_IP, key: { ethType: ETH_P_IP, encKeyId: int(1 << 24), encIpv4Src: ip(), encIpv4SrcMask: '255.255.255.255', encIpv4Dst: ip(), encIpv4DstMask: '255.255.255.255', encUdpDstPort: 6081, encUdpDstPortMask: 0xffff, encOpts: { geneve: [{ class: 0x0102, type: 0x80, data: hex(4) }] }, encOptsMask: { geneve: [{ class: 0xffff, type: 0xff, data: 'ffffffff' }] }, ipv4Dst: ip(), ipv4DstMask: '255.255.255.255' }, actions: [common({ kind: 'tunnel_key', params: { kind: 'tunnel_key', control: TC_ACT.PIPE, tAction: TUNNEL_KEY_ACTION.RELEASE } }, 2 * i), redirect] };
    } else {
      f = { ...base, chain: 1 + int(8), prio: 2, protocol: ETH_P_IP, key: { ethType: ETH_P_IP, ctState: 8 | 2, ctStateMask: 8 | 2 | 1, ctZone: int(65536), ctZoneMask: 0xffff, ctMark: 0, ctMarkMask: 1, ipProto: 6, ipv4Src: ip(), ipv4SrcMask: '255.255.255.255' }, actions: [common({ kind: 'ct', params: { kind: 'ct', control: TC_ACT.PIPE, ctAction: CT_ACTION.COMMIT, zone: int(65536) } }, 2 * i), common({ kind: 'gact', params: { kind: 'gact', control: gotoChain(9) } }, 2 * i + 1)] };
    }
    out.push(f);
  }
  return out;
}

/** Dump reply datagrams: NLM_F_MULTI parts packed up to 32 KiB, then NLMSG_DONE. */
export function toDatagrams(filters: FlowerFilter[]): Buffer[] {
  const grams: Buffer[] = [];
  let cur: Buffer[] = [];
  let size = 0;
  for (const f of filters) {
    const m = encodeFilterMessage(f, { flags: NLM_F_MULTI, seq: 1, pid: 4242 });
    if (size + m.length > DATAGRAM && cur.length) {
      grams.push(Buffer.concat(cur));
      cur = [];
      size = 0;
    }
    cur.push(m);
    size += m.length;
  }
  cur.push(encodeMessage({ type: NLMSG_DONE, flags: NLM_F_MULTI, seq: 1, pid: 4242 }, Buffer.alloc(4)));
  grams.push(Buffer.concat(cur));
  return grams;
}

/** What `tc -s -j filter show` prints for these filters (iproute2 6.x field names). */
export function toTcJson(filters: FlowerFilter[]): string {
  const proto = (p: number): string => (p === ETH_P_IP ? 'ip' : p === ETH_P_8021Q ? '802.1Q' : p.toString(16));
  const entries: unknown[] = [];
  for (const f of filters) {
    entries.push({ protocol: proto(f.protocol), pref: f.prio, kind: 'flower', chain: f.chain ?? 0 });
    const k = f.key;
    const keys: Record<string, unknown> = {};
    if (k.vlanId !== undefined) Object.assign(keys, { vlan_id: k.vlanId, vlan_prio: k.vlanPrio, vlan_ethtype: 'ip' });
    if (k.ethDst) keys['dst_mac'] = k.ethDst;
    if (k.ethSrc) keys['src_mac'] = k.ethSrc;
    if (k.ethType !== undefined) keys['eth_type'] = 'ipv4';
    if (k.ipProto !== undefined) keys['ip_proto'] = k.ipProto === 6 ? 'tcp' : 'udp';
    if (k.ipv4Src) keys['src_ip'] = k.ipv4Src;
    if (k.ipv4Dst) keys['dst_ip'] = k.ipv4DstMask === '255.255.255.255' ? k.ipv4Dst : `${k.ipv4Dst}/24`;
    if (k.tcpDst !== undefined) keys['dst_port'] = k.tcpDst;
    if (k.udpDst !== undefined) keys['dst_port'] = k.udpDst;
    if (k.encKeyId !== undefined) Object.assign(keys, { enc_dst_ip: k.encIpv4Dst, enc_src_ip: k.encIpv4Src, enc_key_id: k.encKeyId, enc_dst_port: k.encUdpDstPort, geneve_opts: `0102:80:${k.encOpts?.geneve?.[0]?.data}/ffff:ff:ffffffff` });
    if (k.ctState !== undefined) Object.assign(keys, { ct_state: '+trk+est-new', ct_zone: k.ctZone, ct_mark: '0/0x1' });
    if (k.keyFlags !== undefined) keys['ip_flags'] = 'nofrag';
    const actions = f.actions.map((a, i) => {
      const p = a.params;
      const st = a.stats!;
      const o: Record<string, unknown> = { order: i + 1, kind: a.kind };
      if (p?.kind === 'mirred') Object.assign(o, { mirred_action: 'redirect', direction: 'egress', to_dev: `pf0vf${p.ifindex}` });
      if (p?.kind === 'vlan') o['vlan_action'] = 'pop';
      if (p?.kind === 'tunnel_key') o['mode'] = 'unset';
      if (p?.kind === 'ct') Object.assign(o, { action: 'commit', zone: p.zone });
      Object.assign(o, {
        control_action: { type: verdictName(p?.control ?? 0) },
        index: p?.index,
        ref: 1,
        bind: 1,
        installed: a.tm!.install,
        last_used: a.tm!.lastuse,
        first_used: a.tm!.firstuse,
        cookie: a.cookie,
        used_hw_stats: ['delayed'],
        stats: {
          bytes: st.basic!.bytes,
          packets: st.basic!.packets,
          drops: 0,
          overlimits: 0,
          requeues: 0,
          sw_bytes: st.basic!.bytes - st.basicHw!.bytes,
          sw_packets: st.basic!.packets - st.basicHw!.packets,
          hw_bytes: st.basicHw!.bytes,
          hw_packets: st.basicHw!.packets,
          backlog: 0,
          qlen: 0,
        },
      });
      return o;
    });
    entries.push({
      protocol: proto(f.protocol),
      pref: f.prio,
      kind: 'flower',
      chain: f.chain ?? 0,
      options: { handle: f.handle, keys, skip_sw: true, in_hw: true, in_hw_count: 1, actions },
    });
  }
  return JSON.stringify(entries);
}

function decodeAll(grams: Buffer[]): TcFilter[] {
  const res: TcFilter[] = [];
  for (const g of grams) for (const m of parseMessages(g)) if (m.hdr.type !== NLMSG_DONE) res.push(decodeFilterMessage(m));
  return res;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { filters: { type: 'string', default: '10000' }, runs: { type: 'string', default: '7' } } });
  const n = Number(values.filters);
  const runs = Number(values.runs);
  const filters = synthesize(n);
  let t0 = performance.now();
  const grams = toDatagrams(filters);
  const encodeMs = performance.now() - t0;
  const bytes = grams.reduce((s, g) => s + g.length, 0);
  const json = toTcJson(filters);
  out(`tc-dump: ${n} filters, ${grams.length} datagrams, ${(bytes / 1048576).toFixed(1)} MiB netlink; tc -j text ${(json.length / 1048576).toFixed(1)} MiB`);
  out(`encode (ours, once): ${encodeMs.toFixed(1)} ms`);

  // Sanity: the decode is complete and equal to what was encoded (first filter).
  const check = decodeAll(grams);
  if (check.length !== n) throw new Error(`decoded ${check.length} of ${n}`);

  const ours: number[] = [];
  const base: number[] = [];
  for (let i = 0; i < runs + 2; i++) {
    t0 = performance.now();
    const d = decodeAll(grams);
    const a = performance.now() - t0;
    t0 = performance.now();
    const j = JSON.parse(json) as unknown[];
    const b = performance.now() - t0;
    if (d.length !== n || j.length !== 2 * n) throw new Error('bench lost filters');
    if (i >= 2) {
      ours.push(a);
      base.push(b);
    }
  }
  const oursMs = median(ours);
  const baseMs = median(base);
  out(`ours: decode netlink → FlowerFilter[]: median ${oursMs.toFixed(1)} ms over ${runs} runs (${((oursMs * 1000) / n).toFixed(2)} µs/filter)`);
  out(`baseline: JSON.parse of tc -s -j text: median ${baseMs.toFixed(1)} ms (excludes tc's spawn, dump and printing: a lower bound)`);
  out('a real `tc -s -j` run is not possible here (no cls_flower in this kernel); source = synthesized fixtures');
  out(
    JSON.stringify({
      bench: 'tc-dump',
      filters: n,
      ours_ms: Number(oursMs.toFixed(2)),
      baseline_ms: Number(baseMs.toFixed(2)),
      ratio: Number((oursMs / baseMs).toFixed(3)),
      source: 'fixtures',
    }),
  );
  return 0;
}
