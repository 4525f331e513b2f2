import t, { type Test } from 'tap';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { connect as h2connect } from 'node:http2';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createGrpcTransport, Http2SessionManager } from '@connectrpc/connect-node';
import { tlsConnector, watchTlsFiles } from '../../contract/tls-files.ts';
import { certNames, crlSignedBy, parseCertBundle, parseCrlFile } from '../../dpu-agent/src/api/der.ts';
import { reasonOf } from '../../contract/reasons.ts';
import { HostService } from '../../contract/gen/dpu/v1/host_pb.ts';
import { startHostApi, type HostApiHarness } from '../helpers/host-api.ts';
import { issueCa, issueLeaf, type KeyPair, makeCrl, makePki, type Pki, serialOf } from '../helpers/pki.ts';

// The host API's identity rule and TLS file handling over real sockets on
// 127.0.0.1: one accepted host (wrong-host for any other), CRL checked on every
// handshake and applied to open sessions, server cert / CA rotation under load,
// a bad new file keeps the old material, dead (GOAWAY'd) sessions closed, and
// true labels for failures that never reach a handler.

const UID = '1b4e28ba-2fa1-11d2-883f-0016d3cca427';
const key = (over: Record<string, unknown> = {}) => ({ pod: { namespace: 'default', name: 'web-0', uid: UID }, sandboxId: 'sandbox-1', ifname: 'eth0', ...over });

let pki: Pki;
t.before(async () => {
  pki = await makePki();
});
t.teardown(() => pki.cleanup());

/** A copy of the server's TLS files the test may rewrite, and a harness on them. */
async function harness(t: Test, opts: Parameters<typeof startHostApi>[1] = {}): Promise<HostApiHarness & { files: { key: string; cert: string; ca: string; crl: string } }> {
  const tag = Math.random().toString(36).slice(2, 8);
  const files = { key: join(pki.dir, `srv-${tag}.key`), cert: join(pki.dir, `srv-${tag}.crt`), ca: join(pki.dir, `ca-${tag}.crt`), crl: join(pki.dir, `ca-${tag}.crl`) };
  await copyFile(pki.server.keyPath, files.key);
  await copyFile(pki.server.certPath, files.cert);
  await copyFile(pki.caPath, files.ca);
  await makeCrl(pki, files.crl);
  const h = await startHostApi(pki, { ...opts, tls: { key: files.key, cert: files.cert, clientCa: files.ca, crl: files.crl, reloadPollMs: 200, ...opts.tls } });
  t.teardown(() => h.close());
  return { ...h, files };
}

async function callError(p: Promise<unknown>): Promise<ConnectError | undefined> {
  return p.then(() => undefined, (e: unknown) => ConnectError.from(e));
}

async function metric(h: HostApiHarness, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await h.metrics.registry.getSingleMetric(name)?.get();
  return m?.values.find((x) => Object.entries(labels).every(([k, v]) => x.labels[k] === v))?.value ?? 0;
}

