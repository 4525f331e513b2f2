import t from 'tap';
import net from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OvsdbClient } from '../../dpu-agent/src/ovsdb/client.ts';
import { createLogger } from '../../dpu-agent/src/log.ts';
import { Writable } from 'node:stream';

// A hostile or broken server must never crash the agent or leave a rejection
// unhandled: the client logs a clear error, drops the session and retries.

const unhandled: unknown[] = [];
const onUnhandled = (e: unknown): void => void unhandled.push(e);
process.on('unhandledRejection', onUnhandled);
t.teardown(() => process.removeListener('unhandledRejection', onUnhandled));

type Behaviour = (sock: net.Socket, msg: { id: unknown; method: string }) => void;

async function fakeServer(t: { teardown(fn: () => unknown): void }, behave: Behaviour): Promise<{ remote: string; connections: () => number }> {
  const dir = await mkdtemp(join(tmpdir(), 'badsrv-'));
  const path = join(dir, 's.sock');
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((sock) => {
    connections++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      // Requests from our client are single JSON objects per write; good enough for a fake.
      for (;;) {
        const end = buf.indexOf('}{');
        const text = end >= 0 ? buf.slice(0, end + 1) : buf;
        try {
          const msg = JSON.parse(text) as { id: unknown; method: string };
          buf = end >= 0 ? buf.slice(end + 1) : '';
          behave(sock, msg);
        } catch {
          return;
        }
        if (!buf) return;
      }
    });
  });
  await new Promise<void>((r) => srv.listen(path, r));
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => srv.close(r));
    await rm(dir, { recursive: true, force: true });
  });
  return { remote: `unix:${path}`, connections: () => connections };
}

function logSink(): { stream: Writable; lines: () => Array<Record<string, unknown>> } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  return { stream, lines: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

async function until(cond: () => boolean, tries = 200): Promise<void> {
  for (let i = 0; i < tries && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
}

const cases: Array<[string, Behaviour, RegExp]> = [
  ['malformed JSON', (s) => s.write('{"id": 0, "result": [tru]}'), /invalid JSON|DPU_ERR_PROTOCOL/],
  ['oversize message', (s) => s.write(`{"id":0,"result":"${'x'.repeat(70_000)}`), /exceeds|TOO_LARGE/],
  ['unknown method answer to our requests', (s, m) => s.write(JSON.stringify({ id: m.id, result: null, error: 'unknown method' })), /unknown method|_Server|schema/i],
  ['closes mid-response', (s) => s.end('{"id":0,"result":{"Database":'), /closed/],
  ['a reply with no id and no method', (s) => s.write('{"result":1}'), /PROTOCOL|neither|method/i],
];

for (const [name, behave, expect] of cases) {
  t.test(`server sends ${name}: clear error, no crash, keeps retrying, stops cleanly`, async (t) => {
    const srv = await fakeServer(t, behave);
    const sink = logSink();
    const c = new OvsdbClient({
      remotes: srv.remote,
      database: 'Open_vSwitch',
      maxMessageBytes: 64 * 1024,
      requestTimeoutMs: 500,
      backoff: { minMs: 20, maxMs: 50 },
      logger: createLogger({ level: 'debug', destination: sink.stream }),
    });
    void c.start().catch(() => undefined);
    await until(() => srv.connections() >= 3);
    t.ok(srv.connections() >= 3, 'reconnects after each failure');
    t.notOk(c.connected, 'never considers the session usable');
    await c.stop();
    const warn = sink.lines().filter((l) => l['msg'] === 'ovsdb connect failed' || l['level'] === 'warn' || l['level'] === 'info');
    t.ok(warn.length > 0, 'the failure is logged');
    t.match(JSON.stringify(sink.lines()), expect, 'with a message that says what went wrong');
    t.same(unhandled, [], 'no unhandled rejection');
  });
}
