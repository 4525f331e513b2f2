// tc-dump bench (issue #6): 10,000 flower filters on one device; our dump + decode
// versus `tc -s -j filter show dev X ingress` + JSON.parse of what it prints. Goal ≥ 10×.
//
//   npm run bench -- tc-dump [--filters 10000] [--runs 5] [--timeout 1500]   (kernel lane, default)
//   npm run bench -- tc-dump --fixtures [--filters 10000] [--runs 7]         (no kernel: decode only)
// Ends with one JSON line {"bench":"tc-dump","mode":…,"ratio":baseline/ours,…}
// (ratio > 1: we are faster).
//
// The floor: the same dump received with no decode at all (the socket splits the
// datagrams into messages and stops), in the same rounds. Two paths are set
// against it:
//   collector  what the offload collector does: a terse dump (TCA_DUMP_FLAGS_TERSE:
//              no keys, action kind/stats/cookie only) read through the partial
//              view (tc/view.ts) — `ratio_to_floor` = collector / terse floor, goal ≤ 1.5×
//   full       Tc.dumpFilters: full dump + full decode (keys, actions, stats) —
//              `full_ratio_to_floor` = full / full-dump floor; and `view_full_ms`,
//              the partial view over the full dump (what the view saves by itself)
//
// Mode "kernel-lane" (default): this machine's kernel has no cls_flower, so the host
// boots scripts/kernel-lane (Debian's kernel under qemu TCG, no KVM) and runs this
// file there with --guest: a veth pair, clsact on one end, N OVS-like flower filters
// (skip_hw: no hardware) installed through our library (pipelined adds), then R
// rounds, interleaved and alternating which goes first, of
//   ours      Tc.dumpFilters(): RTM_GETTFILTER dump over our rtnetlink socket +
//             decode of every filter into FlowerFilter (keys, actions, stats)
//   baseline  spawn `tc -s -j filter show dev X ingress`, read its stdout, JSON.parse
// with p50 of each. Both must see N filters, and a sample of filters is compared
// field by field with tc's JSON (testdata/tcjson.ts). TCG emulates every
// instruction (kernel, tc, node alike), so absolute times are 10-30× a real host's;
// the ratio is what the bench is for. The guest prints "@@result {json}", which the
// host turns into the last line.
//
// Mode "fixtures" (--fixtures): no kernel; the dump reply bytes are synthesized with
// our encoder (OVS-like megaflows: 5-tuples with masks, VLAN, Geneve decap with
// options, ct state/zone; actions with UFID cookies, BASIC/BASIC_HW stats, tcf_t,
// in_hw flags), packed into ≤32 KiB datagrams as the kernel's dump does
// (netlink_dump). The tc JSON is generated from the same filters in iproute2's
// shape (f_flower.c / m_*.c print_json field names). The baseline is then only the
// JSON.parse (no tc process, no kernel dump) and flatters tc: a decoder figure.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
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
  Tc,
  encodeDumpRequest,
  type FlowerFilter,
  type TcAction,
  type TcFilter,
} from '../../dpu-agent/src/tc/index.ts';
import { decodeFilterMessage, encodeFilterMessage } from '../../dpu-agent/src/tc/filter.ts';
import { TCA_CLS_FLAGS_NOT_IN_HW, visitViews, type FilterView } from '../../dpu-agent/src/tc/index.ts';
import { encodeMessage, hu32, parseMessages, NLMSG_DONE, NLM_F_MULTI } from '../../dpu-agent/src/netlink/nl.ts';
import { RTM_NEWTFILTER } from '../../dpu-agent/src/tc/tcmsg.ts';
import { compareWithTcJson } from '../../dpu-agent/src/tc/testdata/tcjson.ts';

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

/** What a terse dump carries of a filter (cls_flower fl_terse_dump, act_api tcf_action_dump_terse). */
export function terse(f: FlowerFilter): FlowerFilter {
  const { key: _k, inHwCount: _i, classid: _c, stats: _s, ...rest } = f;
  return {
    ...rest,
    key: {},
    actions: f.actions.map((a) => ({ kind: a.kind, ...(a.stats ? { stats: a.stats } : {}), ...(a.cookie ? { cookie: a.cookie } : {}) })),
  };
}