const waitFor = async (what: string, fn: () => Promise<boolean> | boolean, ms = 20_000): Promise<number> => {
  const t0 = Date.now();
  while (!(await fn())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - t0;
};

/** A raw HTTP/2 session as `id` (destroyed at teardown); `closed` resolves when it closes, with how long it lived. */
function heldSession(t: Test, h: HostApiHarness, id: KeyPair, ca: Buffer = pki.ca): { ready: Promise<void>; closed: Promise<number> } {
  const t0 = Date.now();
  const s = h2connect(h.url, { ca, key: id.key, cert: id.cert });
  s.on('error', () => undefined);
  t.teardown(() => s.destroy());
  const ready = new Promise<void>((resolve) => s.once('remoteSettings', () => resolve()));
  const closed = new Promise<number>((resolve) => s.once('close', () => resolve(Date.now() - t0)));
  return { ready, closed };
}

t.test('identity rule: only the configured host; CN, system:node:<name> and the URI SAN', async (t) => {
  const h = await harness(t, { peer: { identity: 'host1' } });
  const host2 = h.grpc(pki.host2);
  const calls = [
    host2.allocateVf({ attachment: key() }),
    host2.releaseVf({ attachment: key() }),
    host2.getVf({ attachment: key() }),
    host2.listVfs({ collectGarbage: true }),
    host2.status({}),
  ];
  const errs = await Promise.all(calls.map(callError));
  t.ok(errs.every((e) => e?.code === Code.PermissionDenied && reasonOf(e) === 'wrong-host'), `every RPC of another host's valid cert: ${errs.map((e) => e && `${Code[e.code]}/${reasonOf(e)}`).join(', ')}`);
  t.equal(h.pool.calls.length, 0, 'the pool never saw them: nothing leased, released or collected');
  t.equal(await metric(h, 'dpu_host_api_rejected_total', { reason: 'wrong-host' }), 5, 'each counted');
  t.equal(await metric(h, 'dpu_host_api_requests_total', { method: 'Status', code: 'permission_denied' }), 1);
  t.equal(await metric(h, 'dpu_host_last_seen_timestamp_seconds', { host: 'host2' }), 0, 'a wrong host is not "seen" (liveness is the served host only)');

  const node = await issueLeaf(pki, 'node-host1', { subj: '/O=system:nodes/CN=system:node:host1' });
  t.equal((await h.grpc(node).status({})).ready, true, 'CSR API style CN=system:node:host1 is host1');
  await h.grpc(node).allocateVf({ attachment: key() });
  t.equal(h.pool.calls.at(-1)?.peer, 'host1', 'and leases are recorded under the node name');
  const nodeOther = await issueLeaf(pki, 'node-host2', { subj: '/O=system:nodes/CN=system:node:host2' });
  t.equal(reasonOf((await callError(h.grpc(nodeOther).status({})))!), 'wrong-host');

  const hu = await harness(t, { peer: { identity: 'host1', uri: 'spiffe://cluster.local/node/host1' } });
  const withUri = await issueLeaf(pki, 'uri-host1', { subj: '/CN=host1', san: 'URI:spiffe://cluster.local/node/host1' });
  const wrongUri = await issueLeaf(pki, 'uri-host1b', { subj: '/CN=host1', san: 'URI:spiffe://cluster.local/node/host2' });
  t.equal((await hu.grpc(withUri).status({})).ready, true, 'api.peer.uri set: CN and URI SAN match');
  t.equal(reasonOf((await callError(hu.grpc(wrongUri).status({})))!), 'wrong-host', 'other URI SAN: refused');
  t.equal(reasonOf((await callError(hu.grpc(pki.host1).status({})))!), 'wrong-host', 'no URI SAN: refused');
});

t.test('leases of a host no longer accepted are reported, not silently kept', async (t) => {
  const h = await harness(t);
  await h.pool.allocate(key(), 'host2');
  t.equal(await metric(h, 'dpu_host_api_unaccepted_leases'), 1, 'dpu_host_api_unaccepted_leases 1');
  const e = await callError(h.grpc().getVf({ attachment: key() }));
  t.equal(e?.code, Code.PermissionDenied);
  t.equal(reasonOf(e!), 'not-owner', 'GetVf from the served host: held by another (not lease-not-found)');
  const none = await callError(h.grpc().getVf({ attachment: key({ ifname: 'net1' }) }));
  t.equal(reasonOf(none!), 'lease-not-found', 'other keys: unchanged');
});

t.test('CRL: a revoked cert is refused after the CRL file changes, and its open session is closed', async (t) => {
  const h = await harness(t);
  const victim = await issueLeaf(pki, 'host1-old', { subj: '/CN=host1' });
  t.equal((await h.grpc(victim).status({})).ready, true, 'before: accepted');
  const held = heldSession(t, h, victim);
  await held.ready;
  const other = heldSession(t, h, pki.host1);
  await other.ready;
  const t0 = Date.now();
  await makeCrl(pki, h.files.crl, [victim.certPath], { der: true });
  const lived = await held.closed;
  t.ok(Date.now() - t0 < 3000, `open session of the revoked cert closed ${Date.now() - t0} ms after the CRL changed (DER CRL)`);
  t.ok(lived > 0);
  t.ok((await callError(h.grpc(victim).status({}))) !== undefined, 'a new handshake with it is refused');
  t.equal((await h.grpc(pki.host1).status({})).ready, true, "host1's other cert still served");
  t.ok((await metric(h, 'dpu_host_api_sessions_closed_total', { reason: 'cert-revoked' })) >= 1, 'counted');
  const race = await Promise.race([other.closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('open'), 300))]);
  t.equal(race, 'open', 'a session of a good cert stays open');
});

