// Readiness check for dpu-agent.service (ExecStartPost=), installed as
// /usr/lib/dpu-agent/dpu-agent-ready.mjs and run with the unit's environment.
//
// Contract: exits 0 once GET /readyz on the agent's management listener answers
// 200, or 503 whose reasons are all remote (--remote-reason, default the OVN
// southbound/northbound connections: a central outage must not fail or
// restart-loop the DPU's agent, whose local work — OVSDB connected, chassis
// applied — is done); exits 1 when --timeout-ms passes first (the last reasons
// or the connection error go to stderr, i.e. the journal), 2 on bad usage or config.
// Until it exits the unit stays "activating", so units ordered After= it start
// only once the chassis is configured — what Type=notify would give us if Node
// could write to $NOTIFY_SOCKET (a unix datagram socket) without a native addon.
//
// The listener's address comes from the agent itself (`dpu-agent --check`), so
// file + environment overrides are resolved exactly as the agent resolves them.
// metrics.port 0 (an ephemeral port nobody can know) cannot be polled: exit 0.
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { parseArgs } from 'node:util';

const USAGE = 'usage: dpu-agent-ready.mjs --config FILE [--timeout-ms N] [--interval-ms N] [--remote-reason R]... [--agent PATH]';
/** /readyz reasons (dpu-agent/src/agent.ts readiness()) that depend on OVN central, not on this DPU. */
const REMOTE_REASONS = ['ovn-controller-not-connected', 'ovn-not-connected'];

function fail(code, msg) {
  process.stderr.write(`dpu-agent-ready: ${msg}\n`);
  process.exit(code);
}

let args;
try {
  args = parseArgs({
    options: {
      config: { type: 'string' },
      'timeout-ms': { type: 'string', default: '60000' },
      'interval-ms': { type: 'string', default: '250' },
      'remote-reason': { type: 'string', multiple: true, default: REMOTE_REASONS },
      agent: { type: 'string', default: new URL('./dpu-agent.mjs', import.meta.url).pathname },
    },
    strict: true,
  }).values;
} catch (err) {
  fail(2, `${err.message}\n${USAGE}`);
}
if (!args.config) fail(2, USAGE);
const timeoutMs = Number(args['timeout-ms']);
const intervalMs = Number(args['interval-ms']);
if (!Number.isInteger(timeoutMs) || timeoutMs < 0 || !Number.isInteger(intervalMs) || intervalMs < 10) fail(2, USAGE);

const config = await new Promise((resolve) => {
  execFile(process.execPath, [args.agent, '--check', '--config', args.config], { timeout: 30_000 }, (err, stdout, stderr) => {
    if (err) fail(2, `dpu-agent --check failed: ${(stderr || err.message).trim()}`);
    try {
      resolve(JSON.parse(stdout));
    } catch {
      fail(2, 'dpu-agent --check printed no JSON');
    }
  });
});
const { listenAddress, port } = config.metrics;
if (port === 0) {
  process.stderr.write('dpu-agent-ready: metrics.port is 0 (ephemeral); readiness not checked\n');
  process.exit(0);
}

/** One GET /readyz: resolves { status, body } or { error }. */
function probe() {
  return new Promise((resolve) => {
    const req = request({ host: listenAddress, port, path: '/readyz', method: 'GET', timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body: body.trim().slice(0, 500) }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 2 s')));
    req.on('error', (err) => resolve({ error: err.code ?? err.message }));
    req.end();
  });
}

const deadline = Date.now() + timeoutMs;
const where = `http://${listenAddress.includes(':') ? `[${listenAddress}]` : listenAddress}:${port}/readyz`;
let last = 'no attempt';
for (;;) {
  const r = await probe();
  if (r.status === 200) {
    process.stderr.write(`dpu-agent-ready: ${where} is ready\n`);
    process.exit(0);
  }
  // 503 body: "not ready: reason, reason" (dpu-agent/src/metrics/server.ts).
  const reasons = r.status === 503 ? /^not ready: (.*)$/m.exec(r.body)?.[1]?.split(', ').filter(Boolean) ?? [] : [];
  if (reasons.length && reasons.every((x) => args['remote-reason'].includes(x))) {
    process.stderr.write(`dpu-agent-ready: local start-up done; still waiting on OVN central: ${reasons.join(', ')}\n`);
    process.exit(0);
  }
  last = r.error ? `connection: ${r.error}` : `HTTP ${r.status}: ${r.body}`;
  if (Date.now() + intervalMs > deadline) break;
  await new Promise((res) => setTimeout(res, intervalMs));
}
fail(1, `${where} not ready after ${timeoutMs} ms (last: ${last})`);