/** The messages of the datagrams, no decode: the floor any decoder starts from. */
function splitAll(grams: Buffer[]): number {
  let n = 0;
  for (const g of grams) n += parseMessages(g).length;
  return n;
}

/** The collector's path over the datagrams: messages + partial view per filter, cookies unread (the view's counters summed, as the collector reads them). */
function viewAll(grams: Buffer[]): number {
  let n = 0;
  let sum = 0;
  const visit = (v: FilterView): void => void (sum += v.packets + v.hwPackets);
  for (const g of grams) n += visitViews(parseMessages(g), visit, { cookie: false });
  return sum >= 0 ? n : -1;
}

function decodeAll(grams: Buffer[]): TcFilter[] {
  const res: TcFilter[] = [];
  for (const g of grams) for (const m of parseMessages(g)) if (m.hdr.type !== NLMSG_DONE) res.push(decodeFilterMessage(m));
  return res;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number): number => Number(x.toFixed(2));

/** The floor figures of both modes: collector path vs the terse floor, full decode and the view vs the full-dump floor. */
function floorFigures(floorMs: number, collMs: number, fullFloorMs: number, fullMs: number, viewFullMs: number): Record<string, number> {
  const r = (a: number, b: number): number => Number((a / b).toFixed(3));
  return {
    floor_ms: ms(floorMs),
    collector_ms: ms(collMs),
    ratio_to_floor: r(collMs, floorMs),
    full_floor_ms: ms(fullFloorMs),
    full_ratio_to_floor: r(fullMs, fullFloorMs),
    view_full_ms: ms(viewFullMs),
    view_full_ratio_to_floor: r(viewFullMs, fullFloorMs),
  };
}

export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      fixtures: { type: 'boolean', default: false },
      guest: { type: 'boolean', default: false },
      filters: { type: 'string', default: '10000' },
      runs: { type: 'string' },
      timeout: { type: 'string', default: '1500' },
    },
  });
  const n = Number(values.filters);
  if (!(Number.isInteger(n) && n > 0)) throw new Error(`--filters ${values.filters}: want a positive integer`);
  if (values.fixtures) return fixtures(n, Number(values.runs ?? 7));
  const runs = Math.min(Number(values.runs ?? 5), 25); // bounded: each round costs seconds under TCG
  if (values.guest) return guest(n, runs);
  return lane(n, runs, Number(values.timeout));
}

// --- mode "fixtures" -------------------------------------------------------------

