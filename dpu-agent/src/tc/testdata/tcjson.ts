// Compares our decode of a flower dump with what `tc -s -j filter show` printed for
// the same filters (iproute2 as the reference decoder, DESIGN §7). Used in the
// kernel lane (test/kernel/tc-flower.ts) and offline on recorded fixtures.
//
// "errors" are fields whose tc JSON form is certain (pref, protocol, chain, handle,
// flags, action kinds/order/index/cookie/stats, vlan_id — the byte-order trap).
// "warnings" are key fields whose JSON spelling varies between iproute2 versions
// (f_flower.c prints masks and names in several forms): reported, never fatal.
import type { FlowerFilter } from '../filter.ts';
import { TC_ACT, verdictName } from '../actions/index.ts';

const PROTO: Record<string, number> = { ip: 0x0800, ipv6: 0x86dd, '802.1Q': 0x8100, '802.1ad': 0x88a8, arp: 0x0806, all: 0x0003 };
const IPPROTO: Record<string, number> = { tcp: 6, udp: 17, sctp: 132, icmp: 1, icmpv6: 58 };

export interface Comparison {
  errors: string[];
  warnings: string[];
}

type Json = Record<string, any>;

const num = (v: unknown): number | undefined =>
  typeof v === 'number' ? v : typeof v === 'string' && /^(0x[0-9a-f]+|\d+)$/i.test(v) ? Number(v) : undefined;

/** Matches each of our filters to the tc JSON entry with the same (chain, pref, handle). */
export function compareWithTcJson(ours: FlowerFilter[], tcJson: Json[]): Comparison {
  const errors: string[] = [];
  const warnings: string[] = [];
  const theirs = tcJson.filter((e) => e['kind'] === 'flower' && e['options'] !== undefined);
  if (theirs.length !== ours.length) errors.push(`filter count: ours ${ours.length}, tc ${theirs.length}`);
  for (const f of ours) {
    const where = `chain ${f.chain ?? 0} prio ${f.prio} handle ${f.handle}`;
    const t = theirs.find((e) => (e['chain'] ?? 0) === (f.chain ?? 0) && e['pref'] === f.prio && num(e['options']?.['handle']) === f.handle);
    if (!t) {
      errors.push(`${where}: not in tc output`);
      continue;
    }
    const eq = (what: string, a: unknown, b: unknown, soft = false): void => {
      if (JSON.stringify(a) !== JSON.stringify(b)) (soft ? warnings : errors).push(`${where}: ${what}: ours ${JSON.stringify(a)}, tc ${JSON.stringify(b)}`);
    };
    const o: Json = t['options'];
    const proto = typeof t['protocol'] === 'string' ? (PROTO[t['protocol']] ?? parseInt(t['protocol'], 16)) : undefined;
    eq('protocol', f.protocol, proto);
    eq('skip_hw', !!f.flags?.skipHw, !!o['skip_hw']);
    eq('skip_sw', !!f.flags?.skipSw, !!o['skip_sw']);
    eq('in_hw', !!f.flags?.inHw, !!o['in_hw']);
    eq('not_in_hw', !!f.flags?.notInHw, !!o['not_in_hw']);
    const k: Json = o['keys'] ?? {};
    if (f.key.vlanId !== undefined || k['vlan_id'] !== undefined) eq('vlan_id', f.key.vlanId, k['vlan_id']);
    if (f.key.vlanPrio !== undefined || k['vlan_prio'] !== undefined) eq('vlan_prio', f.key.vlanPrio, k['vlan_prio']);
    if (f.key.ipProto !== undefined) eq('ip_proto', f.key.ipProto, IPPROTO[k['ip_proto']] ?? num(k['ip_proto']), true);
    for (const [ours, name] of [
      ['ipv4Dst', 'dst_ip'],
      ['ipv4Src', 'src_ip'],
      ['ipv6Dst', 'dst_ip'],
      ['ipv6Src', 'src_ip'],
      ['ethDst', 'dst_mac'],
      ['ethSrc', 'src_mac'],
      ['encIpv4Dst', 'enc_dst_ip'],
      ['encIpv4Src', 'enc_src_ip'],
    ] as const) {
      const v = f.key[ours];
      if (v !== undefined) eq(name, v, typeof k[name] === 'string' ? k[name].split('/')[0] : k[name], true);
    }
    for (const [ours, name] of [
      ['tcpDst', 'dst_port'],
      ['udpDst', 'dst_port'],
      ['tcpSrc', 'src_port'],
      ['udpSrc', 'src_port'],
      ['encKeyId', 'enc_key_id'],
      ['encUdpDstPort', 'enc_dst_port'],
      ['ctZone', 'ct_zone'],
    ] as const) {
      const v = f.key[ours];
      if (v !== undefined) eq(name, v, num(typeof k[name] === 'string' ? k[name].split('/')[0] : k[name]), true);
    }
    const acts: Json[] = o['actions'] ?? [];
    eq('action count', f.actions.length, acts.length);
    f.actions.forEach((a, i) => {
      const ta = acts.find((x) => x['order'] === i + 1);
      if (!ta) return;
      eq(`action ${i + 1} kind`, a.kind, ta['kind']);
      const p = a.params;
      if (p) {
        eq(`action ${i + 1} index`, p.index ?? 0, ta['index']);
        if (ta['ref'] !== undefined) eq(`action ${i + 1} ref`, p.refcnt ?? 0, ta['ref']);
        if (ta['bind'] !== undefined) eq(`action ${i + 1} bind`, p.bindcnt ?? 0, ta['bind']);
        // iproute2 prints `goto chain N` as {"type":"goto","chain":N} (tc_util.c print_action_control).
        const cj = ta['control_action'];
        const ca = cj?.['type'] === 'goto' && cj['chain'] !== undefined ? `goto chain ${cj['chain']}` : cj?.['type'];
        if (ca !== undefined) eq(`action ${i + 1} control`, verdictName(p.control), ca === 'pass' && p.control === TC_ACT.OK ? 'pass' : ca, true);
        if (p.kind === 'vlan' && p.id !== undefined) eq(`action ${i + 1} vlan id`, p.id, ta['id']);
        if (p.kind === 'tunnel_key' && p.keyId !== undefined) eq(`action ${i + 1} key_id`, p.keyId, ta['key_id'], true);
      }
      if (a.cookie !== undefined || ta['cookie'] !== undefined) eq(`action ${i + 1} cookie`, a.cookie, ta['cookie']);
      const st: Json | undefined = ta['stats'];
      if (st && a.stats?.basic) {
        eq(`action ${i + 1} bytes`, a.stats.basic.bytes, st['bytes']);
        eq(`action ${i + 1} packets`, a.stats.basic.packets, st['packets']);
        if (st['sw_packets'] !== undefined) eq(`action ${i + 1} sw packets`, a.stats.basic.packets - (a.stats.basicHw?.packets ?? 0), st['sw_packets'], true);
      }
    });
  }
  return { errors, warnings };
}