t.test('rotation of the server cert and the CA under 50 concurrent calls: no failed call', async (t) => {
  const h = await harness(t, { limits: { ratePerSecond: 10_000, rateBurst: 100_000, maxConcurrentPerPeer: 1000, maxConnectionsPerPeer: 200 } });
  const ca2 = await issueCa(pki, `ca2-${Date.now()}`);
  const ca2Name = ca2.replace(/^.*\//, '').replace(/\.crt$/, '');
  const srv2 = await issueLeaf(pki, 'server2', { subj: '/CN=dpu-agent', ca: ca2Name, server: true });
  const host1b = await issueLeaf(pki, 'host1-ca2', { subj: '/CN=host1', ca: ca2Name });
  const bundle = Buffer.concat([await readFile(pki.caPath), await readFile(ca2)]);
  // The clients trust both CAs (the host side gets the new CA first) and follow their cert files.
  const clientFiles = { key: join(pki.dir, 'rot-client.key'), cert: join(pki.dir, 'rot-client.crt'), ca: join(pki.dir, 'rot-client-ca.crt') };
  await copyFile(pki.host1.keyPath, clientFiles.key);
  await copyFile(pki.host1.certPath, clientFiles.cert);
  await writeFile(clientFiles.ca, bundle);
  const w = await watchTlsFiles({ paths: clientFiles, build: (f) => f, debounceMs: 20, pollMs: 200 });
  t.teardown(() => w.close());
  const clients = Array.from({ length: 50 }, () => {
    const sm = new Http2SessionManager(h.url, {}, { createConnection: tlsConnector(() => w.current) });
    t.teardown(() => sm.abort());
    return createClient(HostService, createGrpcTransport({ baseUrl: h.url, sessionManager: sm }));
  });
  let stop = false;
  let ok = 0;
  const failures: string[] = [];
  const workers = clients.map(async (c) => {
    while (!stop) {
      try {
        await c.status({});
        ok++;
      } catch (e) {
        failures.push(String(e));
      }
    }
  });
  await waitFor('calls flowing', () => ok > 100);
  // The new CA comes with its CRL (every CA in the bundle needs one once a CRL is configured).
  const crl2 = join(pki.dir, `${ca2Name}.crl`);
  await makeCrl(pki, crl2, [], { ca: ca2Name });
  const crls = Buffer.concat([await readFile(h.files.crl), await readFile(crl2)]);
  await Promise.all([writeFile(h.files.ca, bundle), writeFile(h.files.crl, crls)]);
  await waitFor('CA bundle applied', async () => (await metric(h, 'dpu_host_api_tls_reloads_total', { result: 'ok' })) >= 1);
  await copyFile(srv2.keyPath, h.files.key + '.new');
  // key and cert replaced together (rename), as a secret volume swap does.
  await writeFile(h.files.cert + '.new', srv2.cert);
  await Promise.all([copyFile(h.files.key + '.new', h.files.key), copyFile(h.files.cert + '.new', h.files.cert)]);
  await waitFor('server cert applied', async () => (await metric(h, 'dpu_host_api_tls_reloads_total', { result: 'ok' })) >= 2);
  await Promise.all([copyFile(host1b.keyPath, clientFiles.key), copyFile(host1b.certPath, clientFiles.cert)]);
  await waitFor('client cert followed', () => w.current.cert.equals(host1b.cert));
  const at = ok;
  await waitFor('more calls', () => ok > at + 200);
  stop = true;
  await Promise.all(workers);
  t.same(failures.slice(0, 3), [], `${ok} calls over a CA and a server cert rotation, none failed`);
  // A new connection now sees the new server cert.
  const peerCa = await new Promise<string>((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port: h.port, ca: bundle, key: host1b.key, cert: host1b.cert, ALPNProtocols: ['h2'] }, () => {
      resolve(String(s.getPeerCertificate().issuer.CN));
      s.destroy();
    });
  });
  t.equal(peerCa, ca2Name, 'new handshakes get the new server cert');
  const newCaClient = (): ReturnType<typeof createClient<typeof HostService>> => {
    const sm = new Http2SessionManager(h.url, {}, { ca: bundle, key: host1b.key, cert: host1b.cert });
    t.teardown(() => sm.abort());
    return createClient(HostService, createGrpcTransport({ baseUrl: h.url, sessionManager: sm }));
  };
  t.equal((await newCaClient().status({})).ready, true, 'a host cert of the new CA is accepted');
  // Old CA dropped: sessions of old-CA certs are closed; new-CA certs carry on.
  const old = heldSession(t, h, pki.host1, bundle);
  await old.ready;
  await Promise.all([writeFile(h.files.ca, await readFile(ca2)), copyFile(crl2, h.files.crl)]);
  await old.closed;
  t.equal(await metric(h, 'dpu_host_api_sessions_closed_total', { reason: 'cert-untrusted' }) >= 1, true, 'the old-CA session was closed');
  t.equal((await newCaClient().status({})).ready, true);
});

