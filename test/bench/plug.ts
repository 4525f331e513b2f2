// Plug bench: create and delete N Port+Interface rows on br-int through OUR
// OVSDB client (one transaction per port, as the agent's plug path), against a
// real ovsdb-server this bench starts in a temp dir; versus one ovs-vsctl
// process per port (what ovn-kubernetes does).
//   npm run bench -- plug [--ports 1000] [--concurrency 32] [--baseline-sample 200] [--budget-ms 600000]
// Ends with one JSON line {"bench":"plug",…}.
//
// Ours, per port:
//   plug   = insert Interface{name, external_ids:iface-id} + insert Port + mutate Bridge ports insert
//            same as: ovs-vsctl add-port br-int pN -- set Interface pN external_ids:iface-id=…
//   unplug = mutate Bridge ports delete <port uuid>  (Port and Interface are non-root: garbage-collected)
//            same as: ovs-vsctl del-port br-int pN
// Baseline: a sample of ports (default 200) through ovs-vsctl, extrapolated per port. ovs-vsctl reads the
// whole database on every run, so its cost grows with the number of ports; sampling on a smaller bridge
// flatters the baseline (the ratio is conservative).
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { NamedUuid, Uuid } from '../../dpu-agent/src/ovsdb/atoms.ts';
import { OvsdbClient } from '../../dpu-agent/src/ovsdb/client.ts';
import { type Operation, eq, op } from '../../dpu-agent/src/ovsdb/ops.ts';
import { quantile } from '../../scripts/labkit/quantile.ts';
import { ovsVsctl } from '../helpers/ovsdb/cli.ts';
import type { TeardownHost } from '../helpers/ovsdb/process.ts';
import { type OvsdbServer, startOvsdbServer } from '../helpers/ovsdb/server.ts';

const BRIDGE = 'br-int';
const TXN_TIMEOUT_MS = 10_000;
const CONNECT_TIMEOUT_MS = 10_000;

const out = (s: string): void => {
  process.stdout.write(`${s}\n`);
};

const round = (x: number, digits = 3): number => Number(x.toFixed(digits));