async function fixtures(n: number, runs: number): Promise<number> {
  const filters = synthesize(n);
  let t0 = performance.now();
  const grams = toDatagrams(filters);
  const encodeMs = performance.now() - t0;
  const bytes = grams.reduce((s, g) => s + g.length, 0);
  const json = toTcJson(filters);
  out(`tc-dump --fixtures: ${n} filters, ${grams.length} datagrams, ${(bytes / 1048576).toFixed(1)} MiB netlink; tc -j text ${(json.length / 1048576).toFixed(1)} MiB`);
  out(`encode (ours, once): ${encodeMs.toFixed(1)} ms`);

  // Sanity: the decode is complete.
  const check = decodeAll(grams);
  if (check.length !== n) throw new Error(`decoded ${check.length} of ${n}`);

  const terseGrams = toDatagrams(filters.map(terse));
  if (viewAll(terseGrams) !== n || viewAll(grams) !== n) throw new Error('view lost filters');

  const ours: number[] = [];
  const base: number[] = [];
  const floorFull: number[] = [];
  const floorTerse: number[] = [];
  const coll: number[] = [];
  const viewFull: number[] = [];
  const time = (f: () => unknown): number => {
    const t = performance.now();
    f();
    return performance.now() - t;
  };
  for (let i = 0; i < runs + 2; i++) {
    let d: TcFilter[] = [];
    let j: unknown[] = [];
    const a = time(() => (d = decodeAll(grams)));
    const b = time(() => (j = JSON.parse(json) as unknown[]));
    if (d.length !== n || j.length !== 2 * n) throw new Error('bench lost filters');
    const ff = time(() => splitAll(grams));
    const ft = time(() => splitAll(terseGrams));
    const c = time(() => viewAll(terseGrams));
    const v = time(() => viewAll(grams));
    if (i >= 2) {
      ours.push(a);
      base.push(b);
      floorFull.push(ff);
      floorTerse.push(ft);
      coll.push(c);
      viewFull.push(v);
    }
  }
  const oursMs = median(ours);
  const baseMs = median(base);
  const floorMs = median(floorTerse);
  const collMs = median(coll);
  const fullFloorMs = median(floorFull);
  out(`ours: decode netlink → FlowerFilter[]: p50 ${oursMs.toFixed(1)} ms over ${runs} runs (${((oursMs * 1000) / n).toFixed(2)} µs/filter)`);
  out(`baseline: JSON.parse of tc -s -j text: p50 ${baseMs.toFixed(1)} ms (no tc process, no kernel dump: a lower bound for tc)`);
  out(`floor (messages split, no decode): full dump ${fullFloorMs.toFixed(2)} ms, terse dump ${floorMs.toFixed(2)} ms`);
  out(`collector path (terse bytes + partial view): p50 ${collMs.toFixed(2)} ms = ${(collMs / floorMs).toFixed(2)}× floor; full decode ${(oursMs / fullFloorMs).toFixed(2)}× its floor; view over the full dump ${median(viewFull).toFixed(2)} ms`);
  out('mode fixtures: synthesized dump bytes, no kernel: the floor here is only the message split (no syscalls), so ratios to it are far above the lane\'s; `npm run bench -- tc-dump` (no --fixtures) runs the real comparison in the kernel lane');
  out(
    JSON.stringify({
      bench: 'tc-dump',
      mode: 'fixtures',
      filters: n,
      runs,
      ours_ms: ms(oursMs),
      baseline_ms: ms(baseMs),
      ratio: Number((baseMs / oursMs).toFixed(3)),
      baseline: 'JSON.parse only',
      ...floorFigures(floorMs, collMs, fullFloorMs, oursMs, median(viewFull)),
      floor: 'message split of the same bytes, no kernel',
    }),
  );
  return 0;
}

// --- mode "kernel-lane", host side -----------------------------------------------

const REPO = fileURLToPath(new URL('../../', import.meta.url));

/** Boots the lane with this file in --guest mode; relays its output; ends with its result line. */
function lane(n: number, runs: number, timeoutS: number): Promise<number> {
  out(`tc-dump: booting the kernel lane (qemu TCG, no KVM) for ${n} filters, ${runs} rounds`);
  const t0 = performance.now();
  const child = spawn(
    `${REPO}scripts/kernel-lane`,
    ['--timeout', String(timeoutS), '--mem', '2048', '--', process.execPath, '--expose-gc', '--import', 'tsx', 'test/bench/run.ts', 'tc-dump', '--guest', '--filters', String(n), '--runs', String(runs)],
    { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let result: Record<string, unknown> | undefined;
  let tail = '';
  const onLine = (line: string): void => {
    const m = /@@result (\{.*\})\s*$/.exec(line);
    if (m) result = JSON.parse(m[1]!) as Record<string, unknown>;
    else out(line);
  };
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    const lines = (tail + chunk).split('\n');
    tail = lines.pop()!;
    for (const l of lines) onLine(l);
  });
  return new Promise((resolve) => {
    child.on('close', (code) => {
      if (tail) onLine(tail);
      const wall = (performance.now() - t0) / 1000;
      if (!result || code !== 0) {
        process.stderr.write(`tc-dump: the kernel lane ended with ${code} and ${result ? 'a' : 'no'} result (after ${wall.toFixed(0)} s)\n`);
        resolve(code || 1);
        return;
      }
      out(`tc-dump: lane wall ${wall.toFixed(0)} s`);
      out(JSON.stringify({ ...result, lane_wall_s: Number(wall.toFixed(1)) }));
      resolve(0);
    });
  });
}

// --- mode "kernel-lane", inside the guest ----------------------------------------

const sh = (cmd: string, ...a: string[]): Promise<{ code: number | null; stdout: Buffer }> =>
  new Promise((resolve, reject) => {
    const c = spawn(cmd, a, { stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    c.stdout.on('data', (b: Buffer) => chunks.push(b));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code, stdout: Buffer.concat(chunks) }));
  });

