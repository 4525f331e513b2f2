// Attacks on the host API from an untrusted host, on the lab: everything runs
// inside <p>-host1 (scripts/labkit/hostside.ts), with host1's valid client cert
// unless stated, against dpu1's real agent. Each test FAILS if the attack works.
// After all of them: the agent is alive (/healthz from the DPU side) and the pool
// and OVSDB are consistent (scripts/labkit/consistency.ts). The tried/blocked/leaked
// tally is printed as a comment and one JSON line.
import t from 'tap';
import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { Code } from '@connectrpc/connect';
import { WIRE_CODES, type WireReason } from '../../contract/reasons.ts';
import { checkConsistency, dpuLeaseView } from '../../scripts/labkit/consistency.ts';
import { HostSide, type CallReply } from '../../scripts/labkit/hostclient.ts';
import { ipn } from '../../scripts/labkit/netns.ts';
import { API_PORT, apiDpuIp, centralIp, METRICS_PORT, NB_PORT, sbClientPort, sbRaftPort, tunnelIp } from '../../scripts/labkit/plan.ts';
import { addPod, controlPlane, dpuOf } from '../../scripts/labkit/pods.ts';
import { ping } from '../../scripts/labkit/probe.ts';
import { keyOf, leakCount, lspOnlyPod, Tally } from '../helpers/attacks.ts';
import { labFor, labSkipReason } from '../helpers/lab.ts';

