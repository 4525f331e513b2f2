import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../dpu-agent/src/agent.ts';
import { parseConfig } from '../../dpu-agent/src/config.ts';
import { silentLogger } from '../../dpu-agent/src/log.ts';

// The agent's management listener comes up before anything else, so /healthz
// answers and /readyz explains itself while OVSDB is still unreachable.

t.test('mgmt listener: up before OVSDB, /readyz 503 with the reason, closed on stop', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dpu-agent-mgmt-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const config = parseConfig({
    ovsdb: { remote: `unix:${join(dir, 'nobody-listens.sock')}`, requestTimeoutMs: 500 },
    chassis: { systemId: 'dpu-0', ovnRemote: 'tcp:127.0.0.1:6642', encapIp: '192.0.2.10' },
    metrics: { listenAddress: '127.0.0.1', port: 0 },
  });
  const agent = await Agent.create(config, silentLogger());
  const starting = agent.start().catch((err: unknown) => err);
  let base = '';
  for (let i = 0; i < 50 && !base; i++) {
    const a = (agent.mgmt as unknown as { server: { address(): { port: number } | null } }).server.address();
    if (a) base = `http://127.0.0.1:${a.port}`;
    else await new Promise((r) => setTimeout(r, 20));
  }
  t.ok(base, 'listening');
  t.equal((await fetch(`${base}/healthz`)).status, 200);
  const r = await fetch(`${base}/readyz`);
  t.equal(r.status, 503);
  t.match(await r.text(), /ovsdb-not-connected/);
  t.match(await (await fetch(`${base}/metrics`)).text(), /^# TYPE dpu_ovsdb_connected gauge/m);
  await agent.stop();
  await Promise.race([starting, new Promise((r) => setTimeout(r, 2000))]);
  await t.rejects(fetch(`${base}/healthz`), 'closed after stop');
});
