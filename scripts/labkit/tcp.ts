// A tiny TCP sink/source for the lab, run inside pod netns with `ip netns exec`:
//   node --import tsx scripts/labkit/tcp.ts serve IP PORT [TIMEOUT_MS]   (one connection, then exit)
//   node --import tsx scripts/labkit/tcp.ts send IP PORT BYTES [TIMEOUT_MS]
// The server prints "listening" once bound, then answers with the byte count it
// received; the client prints one JSON line {bytes, echoed, ms, mbit}.
import { connect, createServer } from 'node:net';

function serve(host: string, port: number, timeoutMs: number): void {
  let received = 0;
  const timer = setTimeout(() => {
    process.stderr.write('tcp serve: timed out\n');
    process.exit(3);
  }, timeoutMs);
  const server = createServer((sock) => {
    sock.on('data', (b) => (received += b.length));
    sock.on('end', () => {
      sock.end(`${received}\n`);
      server.close();
      clearTimeout(timer);
    });
    sock.on('error', () => process.exit(4));
  });
  server.listen(port, host, () => process.stdout.write('listening\n'));
}

function send(host: string, port: number, bytes: number, timeoutMs: number): void {
  const t0 = performance.now();
  const timer = setTimeout(() => {
    process.stderr.write('tcp send: timed out\n');
    process.exit(3);
  }, timeoutMs);
  const sock = connect({ host, port }, () => {
    const chunk = Buffer.alloc(64 * 1024, 0x5a);
    let left = bytes;
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!sock.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          sock.once('drain', pump);
          return;
        }
      }
      sock.end();
    };
    pump();
  });
  let reply = '';
  sock.on('data', (b) => (reply += b.toString()));
  sock.on('end', () => {
    clearTimeout(timer);
    const ms = performance.now() - t0;
    const echoed = Number(reply.trim());
    process.stdout.write(`${JSON.stringify({ bytes, echoed, ms: Math.round(ms), mbit: Math.round((bytes * 8) / 1000 / ms) })}\n`);
    process.exit(echoed === bytes ? 0 : 1);
  });
  sock.on('error', (err) => {
    process.stderr.write(`tcp send: ${err.message}\n`);
    process.exit(2);
  });
}

const [mode, host, port, a, b] = process.argv.slice(2);
if (mode === 'serve' && host && port) serve(host, Number(port), Number(a ?? 20_000));
else if (mode === 'send' && host && port && a) send(host, Number(port), Number(a), Number(b ?? 20_000));
else {
  process.stderr.write('usage: tcp.ts serve IP PORT [TIMEOUT_MS] | send IP PORT BYTES [TIMEOUT_MS]\n');
  process.exit(2);
}