t.setTimeout(300_000);
const skip = await labSkipReason();
if (skip) {
  t.plan(0, skip);
} else {
  const run = await labFor(t, 'dpsa', { dpus: 2, vfs: 8 });
  const d1 = dpuOf(run, 1);
  const { pod: victim } = await addPod(run, { namespace: 'sec', name: 'victim' }, { node: 1 });
  const { pod: peer } = await addPod(run, { namespace: 'sec', name: 'peer' }, { node: 2 });
  const hs = await HostSide.start(run, d1);
  t.teardown(() => hs.close());
  const tally = new Tally();
  const refused = (r: CallReply, reason: WireReason): boolean => !r.ok && r.code === Code[WIRE_CODES[reason]] && r.reason === reason;
  const victimLease = async () => [...(await dpuLeaseView(d1)).leases.entries()].find(([, e]) => e.get('iface-id') === victim.lsp);
  const lease0 = await victimLease();

  t.test('allocate for a pod that does not exist → pod-not-found, nothing plugged', async (t) => {
    const ghost = await hs.allocate({ pod: { namespace: 'sec', name: 'ghost', uid: randomUUID() }, sandboxId: 'evil-1', ifname: 'eth0' });
    const net1 = await hs.allocate(keyOf(victim, { ifname: 'net1' }));
    t.ok(refused(ghost, 'pod-not-found'), `ghost pod: ${ghost.code} ${ghost.reason}`);
    t.ok(refused(net1, 'pod-not-found'), `second interface with no LSP: ${net1.code} ${net1.reason}`);
    const leaked = await leakCount(run);
    t.equal(leaked, 0, 'no lease, no port');
    tally.add('allocate: pod does not exist', 2, [ghost, net1].filter((r) => !r.ok).length, leaked);
  });

  t.test('allocate for a pod bound to another chassis → pod-not-on-this-chassis', async (t) => {
    const remote = await lspOnlyPod(run, { namespace: 'sec', name: 'remote' }, '198.18.101.1', 2);
    const r = await hs.allocate(keyOf(remote));
    t.ok(refused(r, 'pod-not-on-this-chassis'), `${r.code} ${r.reason}`);
    const leaked = await leakCount(run);
    t.equal(leaked, 0);
    tally.add('allocate: pod on another chassis', 1, r.ok ? 0 : 1, leaked);
    await controlPlane(run).delLsp(remote.lsp);
  });

  t.test("another pod's attachment: other sandbox, other uid, other host → refused; the victim keeps its VF", async (t) => {
    const otherSandbox = await hs.allocate(keyOf(victim, { sandboxId: 'attacker-sandbox' }));
    const otherUid = await hs.allocate(keyOf(victim, { pod: { namespace: victim.namespace, name: victim.name, uid: randomUUID() } }));
    const otherHost = await hs.allocate(keyOf(victim), { as: 'host2' });
    t.ok(refused(otherSandbox, 'sandbox-conflict'), `other sandbox: ${otherSandbox.code} ${otherSandbox.reason}`);
    t.ok(!otherUid.ok && ['pod-uid-mismatch', 'sandbox-conflict'].includes(String(otherUid.reason)), `other uid: ${otherUid.code} ${otherUid.reason}`);
    t.ok(refused(otherHost, 'wrong-host'), `host2's cert (dpu1 serves host1 only): ${otherHost.code} ${otherHost.reason}`);
    const l = await victimLease();
    t.same(l?.[0], lease0?.[0], 'same representor');
    t.equal(l?.[1].get('dpu-agent/sandbox'), victim.sandbox, 'same sandbox');
    t.equal((await ping(victim, peer.ip, { count: 2 })).received, 2, 'the victim still reaches its peer');
    const leaked = await leakCount(run);
    tally.add('allocate: another pod\'s attachment', 3, [otherSandbox, otherUid, otherHost].filter((r) => !r.ok).length, leaked);
  });

  t.test("release someone else's VF (host2's cert against dpu1) → not-owner, nothing released", async (t) => {
    const byHost2 = await hs.release(keyOf(victim), { as: 'host2' });
    const wrongSandbox = await hs.release(keyOf(victim, { sandboxId: 'attacker-sandbox' }));
    const notReleased = (r: CallReply) => !r.ok || r.res?.['released'] !== true;
    t.ok(notReleased(byHost2), `host2: ${byHost2.ok ? JSON.stringify(byHost2.res) : `${byHost2.code} ${byHost2.reason}`}`);
    t.ok(notReleased(wrongSandbox), `wrong sandbox: ${wrongSandbox.ok ? JSON.stringify(wrongSandbox.res) : `${wrongSandbox.code} ${wrongSandbox.reason}`}`);
    t.same((await victimLease())?.[0], lease0?.[0], 'the victim still holds its VF');
    t.equal((await ping(victim, peer.ip, { count: 2 })).received, 2, 'and traffic');
    tally.add("release: someone else's VF", 2, [byHost2, wrongSandbox].filter(notReleased).length, await leakCount(run));
  });

  t.test('exhaust the pool → vf-pool-empty; the victim and the other DPU are unaffected; all released after', async (t) => {
    const free = d1.vfs - 1;
    const extra = 3;
    const fill = await Promise.all(Array.from({ length: free + extra }, (_, i) => lspOnlyPod(run, { namespace: 'sec', name: `fill${i}` }, `198.18.102.${i + 1}`, 1)));
    const got: CallReply[] = [];
    for (const p of fill) got.push(await hs.allocate(keyOf(p)));
    const ok = got.filter((r) => r.ok).length;
    const empty = got.filter((r) => refused(r, 'vf-pool-empty')).length;
    t.equal(ok, free, `${free} free VFs handed out`);
    t.equal(empty, extra, `${extra} more refused with vf-pool-empty`);
    const st = await hs.call('status', {});
    // A full pool is not "network not ready" (that would mark the node NotReady): Status reports 0 free.
    t.ok(st.ok && Number(st.res?.['vfsFree'] ?? 0) === 0, `Status reports no free VF: ${JSON.stringify(st.res)}`);
    t.equal((await ping(victim, peer.ip, { count: 2 })).received, 2, 'the victim still has traffic');
    const rel = await Promise.all(fill.map((p) => hs.release(keyOf(p))));
    t.equal(rel.filter((r) => r.ok && r.res?.['released'] === true).length, free, 'every filler released');
    for (const p of fill) await controlPlane(run).delLsp(p.lsp);
    const leaked = await leakCount(run);
    t.equal(leaked, 0, 'no lease left');
    t.same((await checkConsistency(run)).problems, [], 'consistent after the flood');
    tally.add('exhaust the pool', extra, empty, leaked);
  });

  t.test('oversized and malformed protobuf → RESOURCE_EXHAUSTED / INVALID_ARGUMENT; still serving', async (t) => {
    const path = '/dpu.v1.HostService/AllocateVf';
    const big = await hs.send({ op: 'raw', path, bodyHex: Buffer.alloc(300 * 1024, 0x0a).toString('hex') });
    const claim = await hs.send({ op: 'raw', path, bodyHex: '', claimLength: 100 * 1024 * 1024, timeoutMs: 8000 });
    const garbage = await hs.send({ op: 'raw', path, bodyHex: 'ffffffff0f0a' });
    const truncated = await hs.send({ op: 'raw', path, bodyHex: '0a5001' });
    const connect = await hs.send({ op: 'raw', path, bodyHex: 'ffffffff0f0a', frame: false, contentType: 'application/proto' });
    t.equal(big['grpcStatus'], 8, '300 KiB message: RESOURCE_EXHAUSTED');
    t.equal(claim['grpcStatus'], 8, 'a frame claiming 100 MiB: RESOURCE_EXHAUSTED without reading it');
    t.equal(garbage['grpcStatus'], 3, 'undecodable: INVALID_ARGUMENT');
    t.equal(truncated['grpcStatus'], 3, 'truncated submessage: INVALID_ARGUMENT');
    t.equal(connect['http'], 400, 'Connect protocol, undecodable: HTTP 400');
    let fuzzBad = 0;
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), async (bytes) => {
        runs++;
        const r = await hs.send({ op: 'raw', path, bodyHex: Buffer.from(bytes).toString('hex') });
        // Random bytes may decode as a valid (empty-ish) request: then it is INVALID_ARGUMENT
        // from validation. Anything but a clean status (or OK) is a finding.
        const ok = r['grpcStatus'] === 3 || r['grpcStatus'] === 8;
        if (!ok) fuzzBad++;
        return ok;
      }),
      { numRuns: 200 },
    );
    t.equal(fuzzBad, 0, `${runs} random bodies: all refused cleanly`);
    t.equal((await hs.call('status', {})).ok, true, 'still serving');
    const leaked = await leakCount(run);
    tally.add('oversized / malformed protobuf', 5 + runs, [big['grpcStatus'] === 8, claim['grpcStatus'] === 8, garbage['grpcStatus'] === 3, truncated['grpcStatus'] === 3, connect['http'] === 400].filter(Boolean).length + runs - fuzzBad, leaked);
  });

  t.test('slowloris: silent HTTP/2 streams are closed by the server; others still served', async (t) => {
    const streams = 16;
    const slow = hs.send({ op: 'slowloris', streams, holdMs: 15_000 }, 30_000);
    await new Promise((r) => setTimeout(r, 500));
    const meanwhile = await hs.call('status', {}, { as: 'host1' });
    t.ok(meanwhile.ok, 'another call is served while the streams hang');
    const r = await slow;
    t.equal(r['closedByServer'], streams, `all ${streams} silent streams closed by the server (rst ${JSON.stringify(r['rstCodes'])}, after ≤ ${Math.round(Number(r['maxMs']))} ms)`);
    t.ok((await hs.call('status', {})).ok, 'and the same host can still call');
    tally.add('slowloris', 1, r['closedByServer'] === streams ? 1 : 0, await leakCount(run));
  });

  t.test('TLS: no client cert, a cert from another CA, TLS 1.2 → refused', async (t) => {
    const none = await hs.send({ op: 'tls', as: 'none' });
    const rogue = await hs.send({ op: 'tls', as: 'rogue' });
    const tls12 = await hs.send({ op: 'tls', as: 'host1', maxVersion: 'TLSv1.2' });
    const good = await hs.send({ op: 'tls', as: 'host1' });
    const rogueCall = await hs.call('allocateVf', { attachment: keyOf(victim) }, { as: 'rogue', timeoutMs: 5000 });
    const noneCall = await hs.call('status', {}, { as: 'none', timeoutMs: 5000 });
    t.not(none['outcome'], 'still open', `no client cert: ${none['outcome']}`);
    t.not(rogue['outcome'], 'still open', `rogue CA (CN=host1): ${rogue['outcome']}`);
    t.match(String(tls12['outcome']), /error/, `TLS 1.2: ${tls12['outcome']}`);
    t.equal(good['outcome'], 'still open', 'control: host1, TLS 1.3 accepted');
    t.notOk(rogueCall.ok, `gRPC with the rogue cert: ${rogueCall.code}`);
    t.notOk(noneCall.ok, `gRPC without a cert: ${noneCall.code}`);
    const blocked = [none['outcome'] !== 'still open', rogue['outcome'] !== 'still open', /error/.test(String(tls12['outcome'])), !rogueCall.ok, !noneCall.ok].filter(Boolean).length;
    tally.add('TLS: no cert / other CA / TLS 1.2', 5, blocked, await leakCount(run));
  });

  t.test('the host reaches no DPU port but the API: OVSDB, OVN NB/SB, metrics, anything else', async (t) => {
    const ports = [22, 80, 443, 2379, 6640, 6641, 6642, 6643, 6644, sbClientPort(1), sbRaftPort(1), 8080, 9090, 9100, METRICS_PORT, 10250, API_PORT, API_PORT + 1];
    const direct = await hs.send({ op: 'scan', hosts: [apiDpuIp(1)], ports, timeoutMs: 300 });
    const results = direct['results'] as { host: string; port: number; result: string }[];
    const open = results.filter((r) => r.result === 'open');
    t.same(open.map((r) => `${r.host}:${r.port}`), [`${apiDpuIp(1)}:${API_PORT}`], `only the API port answers on ${apiDpuIp(1)}`);
    // A root tenant can route anything at the DPU: the underlay, the central's NB/SB, the other DPU's API.
    const h = d1.hostNs;
    const routes = ['100.64.0.0/24', `${apiDpuIp(2)}/32`, '127.0.0.0/8'];
    for (const r of routes) await ipn(h, 'route', 'replace', r, 'via', apiDpuIp(1)).catch(() => undefined);
    let routed: { host: string; port: number; result: string }[] = [];
    try {
      const via = await hs.send({ op: 'scan', hosts: [centralIp(), tunnelIp(1), tunnelIp(2), apiDpuIp(2)], ports: [...ports, NB_PORT], timeoutMs: 300 }, 60_000);
      routed = via['results'] as typeof routed;
    } finally {
      for (const r of routes) await ipn(h, 'route', 'del', r).catch(() => undefined);
    }
    const routedOpen = routed.filter((r) => r.result === 'open');
    t.same(routedOpen, [], `nothing behind the API link answers (${routed.length} host:port tried with routes through dpu1)`);
    const tried = results.length - 1 + routed.length;
    tally.add('reach OVSDB / OVN / metrics / other ports', tried, tried - (open.length - 1) - routedOpen.length, await leakCount(run));
  });

  t.test('fast-check: random values in every request field against the real agent', async (t) => {
    const str = (good: fc.Arbitrary<string>) =>
      fc.oneof({ arbitrary: good, weight: 4 }, { arbitrary: fc.string({ maxLength: 70 }), weight: 1 }, { arbitrary: fc.string({ unit: 'binary', maxLength: 300 }), weight: 1 });
    const arb = fc.record({
      namespace: str(fc.constantFrom('sec', 'default', 'kube-system')),
      name: str(fc.constantFrom('victim', 'peer', 'ghost', 'web-0')),
      uid: str(fc.oneof(fc.uuid(), fc.constant(victim.uid))),
      sandboxId: str(fc.oneof(fc.stringMatching(/^[A-Za-z0-9_.-]{1,40}$/), fc.constant(victim.sandbox))),
      ifname: str(fc.constantFrom('eth0', 'net1', 'eth0 ', '../x')),
      op: fc.constantFrom('allocateVf', 'releaseVf', 'getVf'),
      as: fc.constantFrom('host1', 'host1', 'host2'),
    });
    const bad: string[] = [];
    let runs = 0;
    let refusedN = 0;
    await fc.assert(
      fc.asyncProperty(arb, async (v) => {
        runs++;
        const attachment = { pod: { namespace: v.namespace, name: v.name, uid: v.uid }, sandboxId: v.sandboxId, ifname: v.ifname };
        const isVictim = v.namespace === victim.namespace && v.name === victim.name && v.uid === victim.uid && v.sandboxId === victim.sandbox && v.ifname === 'eth0' && v.as === 'host1';
        // Only the victim's own key, with its own cert, may succeed (idempotent allocate / get).
        // Its release would legitimately succeed too (the owner asking): that one is not sent.
        if (v.op === 'releaseVf' && isVictim) return true;
        const r = await hs.call(v.op, { attachment }, { as: v.as, timeoutMs: 15_000 });
        const succeeded = r.ok && (v.op !== 'releaseVf' || r.res?.['released'] === true);
        const clean = !r.ok ? !['Internal', 'Unknown', 'Unavailable'].includes(String(r.code)) : true;
        if (!succeeded || isVictim) refusedN += succeeded ? 0 : 1;
        if ((succeeded && !isVictim) || !clean) bad.push(`${v.op} ${JSON.stringify(attachment)} as ${v.as} → ${r.ok ? JSON.stringify(r.res) : `${r.code} ${r.reason}`}`);
        return (!succeeded || isVictim) && clean;
      }),
      {
        numRuns: 200,
        // Near misses of the victim's key always run (random runs reach them rarely):
        // one field off, each operation, from the victim's own host.
        examples: (['releaseVf', 'allocateVf', 'getVf'] as const).flatMap((op) =>
          [
            { uid: '6f1d2c3b-0000-1000-8000-000000000001' },
            { sandboxId: `${victim.sandbox}x` },
            { ifname: 'net1' },
            { namespace: 'default' },
          ].map((off) => [{ namespace: victim.namespace, name: victim.name, uid: victim.uid, sandboxId: victim.sandbox, ifname: 'eth0', op, as: 'host1' as const, ...off }] as [typeof arb extends fc.Arbitrary<infer T> ? T : never]),
        ),
      },
    );
    t.same(bad.slice(0, 5), [], `${runs} random requests: none succeeded for a key it should not, none failed uncleanly`);
    t.same((await victimLease())?.[0], lease0?.[0], 'the victim still holds its VF');
    const leaked = await leakCount(run);
    t.equal(leaked, 0);
    tally.add('fuzz: every request field (200 runs)', runs, runs - bad.length, leaked);
  });

  t.test('after all attacks: agents alive, pool and OVSDB consistent, victim still served', async (t) => {
    const rep = await checkConsistency(run);
    t.same(rep.problems, [], `consistent: ${JSON.stringify(rep.perDpu)}`);
    t.ok(rep.perDpu.every((p) => p.healthz === 200), '/healthz 200 on every DPU (from the DPU side)');
    t.equal((await ping(victim, peer.ip, { count: 2 })).received, 2, 'the victim still has traffic');
    const tot = tally.totals;
    t.comment(`\n${tally.table()}`);
    t.comment(JSON.stringify({ security: 'api', ...tot, rows: tally.rows }));
    t.equal(tot.blocked, tot.tried, `every attack blocked (${tot.blocked}/${tot.tried})`);
    t.equal(tot.leaked, 0, 'nothing leaked');
  });

}
