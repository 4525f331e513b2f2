import t from 'tap';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  ConnectError,
  ConnectionClosedError,
  MessageTooLargeError,
  ProtocolError,
  RpcError,
  TimeoutError,
} from '../errors.ts';
import { JsonRpcConnection, type JsonRpcConnectOptions } from './connection.ts';
import { JsonStreamParser } from './framing.ts';
import type { Remote } from './remote.ts';

type Tap = Parameters<Parameters<typeof t.test>[0]>[0];
type Msg = Record<string, unknown>;

// Every promise this module creates must be observed: an unhandled rejection
// anywhere in this file is a bug in the connection.
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
  t.fail('unhandled rejection', { reason });
};
process.on('unhandledRejection', onUnhandled);
t.teardown(() => {
  process.off('unhandledRejection', onUnhandled);
});

const tmp = mkdtempSync(path.join(os.tmpdir(), 'jsonrpc-conn-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

/** The server end of one connection: a scripted ovsdb-server stand-in. */
class Peer {
  readonly socket: net.Socket;
  readonly #parser = new JsonStreamParser();
  readonly #queue: Msg[] = [];
  readonly #waiters: Array<(m: Msg) => void> = [];
  readonly ended: Promise<void>;

  constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      for (const m of this.#parser.push(chunk) as Msg[]) {
        const w = this.#waiters.shift();
        if (w) w(m);
        else this.#queue.push(m);
      }
    });
    this.ended = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  next(): Promise<Msg> {
    const m = this.#queue.shift();
    if (m) return Promise.resolve(m);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  send(m: unknown): void {
    this.socket.write(JSON.stringify(m));
  }

  sendRaw(s: string | Buffer): void {
    this.socket.write(s);
  }
}

interface Server {
  remote: Remote;
  nextPeer(): Promise<Peer>;
}

async function startServer(t: Tap, kind: 'unix' | 'tcp'): Promise<Server> {
  const peers: Peer[] = [];
  const waiters: Array<(p: Peer) => void> = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    const p = new Peer(s);
    const w = waiters.shift();
    if (w) w(p);
    else peers.push(p);
  });
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  let remote: Remote;
  if (kind === 'unix') {
    const p = path.join(mkdtempSync(path.join(tmp, 's-')), 'db.sock');
    server.listen(p);
    await once(server, 'listening');
    remote = { kind: 'unix', path: p };
  } else {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    remote = { kind: 'tcp', host: '127.0.0.1', port: (server.address() as net.AddressInfo).port };
  }
  return {
    remote,
    nextPeer: () => {
      const p = peers.shift();
      return p ? Promise.resolve(p) : new Promise((resolve) => waiters.push(resolve));
    },
  };
}

