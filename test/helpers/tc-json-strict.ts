// Field-by-field check of our flower decode against `tc -s -j filter show` as iproute2 6.1
// prints it (Debian 12, the lane's userland): every key tc prints under "keys" (values and
// masks, Geneve options, ct_state/zone/mark/label, enc_*) must be what our decode renders,
// and nothing more; every action's kind-specific fields (mirred target and direction,
// tunnel_key set/unset with addresses, VNI, port, Geneve options, csum, tos/ttl; ct
// commit/clear, zone, mark, labels, nat; gact/any control verdict) and its counters too.
// The rendering follows iproute2's tc/f_flower.c, m_mirred.c, m_tunnel_key.c, m_ct.c and
// tc_util.c (print_masked_type: a mask that is not all-ones is printed as NAME_mask, a hex
// string without 0x; addresses print as addr[/prefix|/mask]). Complements tc/testdata/tcjson.ts (filter
// identity, flags, index/ref/bind, cookies, basic stats), which stays lenient on spellings.
import type { EncOpts, FlowerFilter, FlowerKey, TcAction } from '../../dpu-agent/src/tc/index.ts';

type Json = Record<string, any>;

export interface StrictComparison {
  /** "chain C prio P handle H: what: ours X, tc Y" */
  errors: string[];
  /** Fields compared (keys + action fields + counters). */
  fields: number;
}

const IP_PROTO: Record<number, string> = { 6: 'tcp', 17: 'udp', 132: 'sctp', 1: 'icmp', 58: 'icmpv6' };
const ETH_TYPE: Record<number, string> = { 0x0800: 'ipv4', 0x86dd: 'ipv6', 0x0806: 'arp', 0x8035: 'rarp' };
const LL_PROTO: Record<number, string> = { 0x0800: 'ip', 0x86dd: 'ipv6', 0x0806: 'arp', 0x8100: '802.1Q', 0x88a8: '802.1ad' };
const CT_STATES: [string, number][] = [['trk', 8], ['new', 1], ['est', 2], ['rel', 4], ['inv', 16], ['rpl', 32]];
const VERDICT: Record<number, string> = { 0: 'pass', 1: 'reclassify', 2: 'drop', 3: 'pipe', 4: 'stolen', 5: 'queued', 6: 'repeat', 7: 'redirect', 8: 'trap', [-1]: 'continue' };

const hex = (n: number): string => (n >>> 0).toString(16);

/** Leading one-bits of a mask given as bytes, or -1 if not contiguous (iproute2 __mask_bits). */
function maskBits(bytes: number[]): number {
  let bits = 0;
  let seenZero = false;
  for (const b of bytes) {
    for (let i = 7; i >= 0; i--) {
      const one = (b >> i) & 1;
      if (one && seenZero) return -1;
      if (one) bits++;
      else seenZero = true;
    }
  }
  return bits;
}
const macBytes = (m: string): number[] => m.split(':').map((x) => parseInt(x, 16));
function ipBytes(a: string): number[] {
  if (a.includes('.')) return a.split('.').map(Number);
  const [head, tail] = a.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]);
}

/** addr, addr/bits or addr/mask as f_flower.c prints a masked MAC or IP. */
function masked(value: string, mask: string | undefined, bytesOf: (s: string) => number[]): string {
  if (mask === undefined) return value;
  const b = bytesOf(mask);
  const bits = maskBits(b);
  if (bits < 0) return `${value}/${mask}`;
  return bits < b.length * 8 ? `${value}/${bits}` : value;
}

/** print_masked_type: NAME value, NAME_mask hex when not all-ones. */
function maskedNum(out: Json, name: string, v: number | undefined, m: number | undefined, max: number): void {
  if (v === undefined) return;
  out[name] = v;
  if (m !== undefined && m !== max) out[`${name}_mask`] = hex(m);
}

