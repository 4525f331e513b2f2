import t, { type Test } from 'tap';
import fc from 'fast-check';
import { connect as h2connect, constants as h2c, type ClientHttp2Session } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Code, ConnectError } from '@connectrpc/connect';
import { isWireReason, PORTS_REASONS, reasonOf, WIRE_CODES } from '../../contract/reasons.ts';
import { HostPresence } from '../../dpu-agent/src/api/host-presence.ts';
import { MetricsServer } from '../../dpu-agent/src/metrics/server.ts';
import { silentLogger } from '../../dpu-agent/src/log.ts';
import { FakePool } from '../helpers/fake-pool.ts';
import { startHostApi, type HostApiHarness } from '../helpers/host-api.ts';
import { type KeyPair, makePki, type Pki } from '../helpers/pki.ts';

// The host API over real sockets on 127.0.0.1: mTLS, limits, validation,
// error mapping, metrics. The VF pool is the in-memory FakePool.

const UID = '1b4e28ba-2fa1-11d2-883f-0016d3cca427';
const key = (over: Record<string, unknown> = {}) => ({
  pod: { namespace: 'default', name: 'web-0', uid: UID },
  sandboxId: 'sandbox-1',
  ifname: 'eth0',
  ...over,
});

let pki: Pki;
t.before(async () => {
  pki = await makePki();
});
t.teardown(() => pki.cleanup());

async function harness(t: Test, opts: Parameters<typeof startHostApi>[1] = {}): Promise<HostApiHarness> {
  const h = await startHostApi(pki, opts);
  t.teardown(() => h.close());
  return h;
}

/** The ConnectError a call rejects with (fails the test if it resolves). */
async function callError(t: Test, p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  t.fail('expected the call to fail');
  return new ConnectError('resolved', Code.Unknown);
}

async function metricValue(h: HostApiHarness, name: string, labels: Record<string, string>): Promise<number> {
  const m = await h.metrics.registry.getSingleMetric(name)?.get();
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

/** A raw HTTP/2 session presenting `id` (null: no client certificate). */
function rawSession(h: HostApiHarness, id: KeyPair | null = pki.host1): ClientHttp2Session {
  return h2connect(h.url, { ca: pki.ca, ...(id ? { key: id.key, cert: id.cert } : {}) });
}

/** One raw gRPC unary call with `body` as the (already framed) request. */
function rawGrpc(session: ClientHttp2Session, path: string, body: Buffer): Promise<{ status: string | undefined; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc+proto',
      te: 'trailers',
    });
    let headers: Record<string, unknown> = {};
    let status: string | undefined;
    req.on('response', (hd) => {
      headers = hd;
      if (hd['grpc-status'] !== undefined) status = String(hd['grpc-status']);
    });
    req.on('trailers', (tr) => {
      if (tr['grpc-status'] !== undefined) status = String(tr['grpc-status']);
    });
    req.on('data', () => undefined);
    req.on('end', () => resolve({ status, headers }));
    req.on('error', reject);
    req.end(body);
  });
}

function fetchH2(session: ClientHttp2Session, path: string, contentType: string, body: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': contentType });
    let status = 0;
    const chunks: Buffer[] = [];
    req.on('response', (hd) => {
      status = Number(hd[':status']);
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString() }));
    req.on('error', reject);
    req.end(body);
  });
}

