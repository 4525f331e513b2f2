import t from 'tap';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { ConfigError, ConnectError, TimeoutError } from '../errors.ts';
import { connectTransport, type TlsFiles } from './transport.ts';
import { issueCert, makeCa } from '../../../scripts/labkit/certs.ts';

type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

const tmp = mkdtempSync(path.join(os.tmpdir(), 'jsonrpc-transport-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

// --- certificates: the repo's one generator (the openssl CLI, as an operator or ovs-pki would) ---

const pem = (file: string): string => readFileSync(path.join(tmp, file), 'utf8');

const [ca, otherCa] = await Promise.all([makeCa(tmp, 'ca'), makeCa(tmp, 'other-ca')]);
await Promise.all([
  issueCert(ca, 'server', { usage: 'server', san: ['IP:127.0.0.1'] }),
  issueCert(ca, 'server-wrong-name', { usage: 'server', san: ['DNS:sb.example.test'] }),
  issueCert(otherCa, 'server-other-ca', { usage: 'server', san: ['IP:127.0.0.1'] }),
  issueCert(ca, 'client', { usage: 'client' }),
  issueCert(otherCa, 'client-other-ca', { usage: 'client' }),
]);

const clientTls: TlsFiles = { key: pem('client.key'), cert: pem('client.crt'), ca: pem('ca.crt') };

// --- servers ---

function track(t: Tap, server: net.Server): void {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    if (server.listening) await new Promise((r) => server.close(r));
  });
}

async function listen(t: Tap, server: net.Server, where: net.ListenOptions): Promise<net.AddressInfo | string> {
  track(t, server);
  server.listen(where);
  await once(server, 'listening');
  return server.address()!;
}

function echoServer(): net.Server {
  return net.createServer((s) => s.pipe(s));
}

function own(t: Tap, socket: Duplex): Duplex {
  t.teardown(() => {
    socket.destroy();
  });
  return socket;
}

async function roundTrip(socket: Duplex, text: string): Promise<string> {
  socket.write(text);
  const [data] = (await once(socket, 'data')) as [Buffer];
  return data.toString();
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

// --- unix / tcp ---

t.test('unix socket', async (t) => {
  const sock = path.join(tmp, 'echo.sock');
  await listen(t, echoServer(), { path: sock });
  const s = own(t, await connectTransport({ kind: 'unix', path: sock }));
  t.equal(await roundTrip(s, '{"x":1}'), '{"x":1}');
});

t.test('tcp over IPv4', async (t) => {
  const addr = (await listen(t, echoServer(), { host: '127.0.0.1', port: 0 })) as net.AddressInfo;
  const s = own(t, await connectTransport({ kind: 'tcp', host: '127.0.0.1', port: addr.port }));
  t.equal(await roundTrip(s, 'ping'), 'ping');
});

t.test('tcp over IPv6', async (t) => {
  const server = echoServer();
  let addr: net.AddressInfo;
  try {
    addr = (await listen(t, server, { host: '::1', port: 0, ipv6Only: true })) as net.AddressInfo;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT') {
      t.pass('IPv6 loopback unavailable', { skip: `no IPv6 loopback here (${code})` });
      return;
    }
    throw err;
  }
  const s = own(t, await connectTransport({ kind: 'tcp', host: '::1', port: addr.port }));
  t.equal(await roundTrip(s, 'ping6'), 'ping6');
});

t.test('missing unix socket → ConnectError with the errno as cause', async (t) => {
  const err = await rejection(connectTransport({ kind: 'unix', path: path.join(tmp, 'nope.sock') }));
  t.type(err, ConnectError);
  t.equal((err as ConnectError).code, 'DPU_ERR_CONNECT');
  t.equal(((err as ConnectError).cause as NodeJS.ErrnoException).code, 'ENOENT');
});

t.test('refused tcp → ConnectError', async (t) => {
  const probe = net.createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((r) => probe.close(r));
  const err = await rejection(connectTransport({ kind: 'tcp', host: '127.0.0.1', port }));
  t.type(err, ConnectError);
  t.equal(((err as ConnectError).cause as NodeJS.ErrnoException).code, 'ECONNREFUSED');
});

// --- ssl ---

function tlsServer(key: string, cert: string, ca: string): tls.Server {
  return tls.createServer({ key, cert, ca, requestCert: true, rejectUnauthorized: true }, (s) => {
    s.on('error', () => {});
    s.end(`hello ${(s.getPeerCertificate() as tls.PeerCertificate).subject.CN}`);
  });
}

async function tlsListen(t: Tap, server: tls.Server): Promise<number> {
  const sockets = new Set<tls.TLSSocket>();
  server.on('secureConnection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  t.teardown(() => {
    for (const s of sockets) s.destroy();
  });
  const addr = (await listen(t, server, { host: '127.0.0.1', port: 0 })) as net.AddressInfo;
  return addr.port;
}

async function readAll(s: Duplex): Promise<string> {
  let text = '';
  s.on('data', (d: Buffer) => (text += d.toString()));
  await once(s, 'end');
  return text;
}