/** flower_print_masked_u8 / print_masked_u8 for ip_tos/ip_ttl/icmp: "v" or "v/m" (decimal) — except ip/enc tos/ttl use print_masked_u8 (number + NAME_mask). */
function u8Text(v: number | undefined, m: number | undefined, names?: (v: number) => string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const full = m === undefined || m === 0xff;
  const s = full && names ? (names(v) ?? String(v)) : String(v);
  return full ? s : `${s}/${m}`;
}

const genevePrint = (o: EncOpts | undefined): Json[] | undefined =>
  o?.geneve?.map((g) => ({ class: g.class, type: g.type, data: [...Buffer.from(g.data, 'hex')] }));

/** Our key as the JSON object `tc -j` prints under options.keys. */
export function renderKeys(k: FlowerKey): Json {
  const o: Json = {};
  if (k.numOfVlans !== undefined) o['num_of_vlans'] = k.numOfVlans;
  if (k.vlanId !== undefined) o['vlan_id'] = k.vlanId;
  if (k.vlanPrio !== undefined) o['vlan_prio'] = k.vlanPrio;
  if (k.vlanEthType !== undefined) o['vlan_ethtype'] = LL_PROTO[k.vlanEthType] ?? hex(k.vlanEthType);
  if (k.cvlanId !== undefined) o['cvlan_id'] = k.cvlanId;
  if (k.cvlanPrio !== undefined) o['cvlan_prio'] = k.cvlanPrio;
  if (k.cvlanEthType !== undefined) o['cvlan_ethtype'] = LL_PROTO[k.cvlanEthType] ?? hex(k.cvlanEthType);
  if (k.ethDst !== undefined) o['dst_mac'] = masked(k.ethDst, k.ethDstMask, macBytes);
  if (k.ethSrc !== undefined) o['src_mac'] = masked(k.ethSrc, k.ethSrcMask, macBytes);
  if (k.ethType !== undefined) o['eth_type'] = ETH_TYPE[k.ethType] ?? k.ethType.toString(16).padStart(4, '0');
  if (k.ipProto !== undefined) o['ip_proto'] = IP_PROTO[k.ipProto] ?? k.ipProto.toString(16).padStart(2, '0');
  maskedNum(o, 'ip_tos', k.ipTos, k.ipTosMask, 0xff);
  maskedNum(o, 'ip_ttl', k.ipTtl, k.ipTtlMask, 0xff);
  // dst_ip/src_ip print only with a mask attribute (OVS always sends one); absent = exact.
  const ip4 = k.ethType === 0x0800;
  const ip6 = k.ethType === 0x86dd;
  if (ip4 && k.ipv4Dst !== undefined) o['dst_ip'] = masked(k.ipv4Dst, k.ipv4DstMask, ipBytes);
  if (ip4 && k.ipv4Src !== undefined) o['src_ip'] = masked(k.ipv4Src, k.ipv4SrcMask, ipBytes);
  if (ip6 && k.ipv6Dst !== undefined) o['dst_ip'] = masked(k.ipv6Dst, k.ipv6DstMask, ipBytes);
  if (ip6 && k.ipv6Src !== undefined) o['src_ip'] = masked(k.ipv6Src, k.ipv6SrcMask, ipBytes);
  const l4 = k.ipProto === 6 ? 'tcp' : k.ipProto === 17 ? 'udp' : k.ipProto === 132 ? 'sctp' : undefined;
  if (l4) {
    const key = (s: 'Src' | 'Dst') => `${l4}${s}` as 'tcpSrc';
    maskedNum(o, 'dst_port', k[key('Dst')], k[`${key('Dst')}Mask` as 'tcpDstMask'], 0xffff);
    maskedNum(o, 'src_port', k[key('Src')], k[`${key('Src')}Mask` as 'tcpSrcMask'], 0xffff);
  }
  if (k.portDstMin !== undefined && k.portDstMax !== undefined) o['dst_port'] = { start: k.portDstMin, end: k.portDstMax };
  if (k.portSrcMin !== undefined && k.portSrcMax !== undefined) o['src_port'] = { start: k.portSrcMin, end: k.portSrcMax };
  if (k.tcpFlags !== undefined) o['tcp_flags'] = `0x${hex(k.tcpFlags)}${k.tcpFlagsMask !== undefined ? `/${hex(k.tcpFlagsMask)}` : ''}`;
  const icmpT = ip6 ? [k.icmpv6Type, k.icmpv6TypeMask] : [k.icmpv4Type, k.icmpv4TypeMask];
  const icmpC = ip6 ? [k.icmpv6Code, k.icmpv6CodeMask] : [k.icmpv4Code, k.icmpv4CodeMask];
  if ((k.ipProto === 1 || k.ipProto === 58) && icmpT[0] !== undefined) o['icmp_type'] = u8Text(icmpT[0], icmpT[1] ?? 0xff);
  if ((k.ipProto === 1 || k.ipProto === 58) && icmpC[0] !== undefined) o['icmp_code'] = u8Text(icmpC[0], icmpC[1] ?? 0xff);
  if (k.arpSip !== undefined) o['arp_sip'] = masked(k.arpSip, k.arpSipMask ?? '255.255.255.255', ipBytes);
  if (k.arpTip !== undefined) o['arp_tip'] = masked(k.arpTip, k.arpTipMask ?? '255.255.255.255', ipBytes);
  if (k.arpOp !== undefined) o['arp_op'] = u8Text(k.arpOp, k.arpOpMask, (v) => (v === 1 ? 'request' : v === 2 ? 'reply' : undefined));
  if (k.arpSha !== undefined) o['arp_sha'] = masked(k.arpSha, k.arpShaMask, macBytes);
  if (k.arpTha !== undefined) o['arp_tha'] = masked(k.arpTha, k.arpThaMask, macBytes);
  if (k.encIpv4Dst !== undefined) o['enc_dst_ip'] = masked(k.encIpv4Dst, k.encIpv4DstMask ?? '255.255.255.255', ipBytes);
  else if (k.encIpv6Dst !== undefined) o['enc_dst_ip'] = masked(k.encIpv6Dst, k.encIpv6DstMask, ipBytes);
  if (k.encIpv4Src !== undefined) o['enc_src_ip'] = masked(k.encIpv4Src, k.encIpv4SrcMask ?? '255.255.255.255', ipBytes);
  else if (k.encIpv6Src !== undefined) o['enc_src_ip'] = masked(k.encIpv6Src, k.encIpv6SrcMask, ipBytes);
  if (k.encKeyId !== undefined) o['enc_key_id'] = k.encKeyId;
  maskedNum(o, 'enc_dst_port', k.encUdpDstPort, k.encUdpDstPortMask, 0xffff);
  maskedNum(o, 'enc_tos', k.encIpTos, k.encIpTosMask, 0xff);
  maskedNum(o, 'enc_ttl', k.encIpTtl, k.encIpTtlMask, 0xff);
  const gk = genevePrint(k.encOpts);
  if (gk) {
    o['geneve_opt_key'] = gk;
    const gm = genevePrint(k.encOptsMask);
    if (gm) o['geneve_opt_mask'] = gm;
  }
  if (k.keyFlags !== undefined && k.keyFlagsMask !== undefined && k.keyFlagsMask & 3) {
    const f: Json = {};
    if (k.keyFlagsMask & 1) f['frag'] = !!(k.keyFlags & 1);
    if (k.keyFlagsMask & 2) f['firstfrag'] = !!(k.keyFlags & 2);
    o['ip_flags'] = f;
  }
  if (k.ctState !== undefined) {
    const m = k.ctStateMask ?? 0xffff;
    o['ct_state'] = CT_STATES.filter(([, bit]) => m & bit).map(([n, bit]) => `${k.ctState! & bit ? '+' : '-'}${n}`).join('');
  }
  maskedNum(o, 'ct_zone', k.ctZone, k.ctZoneMask, 0xffff);
  maskedNum(o, 'ct_mark', k.ctMark, k.ctMarkMask, 0xffffffff);
  if (k.ctLabels !== undefined) {
    const m = k.ctLabelsMask ?? 'ff'.repeat(k.ctLabels.length / 2);
    o['ct_label'] = /^(ff)+$/.test(m) && k.ctLabels.length === 32 ? k.ctLabels : `${k.ctLabels}/${m}`;
  }
  return o;
}