function posInt(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

/** same as: ovs-vsctl add-port br-int NAME -- set Interface NAME external_ids:iface-id=IFACE_ID */
export function plugOps(name: string, ifaceId: string): Operation[] {
  return [
    op.insert('Interface', { name, external_ids: new Map([['iface-id', ifaceId]]) }, 'iface'),
    op.insert('Port', { name, interfaces: new NamedUuid('iface') }, 'port'),
    op.mutate('Bridge', [eq('name', BRIDGE)], [['ports', 'insert', [new NamedUuid('port')]]]),
  ];
}

/** same as: ovs-vsctl del-port br-int NAME (the Port and its Interface are garbage-collected) */
export function unplugOps(portUuid: string): Operation[] {
  return [op.mutate('Bridge', [eq('name', BRIDGE)], [['ports', 'delete', [new Uuid(portUuid)]]])];
}

class Deadline {
  private readonly end: number;
  constructor(readonly budgetMs: number) {
    this.end = Date.now() + budgetMs;
  }
  check(what: string): void {
    if (Date.now() > this.end) throw new Error(`bench budget of ${this.budgetMs} ms exceeded during ${what}`);
  }
}

interface Phase {
  totalMs: number;
  latMs: number[];
}

/** Run `n` jobs with at most `concurrency` in flight; each job's latency is recorded. */
async function pool(n: number, concurrency: number, dl: Deadline, what: string, job: (i: number) => Promise<void>): Promise<Phase> {
  const latMs: number[] = new Array<number>(n);
  let next = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      if ((i & 63) === 0) dl.check(what);
      const s = performance.now();
      await job(i);
      latMs[i] = performance.now() - s;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return { totalMs: performance.now() - t0, latMs };
}

async function countRows(c: OvsdbClient, table: string): Promise<number> {
  const [r] = await c.transact([op.select(table, [], ['_uuid'])], { timeoutMs: TXN_TIMEOUT_MS });
  return r?.rows?.length ?? -1;
}

async function expectCounts(c: OvsdbClient, ports: number, when: string): Promise<void> {
  // +1: br-int's own internal port/interface.
  const p = await countRows(c, 'Port');
  const i = await countRows(c, 'Interface');
  if (p !== ports + 1 || i !== ports + 1) throw new Error(`${when}: expected ${ports + 1} Port/Interface rows, found ${p}/${i}`);
}

/** Plug `ports` ports then unplug them all, `concurrency` transactions in flight. */
async function runOurs(c: OvsdbClient, ports: number, concurrency: number, tag: string, dl: Deadline): Promise<{ plug: Phase; unplug: Phase }> {
  const uuids: string[] = new Array<string>(ports);
  const plug = await pool(ports, concurrency, dl, `${tag} plug`, async (i) => {
    const res = await c.transact(plugOps(`${tag}${i}`, `pod-${tag}-${i}`), { timeoutMs: TXN_TIMEOUT_MS });
    const u = res[1]?.uuid;
    if (u === undefined) throw new Error(`plug ${tag}${i}: no Port uuid in result`);
    uuids[i] = u;
  });
  await expectCounts(c, ports, `after ${tag} plug`);
  const unplug = await pool(ports, concurrency, dl, `${tag} unplug`, async (i) => {
    await c.transact(unplugOps(uuids[i] as string), { timeoutMs: TXN_TIMEOUT_MS });
  });
  await expectCounts(c, 0, `after ${tag} unplug`);
  return { plug, unplug };
}

async function runBaseline(server: OvsdbServer, c: OvsdbClient, sample: number, dl: Deadline): Promise<{ plug: Phase; unplug: Phase }> {
  const name = (i: number): string => `b${i}`;
  const plug = await pool(sample, 1, dl, 'baseline add-port', async (i) => {
    await ovsVsctl(server.unixRemote, 'add-port', BRIDGE, name(i), '--', 'set', 'Interface', name(i), `external_ids:iface-id=pod-b-${i}`);
  });
  await expectCounts(c, sample, 'after baseline add-port');
  const unplug = await pool(sample, 1, dl, 'baseline del-port', async (i) => {
    await ovsVsctl(server.unixRemote, 'del-port', BRIDGE, name(i));
  });
  await expectCounts(c, 0, 'after baseline del-port');
  return { plug, unplug };
}

function describe(label: string, ph: Phase): string {
  return `${label}: ${ph.latMs.length} in ${Math.round(ph.totalMs)} ms, p50 ${round(quantile(ph.latMs, 0.5))} ms, p99 ${round(quantile(ph.latMs, 0.99))} ms`;
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ports: { type: 'string' },
      concurrency: { type: 'string' },
      'baseline-sample': { type: 'string' },
      'budget-ms': { type: 'string' },
    },
  });
  const ports = posInt('ports', values.ports, 1000);
  const concurrency = posInt('concurrency', values.concurrency, 32);
  const sample = Math.min(ports, posInt('baseline-sample', values['baseline-sample'], 200));
  const dl = new Deadline(posInt('budget-ms', values['budget-ms'], 600_000));

  const teardowns: Array<() => unknown> = [];
  const host: TeardownHost = { teardown: (fn) => teardowns.push(fn) };
  let server: OvsdbServer | undefined;
  let client: OvsdbClient | undefined;
  try {
    server = await startOvsdbServer(host, { schema: 'vswitch' });
    // same as: ovs-vsctl --no-wait add-br br-int
    await ovsVsctl(server.unixRemote, 'add-br', BRIDGE);
    out(`ovsdb-server pid ${server.pid} on ${server.unixRemote}`);

    client = new OvsdbClient({ remotes: server.unixRemote, database: 'Open_vSwitch', requestTimeoutMs: TXN_TIMEOUT_MS });
    void client.start();
    await client.waitConnected(CONNECT_TIMEOUT_MS);
    await expectCounts(client, 0, 'start');

    const tag = randomBytes(2).toString('hex');
    // Warm-up (JIT, server-side table growth), not measured.
    await runOurs(client, Math.min(100, ports), concurrency, `w${tag}x`, dl);

    const seq = await runOurs(client, ports, 1, `s${tag}x`, dl);
    out(describe('ours sequential plug  ', seq.plug));
    out(describe('ours sequential unplug', seq.unplug));
    const conc = await runOurs(client, ports, concurrency, `c${tag}x`, dl);
    out(describe(`ours ${concurrency} in flight plug  `, conc.plug));
    out(describe(`ours ${concurrency} in flight unplug`, conc.unplug));

    const base = await runBaseline(server, client, sample, dl);
    out(describe('ovs-vsctl add-port', base.plug));
    out(describe('ovs-vsctl del-port', base.unplug));

    const oursMs = seq.plug.totalMs + seq.unplug.totalMs;
    const oursConcMs = conc.plug.totalMs + conc.unplug.totalMs;
    const oursPerPort = oursMs / ports;
    const basePerPort = (base.plug.totalMs + base.unplug.totalMs) / sample;
    const all = [...seq.plug.latMs, ...seq.unplug.latMs].sort((a, b) => a - b);
    const plugLat = [...seq.plug.latMs].sort((a, b) => a - b);
    const unplugLat = [...seq.unplug.latMs].sort((a, b) => a - b);
    const rssMiB = process.memoryUsage().rss / (1024 * 1024);
    out(
      `per port (plug+unplug): ours ${round(oursPerPort)} ms sequential, ${round(oursConcMs / ports)} ms at ${concurrency} in flight; ` +
        `ovs-vsctl ${round(basePerPort)} ms (sample of ${sample}, extrapolated to ${ports}: ${Math.round(basePerPort * ports)} ms)`,
    );
    out(`ratio baseline/ours: ${round(basePerPort / oursPerPort, 1)}x sequential, ${round(basePerPort / (oursConcMs / ports), 1)}x concurrent; rss ${round(rssMiB, 1)} MiB`);

    out(
      JSON.stringify({
        bench: 'plug',
        ports,
        ours_ms: Math.round(oursMs),
        ours_ms_per_port: round(oursPerPort),
        ours_concurrent_ms: Math.round(oursConcMs),
        concurrency,
        ours_concurrent_ports_per_s: Math.round(ports / (oursConcMs / 1000)),
        baseline_ms: Math.round(basePerPort * ports),
        baseline_ms_per_port: round(basePerPort),
        baselineSample: sample,
        baselineExtrapolated: sample < ports,
        ratio: round(basePerPort / oursPerPort, 1),
        ratio_concurrent: round(basePerPort / (oursConcMs / ports), 1),
        p50_ms: round(quantile(all, 0.5)),
        p99_ms: round(quantile(all, 0.99)),
        plug_p50_ms: round(quantile(plugLat, 0.5)),
        plug_p99_ms: round(quantile(plugLat, 0.99)),
        unplug_p50_ms: round(quantile(unplugLat, 0.5)),
        unplug_p99_ms: round(quantile(unplugLat, 0.99)),
        rss_mib: round(rssMiB, 1),
      }),
    );
    return 0;
  } finally {
    await client?.stop().catch(() => undefined);
    // Stop by pid (SIGTERM, SIGKILL after a bound), then the helper's teardown removes the temp dir.
    await server?.stop().catch(() => undefined);
    for (const fn of teardowns.reverse()) await Promise.resolve(fn()).catch(() => undefined);
  }
}
