// Host identity and certificate lifecycle on the lab: everything runs inside
// <p>-host1 (scripts/labkit/hostside.ts) against dpu1's real agent, whose TLS
// files (server key/cert, client CA, CRL) live in the lab PKI dir and are
// rewritten here while it runs. Each test FAILS if the attack works or a valid
// call fails. The tried/blocked/leaked tally is printed like api-attacks'.
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkConsistency, dpuHttpGet, dpuLeaseView, metricValue } from '../../scripts/labkit/consistency.ts';
import { HostSide, type CallReply } from '../../scripts/labkit/hostclient.ts';
import { ipn } from '../../scripts/labkit/netns.ts';
import { API_LINK_HOST_DEV, apiDpuIp, tunnelIp } from '../../scripts/labkit/plan.ts';
import { caPath, crlPath, makeLabCa, makeLabLeaf, pemPair, pkiDir, writeLabCrl } from '../../scripts/labkit/pki.ts';
import { addPod, dpuOf } from '../../scripts/labkit/pods.ts';
import { poll, sh } from '../../scripts/labkit/sh.ts';
import { keyOf, leakCount, lspOnlyPod, Tally } from '../helpers/attacks.ts';
import { labFor, labSkipReason } from '../helpers/lab.ts';

t.setTimeout(300_000);
const skip = await labSkipReason();
if (skip) {
  t.plan(0, skip);
} else {
  const run = await labFor(t, 'idsa', { dpus: 2, vfs: 4 });
  const d1 = dpuOf(run, 1);
  const { pod: victim } = await addPod(run, { namespace: 'ids', name: 'victim' }, { node: 1 });
  const hs = await HostSide.start(run, d1);
  t.teardown(() => hs.close());
  const tally = new Tally();
  const metrics = async (): Promise<string> => (await dpuHttpGet(d1, '/metrics')).body;
  const m = async (name: string, labels: Record<string, string> = {}): Promise<number> => metricValue(await metrics(), name, labels) ?? 0;
  const victimLease = async () => [...(await dpuLeaseView(d1)).leases.entries()].find(([, e]) => e.get('iface-id') === victim.lsp);
  const lease0 = await victimLease();

  t.test("another host's valid cert (host2 on dpu1): every RPC refused wrong-host, nothing leased", async (t) => {
    const free = await lspOnlyPod(run, { namespace: 'ids', name: 'free' }, '198.18.111.1', 1);
    const before = await m('dpu_host_api_rejected_total', { reason: 'wrong-host' });
    const as = { as: 'host2' };
    const r: CallReply[] = [
      await hs.allocate(keyOf(free), as),
      await hs.allocate(keyOf(victim), as),
      await hs.release(keyOf(victim), as),
      await hs.call('getVf', { attachment: keyOf(victim) }, as),
      await hs.call('listVfs', { collectGarbage: true, validAttachments: [] }, as),
      await hs.call('status', {}, as),
    ];
    const refused = r.filter((x) => !x.ok && x.code === 'PermissionDenied' && x.reason === 'wrong-host').length;
    t.equal(refused, r.length, `all ${r.length}: ${r.map((x) => (x.ok ? 'OK' : `${x.code}/${x.reason}`)).join(', ')}`);
    t.equal((await m('dpu_host_api_rejected_total', { reason: 'wrong-host' })) - before, r.length, 'each counted on dpu1');
    t.same((await victimLease())?.[0], lease0?.[0], 'the victim keeps its VF');
    const leaked = await leakCount(run);
    t.equal(leaked, 0, 'nothing leased for host2');
    t.equal((await hs.call('status', {})).ok, true, 'host1 still served');
    tally.add("another host's valid cert, every RPC", r.length, refused, leaked);
  });

  t.test('revocation: the CRL file changes → the open session of the revoked cert is closed, new handshakes refused', async (t) => {
    await makeLabLeaf(run, 'host1-old', 'host1');
    const held = hs.send({ op: 'hold', as: 'host1-old', maxMs: 20_000 }, 40_000);
    await poll('the held session', async () => ((await m('dpu_host_api_requests_total', { method: 'Status', code: 'ok' })) > 0 ? true : undefined), { tries: 50, intervalMs: 100 });
    await new Promise((r) => setTimeout(r, 500));
    await writeLabCrl(run, crlPath(run), ['host1-old']);
    const h = await held;
    t.equal(h['firstGrpcStatus'], 0, 'before: the cert was accepted');
    t.equal(h['closedByServer'], true, `the open session closed ${Math.round(Number(h['afterMs']))} ms after the hold began`);
    const again = await hs.send({ op: 'tls', as: 'host1-old' });
    t.not(again['outcome'], 'still open', `new handshake with the revoked cert: ${again['outcome']}`);
    const call = await hs.call('status', {}, { as: 'host1-old', timeoutMs: 5000 });
    t.notOk(call.ok, `a call with it: ${call.code}`);
    t.equal((await hs.call('status', {})).ok, true, "host1's current cert still served");
    t.ok((await m('dpu_host_api_sessions_closed_total', { reason: 'cert-revoked' })) >= 1, 'counted');
    tally.add('revoked cert (CRL changed)', 3, [h['closedByServer'] === true, again['outcome'] !== 'still open', !call.ok].filter(Boolean).length, await leakCount(run));
  });

  t.test('rotation of the CA and the server cert under 50 concurrent valid calls: no failed call', async (t) => {
    const dir = pkiDir(run);
    await makeLabCa(run, 'ca2');
    await makeLabLeaf(run, 'dpu1-server2', 'dpu1', { ca: 'ca2', serverIp: apiDpuIp(1) });
    const crl2 = join(dir, 'ca2.crl');
    await writeLabCrl(run, crl2, [], 'ca2');
    const reloads0 = await m('dpu_host_api_tls_reloads_total', { result: 'ok' });
    const loadP = hs.send({ op: 'load', as: 'host1', concurrency: 50, durationMs: 12_000 }, 60_000);
    await new Promise((r) => setTimeout(r, 2000));
    // Step 1: both sides trust old + new CA (the CRL file carries a CRL for each).
    const bundle = Buffer.concat([readFileSync(caPath(run)), readFileSync(join(dir, 'ca2.crt'))]);
    writeFileSync(crlPath(run), Buffer.concat([readFileSync(crlPath(run)), readFileSync(crl2)]));
    writeFileSync(caPath(run), bundle);
    await poll('the bundle applied on dpu1', async () => ((await m('dpu_host_api_tls_reloads_total', { result: 'ok' })) > reloads0 ? true : undefined), { tries: 50, intervalMs: 200 });
    await new Promise((r) => setTimeout(r, 2000));
    // Step 2: dpu1's server cert from the new CA.
    const srv = pemPair(run, 'dpu1-server');
    const srv2 = pemPair(run, 'dpu1-server2');
    writeFileSync(srv.key, readFileSync(srv2.key));
    writeFileSync(srv.cert, readFileSync(srv2.cert));
    await poll('the server cert applied', async () => ((await m('dpu_host_api_tls_reloads_total', { result: 'ok' })) > reloads0 + 1 ? true : undefined), { tries: 50, intervalMs: 200 });
    const r = await loadP;
    t.equal(r['failed'], 0, `${r['calls']} calls from 50 clients over the rotation, failed: ${JSON.stringify(r['failures'])}`);
    const fresh = await hs.send({ op: 'tls', as: 'host1' });
    t.equal(fresh['outcome'], 'still open', 'new handshakes (new server cert) accepted by the host');
    tally.add('CA + server cert rotation under 50 concurrent calls', 1, r['failed'] === 0 && Number(r['calls']) > 0 ? 1 : 0, await leakCount(run));
  });

  t.test('a corrupt new server cert file: the old material keeps serving', async (t) => {
    const srv = pemPair(run, 'dpu1-server');
    const good = readFileSync(srv.cert);
    const errors0 = await m('dpu_host_api_tls_reloads_total', { result: 'error' });
    writeFileSync(srv.cert, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    await poll('the refusal counted', async () => ((await m('dpu_host_api_tls_reloads_total', { result: 'error' })) > errors0 ? true : undefined), { tries: 50, intervalMs: 200 });
    const tls = await hs.send({ op: 'tls', as: 'host1' });
    const call = await hs.call('status', {});
    t.equal(tls['outcome'], 'still open', 'a new handshake works (old material)');
    t.ok(call.ok, 'calls served');
    writeFileSync(srv.cert, good);
    tally.add('corrupt new cert file', 1, tls['outcome'] === 'still open' && call.ok ? 1 : 0, await leakCount(run));
  });

  t.test("a session the server GOAWAYed (protocol error) is closed even while the peer keeps writing", async (t) => {
    const r = await hs.send({ op: 'goaway', as: 'host1', maxMs: 15_000 }, 30_000);
    t.equal(r['closedByServer'], true, `closed after ${Math.round(Number(r['afterMs']))} ms (lab keepalivePingMs 2000)`);
    tally.add("GOAWAY'd session kept open by the peer", 1, r['closedByServer'] === true ? 1 : 0, 0);
  });

  t.test('the API link answers ARP only for the API address', async (t) => {
    const h = d1.hostNs;
    // A root tenant points the tunnel IP at the API link and asks who has it.
    await ipn(h, 'route', 'replace', `${tunnelIp(1)}/32`, 'dev', API_LINK_HOST_DEV);
    let neigh = '';
    try {
      await sh(['ip', 'netns', 'exec', h, 'ping', '-c', '2', '-i', '0.3', '-W', '1', tunnelIp(1)]).catch(() => undefined);
      neigh = await ipn(h, 'neigh', 'show', tunnelIp(1), 'dev', API_LINK_HOST_DEV);
    } finally {
      await ipn(h, 'route', 'del', `${tunnelIp(1)}/32`).catch(() => undefined);
    }
    t.notMatch(neigh, /lladdr/, `no ARP answer for the tunnel IP on the API link (${neigh.trim() || 'no entry'})`);
    const api = await ipn(h, 'neigh', 'show', apiDpuIp(1), 'dev', API_LINK_HOST_DEV);
    t.match(api, /lladdr|^$/, 'the API address itself still resolves');
    tally.add('ARP for the tunnel IP on the API link', 1, /lladdr/.test(neigh) ? 0 : 1, 0);
  });

  t.test('after all: consistent, the victim still holds its VF', async (t) => {
    t.same((await victimLease())?.[0], lease0?.[0]);
    t.same((await checkConsistency(run)).problems, []);
    const tot = tally.totals;
    t.comment(`\n${tally.table()}`);
    t.comment(JSON.stringify({ security: 'identity', ...tot, rows: tally.rows }));
    t.equal(tot.blocked, tot.tried, `every attack blocked, every valid call served (${tot.blocked}/${tot.tried})`);
    t.equal(tot.leaked, 0, 'nothing leaked');
  });
}