t.test('ssl with a client certificate, mutual verification', async (t) => {
  const server = tlsServer(pem('server.key'), pem('server.crt'), pem('ca.crt'));
  const port = await tlsListen(t, server);
  const s = own(t, await connectTransport({ kind: 'ssl', host: '127.0.0.1', port }, { tls: clientTls }));
  t.ok((s as tls.TLSSocket).authorized, 'server chain verified');
  t.equal(await readAll(s), 'hello client', 'server saw our client certificate');
});

t.test('ssl: client certificate from another CA is rejected by the server', async (t) => {
  const server = tlsServer(pem('server.key'), pem('server.crt'), pem('ca.crt'));
  const clientErrors: Error[] = [];
  server.on('tlsClientError', (err) => clientErrors.push(err));
  const port = await tlsListen(t, server);
  const bad: TlsFiles = { key: pem('client-other-ca.key'), cert: pem('client-other-ca.crt'), ca: pem('ca.crt') };
  let received = '';
  try {
    // With TLS 1.3 the client finishes its side before the server judges the
    // client certificate, so the refusal may arrive after connect resolves.
    const s = own(t, await connectTransport({ kind: 'ssl', host: '127.0.0.1', port }, { tls: bad }));
    s.on('data', (d: Buffer) => (received += d.toString()));
    s.on('error', () => {});
    await once(s, 'close');
  } catch (err) {
    t.type(err, ConnectError);
  }
  t.equal(received, '', 'no application data reached us');
  t.ok(clientErrors.length >= 1, 'server reported the bad client certificate');
});

t.test('ssl: server certificate from another CA is rejected by us', async (t) => {
  const server = tlsServer(pem('server-other-ca.key'), pem('server-other-ca.crt'), pem('ca.crt'));
  const port = await tlsListen(t, server);
  const err = await rejection(connectTransport({ kind: 'ssl', host: '127.0.0.1', port }, { tls: clientTls }));
  t.type(err, ConnectError);
  t.match(((err as ConnectError).cause as NodeJS.ErrnoException).code, /UNABLE_TO_VERIFY|SELF_SIGNED|CERT/);
});

t.test('ssl: server name is verified; servername overrides the host', async (t) => {
  const server = tlsServer(pem('server-wrong-name.key'), pem('server-wrong-name.crt'), pem('ca.crt'));
  const port = await tlsListen(t, server);
  const err = await rejection(connectTransport({ kind: 'ssl', host: '127.0.0.1', port }, { tls: clientTls }));
  t.type(err, ConnectError);
  t.equal(((err as ConnectError).cause as NodeJS.ErrnoException).code, 'ERR_TLS_CERT_ALTNAME_INVALID');

  const s = own(t, await connectTransport(
    { kind: 'ssl', host: '127.0.0.1', port },
    { tls: { ...clientTls, servername: 'sb.example.test' } },
  ));
  t.equal(await readAll(s), 'hello client');
});

t.test('ssl without TLS material → ConfigError', async (t) => {
  const err = await rejection(connectTransport({ kind: 'ssl', host: '127.0.0.1', port: 1 }));
  t.type(err, ConfigError);
  t.equal((err as ConfigError).code, 'DPU_ERR_CONFIG');
});

t.test('ssl with unusable PEM → ConnectError', async (t) => {
  const err = await rejection(connectTransport(
    { kind: 'ssl', host: '127.0.0.1', port: 1 },
    { tls: { ...clientTls, key: 'not a key' } },
  ));
  t.type(err, ConnectError);
  t.ok((err as ConnectError).cause instanceof Error);
});

// A TCP listener that accepts and then says nothing: the TLS handshake hangs.
async function silentPort(t: Tap): Promise<number> {
  const addr = (await listen(t, net.createServer(), { host: '127.0.0.1', port: 0 })) as net.AddressInfo;
  return addr.port;
}

t.test('connect timeout → ConnectError caused by TimeoutError', async (t) => {
  const port = await silentPort(t);
  const err = await rejection(connectTransport(
    { kind: 'ssl', host: '127.0.0.1', port },
    { tls: clientTls, connectTimeoutMs: 100 },
  ));
  t.type(err, ConnectError);
  t.type((err as ConnectError).cause, TimeoutError);
});

t.test('abort signal cancels a pending connect', async (t) => {
  const port = await silentPort(t);
  const ac = new AbortController();
  const p = connectTransport({ kind: 'ssl', host: '127.0.0.1', port }, { tls: clientTls, signal: ac.signal });
  const reason = new Error('shutting down');
  setImmediate(() => ac.abort(reason));
  const err = await rejection(p);
  t.type(err, ConnectError);
  t.equal((err as ConnectError).cause, reason);
});

t.test('an already-aborted signal rejects without connecting', async (t) => {
  const ac = new AbortController();
  const reason = new Error('already gone');
  ac.abort(reason);
  const err = await rejection(connectTransport({ kind: 'unix', path: path.join(tmp, 'nope.sock') }, { signal: ac.signal }));
  t.type(err, ConnectError);
  t.equal((err as ConnectError).cause, reason, 'the abort reason, not ENOENT: no socket was opened');
});