function frame(payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

t.test('happy path over gRPC and Connect, idempotent, counted', async (t) => {
  const h = await harness(t);
  const c = h.grpc();
  const before = Date.now() / 1000;
  const st = await c.status({});
  t.equal(st.ready, true);
  t.equal(st.vfsTotal, 4);
  t.ok((await metricValue(h, 'dpu_host_last_seen_timestamp_seconds', { host: 'host1' })) >= Math.floor(before), 'the host was seen (liveness)');

  const a = await c.allocateVf({ attachment: key() });
  t.equal(a.vf?.vfIndex, 0);
  t.equal(a.vf?.mac, '0a:58:0a:f4:00:0a');
  t.strictSame(a.vf?.ips.map((i) => [i.address, i.gateway]), [['10.244.0.10/24', '10.244.0.1']]);
  t.equal(a.vf?.mtu, 1400);
  t.equal(h.pool.calls.at(-1)?.peer, 'host1', 'peer = client cert CN');
  t.equal((await c.allocateVf({ attachment: key() })).vf?.vfIndex, 0, 'retry returns the same VF');

  const viaConnect = h.connect();
  t.equal((await viaConnect.getVf({ attachment: key() })).vf?.vfIndex, 0, 'Connect protocol works too');
  t.equal((await c.getVf({ attachment: key() })).vf?.counters, undefined, 'no counters for the VF: none sent');
  h.pool.fakeCounters.set('default/web-0/sandbox-1/eth0', { rxPackets: 3, rxBytes: 300, txPackets: 2 ** 40, txBytes: 5, rxDropped: 1, txDropped: 0 });
  const withCounters = (await c.getVf({ attachment: key() })).vf?.counters;
  t.equal(withCounters?.rxPackets, 3n, 'GetVf carries the re-based counters');
  t.equal(withCounters?.txPackets, 2n ** 40n, 'as uint64');
  t.equal((await c.listVfs({})).vfs[0]?.counters?.rxBytes, 300n, 'ListVfs too');

  const other = await h.grpc(pki.host2).getVf({ attachment: key() }).catch((e: unknown) => ConnectError.from(e));
  t.ok(other instanceof ConnectError && other.code === Code.PermissionDenied && reasonOf(other) === 'wrong-host', "another host cannot read host1's lease (this DPU serves host1 only)");

  await c.allocateVf({ attachment: key({ pod: { namespace: 'default', name: 'web-1', uid: UID }, sandboxId: 'sandbox-2' }) });
  const l = await c.listVfs({});
  t.equal(l.vfs.length, 2);
  const gc = await c.listVfs({ collectGarbage: true, validAttachments: [{ sandboxId: 'sandbox-1', ifname: 'eth0' }] });
  t.equal(gc.released, 1, 'GC released the lease not in valid_attachments');
  t.strictSame(gc.vfs.map((v) => v.attachment?.sandboxId), ['sandbox-1']);

  t.equal((await c.releaseVf({ attachment: key() })).released, true);
  t.equal((await c.releaseVf({ attachment: key() })).released, false, 'DEL twice is fine');
  const gone = await callError(t, c.getVf({ attachment: key() }));
  t.equal(gone.code, Code.NotFound);
  t.equal(reasonOf(gone), 'lease-not-found');

  t.equal(await metricValue(h, 'dpu_host_api_requests_total', { method: 'AllocateVf', code: 'ok' }), 3);
  t.equal(await metricValue(h, 'dpu_host_api_requests_total', { method: 'GetVf', code: 'not_found' }), 1);
  t.equal(await metricValue(h, 'dpu_host_api_requests_total', { method: 'GetVf', code: 'permission_denied' }), 1);
  t.equal(await metricValue(h, 'dpu_vf_allocations_total', { result: 'ok' }), 3);
});

t.test('CNI GC from a host that just came back is deferred for the grace period; then it runs', async (t) => {
  let now = 1_000_000;
  const presence = new HostPresence({ silenceMs: 30_000, returnGraceMs: 60_000, now: () => now });
  const h = await harness(t, { presence });
  const c = h.grpc(pki.host1);
  await c.allocateVf({ attachment: key() });
  await c.allocateVf({ attachment: key({ pod: { namespace: 'default', name: 'web-1', uid: UID }, sandboxId: 'sandbox-2' }) });
  const early = await c.listVfs({ collectGarbage: true, validAttachments: [] });
  t.equal(early.gcDeferred, true, 'first contact since the agent started: deferred');
  t.equal(early.released, 0);
  t.equal(early.vfs.length, 2, 'both leases kept');
  t.equal(h.pool.list('host1').length, 2);

  now += 20_000;
  await c.status({});
  now += 20_000;
  await c.status({});
  now += 20_000;
  const later = await c.listVfs({ collectGarbage: true, validAttachments: [{ sandboxId: 'sandbox-1', ifname: 'eth0' }] });
  t.equal(later.gcDeferred, false, 'back for 60 s of steady contact: GC runs');
  t.equal(later.released, 1);
  t.strictSame(later.vfs.map((v) => v.attachment?.sandboxId), ['sandbox-1']);

  now += 31_000;
  const afterSilence = await c.listVfs({ collectGarbage: true, validAttachments: [] });
  t.equal(afterSilence.gcDeferred, true, 'silent for 31 s > 30 s: a return, deferred again');
  t.equal(afterSilence.vfs.length, 1, 'the live lease survives the empty list of a restarting runtime');
  const plain = await c.listVfs({});
  t.equal(plain.gcDeferred, false, 'a plain list is never "deferred"');

  const other = await callError(t, h.grpc(pki.host2).listVfs({ collectGarbage: true, validAttachments: [] }));
  t.equal(reasonOf(other), 'wrong-host', 'another host cannot collect garbage here');
  t.equal(h.pool.list('host1').length, 1, "and host1's lease is untouched");
});

t.test('mTLS: client certificate required, from the configured CA, TLS 1.3 only', async (t) => {
  const h = await harness(t);
  const tryTls = (opts: Record<string, unknown>): Promise<string> =>
    new Promise((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port: h.port, ca: pki.ca, ALPNProtocols: ['h2'], ...opts });
      let done = false;
      const finish = (v: string): void => {
        if (done) return;
        done = true;
        s.destroy();
        resolve(v);
      };
      s.on('error', (e) => finish(`error: ${e.message}`));
      s.on('close', () => finish('closed'));
      // In TLS 1.3 the server checks the client cert after the client's Finished:
      // the refusal arrives as an alert right after 'secureConnect'. Wait for it.
      s.on('secureConnect', () => {
        s.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
        setTimeout(() => finish('still open'), 500);
      });
    });
  t.match(await tryTls({}), /error|closed/, 'no client cert: refused');
  t.match(await tryTls({ key: pki.rogue.key, cert: pki.rogue.cert }), /error|closed/, 'cert from another CA: refused');
  t.match(await tryTls({ key: pki.host1.key, cert: pki.host1.cert, maxVersion: 'TLSv1.2' }), /error/, 'TLS 1.2: refused');
  t.equal(await tryTls({ key: pki.host1.key, cert: pki.host1.cert }), 'still open', 'good cert, TLS 1.3: accepted');

  const noCert = await callError(t, rpcWithoutCert(h));
  t.not(noCert.code, Code.Unknown, `RPC without a cert fails at transport level (${Code[noCert.code]})`);
  t.ok((await metricValue(h, 'dpu_host_api_rejected_total', { reason: 'tls-handshake' })) >= 2, 'handshake refusals counted');

  const nocn = await callError(t, h.grpc(pki.noCn).status({}));
  t.equal(nocn.code, Code.Unauthenticated, 'a cert from the CA without a CN is not an identity');
  t.equal(reasonOf(nocn), 'bad-peer-identity');
});