t.test('a corrupt new cert (or CRL) file keeps the old material; counted; fixed files are picked up', async (t) => {
  const h = await harness(t);
  const good = await readFile(h.files.cert);
  await writeFile(h.files.cert, '-----BEGIN CERTIFICATE-----\nnot a cert\n-----END CERTIFICATE-----\n');
  await waitFor('refusal counted', async () => (await metric(h, 'dpu_host_api_tls_reloads_total', { result: 'error' })) >= 1);
  t.equal((await h.grpc(pki.host1).status({})).ready, true, 'still serving');
  t.equal((await h.grpc(pki.host1).status({})).ready, true, 'new connections too (old material)');
  await writeFile(h.files.crl, 'garbage');
  await waitFor('second refusal', async () => (await metric(h, 'dpu_host_api_tls_reloads_total', { result: 'error' })) >= 2);
  await new Promise((r) => setTimeout(r, 600));
  t.equal(await metric(h, 'dpu_host_api_tls_reloads_total', { result: 'error' }), 2, 'a bad state is reported once, not on every poll');
  await writeFile(h.files.cert, good);
  await makeCrl(pki, h.files.crl);
  await waitFor('good files applied', async () => (await metric(h, 'dpu_host_api_tls_reloads_total', { result: 'ok' })) >= 1);
  t.equal(await h.server.reloadTls(), 'unchanged');
  const foreignCrl = join(pki.dir, 'foreign.crl');
  await makeCrl(pki, foreignCrl, [], { ca: 'other-ca' });
  await copyFile(foreignCrl, h.files.crl);
  t.equal(await h.server.reloadTls(), 'refused', 'a CRL from a CA not in the bundle is refused (it would fail every handshake)');
  const ca3 = await issueCa(pki, `ca3-${Date.now()}`);
  await makeCrl(pki, h.files.crl);
  await writeFile(h.files.ca, Buffer.concat([await readFile(pki.caPath), await readFile(ca3)]));
  t.equal(await h.server.reloadTls(), 'refused', "a CA without a CRL is refused (its hosts' handshakes would all fail)");
  t.equal((await h.grpc(pki.host1).status({})).ready, true, 'still serving on the old material');
});

t.test('expiry: server, CA, CRL and peer notAfter exported', async (t) => {
  const h = await harness(t);
  await h.grpc().status({});
  const now = Date.now() / 1000;
  for (const [cert, host] of [['server', ''], ['client-ca', ''], ['crl', ''], ['peer', 'host1']] as const) {
    const v = await metric(h, 'dpu_host_api_cert_expiry_timestamp_seconds', { cert, host });
    t.ok(v > now && v < now + 3 * 86_400, `${cert}${host ? ` ${host}` : ''}: ${new Date(v * 1000).toISOString()}`);
  }
});

t.test('a session the server GOAWAYed on a protocol error is closed (keepalive); idle ones too', async (t) => {
  const h = await harness(t, { limits: { keepalivePingMs: 300, sessionIdleTimeoutMs: 60_000 } });
  const t0 = Date.now();
  const sock = tlsConnect({ host: '127.0.0.1', port: h.port, ca: pki.ca, key: pki.host1.key, cert: pki.host1.cert, ALPNProtocols: ['h2'] });
  sock.on('error', () => undefined);
  sock.on('secureConnect', () => {
    sock.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    sock.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]));
    // DATA on stream 0: nghttp2 answers GOAWAY PROTOCOL_ERROR and stops reading.
    setTimeout(() => sock.write(Buffer.from([0, 0, 1, 0, 0, 0, 0, 0, 0, 0x41])), 100);
  });
  // The peer keeps writing (PINGs nghttp2 no longer reads): activity must not keep it open.
  const chatter = setInterval(() => sock.write(Buffer.from([0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])), 100);
  await new Promise<void>((resolve) => sock.on('close', () => resolve()));
  clearInterval(chatter);
  const took = Date.now() - t0;
  t.ok(took < 2000, `closed after ${took} ms (keepalivePingMs 300; Node sometimes closes it itself first)`);
  // A peer that never ACKs a PING (here: speaks the preface, then ignores every frame) is closed by the keepalive.
  const t1 = Date.now();
  const mute = tlsConnect({ host: '127.0.0.1', port: h.port, ca: pki.ca, key: pki.host1.key, cert: pki.host1.cert, ALPNProtocols: ['h2'] });
  mute.on('error', () => undefined);
  mute.resume(); // reads and drops: sees the server's close, never answers a PING
  mute.on('secureConnect', () => mute.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])])));
  await new Promise<void>((resolve) => mute.on('close', () => resolve()));
  t.ok(Date.now() - t1 < 2000, `a peer that never ACKs closed after ${Date.now() - t1} ms`);
  t.ok((await metric(h, 'dpu_host_api_sessions_closed_total', { reason: 'keepalive-timeout' })) >= 1, 'counted keepalive-timeout');
  t.equal((await h.grpc().status({})).ready, true, 'healthy sessions answer their PINGs and stay');
});