async function must(cmd: string, ...a: string[]): Promise<string> {
  const r = await sh(cmd, ...a);
  if (r.code !== 0) throw new Error(`${cmd} ${a.join(' ')}: exit ${r.code}`);
  return r.stdout.toString('utf8');
}

/** The synthesized filters as requests a veth takes: skip_hw (no hardware), redirect to the peer. */
function forKernel(filters: FlowerFilter[], ifindex: number, peer: number): FlowerFilter[] {
  return filters.map((f) => ({
    ...f,
    ifindex,
    flags: { skipHw: true },
    actions: f.actions.map((a) => (a.params?.kind === 'mirred' ? { ...a, params: { ...a.params, ifindex: peer } } : a)),
  }));
}

/**
 * A full GC before each timed part (node --expose-gc, passed by lane()), so neither
 * side is billed for collecting the other's garbage: tc's 10 MiB of JSON text and
 * its parsed objects, or our 10,000 decoded filters.
 */
const collect = (): void => (globalThis as { gc?: () => void }).gc?.();

const DEV = 'tcb0';
const PEER = 'tcb1';
/** Adds in flight at once: enough to keep the kernel busy, few enough that echoes fit the socket buffer. */
const ADD_WINDOW = 64;

async function guest(n: number, runs: number): Promise<number> {
  if (process.env['KERNEL_LANE'] !== '1') throw new Error('--guest runs inside scripts/kernel-lane only (it adds a veth and 10,000 filters)');
  const tcVersion = (await must('tc', '-V')).trim();
  out(`guest: kernel ${(await must('uname', '-r')).trim()}, ${tcVersion}, node ${process.version}`);
  await must('ip', 'link', 'add', DEV, 'type', 'veth', 'peer', 'name', PEER);
  await must('ip', 'link', 'set', DEV, 'up');
  await must('ip', 'link', 'set', PEER, 'up');
  const ifindex = Number(readFileSync(`/sys/class/net/${DEV}/ifindex`, 'utf8'));
  const peer = Number(readFileSync(`/sys/class/net/${PEER}/ifindex`, 'utf8'));
  const tc = new Tc({ timeoutMs: 120_000 });
  try {
    await tc.ensureClsact(ifindex);
    const want = forKernel(synthesize(n), ifindex, peer);
    let t0 = performance.now();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < want.length) await tc.addFilter(want[next++]!);
    };
    await Promise.all(Array.from({ length: ADD_WINDOW }, worker));
    const installS = (performance.now() - t0) / 1000;
    out(`installed ${n} flower filters on ${DEV} (skip_hw) through our library: ${installS.toFixed(1)} s (${((installS * 1e6) / n).toFixed(0)} µs/filter, ${ADD_WINDOW} in flight)`);

    // One sample dump of each, kept for the checks.
    const oursOnce = await tc.dumpFilters(ifindex, TC_PARENT_INGRESS);
    const tcOnce = await tcShow();
    const tcFilters = tcOnce.filter((e) => e['options'] !== undefined);
    out(`both see: ours ${oursOnce.length}, tc ${tcFilters.length} filters (${(tcOnce.length - tcFilters.length)} per-prio heads in tc's JSON)`);
    if (oursOnce.length !== n || tcFilters.length !== n) throw new Error(`filter counts differ: installed ${n}, ours ${oursOnce.length}, tc ${tcFilters.length}`);
    spotCheck(oursOnce, tcFilters, want);
    collectorCheck(await scanOnce(tc, ifindex, true), oursOnce, tcFilters);

    // Rounds, interleaved; the order alternates so neither side always runs on a warm cache.
    const ours: number[] = [];
    const base: number[] = [];
    const tcProc: number[] = [];
    const parse: number[] = [];
    // The floors and the collector's path, same rounds, their order rotating per round.
    const floorFull: number[] = [];
    const floorTerse: number[] = [];
    const coll: number[] = [];
    const viewFull: number[] = [];
    const parts: Array<[string, number[], () => Promise<number>]> = [
      ['floor (full dump, no decode)', floorFull, () => rawDump(tc, ifindex, false)],
      ['floor (terse dump, no decode)', floorTerse, () => rawDump(tc, ifindex, true)],
      ['collector (terse + view)', coll, () => scanCount(tc, ifindex, true)],
      ['view over the full dump', viewFull, () => scanCount(tc, ifindex, false)],
    ];
    for (let i = 0; i < runs + 1; i++) {
      const line: string[] = [];
      for (let k = 0; k < parts.length; k++) {
        const [label, into, run] = parts[(i + k) % parts.length]!;
        collect();
        const t = performance.now();
        const seen = await run();
        const dt = performance.now() - t;
        if (seen !== n) throw new Error(`round ${i}: ${label} saw ${seen}`);
        line.push(`${label} ${dt.toFixed(0)} ms`);
        if (i > 0) into.push(dt);
      }
      out(`round ${i}: ${line.join(', ')}`);
      const runOurs = async (): Promise<number> => {
        collect();
        const t = performance.now();
        const got = await tc.dumpFilters(ifindex, TC_PARENT_INGRESS);
        const dt = performance.now() - t;
        if (got.length !== n) throw new Error(`round ${i}: ours saw ${got.length}`);
        return dt;
      };
      const runTc = async (): Promise<[number, number, number]> => {
        collect();
        const t = performance.now();
        const r = await sh('tc', '-s', '-j', 'filter', 'show', 'dev', DEV, 'ingress');
        const t1 = performance.now();
        const j = JSON.parse(r.stdout.toString('utf8')) as Array<Record<string, unknown>>;
        const t2 = performance.now();
        if (r.code !== 0) throw new Error(`tc exit ${r.code}`);
        let seen = 0;
        for (const e of j) if (e['options'] !== undefined) seen++;
        if (seen !== n) throw new Error(`round ${i}: tc saw ${seen}`);
        return [t2 - t, t1 - t, t2 - t1];
      };
      let a: number;
      let b: [number, number, number];
      if (i % 2 === 0) {
        a = await runOurs();
        b = await runTc();
      } else {
        b = await runTc();
        a = await runOurs();
      }
      out(`round ${i}${i === 0 ? ' (warm-up, not counted)' : ''}: ours ${a.toFixed(0)} ms, tc -s -j + JSON.parse ${b[0].toFixed(0)} ms (tc process ${b[1].toFixed(0)}, JSON.parse ${b[2].toFixed(0)})`);
      if (i === 0) continue;
      ours.push(a);
      base.push(b[0]);
      tcProc.push(b[1]);
      parse.push(b[2]);
    }

    // Our time split: the dump (kernel + recv) vs the decode (results kept), on one captured dump.
    collect();
    t0 = performance.now();
    const msgs = await tc.nl.dump((seq) => encodeDumpRequest(ifindex, TC_PARENT_INGRESS, seq), 'bench dump');
    const dumpMs = performance.now() - t0;
    const decodeRuns: number[] = [];
    for (let i = 0; i < runs; i++) {
      collect();
      t0 = performance.now();
      // Kept until the end, as dumpFilters' caller keeps them: surviving objects are
      // most of the GC's work, and a decode whose results die young would hide it.
      const kept: TcFilter[] = [];
      for (const m of msgs) {
        if (m.hdr.type !== RTM_NEWTFILTER) continue;
        const f = decodeFilterMessage(m);
        if (f.handle !== 0) kept.push(f);
      }
      decodeRuns.push(performance.now() - t0);
      if (kept.length !== n) throw new Error(`decode-only saw ${kept.length}`);
    }
    const bytes = msgs.reduce((s, m) => s + 16 + m.body.length, 0);
    const oursMs = median(ours);
    const baseMs = median(base);
    out(`ours: Tc.dumpFilters (dump + decode) p50 ${oursMs.toFixed(0)} ms over ${runs} rounds; split on one dump: kernel dump + recv ${dumpMs.toFixed(0)} ms (${msgs.length} messages, ${(bytes / 1048576).toFixed(1)} MiB), decode p50 ${median(decodeRuns).toFixed(0)} ms`);
    out(`baseline: tc -s -j filter show + JSON.parse p50 ${baseMs.toFixed(0)} ms (tc process p50 ${median(tcProc).toFixed(0)} ms, JSON.parse p50 ${median(parse).toFixed(0)} ms)`);
    out(`(a full GC ran before each timed part${(globalThis as { gc?: unknown }).gc ? '' : ' — NOT here: node lacks --expose-gc'})`);
    out(`ratio baseline/ours: ${(baseMs / oursMs).toFixed(2)}× (goal ≥ 10×). Under qemu TCG (no KVM) every instruction is emulated, ours and tc's alike: absolute times are 10-30× a real host's.`);
    const floorMs = median(floorTerse);
    const collMs = median(coll);
    const fullFloorMs = median(floorFull);
    out(`floor: kernel dump + recv, no decode, p50 ${fullFloorMs.toFixed(0)} ms full, ${floorMs.toFixed(0)} ms terse`);
    out(`collector path (terse dump + view) p50 ${collMs.toFixed(0)} ms = ${(collMs / floorMs).toFixed(2)}× its floor (goal ≤ 1.5×); full dump + full decode ${(oursMs / fullFloorMs).toFixed(2)}× its floor; view over the full dump p50 ${median(viewFull).toFixed(0)} ms = ${(median(viewFull) / fullFloorMs).toFixed(2)}×`);
    out(
      `@@result ${JSON.stringify({
        bench: 'tc-dump',
        mode: 'kernel-lane',
        accel: 'tcg',
        kernel: (await must('uname', '-r')).trim(),
        filters: n,
        runs,
        ours_ms: ms(oursMs),
        baseline_ms: ms(baseMs),
        ratio: Number((baseMs / oursMs).toFixed(3)),
        ours_dump_ms: ms(dumpMs),
        ours_decode_ms: ms(median(decodeRuns)),
        tc_process_ms: ms(median(tcProc)),
        json_parse_ms: ms(median(parse)),
        install_s: Number(installS.toFixed(1)),
        ...floorFigures(floorMs, collMs, fullFloorMs, oursMs, median(viewFull)),
        note: 'qemu TCG: absolute times ~10-30x a real host; ratio = baseline/ours',
      })}`,
    );
    return 0;
  } finally {
    tc.close();
    await sh('ip', 'link', 'del', DEV);
  }
}

