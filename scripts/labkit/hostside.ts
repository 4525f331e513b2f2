// The host side of the host API, for tests and benches: runs INSIDE a host netns
// (`ip netns exec <p>-hostK node --import tsx scripts/labkit/hostside.ts --pki DIR
// --url https://100.65.K.1:50051`), reads one JSON command per line on stdin and
// answers one JSON line per command on stdout (`id` echoed; commands run
// concurrently). It is what an untrusted host can do with a certificate (or
// without one): gRPC calls, raw HTTP/2 frames, silent streams, TLS handshakes,
// TCP connects. Driven by hostclient.ts; nothing here decides pass/fail.
// Certificates are followed like a real host follows its own (contract/tls-files.ts):
// a file rewritten under <pki> is used from the next connection on.
//
//   {"id":1,"op":"call","as":"host1","method":"allocateVf","req":{…},"timeoutMs":5000}
//   {"id":2,"op":"raw","as":"host1","path":"/dpu.v1.HostService/GetVf","bodyHex":"…","frame":true}
//   {"id":3,"op":"slowloris","as":"host1","streams":8,"holdMs":8000}
//   {"id":4,"op":"tls","as":"none"|"rogue"|"host1","maxVersion":"TLSv1.2"}
//   {"id":5,"op":"scan","hosts":["100.65.1.1"],"ports":[22,6640],"timeoutMs":300}
//   {"id":6,"op":"hold","as":"host1-old","maxMs":20000}        one session, one call, then wait for the server to close it
//   {"id":7,"op":"load","as":"host1","concurrency":50,"durationMs":8000}   Status calls from N clients, each its own connection
//   {"id":8,"op":"goaway","as":"host1","maxMs":30000}          a protocol error (DATA on stream 0), then chatter; when is it closed?
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { connect as tlsConnect } from 'node:tls';
import { parseArgs } from 'node:util';
import { toJson } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { createGrpcTransport, Http2SessionManager } from '@connectrpc/connect-node';
import { HostService } from '../../contract/gen/dpu/v1/host_pb.ts';
import { reasonOf } from '../../contract/reasons.ts';
import { type ClientTlsMaterial, tlsConnector, type TlsFilesWatcher, watchTlsFiles } from '../../contract/tls-files.ts';

const { values } = parseArgs({ options: { pki: { type: 'string' }, url: { type: 'string' } } });
const PKI = values.pki ?? '';
const URL_ = values.url ?? '';

type Json = Record<string, unknown>;
const watchers = new Map<string, Promise<TlsFilesWatcher<string, ClientTlsMaterial>>>();
/** The material of identity `as` (`none`: the CA only), re-read when its files change. */
function material(as: string): Promise<TlsFilesWatcher<string, ClientTlsMaterial>> {
  let w = watchers.get(as);
  if (!w) {
    const paths: Record<string, string> = as === 'none' ? { ca: `${PKI}/ca.crt` } : { ca: `${PKI}/ca.crt`, key: `${PKI}/${as}.key`, cert: `${PKI}/${as}.crt` };
    w = watchTlsFiles({ paths, build: (f) => ({ ca: f['ca'] as Buffer, ...(f['key'] ? { key: f['key'], cert: f['cert'] } : {}) }), debounceMs: 50, pollMs: 1000 });
    watchers.set(as, w);
  }
  return w;
}
async function identity(as: string): Promise<ClientTlsMaterial> {
  return (await material(as)).current;
}

const clients = new Map<string, { client: Client<typeof HostService>; sm: Http2SessionManager }>();
async function clientFor(as: string, url = URL_): Promise<Client<typeof HostService>> {
  const k = `${as}@${url}`;
  let c = clients.get(k);
  if (!c) {
    const w = await material(as);
    const sm = new Http2SessionManager(url, {}, { createConnection: tlsConnector(() => w.current) });
    c = { client: createClient(HostService, createGrpcTransport({ baseUrl: url, sessionManager: sm })), sm };
    clients.set(k, c);
  }
  return c.client;
}

const METHODS = ['allocateVf', 'releaseVf', 'getVf', 'listVfs', 'status'] as const;
type Method = (typeof METHODS)[number];

async function call(cmd: Json): Promise<Json> {
  const method = String(cmd['method']) as Method;
  if (!METHODS.includes(method)) throw new Error(`unknown method ${method}`);
  const client = await clientFor(String(cmd['as'] ?? 'host1'), cmd['url'] as string | undefined);
  const t0 = performance.now();
  try {
    const fn = client[method] as (req: unknown, o: { timeoutMs: number }) => Promise<unknown>;
    const res = await fn.call(client, cmd['req'] ?? {}, { timeoutMs: Number(cmd['timeoutMs'] ?? 30_000) });
    const schema = HostService.method[method].output;
    return { ok: true, ms: performance.now() - t0, res: toJson(schema, res as never) as Json };
  } catch (err) {
    const ce = ConnectError.from(err);
    return { ok: false, ms: performance.now() - t0, code: Code[ce.code], reason: reasonOf(ce) ?? null, message: ce.rawMessage };
  }
}

