// Kernel-lane test (DESIGN §7): our flower codec + rtnetlink I/O against a kernel
// that has cls_flower and the act_* modules, with iproute2 as the reference decoder.
//
//   scripts/kernel-lane -- node --import tsx test/kernel/tc-flower.ts
//   scripts/kernel-fixtures      (RECORD_FIXTURES=1 in the lane, then writes testdata/ on the host)
//
// What it does: two netns joined by a veth (A in ns1 with clsact, B in ns2 as a
// traffic source), flower filters added through our library (skip_hw: no hardware
// here), UDP traffic from ns2 so one filter has stats, then our dump vs
// `tc -s -j filter show` (keys, actions, prio, handle, chain), get, replace, terse
// dump, delete (twice), qdisc delete. Exit 0 = all checks passed, 1 = a check failed.
// Optional action kinds (ct, pedit, csum, police) are skipped, not failed, when the
// kernel cannot load their module.
// Fixtures: the guest's / is read-only (tmpfs overlay), so with RECORD_FIXTURES=1 the
// raw dump replies are printed as "@@fixture <name> <base64>" lines too, and
// scripts/kernel-fixtures writes them to dpu-agent/src/tc/testdata/ on the host.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { TcError } from '../../dpu-agent/src/errors.ts';
import {
  CT_ACTION,
  ETH_P_8021Q,
  ETH_P_IP,
  ETH_P_IPV6,
  PEDIT_CMD,
  PEDIT_HTYPE,
  TC_ACT,
  TC_PARENT_INGRESS,
  TUNNEL_KEY_ACTION,
  Tc,
  VLAN_ACTION,
  dropAction,
  encodeDumpRequest,
  gotoChain,
  mirredAction,
  policeAction,
  type FlowerFilter,
  type FlowerKey,
  type TcAction,
} from '../../dpu-agent/src/tc/index.ts';
import { encodeMessage } from '../../dpu-agent/src/netlink/nl.ts';
import { compareWithTcJson } from '../../dpu-agent/src/tc/testdata/tcjson.ts';

