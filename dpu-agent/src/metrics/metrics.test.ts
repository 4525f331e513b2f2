import t from 'tap';
import { silentLogger } from '../log.ts';
import { countRejected, createMetrics, observeAttach } from './metrics.ts';
import { MetricsServer } from './server.ts';

t.test('each agent gets its own registry with every documented metric', async (t) => {
  const a = createMetrics();
  const b = createMetrics({ processMetrics: false });
  a.hostApiRequests.inc({ method: 'Status', code: 'ok' });
  countRejected(a, 'rate-limited');
  observeAttach(a, 'ovn_installed', 120);
  a.bindPoolStatus(() => ({ total: 8, free: 5, leased: 3 }));
  const text = await a.registry.metrics();
  for (const name of [
    'dpu_vf_pool', 'dpu_vf_allocations_total', 'dpu_vf_attach_seconds', 'dpu_host_api_requests_total',
    'dpu_host_api_rejected_total', 'dpu_ovsdb_connected', 'dpu_ovsdb_reconnects_total', 'dpu_ovn_controller_connected',
    'dpu_policy_drift_total', 'dpu_tc_flows', 'dpu_tc_packets_total', 'dpu_tc_bytes_total', 'process_cpu_user_seconds_total',
  ]) {
    t.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
  }
  t.match(text, /dpu_host_api_requests_total\{method="Status",code="ok"\} 1/);
  t.match(text, /dpu_host_api_rejected_total\{reason="rate-limited"\} 1/);
  t.match(text, /dpu_vf_attach_seconds_bucket\{le="0.25",phase="ovn_installed"\} 1/);
  t.match(text, /dpu_vf_pool\{state="free"\} 5/);
  const other = await b.registry.metrics();
  t.notMatch(other, /dpu_host_api_requests_total\{/, 'no shared state between registries');
  t.notMatch(other, /process_cpu/, 'process metrics optional');
});

t.test('management listener: /metrics, /healthz, /readyz', async (t) => {
  const metrics = createMetrics({ processMetrics: false });
  let ready = { ready: false, reasons: ['ovsdb-not-connected'] as string[] };
  const srv = new MetricsServer({ metrics, listenAddress: '127.0.0.1', port: 0, ready: () => ready, logger: silentLogger() });
  await srv.start();
  t.teardown(() => srv.stop());
  const base = `http://127.0.0.1:${srv.address().port}`;
  const m = await fetch(`${base}/metrics`);
  t.equal(m.status, 200);
  t.match(m.headers.get('content-type') ?? '', /text\/plain/);
  t.match(await m.text(), /dpu_ovsdb_connected/);
  t.equal((await fetch(`${base}/healthz`)).status, 200);
  const r = await fetch(`${base}/readyz`);
  t.equal(r.status, 503);
  t.match(await r.text(), /ovsdb-not-connected/);
  ready = { ready: true, reasons: [] };
  t.equal((await fetch(`${base}/readyz`)).status, 200);
  t.equal((await fetch(`${base}/nope`)).status, 404);
  t.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405);
});