async function session(as: string, url = URL_): Promise<ClientHttp2Session> {
  const s = h2connect(url, { ...(await identity(as)) });
  s.on('error', () => undefined);
  return s;
}

/** One request over a fresh HTTP/2 session: raw body (optionally gRPC-framed). */
async function raw(cmd: Json): Promise<Json> {
  const s = await session(String(cmd['as'] ?? 'host1'));
  let body = Buffer.from(String(cmd['bodyHex'] ?? ''), 'hex');
  if (cmd['frame'] !== false) {
    const head = Buffer.alloc(5);
    head.writeUInt32BE(cmd['claimLength'] !== undefined ? Number(cmd['claimLength']) : body.length, 1);
    body = Buffer.concat([head, body]);
  }
  return new Promise((resolve) => {
    const done = (v: Json): void => {
      s.destroy();
      resolve(v);
    };
    const req = s.request({ ':method': 'POST', ':path': String(cmd['path']), 'content-type': String(cmd['contentType'] ?? 'application/grpc+proto'), te: 'trailers' });
    let status: string | undefined;
    let http = 0;
    req.on('response', (h) => {
      http = Number(h[':status']);
      if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
    });
    req.on('trailers', (tr) => {
      if (tr['grpc-status'] !== undefined) status = String(tr['grpc-status']);
    });
    req.on('data', () => undefined);
    req.on('end', () => done({ ok: true, http, grpcStatus: status === undefined ? null : Number(status) }));
    req.on('error', (e) => done({ ok: false, error: e.message, rst: req.rstCode ?? null }));
    setTimeout(() => done({ ok: false, error: 'timeout' }), Number(cmd['timeoutMs'] ?? 10_000)).unref();
    req.end(body);
  });
}

/** Opens `streams` requests that send headers and never a body; reports how the server closed them. */
async function slowloris(cmd: Json): Promise<Json> {
  const s = await session(String(cmd['as'] ?? 'host1'));
  const n = Number(cmd['streams'] ?? 8);
  const holdMs = Number(cmd['holdMs'] ?? 10_000);
  const t0 = performance.now();
  const closed = Array.from({ length: n }, () => {
    const req = s.request({ ':method': 'POST', ':path': '/dpu.v1.HostService/AllocateVf', 'content-type': 'application/grpc+proto', te: 'trailers' }, { endStream: false });
    req.on('error', () => undefined);
    req.resume();
    return new Promise<{ rst: number; ms: number } | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), holdMs);
      req.on('close', () => {
        clearTimeout(timer);
        resolve({ rst: req.rstCode ?? -1, ms: performance.now() - t0 });
      });
    });
  });
  return Promise.all(closed).then((r) => {
    s.destroy();
    const byServer = r.filter((x): x is { rst: number; ms: number } => x !== undefined);
    return { ok: true, streams: n, closedByServer: byServer.length, rstCodes: [...new Set(byServer.map((x) => x.rst))], maxMs: Math.max(0, ...byServer.map((x) => x.ms)) };
  });
}

/** A TLS handshake + HTTP/2 preface; 'still open' after 500 ms = the server accepted the peer. */
async function tls(cmd: Json): Promise<Json> {
  const u = new URL(URL_);
  const id = await identity(String(cmd['as'] ?? 'none'));
  return new Promise((resolve) => {
    const s = tlsConnect({
      host: u.hostname,
      port: Number(u.port),
      ALPNProtocols: ['h2'],
      ...id,
      ...(cmd['maxVersion'] ? { maxVersion: cmd['maxVersion'] as 'TLSv1.2' } : {}),
    });
    let done = false;
    const finish = (v: string): void => {
      if (done) return;
      done = true;
      s.destroy();
      resolve({ ok: true, outcome: v });
    };
    s.on('error', (e) => finish(`error: ${e.message}`));
    s.on('close', () => finish('closed'));
    // TLS 1.3: the server judges the client cert after the client's Finished, so a
    // refusal arrives as an alert just after secureConnect. Wait for it.
    s.on('secureConnect', () => {
      s.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
      setTimeout(() => finish('still open'), 500);
    });
    setTimeout(() => finish('timeout'), 5000).unref();
  });
}

function connectOnce(host: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const s = new Socket();
    const done = (v: string): void => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(timeoutMs, () => done('timeout'));
    s.once('connect', () => done('open'));
    s.once('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNREFUSED' ? 'refused' : (e.code ?? 'error')));
    s.connect(port, host);
  });
}