function control(c: number): Json {
  if ((c & 0xf0000000) === 0x20000000) return { type: 'goto', chain: c & 0x0fffffff };
  if ((c & 0xf0000000) === 0x10000000) return { type: 'jump', jump: c & 0x0fffffff };
  return { type: VERDICT[c] ?? String(c) };
}

/** The kind-specific fields `tc -j` prints for one action (plus control_action). */
export function renderAction(a: TcAction, ifname: ReadonlyMap<number, string>): Json {
  const p = a.params;
  const o: Json = {};
  if (!p) return o;
  o['control_action'] = control(p.control);
  if (a.flags && a.flags.selector & 1) o['no_percpu'] = !!(a.flags.value & 1);
  switch (p.kind) {
    case 'gact':
    {
      // m_gact.c always prints "prob": zeros (random type none, pass, 0) without TCA_GACT_PROB.
      const pr = p.prob ?? { ptype: 0, pval: 0, paction: 0 };
      o['prob'] = { random_type: ['none', 'netrand', 'determ'][pr.ptype] ?? String(pr.ptype), control_action: control(pr.paction), val: pr.pval };
      break;
    }
    case 'mirred':
      o['mirred_action'] = p.eaction === 2 || p.eaction === 4 ? 'mirror' : 'redirect';
      o['direction'] = p.eaction <= 2 ? 'egress' : 'ingress';
      o['to_dev'] = ifname.get(p.ifindex) ?? `ifindex ${p.ifindex}`;
      break;
    case 'tunnel_key':
      o['mode'] = p.tAction === 2 ? 'unset' : 'set';
      if (p.tAction === 1) {
        if (p.ipv4Src ?? p.ipv6Src) o['src_ip'] = p.ipv4Src ?? p.ipv6Src;
        if (p.ipv4Dst ?? p.ipv6Dst) o['dst_ip'] = p.ipv4Dst ?? p.ipv6Dst;
        if (p.keyId !== undefined) o['key_id'] = p.keyId;
        if (p.dstPort !== undefined) o['dst_port'] = p.dstPort;
        const g = genevePrint(p.encOpts);
        if (g) o['geneve_opts'] = g;
        if (p.noCsum !== undefined) o['flag'] = p.noCsum ? 'nocsum' : 'csum';
        if (p.tos) o['tos'] = p.tos;
        if (p.ttl) o['ttl'] = p.ttl;
      }
      break;
    case 'ct': {
      const act = p.ctAction ?? 0;
      if (act & 1) o['action'] = act & 2 ? 'commit force' : 'commit';
      else if (act & 4) o['action'] = 'clear';
      maskedNum(o, 'mark', p.mark, p.markMask, 0xffffffff);
      if (p.zone !== undefined) o['zone'] = p.zone;
      if (p.labels !== undefined) {
        const m = p.labelsMask ?? 'ff'.repeat(16);
        o['label'] = /^(ff)+$/.test(m) && p.labels.length === 32 ? p.labels : `${p.labels}/${m}`;
      }
      if (act & 8) o['nat'] = natText(p);
      break;
    }
    default:
      break;
  }
  return o;
}