async function rpcWithoutCert(h: HostApiHarness): Promise<unknown> {
  const s = rawSession(h, null);
  s.on('error', () => undefined);
  try {
    return await rawGrpc(s, '/dpu.v1.HostService/Status', frame(Buffer.alloc(0))).then(
      (r) => {
        // The TLS 1.3 alert can arrive as a stream ending without any status.
        if (r.status === undefined) throw new ConnectError('no answer', Code.Unavailable);
        throw new ConnectError(`unexpected answer ${r.status}`, Code.Unknown);
      },
      (e: unknown) => {
        throw new ConnectError(String(e), Code.Unavailable);
      },
    );
  } finally {
    s.destroy();
  }
}

t.test('oversize and malformed messages fail cleanly; the server stays up', async (t) => {
  const h = await harness(t, { limits: { maxMessageBytes: 2048 } });
  const c = h.grpc();
  const big = await callError(t, c.listVfs({ validAttachments: Array.from({ length: 200 }, (_, i) => ({ sandboxId: `s${i}`, ifname: 'eth0' })) }));
  t.equal(big.code, Code.ResourceExhausted, 'message over maxMessageBytes');

  const s = rawSession(h);
  t.teardown(() => s.destroy());
  const garbage = await rawGrpc(s, '/dpu.v1.HostService/GetVf', frame(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a])));
  t.equal(garbage.status, String(Code.InvalidArgument), 'undecodable protobuf → INVALID_ARGUMENT');
  const wrongWire = await rawGrpc(s, '/dpu.v1.HostService/GetVf', frame(Buffer.from([0x0a, 0x50, 0x01])));
  t.equal(wrongWire.status, String(Code.InvalidArgument), 'truncated submessage → INVALID_ARGUMENT');
  const liar = Buffer.alloc(5);
  liar.writeUInt32BE(100 * 1024 * 1024, 1);
  const hugeClaim = await rawGrpc(s, '/dpu.v1.HostService/GetVf', liar);
  t.equal(hugeClaim.status, String(Code.ResourceExhausted), 'a frame claiming 100 MiB is refused without reading it');

  const connectRes = await fetchH2(s, '/dpu.v1.HostService/GetVf', 'application/proto', Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a]));
  t.equal(connectRes.status, 400, 'Connect protocol: undecodable body → HTTP 400');
  t.match(connectRes.body, /"code":"invalid_argument"/);
  t.notMatch(connectRes.body, /illegal tag/, 'decoder text not forwarded');

  t.equal((await c.status({})).ready, true, 'still serving');
  t.ok((await metricValue(h, 'dpu_host_api_requests_total', { method: 'GetVf', code: 'invalid_argument' })) >= 2, 'early failures counted');
});