/** TCP connect to every host × port (bounded concurrency). */
async function scan(cmd: Json): Promise<Json> {
  const hosts = cmd['hosts'] as string[];
  const ports = cmd['ports'] as number[];
  const timeoutMs = Number(cmd['timeoutMs'] ?? 300);
  const jobs = hosts.flatMap((host) => ports.map((port) => ({ host, port })));
  const results: { host: string; port: number; result: string }[] = [];
  for (let i = 0; i < jobs.length; i += 64) {
    results.push(...(await Promise.all(jobs.slice(i, i + 64).map(async (j) => ({ ...j, result: await connectOnce(j.host, j.port, timeoutMs) })))));
  }
  return { ok: true, results };
}

/** One HTTP/2 session as `as`: a Status call on it, then how long until the server closes it (or maxMs). */
async function hold(cmd: Json): Promise<Json> {
  const s = await session(String(cmd['as'] ?? 'host1'));
  const first = await new Promise<number | string>((resolve) => {
    const req = s.request({ ':method': 'POST', ':path': '/dpu.v1.HostService/Status', 'content-type': 'application/grpc+proto', te: 'trailers' });
    let status: number | string = 'none';
    req.on('response', (h) => h['grpc-status'] !== undefined && (status = Number(h['grpc-status'])));
    req.on('trailers', (tr) => tr['grpc-status'] !== undefined && (status = Number(tr['grpc-status'])));
    req.on('data', () => undefined);
    req.on('end', () => resolve(status));
    req.on('error', (e) => resolve(`error: ${e.message}`));
    req.end(Buffer.alloc(5));
  });
  const t0 = performance.now();
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), Number(cmd['maxMs'] ?? 20_000));
    s.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  s.destroy();
  return { ok: true, firstGrpcStatus: first, closedByServer: closed, afterMs: performance.now() - t0 };
}

/** `concurrency` clients (own connection each, following the cert files) calling Status for durationMs. */
async function load(cmd: Json): Promise<Json> {
  const as = String(cmd['as'] ?? 'host1');
  const w = await material(as);
  const n = Number(cmd['concurrency'] ?? 50);
  const end = performance.now() + Number(cmd['durationMs'] ?? 5000);
  const sms: Http2SessionManager[] = [];
  let ok = 0;
  const failures: string[] = [];
  await Promise.all(
    Array.from({ length: n }, async () => {
      const sm = new Http2SessionManager(URL_, {}, { createConnection: tlsConnector(() => w.current) });
      sms.push(sm);
      const c = createClient(HostService, createGrpcTransport({ baseUrl: URL_, sessionManager: sm }));
      while (performance.now() < end) {
        try {
          await c.status({}, { timeoutMs: 10_000 });
          ok++;
        } catch (err) {
          const ce = ConnectError.from(err);
          failures.push(`${Code[ce.code]} ${reasonOf(ce) ?? ''} ${ce.rawMessage}`);
        }
      }
    }),
  );
  for (const sm of sms) sm.abort();
  return { ok: true, calls: ok + failures.length, failed: failures.length, failures: failures.slice(0, 5) };
}

/** TLS + HTTP/2 preface, then DATA on stream 0 (PROTOCOL_ERROR), then PINGs every 200 ms: how long until the server closes? */
async function goaway(cmd: Json): Promise<Json> {
  const u = new URL(URL_);
  const id = await identity(String(cmd['as'] ?? 'host1'));
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = tlsConnect({ host: u.hostname, port: Number(u.port), ALPNProtocols: ['h2'], ...id });
    let chatter: NodeJS.Timeout | undefined;
    const finish = (closed: boolean): void => {
      clearInterval(chatter);
      s.destroy();
      resolve({ ok: true, closedByServer: closed, afterMs: performance.now() - t0 });
    };
    s.on('error', () => undefined);
    s.on('secureConnect', () => {
      s.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
      s.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]));
      setTimeout(() => s.write(Buffer.from([0, 0, 1, 0, 0, 0, 0, 0, 0, 0x41])), 100);
      chatter = setInterval(() => s.write(Buffer.from([0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])), 200);
    });
    s.once('close', () => finish(true));
    setTimeout(() => finish(false), Number(cmd['maxMs'] ?? 30_000)).unref();
  });
}

const OPS: Record<string, (c: Json) => Promise<Json>> = { call, raw, slowloris, tls, scan, hold, load, goaway };

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let cmd: Json;
  try {
    cmd = JSON.parse(line) as Json;
  } catch {
    return;
  }
  const op = OPS[String(cmd['op'])];
  const p = op ? op(cmd) : Promise.resolve({ ok: false, error: `unknown op ${String(cmd['op'])}` });
  p.catch((e: unknown) => ({ ok: false, error: e instanceof Error ? e.message : String(e) })).then((r) => {
    process.stdout.write(`${JSON.stringify({ id: cmd['id'], ...r })}\n`);
  });
});
rl.on('close', () => {
  for (const c of clients.values()) c.sm.abort();
  process.exit(0);
});
process.stdout.write(`${JSON.stringify({ id: 0, ready: true })}\n`);