t.test('failures before a handler are counted under their true code', async (t) => {
  const h = await harness(t);
  const s = h2connect(h.url, { ca: pki.ca, key: pki.host1.key, cert: pki.host1.cert });
  s.on('error', () => undefined);
  t.teardown(() => s.destroy());
  const req = (hd: Record<string, string>, body?: Buffer): Promise<number> =>
    new Promise((resolve) => {
      const r = s.request(hd);
      let st = 0;
      r.on('response', (x) => (st = Number(x[':status'])));
      r.on('data', () => undefined);
      r.on('end', () => resolve(st));
      r.on('error', () => resolve(-1));
      r.end(body);
    });
  t.equal(await req({ ':method': 'GET', ':path': '/dpu.v1.HostService/Status' }), 405);
  t.equal(await req({ ':method': 'POST', ':path': '/dpu.v1.HostService/Status', 'content-type': 'text/plain' }, Buffer.from('x')), 415);
  t.equal(await req({ ':method': 'POST', ':path': '/dpu.v1.HostService/GetVf', 'content-type': 'application/proto' }, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a])), 400);
  await new Promise<void>((resolve) => {
    const r = s.request({ ':method': 'POST', ':path': '/dpu.v1.HostService/ListVfs', 'content-type': 'application/grpc+proto', te: 'trailers' }, { endStream: false });
    r.on('error', () => undefined);
    setTimeout(() => {
      r.close(8);
      setTimeout(resolve, 300);
    }, 200);
  });
  t.equal(await metric(h, 'dpu_host_api_requests_total', { method: 'Status', code: 'unimplemented' }), 1, '405 (GET): unimplemented');
  t.equal(await metric(h, 'dpu_host_api_rejected_total', { reason: 'bad-http-method' }), 1);
  t.equal(await metric(h, 'dpu_host_api_requests_total', { method: 'Status', code: 'invalid_argument' }), 1, '415: invalid_argument');
  t.equal(await metric(h, 'dpu_host_api_rejected_total', { reason: 'bad-content-type' }), 1);
  t.equal(await metric(h, 'dpu_host_api_requests_total', { method: 'GetVf', code: 'invalid_argument' }), 1, 'Connect decode error: invalid_argument (not internal)');
  t.equal(await metric(h, 'dpu_host_api_requests_total', { method: 'ListVfs', code: 'canceled' }), 1, 'client reset: canceled (not unimplemented)');
  t.equal(await metric(h, 'dpu_host_api_requests_total', { method: 'Status', code: 'unknown' }), 0, 'nothing left as unknown');
});

t.test('DER walk: CRL (PEM and DER) and certificate names agree with openssl', async (t) => {
  const revoked = await issueLeaf(pki, 'der-victim', { subj: '/CN=host9' });
  const pem = join(pki.dir, 'der.crl.pem');
  const der = join(pki.dir, 'der.crl');
  await makeCrl(pki, pem, [revoked.certPath, pki.host2.certPath]);
  await makeCrl(pki, der, [revoked.certPath], { der: true });
  const [a] = parseCrlFile(await readFile(pem));
  const [b] = parseCrlFile(await readFile(der));
  const ca = parseCertBundle(pki.ca)[0]!;
  t.same([...a!.revoked].sort(), [await serialOf(revoked.certPath), await serialOf(pki.host2.certPath)].map((s) => s.replace(/^(00)+/, '')).sort());
  t.same([...b!.revoked], [(await serialOf(revoked.certPath)).replace(/^(00)+/, '')]);
  t.equal(a!.issuer, certNames(ca.raw).subject, 'issuer = the CA subject');
  t.equal(certNames(revoked.cert.length ? parseCertBundle(revoked.cert)[0]!.raw : Buffer.alloc(0)).issuer, a!.issuer);
  t.ok(crlSignedBy(a!, ca), 'signature verifies against the CA');
  t.notOk(crlSignedBy(a!, parseCertBundle(pki.otherCa)[0]!), 'not against another CA');
  t.ok(a!.nextUpdate && a!.nextUpdate.getTime() > Date.now());
  t.throws(() => parseCrlFile(Buffer.from('garbage')));
});