t.test('fast-check: random field values never crash; invalid ones are INVALID_ARGUMENT naming the field', async (t) => {
  const h = await harness(t, { limits: { ratePerSecond: 10_000, rateBurst: 100_000, maxConcurrentPerPeer: 1000 } });
  const c = h.grpc();
  const fieldOrder = ['pod.namespace', 'pod.name', 'pod.uid', 'sandbox_id', 'ifname'] as const;
  const valid = {
    'pod.namespace': /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/,
    'pod.name': /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
    'pod.uid': /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/,
    sandbox_id: /^[A-Za-z0-9_.-]{1,128}$/,
  };
  const okIfname = (s: string): boolean =>
    s !== '' && s !== '.' && s !== '..' && Buffer.byteLength(s) <= 15 && !/[/:\s\u0000-\u001f\u007f]/u.test(s);
  const expectedBad = (v: Record<(typeof fieldOrder)[number], string>): string | undefined => {
    if (!(v['pod.namespace'].length <= 63 && valid['pod.namespace'].test(v['pod.namespace']))) return 'pod.namespace';
    if (!(v['pod.name'].length <= 253 && valid['pod.name'].test(v['pod.name']))) return 'pod.name';
    if (!valid['pod.uid'].test(v['pod.uid'])) return 'pod.uid';
    if (!valid.sandbox_id.test(v.sandbox_id)) return 'sandbox_id';
    if (!okIfname(v.ifname)) return 'ifname';
    return undefined;
  };
  // Mix of near-valid and arbitrary strings, so both branches get exercised.
  const str = (good: fc.Arbitrary<string>) =>
    fc.oneof({ arbitrary: good, weight: 5 }, { arbitrary: fc.string({ maxLength: 70 }), weight: 1 }, { arbitrary: fc.string({ unit: 'binary', maxLength: 300 }), weight: 1 });
  const arb = fc.record({
    'pod.namespace': str(fc.constantFrom('default', 'kube-system', 'a')),
    'pod.name': str(fc.constantFrom('web-0', 'a.b.c', 'x')),
    'pod.uid': str(fc.uuid()),
    sandbox_id: str(fc.stringMatching(/^[A-Za-z0-9_.-]{1,40}$/)),
    ifname: str(fc.constantFrom('eth0', 'net1')),
  });
  let invalid = 0;
  let validSeen = 0;
  await fc.assert(
    fc.asyncProperty(arb, async (v) => {
      const err = await c
        .getVf({ attachment: { pod: { namespace: v['pod.namespace'], name: v['pod.name'], uid: v['pod.uid'] }, sandboxId: v.sandbox_id, ifname: v.ifname } })
        .then(() => undefined, (e: unknown) => ConnectError.from(e));
      const bad = expectedBad(v);
      if (bad === undefined) {
        validSeen++;
        return err?.code === Code.NotFound;
      }
      invalid++;
      const field = `attachment.${bad}`;
      return err?.code === Code.InvalidArgument && reasonOf(err) === `invalid-${bad.replace('pod.', 'pod-').replace('_', '-')}` && err.rawMessage.startsWith(field);
    }),
    { numRuns: 300 },
  );
  t.ok(invalid > 50 && validSeen > 5, `both branches exercised (invalid ${invalid}, valid ${validSeen})`);
  t.equal((await c.status({})).ready, true, 'server still up');
  t.equal(await metricValue(h, 'dpu_host_api_rejected_total', { reason: 'invalid-argument' }), invalid, 'each counted');
});