/** Client + its server peer, with the client closed in teardown. */
async function pair(
  t: Tap,
  kind: 'unix' | 'tcp' = 'unix',
  opts: JsonRpcConnectOptions = {},
): Promise<{ conn: JsonRpcConnection; peer: Peer; closes: Array<Error | undefined> }> {
  const server = await startServer(t, kind);
  const peerP = server.nextPeer();
  const conn = await JsonRpcConnection.connect(server.remote, { name: 'test', probeIntervalMs: 0, ...opts });
  t.teardown(() => conn.close());
  const closes: Array<Error | undefined> = [];
  conn.on('close', (err) => closes.push(err));
  return { conn, peer: await peerP, closes };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

async function closeEvent(conn: JsonRpcConnection): Promise<Error | undefined> {
  const [err] = (await once(conn, 'close')) as [Error | undefined];
  return err;
}

for (const kind of ['unix', 'tcp'] as const) {
  t.test(`${kind}: request/response matched by id, out of order`, async (t) => {
    const { conn, peer } = await pair(t, kind);
    const a = conn.request('list_dbs', []);
    const b = conn.request('get_schema', ['Open_vSwitch']);
    const ra = await peer.next();
    const rb = await peer.next();
    t.match(ra, { method: 'list_dbs', params: [] });
    t.match(rb, { method: 'get_schema', params: ['Open_vSwitch'] });
    t.type(ra['id'], 'number');
    t.ok((rb['id'] as number) > (ra['id'] as number), 'ids increase');
    peer.send({ id: rb['id'], result: { version: '8.8.0' }, error: null });
    peer.send({ id: ra['id'], result: ['Open_vSwitch', '_Server'], error: null });
    t.strictSame(await a, ['Open_vSwitch', '_Server']);
    t.strictSame(await b, { version: '8.8.0' });
  });
}

t.test('many concurrent requests, answered in reverse, in one write', async (t) => {
  const { conn, peer } = await pair(t, 'tcp');
  const n = 200;
  const results = Array.from({ length: n }, (_, i) => conn.request<number>('transact', ['db', i]));
  const reqs: Msg[] = [];
  for (let i = 0; i < n; i++) reqs.push(await peer.next());
  t.equal(new Set(reqs.map((r) => r['id'])).size, n, 'ids unique');
  peer.sendRaw(reqs.reverse().map((r) => JSON.stringify({ id: r['id'], result: (r['params'] as [string, number])[1] * 10, error: null })).join('\n'));
  const got = await Promise.all(results);
  t.strictSame(got, Array.from({ length: n }, (_, i) => i * 10));
});

t.test('error reply rejects RpcError with the method and error', async (t) => {
  const { conn, peer } = await pair(t);
  const p = conn.request('transact', ['Nope']);
  const req = await peer.next();
  peer.send({ id: req['id'], result: null, error: { error: 'unknown database', details: 'Nope' } });
  const err = await rejection(p);
  t.type(err, RpcError);
  t.equal((err as RpcError).method, 'transact');
  t.strictSame((err as RpcError).error, { error: 'unknown database', details: 'Nope' });
  t.equal((err as RpcError).code, 'DPU_ERR_RPC');
  t.notOk(conn.closed, 'an RPC error is not a connection error');
});

t.test('answers the server’s echo with its params and id', async (t) => {
  const { peer } = await pair(t);
  peer.send({ method: 'echo', params: ['x', { y: 1 }], id: 'srv-echo-7' });
  t.strictSame(await peer.next(), { id: 'srv-echo-7', result: ['x', { y: 1 }], error: null });
});

t.test('unknown server request is answered "unknown method"', async (t) => {
  const { peer } = await pair(t);
  peer.send({ method: 'frobnicate', params: [1], id: 42 });
  t.strictSame(await peer.next(), { id: 42, result: null, error: 'unknown method' });
});

t.test('server request with a listener is handed over, first reply wins', async (t) => {
  const { conn, peer } = await pair(t);
  conn.on('request', (method, params, reply) => {
    t.equal(method, 'lock_hint');
    t.strictSame(params, ['a']);
    reply({ ok: true });
    reply({ ok: false });
  });
  peer.send({ method: 'lock_hint', params: ['a'], id: [1, 'x'] });
  t.strictSame(await peer.next(), { id: [1, 'x'], result: { ok: true }, error: null });
  peer.send({ method: 'echo', params: [], id: 'after' });
  t.strictSame(await peer.next(), { id: 'after', result: [], error: null }, 'no second reply in between');
});

t.test('notifications are emitted', async (t) => {
  const { conn, peer } = await pair(t);
  const got = once(conn, 'notification');
  peer.send({ method: 'update', params: ['mon', { Bridge: {} }], id: null });
  t.strictSame(await got, ['update', ['mon', { Bridge: {} }]]);
});

t.test('notify sends id null', async (t) => {
  const { conn, peer } = await pair(t);
  conn.notify('set_db_change_aware', [true]);
  t.strictSame(await peer.next(), { method: 'set_db_change_aware', params: [true], id: null });
});

t.test('inactivity probe: echo after an idle interval, close after two', async (t) => {
  const { conn, peer, closes } = await pair(t, 'tcp', { probeIntervalMs: 100 });
  const pending = conn.request('monitor', []);
  await peer.next(); // the monitor request; never answered
  t.strictSame(await peer.next(), { method: 'echo', params: [], id: 'echo' });
  const err = await closeEvent(conn);
  t.type(err, TimeoutError);
  t.equal((err as TimeoutError).what, 'inactivity probe');
  t.ok(conn.closed);
  const reqErr = await rejection(pending);
  t.type(reqErr, ConnectionClosedError);
  t.equal((reqErr as ConnectionClosedError).cause, err);
  await peer.ended;
  t.equal(closes.length, 1);
});

t.test('inactivity probe: answered probes keep the connection up', async (t) => {
  const { conn, peer } = await pair(t, 'tcp', { probeIntervalMs: 100 });
  for (let i = 0; i < 3; i++) {
    const probe = await peer.next();
    t.strictSame(probe, { method: 'echo', params: [], id: 'echo' }, `probe ${i + 1}`);
    peer.send({ id: 'echo', result: [], error: null });
  }
  // Without answers the client would have closed after the first probe.
  t.notOk(conn.closed);
});

t.test('connect() probes tcp at 5000 ms and leaves unix unprobed, as OVS does', async (t) => {
  const unix = await startServer(t, 'unix');
  const tcp = await startServer(t, 'tcp');
  const u = await JsonRpcConnection.connect(unix.remote);
  t.teardown(() => u.close());
  const c = await JsonRpcConnection.connect(tcp.remote);
  t.teardown(() => c.close());
  const o = await JsonRpcConnection.connect(tcp.remote, { probeIntervalMs: 0 });
  t.teardown(() => o.close());
  t.equal(u.probeIntervalMs, 0);
  t.equal(c.probeIntervalMs, 5000);
  t.equal(o.probeIntervalMs, 0, 'explicit 0 disables');
});

t.test('request timeout → TimeoutError; a late reply is ignored', async (t) => {
  const { conn, peer } = await pair(t);
  const slow = conn.request('transact', ['slow'], { timeoutMs: 50 });
  const req = await peer.next();
  const err = await rejection(slow);
  t.type(err, TimeoutError);
  t.equal((err as TimeoutError).timeoutMs, 50);
  peer.send({ id: req['id'], result: 'late', error: null });
  const next = conn.request('transact', ['fast']);
  const req2 = await peer.next();
  peer.send({ id: req2['id'], result: 'fast', error: null });
  t.equal(await next, 'fast');
  t.notOk(conn.closed);
});

t.test('default request timeout from the connection options', async (t) => {
  const { conn } = await pair(t, 'unix', { requestTimeoutMs: 30 });
  const err = await rejection(conn.request('never', []));
  t.type(err, TimeoutError);
  t.equal((err as TimeoutError).timeoutMs, 30);
});

t.test('server closes mid-response: pending requests reject, close emitted once', async (t) => {
  const { conn, peer, closes } = await pair(t);
  const a = conn.request('transact', []);
  const b = conn.request('monitor', []);
  await peer.next();
  await peer.next();
  peer.sendRaw('{"id":1,"result":{"partial":');
  peer.socket.end();
  const [ea, eb] = await Promise.all([rejection(a), rejection(b)]);
  t.type(ea, ConnectionClosedError);
  t.type(eb, ConnectionClosedError);
  t.ok(conn.closed);
  conn.close();
  conn.close();
  await new Promise((r) => setImmediate(r));
  t.equal(closes.length, 1, 'close emitted exactly once');
  t.type(closes[0], ConnectionClosedError);
});

t.test('malformed JSON from the server closes with ProtocolError', async (t) => {
  const { conn, peer, closes } = await pair(t);
  const p = conn.request('transact', []);
  await peer.next();
  peer.sendRaw('{"id":1,"result":[1,2,]}');
  const err = await rejection(p);
  t.type(err, ConnectionClosedError);
  t.type((err as ConnectionClosedError).cause, ProtocolError);
  t.equal(closes.length, 1);
  t.type(closes[0], ProtocolError);
  await peer.ended;
});

t.test('mismatched brackets close at once, without waiting for more bytes', async (t) => {
  const { conn, peer } = await pair(t);
  const closed = closeEvent(conn);
  peer.sendRaw('{"id":1,"result":[1,2}');
  t.type(await closed, ProtocolError);
});

t.test('non-object message closes with ProtocolError', async (t) => {
  const { conn, peer } = await pair(t);
  const closed = closeEvent(conn);
  peer.sendRaw('[1,2,3]');
  t.type(await closed, ProtocolError);
});

for (const [label, msg] of [
  ['neither method nor id', { result: 1, error: null }],
  ['non-string method', { method: 7, params: [], id: 1 }],
  ['non-array params', { method: 'update', params: { a: 1 }, id: null }],
] as const) {
  t.test(`bad JSON-RPC shape (${label}) closes with ProtocolError`, async (t) => {
    const { conn, peer } = await pair(t);
    const closed = closeEvent(conn);
    peer.send(msg);
    t.type(await closed, ProtocolError);
  });
}

t.test('oversize message closes with MessageTooLargeError', async (t) => {
  const { conn, peer, closes } = await pair(t, 'tcp', { maxMessageBytes: 4096 });
  const p = conn.request('get_schema', []);
  const req = await peer.next();
  peer.send({ id: req['id'], result: 'x'.repeat(100_000), error: null });
  const err = await rejection(p);
  t.type(err, ConnectionClosedError);
  t.type((err as ConnectionClosedError).cause, MessageTooLargeError);
  t.type(closes[0], MessageTooLargeError);
  t.equal(closes.length, 1);
});

t.test('requests after close reject ConnectionClosedError; notify is a no-op', async (t) => {
  const { conn, closes } = await pair(t);
  conn.close();
  t.ok(conn.closed);
  t.equal(closes.length, 1);
  t.equal(closes[0], undefined, 'local close carries no error');
  t.type(await rejection(conn.request('list_dbs', [])), ConnectionClosedError);
  t.doesNotThrow(() => conn.notify('x', []));
});

t.test('local close rejects pending requests', async (t) => {
  const { conn, peer } = await pair(t);
  const p = conn.request('monitor', []);
  await peer.next();
  conn.close();
  t.type(await rejection(p), ConnectionClosedError);
  await peer.ended;
});

t.test('a throwing notification listener does not lose later messages', async (t) => {
  const { conn, peer } = await pair(t);
  const seen: string[] = [];
  conn.on('notification', (method) => {
    seen.push(method);
    if (method === 'first') throw new Error('listener bug');
  });
  const p = conn.request('after', []);
  const req = await peer.next();
  peer.sendRaw(
    JSON.stringify({ method: 'first', params: [], id: null }) +
      JSON.stringify({ method: 'second', params: [], id: null }) +
      JSON.stringify({ id: req['id'], result: 'ok', error: null }),
  );
  t.equal(await p, 'ok');
  t.strictSame(seen, ['first', 'second']);
  t.notOk(conn.closed);
});

t.test('a string remote is parsed; connect failure is ConnectError', async (t) => {
  const server = await startServer(t, 'tcp');
  const peerP = server.nextPeer();
  const r = server.remote as { host: string; port: number };
  const conn = await JsonRpcConnection.connect(`tcp:${r.host}:${r.port}`, { probeIntervalMs: 0 });
  t.teardown(() => conn.close());
  t.equal(conn.name, `tcp:127.0.0.1:${r.port}`, 'name defaults to the remote');
  const peer = await peerP;
  const p = conn.request('list_dbs', []);
  const req = await peer.next();
  peer.send({ id: req['id'], result: [], error: null });
  t.strictSame(await p, []);

  t.type(await rejection(JsonRpcConnection.connect(`unix:${path.join(tmp, 'absent.sock')}`)), ConnectError);
});

t.test('no unhandled rejections happened', async (t) => {
  // Give anything still settling a turn of the loop to be reported.
  await new Promise((r) => setImmediate(r));
  t.strictSame(unhandled, []);
});