/** The dump alone: request, every datagram received and split into messages, nothing decoded. Returns the filters (heads left out). */
async function rawDump(tc: Tc, ifindex: number, terseDump: boolean): Promise<number> {
  const msgs = await tc.nl.dump((seq) => encodeDumpRequest(ifindex, TC_PARENT_INGRESS, seq, { terse: terseDump }), 'bench floor');
  let n = 0;
  for (const m of msgs) if (m.hdr.type === RTM_NEWTFILTER && hu32(m.body, 8) !== 0) n++; // tcm_handle ≠ 0
  return n;
}

/** The collector's read of one dump, as it uses the view: flags and counters into numbers, nothing kept per filter. */
async function scanCount(tc: Tc, ifindex: number, terseDump: boolean): Promise<number> {
  let inHw = 0;
  let packets = 0;
  const n = await tc.scanFilters(ifindex, TC_PARENT_INGRESS, { terse: terseDump, cookie: false }, (v) => {
    if (v.flags & TCA_CLS_FLAGS_NOT_IN_HW) inHw++;
    packets += v.packets + v.hwPackets;
  });
  return inHw >= 0 && packets >= 0 ? n : -1;
}

interface Seen {
  id: string;
  flags: number;
  cookie: string | undefined;
  actions: number;
  packets: number;
}