t.test('rate limit and concurrency cap → RESOURCE_EXHAUSTED rate-limited, per peer', async (t) => {
  let now = 0;
  const h = await harness(t, { limits: { ratePerSecond: 1, rateBurst: 2, maxConcurrentPerPeer: 1 }, now: () => now });
  const c = h.grpc();
  await c.status({});
  await c.status({});
  const limited = await callError(t, c.status({}));
  t.equal(limited.code, Code.ResourceExhausted);
  t.equal(reasonOf(limited), 'rate-limited');
  const other = await callError(t, h.grpc(pki.host2).status({}));
  t.equal(reasonOf(other), 'wrong-host', 'another host is refused for who it is, before the limits: it takes none of host1\'s tokens');
  now += 1000;
  t.equal((await c.status({})).ready, true, 'a token back after 1 s');

  now += 10_000;
  h.pool.delayMs = 400;
  const slow = c.allocateVf({ attachment: key() });
  await new Promise((r) => setTimeout(r, 100));
  const busy = await callError(t, c.status({}));
  t.equal(busy.code, Code.ResourceExhausted, 'second call while one is in flight');
  t.equal(reasonOf(busy), 'rate-limited');
  t.equal((await slow).vf?.vfIndex, 0);
  t.equal(await metricValue(h, 'dpu_host_api_rejected_total', { reason: 'rate-limited' }), 1);
  t.equal(await metricValue(h, 'dpu_host_api_rejected_total', { reason: 'concurrency-limited' }), 1);
  t.equal(await metricValue(h, 'dpu_host_api_requests_total', { method: 'Status', code: 'resource_exhausted' }), 2);
});

t.test('slowloris: silent streams are reset after requestBodyTimeoutMs, others still served', async (t) => {
  const h = await harness(t, { limits: { requestBodyTimeoutMs: 300, sessionIdleTimeoutMs: 60_000, maxConcurrentStreams: 16 } });
  const s = rawSession(h);
  t.teardown(() => s.destroy());
  const started = Date.now();
  const closed = Array.from({ length: 8 }, () => {
    const req = s.request({ ':method': 'POST', ':path': '/dpu.v1.HostService/GetVf', 'content-type': 'application/grpc+proto', te: 'trailers' }, { endStream: false });
    req.on('error', () => undefined);
    req.resume();
    return new Promise<number>((resolve) => req.on('close', () => resolve(req.rstCode ?? -1)));
  });
  // Meanwhile another client is served at once.
  const t0 = Date.now();
  t.equal((await h.grpc().status({})).ready, true);
  t.ok(Date.now() - t0 < 250, 'another connection not held up');
  const codes = await Promise.all(closed);
  const took = Date.now() - started;
  t.ok(took >= 250 && took < 3000, `streams closed by the server after ~300 ms (${took} ms)`);
  t.ok(codes.every((c) => c === h2c.NGHTTP2_CANCEL), 'RST_STREAM CANCEL');
  t.equal(await metricValue(h, 'dpu_host_api_rejected_total', { reason: 'body-timeout' }), 8);
  t.equal((await h.grpc().status({})).ready, true, 'the same host can still call');
});

t.test('idle HTTP/2 connections are closed after sessionIdleTimeoutMs', async (t) => {
  const h = await harness(t, { limits: { sessionIdleTimeoutMs: 300 } });
  const s = rawSession(h);
  s.on('error', () => undefined);
  const started = Date.now();
  await new Promise<void>((resolve) => s.on('close', () => resolve()));
  const took = Date.now() - started;
  t.ok(took >= 250 && took < 3000, `closed after ${took} ms`);
});

t.test('a TCP connection that never starts TLS is closed after tlsHandshakeTimeoutMs', async (t) => {
  const h = await harness(t, { limits: { tlsHandshakeTimeoutMs: 300 } });
  const started = Date.now();
  const sock = netConnect({ host: '127.0.0.1', port: h.port });
  sock.on('error', () => undefined);
  await new Promise<void>((resolve) => sock.on('close', () => resolve()));
  const took = Date.now() - started;
  t.ok(took >= 250 && took < 3000, `closed after ${took} ms`);
  t.equal((await h.grpc().status({})).ready, true, 'others still served');
});

t.test('too many header fields: the stream is refused, the server carries on', async (t) => {
  const h = await harness(t, { limits: { maxHeaderListPairs: 16 } });
  const s = rawSession(h);
  s.on('error', () => undefined);
  t.teardown(() => s.destroy());
  const extra = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`x-pad-${i}`, 'v']));
  const outcome = await new Promise<string>((resolve) => {
    const req = s.request({ ':method': 'POST', ':path': '/dpu.v1.HostService/Status', 'content-type': 'application/grpc+proto', te: 'trailers', ...extra });
    req.on('response', (hd) => resolve(`response ${String(hd[':status'])}`));
    req.on('error', () => undefined);
    req.on('close', () => resolve(`closed ${req.rstCode}`));
    req.end(frame(Buffer.alloc(0)));
  });
  t.match(outcome, /^closed \d+|^response 431/, `refused (${outcome})`);
  t.equal((await h.grpc().status({})).ready, true, 'server still up');
});