function natText(p: Extract<TcAction['params'], { kind: 'ct' }>): string {
  const act = p.ctAction ?? 0;
  let s = act & 16 ? 'src' : act & 32 ? 'dst' : '';
  const min = p.natIpv4Min ?? p.natIpv6Min;
  const max = p.natIpv4Max ?? p.natIpv6Max;
  if (s && min) {
    s += ` addr ${min}${max && max !== min ? `-${max}` : ''}`;
    if (p.natPortMin !== undefined) s += ` port ${p.natPortMin}${p.natPortMax !== undefined && p.natPortMax !== p.natPortMin ? `-${p.natPortMax}` : ''}`;
  }
  return s;
}

/** Our filters vs tc's JSON for the same device, field by field. */
export function strictCompare(ours: readonly FlowerFilter[], tcJson: readonly Json[], ifname: ReadonlyMap<number, string>): StrictComparison {
  const errors: string[] = [];
  let fields = 0;
  const theirs = tcJson.filter((e) => e['kind'] === 'flower' && e['options'] !== undefined);
  for (const f of ours) {
    const where = `chain ${f.chain ?? 0} prio ${f.prio} handle ${f.handle}`;
    const t = theirs.find((e) => (e['chain'] ?? 0) === (f.chain ?? 0) && e['pref'] === f.prio && Number(e['options']?.['handle']) === f.handle);
    if (!t) {
      errors.push(`${where}: not in tc output`);
      continue;
    }
    const eq = (what: string, a: unknown, b: unknown): void => {
      fields++;
      if (JSON.stringify(a) !== JSON.stringify(b)) errors.push(`${where}: ${what}: ours ${JSON.stringify(a)}, tc ${JSON.stringify(b)}`);
    };
    const o: Json = t['options'];
    const mine = renderKeys(f.key);
    const tk: Json = o['keys'] ?? {};
    for (const name of new Set([...Object.keys(mine), ...Object.keys(tk)])) eq(`key ${name}`, mine[name], tk[name]);
    // tc prints in_hw_count only for a filter in hardware (f_flower.c).
    if (f.flags?.inHw || o['in_hw_count'] !== undefined) eq('in_hw_count', f.inHwCount, o['in_hw_count']);
    const acts: Json[] = o['actions'] ?? [];
    f.actions.forEach((a, i) => {
      const ta = acts.find((x) => x['order'] === i + 1);
      if (!ta) return; // counted by tcjson.ts
      for (const [name, v] of Object.entries(renderAction(a, ifname))) eq(`action ${i + 1} ${a.kind} ${name}`, v, ta[name]);
      for (const name of ['prob', 'no_percpu', 'mode', 'to_dev', 'mirred_action', 'direction', 'src_ip', 'dst_ip', 'key_id', 'dst_port', 'geneve_opts', 'flag', 'tos', 'ttl', 'action', 'zone', 'mark', 'label', 'nat']) {
        if (ta[name] !== undefined && !(name in renderAction(a, ifname))) eq(`action ${i + 1} ${a.kind} ${name}`, undefined, ta[name]);
      }
      const st: Json | undefined = ta['stats'];
      if (st) {
        const s = a.stats;
        eq(`action ${i + 1} stats bytes`, s?.basic?.bytes ?? 0, st['bytes']);
        eq(`action ${i + 1} stats packets`, s?.basic?.packets ?? 0, st['packets']);
        if (st['hw_packets'] !== undefined) eq(`action ${i + 1} stats hw_packets`, s?.basicHw?.packets ?? 0, st['hw_packets']);
        if (st['hw_bytes'] !== undefined) eq(`action ${i + 1} stats hw_bytes`, s?.basicHw?.bytes ?? 0, st['hw_bytes']);
        if (st['sw_packets'] !== undefined) eq(`action ${i + 1} stats sw_packets`, (s?.basic?.packets ?? 0) - (s?.basicHw?.packets ?? 0), st['sw_packets']);
        if (st['drops'] !== undefined) eq(`action ${i + 1} stats drops`, s?.queue?.drops ?? 0, st['drops']);
      }
    });
  }
  return { errors, fields };
}