/** The collector's read of one dump: what the view saw per filter (kept here for the checks; the collector keeps none). */
async function scanOnce(tc: Tc, ifindex: number, terseDump: boolean): Promise<Seen[]> {
  const got: Seen[] = [];
  await tc.scanFilters(ifindex, TC_PARENT_INGRESS, { terse: terseDump }, (v) => {
    got.push({ id: `${v.chain}/${v.prio}/${v.handle}`, flags: v.flags, cookie: v.cookie, actions: v.actions, packets: v.packets });
  });
  return got;
}

/** The terse dump through the view against the full decode and tc -s -j, on every filter: in/not in hw, first cookie, action count. */
function collectorCheck(view: Seen[], full: FlowerFilter[], tcFilters: Array<Record<string, any>>): void {
  if (view.length !== full.length) throw new Error(`collector path saw ${view.length}, full decode ${full.length}`);
  const fullBy = new Map(full.map((f) => [`${f.chain ?? 0}/${f.prio}/${f.handle}`, f]));
  const tcBy = new Map(tcFilters.map((e) => [`${e['chain'] ?? 0}/${e['pref']}/${e['options']['handle']}`, e]));
  for (const v of view) {
    const f = fullBy.get(v.id);
    const e = tcBy.get(v.id);
    if (!f || !e) throw new Error(`${v.id}: in the terse view only`);
    const cookie = f.actions.find((a) => a.cookie !== undefined)?.cookie;
    const tcCookie = (e['options']['actions'] as Array<Record<string, any>>).find((a) => a['cookie'] !== undefined)?.['cookie'];
    const notInHw = (v.flags & TCA_CLS_FLAGS_NOT_IN_HW) !== 0;
    if (v.cookie !== cookie || v.cookie !== tcCookie) throw new Error(`${v.id}: cookie ${v.cookie}, full ${cookie}, tc ${tcCookie}`);
    if (notInHw !== !!f.flags?.notInHw || notInHw !== !!e['options']['not_in_hw']) throw new Error(`${v.id}: not_in_hw differs`);
    if (v.actions !== f.actions.length || v.packets !== (f.stats?.total.packets ?? 0)) throw new Error(`${v.id}: actions/packets differ`);
  }
  out(`collector check: the terse dump through the view agrees with the full decode and tc -s -j on all ${view.length} filters (cookie, not_in_hw, action count, packets)`);
}