t.test('per-peer connection cap', async (t) => {
  const h = await harness(t, { limits: { maxConnectionsPerPeer: 1 } });
  const first = h.grpc();
  await first.status({});
  const second = await callError(t, h.grpc().status({}));
  t.not(second.code, Code.Unknown, `second connection of host1 refused (${Code[second.code]})`);
  const host2 = await callError(t, h.grpc(pki.host2).status({}));
  t.equal(reasonOf(host2), 'wrong-host', "host2's connection is not refused by host1's cap (its calls are wrong-host)");
  t.equal(await metricValue(h, 'dpu_host_api_rejected_total', { reason: 'peer-connection-limit' }), 1);
});

t.test('deadlines: client grpc-timeout respected, server max applied', async (t) => {
  const h = await harness(t, { limits: { maxDeadlineMs: 400 } });
  h.pool.delayMs = 5_000;
  let t0 = Date.now();
  const client = await callError(t, h.grpc().allocateVf({ attachment: key() }, { timeoutMs: 150 }));
  t.equal(client.code, Code.DeadlineExceeded);
  t.ok(Date.now() - t0 < 1500, 'client deadline');
  t0 = Date.now();
  const server = await callError(t, h.grpc().allocateVf({ attachment: key({ pod: { namespace: 'default', name: 'web-1', uid: UID }, sandboxId: 'other' }) }));
  t.equal(server.code, Code.DeadlineExceeded, 'no client deadline: the server max applies');
  const took = Date.now() - t0;
  t.ok(took >= 350 && took < 2000, `after ~400 ms (${took})`);
  t.match(reasonOf(server) ?? '', /^(ovn-not-installed|deadline-exceeded)$/);
});

t.test('error mapping table, end to end', async (t) => {
  const h = await harness(t, { limits: { ratePerSecond: 1000, rateBurst: 1000 } });
  const c = h.grpc();
  for (const reason of PORTS_REASONS) {
    const code = isWireReason(reason) ? WIRE_CODES[reason] : Code.Internal;
    h.pool.failNext(reason, 'ovs-vsctl: secret detail pf0vf7');
    const e = await callError(t, c.allocateVf({ attachment: key() }));
    t.equal(e.code, code, `${reason} → ${Code[code]}`);
    t.equal(reasonOf(e), code === Code.Internal ? 'internal' : reason);
    t.notMatch(e.message, /secret|pf0vf7|ovs-vsctl/, 'no DPU text reaches the host');
  }
  h.pool.throwNext(new Error('ECONNRESET talking to ovsdb-server at unix:/run/db.sock'));
  const e = await callError(t, c.allocateVf({ attachment: key() }));
  t.equal(e.code, Code.Internal);
  t.notMatch(e.message, /ovsdb|ECONNRESET/);
  t.equal(await metricValue(h, 'dpu_vf_allocations_total', { result: 'vf-pool-empty' }), 1);
  t.equal(await metricValue(h, 'dpu_vf_allocations_total', { result: 'internal' }), 1);

  h.pool.ovnConnected = false;
  const st = await c.status({});
  t.equal(st.ready, false);
  t.strictSame(st.notReadyReasons, ['ovn-not-connected']);
});

t.test('health endpoints live on the management listener only', async (t) => {
  const h = await harness(t);
  const mgmt = new MetricsServer({ metrics: h.metrics, listenAddress: '127.0.0.1', port: 0, ready: () => ({ ready: true, reasons: [] }), logger: silentLogger() });
  await mgmt.start();
  t.teardown(() => mgmt.stop());
  t.equal((await fetch(`http://127.0.0.1:${mgmt.address().port}/healthz`)).status, 200);
  t.equal((await fetch(`http://127.0.0.1:${mgmt.address().port}/readyz`)).status, 200);
  await h.grpc().status({});
  t.match(await (await fetch(`http://127.0.0.1:${mgmt.address().port}/metrics`)).text(), /dpu_host_api_requests_total\{method="Status",code="ok"\} 1/);
  const s = rawSession(h);
  t.teardown(() => s.destroy());
  for (const path of ['/healthz', '/readyz', '/metrics']) {
    const status = await new Promise<number>((resolve, reject) => {
      const req = s.request({ ':method': 'GET', ':path': path });
      req.on('response', (hd) => resolve(Number(hd[':status'])));
      req.on('error', reject);
      req.resume();
      req.end();
    });
    t.equal(status, 404, `${path} is not served on the host API`);
  }
});