const SELF = fileURLToPath(import.meta.url);
const FIXTURES = fileURLToPath(new URL('../../dpu-agent/src/tc/testdata/', import.meta.url));
const sh = (cmd: string, ...args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8' });

let failures = 0;
function check(ok: boolean, what: string, detail?: unknown): void {
  if (ok) process.stdout.write(`ok - ${what}\n`);
  else {
    failures++;
    process.stdout.write(`not ok - ${what}${detail !== undefined ? ` ${JSON.stringify(detail)}` : ''}\n`);
  }
}

// --- outside: make the namespaces, re-run ourselves in ns1 --------------------
function outer(): number {
  const ns1 = `tcfl1-${process.pid}`;
  const ns2 = `tcfl2-${process.pid}`;
  try {
    sh('ip', 'netns', 'add', ns1);
    sh('ip', 'netns', 'add', ns2);
    sh('ip', '-n', ns1, 'link', 'add', 'A', 'type', 'veth', 'peer', 'name', 'B', 'netns', ns2);
    sh('ip', '-n', ns1, 'link', 'add', 'R', 'type', 'veth', 'peer', 'name', 'R2'); // mirred target
    sh('ip', '-n', ns1, 'addr', 'add', '10.0.0.2/24', 'dev', 'A');
    sh('ip', '-n', ns2, 'addr', 'add', '10.0.0.1/24', 'dev', 'B');
    for (const [ns, dev] of [[ns1, 'A'], [ns1, 'R'], [ns1, 'R2'], [ns2, 'B'], [ns1, 'lo'], [ns2, 'lo']] as const) sh('ip', '-n', ns, 'link', 'set', dev, 'up');
    const r = spawnSync('ip', ['netns', 'exec', ns1, process.execPath, '--import', 'tsx', SELF], {
      stdio: 'inherit',
      env: { ...process.env, TC_FLOWER_INNER: '1', TC_FLOWER_NS2: ns2 },
      timeout: 240_000,
    });
    return r.status ?? 1;
  } finally {
    spawnSync('ip', ['netns', 'del', ns1]);
    spawnSync('ip', ['netns', 'del', ns2]);
  }
}

// --- inside ns1 ------------------------------------------------------------------
const ifindex = (dev: string): number => Number(readFileSync(`/sys/class/net/${dev}/ifindex`, 'utf8'));
const UFID = (n: number): string => `${n.toString(16).padStart(8, '0')}5c6b7a8996a5b4c3d2e1f000`;

async function inner(): Promise<void> {
  const A = ifindex('A');
  const R = ifindex('R');
  const tc = new Tc({ timeoutMs: 20_000 }); // TCG guest: 10-15x slower
  const base = { kind: 'flower' as const, ifindex: A, parent: TC_PARENT_INGRESS, handle: 0, flags: { skipHw: true } };
  try {
    check(tc.nl.extAck, 'NETLINK_EXT_ACK on');
    const q = await tc.ensureClsact(A);
    check(q.created && q.kind === 'clsact', 'clsact created', q);

    const required: FlowerFilter[] = [
      // Reference B4 with our devices: tcp to 10.0.0.2:80 → redirect to R.
      { ...base, chain: 0, prio: 2, protocol: ETH_P_IP, key: { ethType: ETH_P_IP, ipProto: 6, ipv4Dst: '10.0.0.2', ipv4DstMask: '255.255.255.255', tcpDst: 80, tcpDstMask: 0xffff }, actions: [mirredAction(R, 'egress-redirect', { cookie: UFID(1) })] },
      // VLAN 100 (host-order VLAN_ID on the wire), pop + redirect.
      { ...base, prio: 4, protocol: ETH_P_8021Q, key: { ethType: ETH_P_8021Q, vlanId: 100, vlanPrio: 3, vlanEthType: ETH_P_IP, ethDst: 'aa:bb:cc:00:00:01', ethDstMask: 'ff:ff:ff:ff:ff:ff' },
        actions: [{ kind: 'vlan', params: { kind: 'vlan', control: TC_ACT.PIPE, vAction: VLAN_ACTION.POP }, cookie: UFID(2) }, mirredAction(R)] },
      // VLAN push.
      { ...base, prio: 6, protocol: ETH_P_IP, key: { ethType: ETH_P_IP, ipProto: 17, udpDst: 5353 },
        actions: [{ kind: 'vlan', params: { kind: 'vlan', control: TC_ACT.PIPE, vAction: VLAN_ACTION.PUSH, id: 200, proto: ETH_P_8021Q, prio: 5 } }, mirredAction(R)] },
      // IPv6 prefix + masked UDP port + ttl → drop.
      { ...base, prio: 3, protocol: ETH_P_IPV6, key: { ethType: ETH_P_IPV6, ipProto: 17, ipv6Src: '2001:db8::', ipv6SrcMask: 'ffff:ffff:ffff:ffff::', udpDst: 0x1200, udpDstMask: 0xff00, ipTtl: 64, ipTtlMask: 0xff }, actions: [dropAction()] },
      // Geneve decap: enc keys + geneve option → tunnel_key unset + redirect.
      { ...base, prio: 2, protocol: ETH_P_IP, chain: 1, key: { ethType: ETH_P_IP, encKeyId: 42, encIpv4Dst: '192.0.2.1', encIpv4DstMask: '255.255.255.255', encUdpDstPort: 6081, encUdpDstPortMask: 0xffff, encOpts: { geneve: [{ class: 0x0102, type: 0x80, data: '00112233' }] }, encOptsMask: { geneve: [{ class: 0xffff, type: 0xff, data: 'ffffffff' }] } },
        actions: [{ kind: 'tunnel_key', params: { kind: 'tunnel_key', control: TC_ACT.PIPE, tAction: TUNNEL_KEY_ACTION.RELEASE } }, mirredAction(R)] },
      // Geneve encap: tunnel_key set with an option, then goto chain 1 (OVS recirc shape).
      { ...base, prio: 7, protocol: ETH_P_IP, key: { ethType: ETH_P_IP, ipv4Src: '10.0.0.0', ipv4SrcMask: '255.255.255.0' },
        actions: [{ kind: 'tunnel_key', params: { kind: 'tunnel_key', control: TC_ACT.PIPE, tAction: TUNNEL_KEY_ACTION.SET, ipv4Src: '192.0.2.2', ipv4Dst: '192.0.2.1', keyId: 42, dstPort: 6081, noCsum: true, tos: 0, ttl: 64, encOpts: { geneve: [{ class: 0x0102, type: 0x80, data: '00112233' }] } } },
          { kind: 'gact', params: { kind: 'gact', control: gotoChain(1) } }] },
      // Traffic counter: UDP to port 9999 from ns2 → pass.
      { ...base, prio: 5, protocol: ETH_P_IP, key: { ethType: ETH_P_IP, ipProto: 17, udpDst: 9999 }, actions: [{ kind: 'gact', params: { kind: 'gact', control: TC_ACT.OK }, cookie: UFID(7) }] },
    ];
    const optional: Array<[string, FlowerFilter]> = [
      ['ct', { ...base, prio: 8, protocol: ETH_P_IP, chain: 2, key: { ethType: ETH_P_IP, ctState: 8 | 2, ctStateMask: 8 | 2, ctZone: 5, ctZoneMask: 0xffff, ctMark: 0x10, ctMarkMask: 0xff },
        actions: [{ kind: 'ct', params: { kind: 'ct', control: TC_ACT.PIPE, ctAction: CT_ACTION.COMMIT, zone: 5, mark: 0x20, markMask: 0xff } }, mirredAction(R)] }],
      ['pedit+csum', { ...base, prio: 9, protocol: ETH_P_IP, key: { ethType: ETH_P_IP, ipProto: 6 },
        actions: [{ kind: 'pedit', params: { kind: 'pedit', control: TC_ACT.PIPE, extended: true, keys: [{ mask: 0x00ffffff, val: 0x3f000000, off: 8, at: 0, offmask: 0, shift: 0, htype: PEDIT_HTYPE.IP4, cmd: PEDIT_CMD.SET }] } },
          { kind: 'csum', params: { kind: 'csum', control: TC_ACT.PIPE, updateFlags: 1 } }, mirredAction(R)] }],
      ['police', { ...base, prio: 10, protocol: ETH_P_IP, key: { ethType: ETH_P_IP, ipProto: 1 }, actions: [policeAction({ rateBytesPerSec: 125_000, burstBytes: 10_000, conform: TC_ACT.PIPE }), mirredAction(R)] }],
    ];

    const added: FlowerFilter[] = [];
    for (const f of required) {
      try {
        const echo = await tc.addFilter(f);
        check(echo.handle !== 0 && echo.prio === f.prio, `add prio ${f.prio} chain ${f.chain ?? 0}: kernel handle ${echo.handle}`);
        check(!!echo.flags?.skipHw && !!echo.flags?.notInHw, `echo flags skip_hw + not_in_hw (prio ${f.prio})`, echo.flags);
        added.push(echo);
      } catch (err) {
        check(false, `add prio ${f.prio}`, err instanceof TcError ? { errno: err.errnoName, extack: err.extack } : String(err));
      }
    }
    for (const [name, f] of optional) {
      try {
        added.push(await tc.addFilter(f));
        check(true, `add optional ${name}`);
      } catch (err) {
        if (err instanceof TcError && (err.errnoName === 'ENOENT' || err.errnoName === 'EOPNOTSUPP')) {
          process.stdout.write(`# skip ${name}: ${err.errnoName} ${err.extack ?? ''}\n`);
        } else check(false, `add optional ${name}`, err instanceof TcError ? { errno: err.errnoName, extack: err.extack } : String(err));
      }
    }
    try {
      await tc.addFilter({ ...required[0]!, handle: added[0]?.handle ?? 1 });
      check(false, 'add of an existing handle fails');
    } catch (err) {
      check(err instanceof TcError && err.errnoName === 'EEXIST', 'add of an existing handle: TcError EEXIST', err instanceof TcError ? err.extack : String(err));
    }

    // Traffic from ns2 so the UDP/9999 filter counts packets.
    const ns2 = process.env['TC_FLOWER_NS2']!;
    spawnSync('ip', ['netns', 'exec', ns2, process.execPath, '-e',
      "const s=require('dgram').createSocket('udp4');let n=0;const t=setInterval(()=>{s.send(Buffer.alloc(100),9999,'10.0.0.2');if(++n===5){clearInterval(t);setTimeout(()=>s.close(),200)}},50)"], { stdio: 'inherit', timeout: 60_000 });

    // Dump: ours vs iproute2's.
    const ours = await tc.dumpFilters(A, TC_PARENT_INGRESS);
    const tcJson = JSON.parse(sh('tc', '-s', '-j', 'filter', 'show', 'dev', 'A', 'ingress')) as Record<string, unknown>[];
    check(ours.length === added.length, `dump has ${added.length} filters`, ours.length);
    const cmp = compareWithTcJson(ours, tcJson);
    for (const w of cmp.warnings) process.stdout.write(`# warn ${w}\n`);
    check(cmp.errors.length === 0, 'our decode agrees with tc -s -j filter show', cmp.errors);
    for (const f of added) {
      const d = ours.find((o) => o.handle === f.handle && o.prio === f.prio && (o.chain ?? 0) === (f.chain ?? 0));
      check(!!d && isDeepStrictEqual(d.key, f.key), `dump key equals echo key (prio ${f.prio})`, d?.key);
      check(!!d && isDeepStrictEqual(d.actions.map(kindAndParams), f.actions.map(kindAndParams)), `dump actions equal echo actions (prio ${f.prio})`);
    }
    for (const req of required) {
      const d = ours.find((o) => o.prio === req.prio && (o.chain ?? 0) === (req.chain ?? 0));
      const want = kernelView(req.key);
      check(!!d && isDeepStrictEqual({ ...d.key }, want), `what we sent is what the kernel keeps (prio ${req.prio} key)`, { sent: req.key, want, dumped: d?.key });
    }
    const vlan = ours.find((o) => o.prio === 4);
    check(vlan?.key.vlanId === 100, 'VLAN_ID read back as 100 (host order)', vlan?.key.vlanId);
    const counted = ours.find((o) => o.prio === 5);
    check((counted?.stats?.total.packets ?? 0) >= 5, 'UDP/9999 filter counted ≥ 5 packets', counted?.stats);
    check(counted?.stats?.hw.packets === 0 && counted?.stats?.sw.packets === counted?.stats?.total.packets, 'skip_hw: all packets software');
    check(counted?.actions[0]?.cookie === UFID(7), 'action cookie (UFID) round-trips through the kernel');

    // get, replace, terse.
    const one = added.find((f) => f.prio === 5);
    if (!one) {
      check(false, 'filters were added (nothing more to test)');
      return;
    }
    const got = await tc.getFilter(one);
    check(got?.kind === 'flower' && got.handle === one.handle, 'get by handle');
    const replaced = await tc.replaceFilter({ ...one, actions: [dropAction()] });
    check(replaced.actions[0]?.params?.control === TC_ACT.SHOT, 'replace changes the action', replaced.actions[0]);
    const terse = await tc.dumpFilters(A, TC_PARENT_INGRESS, { terse: true });
    check(terse.length === added.length && terse.every((f) => Object.keys(f.key).length === 0), 'terse dump: no keys', terse.map((f) => f.key));
    check(terse.every((f) => f.actions.every((a) => a.stats !== undefined)), 'terse dump: action stats present');
    const chain1 = await tc.dumpFilters(A, TC_PARENT_INGRESS, { chain: 1 });
    check(chain1.length > 0 && chain1.every((f) => f.chain === 1), 'chain-filtered dump', chain1.map((f) => f.chain));

    if (process.env['RECORD_FIXTURES'] === '1') {
      await record(tc, A, 'kernel-flower-dump', false, tcJson);
      await record(tc, A, 'kernel-flower-dump-terse', true);
    }

    // delete everything (twice: idempotent), then the qdisc.
    for (const f of added) check(await tc.deleteFilter(f), `delete prio ${f.prio} handle ${f.handle}`);
    for (const f of added.slice(0, 2)) check(!(await tc.deleteFilter(f)), `delete again prio ${f.prio}: false`);
    check((await tc.dumpFilters(A, TC_PARENT_INGRESS)).length === 0, 'dump empty after delete');
    check(await tc.deleteQdisc(A), 'qdisc delete');
    check(!(await tc.deleteQdisc(A)), 'qdisc delete again: false');
  } finally {
    tc.close();
  }
}

function kindAndParams(a: TcAction): unknown {
  if (!a.params) return a.kind;
  const { index: _i, refcnt: _r, bindcnt: _b, capab: _c, ...rest } = a.params;
  return rest;
}

async function record(tc: Tc, ifidx: number, name: string, terse: boolean, tcJson?: unknown): Promise<void> {
  const msgs = await tc.nl.dump((seq) => encodeDumpRequest(ifidx, TC_PARENT_INGRESS, seq, { terse }), 'record dump');
  const bin = Buffer.concat(msgs.map((m) => encodeMessage({ type: m.hdr.type, flags: m.hdr.flags, seq: m.hdr.seq, pid: m.hdr.pid }, m.body)));
  const files: Array<[string, Buffer]> = [[`${name}.bin`, bin]];
  if (tcJson) files.push([`${name}.tc.json`, Buffer.from(JSON.stringify(tcJson, null, 1) + '\n')]);
  for (const [file, data] of files) {
    process.stdout.write(`@@fixture ${file} ${data.toString('base64')}\n`);
    try {
      writeFileSync(FIXTURES + file, data);
    } catch {
      // read-only repo in the lane: scripts/kernel-fixtures picks the @@fixture line up
    }
  }
}

if (process.env['TC_FLOWER_INNER'] === '1') {
  inner().then(
    () => {
      process.stdout.write(`# ${failures === 0 ? 'all checks passed' : `${failures} check(s) failed`}\n`);
      process.exitCode = failures === 0 ? 0 : 1;
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    },
  );
} else {
  if (process.getuid?.() !== 0) {
    process.stderr.write('tc-flower: needs root (netns, tc)\n');
    process.exit(1);
  }
  process.exitCode = outer();
}

/**
 * What cls_flower stores for a key we sent: a field sent without its mask gets an
 * all-ones mask (fl_set_key_val memsets the mask when the mask attribute is
 * absent), and with a VLAN match the dumped ETH_TYPE is the inner protocol
 * (fl_set_key stores vlan_ethtype in basic.n_proto).
 */
function kernelView(sent: FlowerKey): FlowerKey {
  const full: Array<[keyof FlowerKey, keyof FlowerKey, number | string]> = [
    ['ethDst', 'ethDstMask', 'ff:ff:ff:ff:ff:ff'],
    ['ethSrc', 'ethSrcMask', 'ff:ff:ff:ff:ff:ff'],
    ['ipv4Src', 'ipv4SrcMask', '255.255.255.255'],
    ['ipv4Dst', 'ipv4DstMask', '255.255.255.255'],
    ['tcpSrc', 'tcpSrcMask', 0xffff],
    ['tcpDst', 'tcpDstMask', 0xffff],
    ['udpSrc', 'udpSrcMask', 0xffff],
    ['udpDst', 'udpDstMask', 0xffff],
    ['sctpSrc', 'sctpSrcMask', 0xffff],
    ['sctpDst', 'sctpDstMask', 0xffff],
    ['icmpv4Type', 'icmpv4TypeMask', 0xff],
    ['icmpv4Code', 'icmpv4CodeMask', 0xff],
    ['ipTos', 'ipTosMask', 0xff],
    ['ipTtl', 'ipTtlMask', 0xff],
  ];
  const out: Record<string, unknown> = { ...sent };
  for (const [f, m, v] of full) if (out[f] !== undefined && out[m] === undefined) out[m] = v;
  if (sent.vlanId !== undefined && sent.vlanEthType !== undefined) out['ethType'] = sent.vlanEthType;
  return out as FlowerKey;
}