async function tcShow(): Promise<Array<Record<string, any>>> {
  return JSON.parse(await must('tc', '-s', '-j', 'filter', 'show', 'dev', DEV, 'ingress')) as Array<Record<string, any>>;
}

/** A sample of filters (each shape, spread over the handles): our decode vs tc's JSON, and vs what we installed. */
function spotCheck(ours: FlowerFilter[], tcFilters: Array<Record<string, any>>, want: FlowerFilter[]): void {
  const n = want.length;
  const handles = new Set<number>();
  for (let i = 0; i < Math.min(n, 8); i++) handles.add(i + 1);
  for (let i = 0; i < 24; i++) handles.add(1 + Math.floor(((i + 0.5) * n) / 24));
  const key = (chain: number, prio: number, handle: number): string => `${chain}/${prio}/${handle}`;
  const tcBy = new Map(tcFilters.map((e) => [key(e['chain'] ?? 0, e['pref'], e['options']['handle']), e]));
  const sample = ours.filter((f) => handles.has(f.handle));
  const theirs = sample.map((f) => tcBy.get(key(f.chain ?? 0, f.prio, f.handle))).filter((e) => e !== undefined);
  const cmp = compareWithTcJson(sample, theirs);
  for (const w of cmp.warnings.slice(0, 10)) out(`# warn ${w}`);
  if (cmp.errors.length > 0) throw new Error(`our decode disagrees with tc -s -j on ${sample.length} sampled filters: ${cmp.errors.slice(0, 10).join('; ')}`);
  // The keys read back are the keys we installed (the kernel fills absent masks; ours are all given).
  let keysEqual = 0;
  for (const f of sample) {
    const w = want[f.handle - 1]!;
    const got = JSON.stringify(sortKeys(f.key));
    const sent = JSON.stringify(sortKeys(kernelKey(w)));
    if (got !== sent) throw new Error(`handle ${f.handle}: decoded key ${got} ≠ installed ${sent}`);
    keysEqual++;
  }
  out(`spot check: ${sample.length} filters agree with tc -s -j (${cmp.warnings.length} soft warnings), ${keysEqual} decoded keys equal the installed ones`);
}

const sortKeys = (o: object): Record<string, unknown> => Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)));

/** With a VLAN match cls_flower dumps the inner protocol as ETH_TYPE (fl_set_key: vlan_ethtype → n_proto). */
function kernelKey(f: FlowerFilter): FlowerFilter['key'] {
  const k = { ...f.key };
  if (k.vlanId !== undefined && k.vlanEthType !== undefined) k.ethType = k.vlanEthType;
  return k;
}
