import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

// Every metric the agent exports, declared in one place (STYLE.md 10) and
// registered in a per-agent Registry (STYLE.md 6: no prom-client global
// registry), so several agents in one test process never collide.
// Served only on the management listener (DESIGN.md §1, §5). Label values are
// closed sets; never a pod name, a peer name or free text (cardinality, and
// nothing the host controls ends up as a label).

/** Closed label sets, so call sites cannot invent values. */
export type AttachPhase = 'agent' | 'ovn_installed';
export type HostApiMethod = 'AllocateVf' | 'ReleaseVf' | 'GetVf' | 'ListVfs' | 'Status' | 'unknown';
/** Why the host API turned a request or connection away before the handler ran. */
export type HostApiRejectReason =
  | 'rate-limited'
  | 'concurrency-limited'
  | 'invalid-argument'
  | 'bad-peer-identity'
  | 'body-timeout'
  | 'tls-handshake'
  | 'peer-connection-limit'
  | 'wrong-host'
  | 'bad-http-method'
  | 'bad-content-type';
/** Why the host API closed an established HTTP/2 session. */
export type SessionCloseReason = 'idle' | 'keepalive-timeout' | 'cert-revoked' | 'cert-untrusted';
/** Which certificate an expiry time belongs to. */
export type CertKind = 'server' | 'client-ca' | 'crl' | 'peer';

export interface Metrics {
  readonly registry: Registry;
  /** VFs by state; filled at scrape time from `bindPoolStatus`. */
  readonly vfPool: Gauge<'state'>;
  /** AllocateVf outcomes: `ok` or the failure reason (PortsError reason / `internal`). */
  readonly vfAllocations: Counter<'result'>;
  /** Time to attach a VF: `agent` = our work (lookup, lease, plug), `ovn_installed` = wait for ovn-controller. */
  readonly vfAttachSeconds: Histogram<'phase'>;
  /** Host API calls by method and final gRPC code name (`ok`, `invalid_argument`, …). */
  readonly hostApiRequests: Counter<'method' | 'code'>;
  readonly hostApiRejected: Counter<'reason'>;
  /** Established host API sessions the server closed, by reason. */
  readonly hostApiSessionsClosed: Counter<'reason'>;
  /** Reloads of the host API's TLS files: `ok`, or `error` (the old material stays). */
  readonly tlsReloads: Counter<'result'>;
  /** notAfter (Unix s) of the server cert, the client CA, the CRL's nextUpdate, each accepted peer's cert (`host`). */
  readonly certExpiry: Gauge<'cert' | 'host'>;
  /** Leases held by a host this DPU no longer accepts (filled at scrape time). */
  readonly unacceptedLeases: Gauge;
  bindUnacceptedLeases(read: () => number): void;
  readonly ovsdbConnected: Gauge;
  readonly ovsdbReconnects: Counter;
  readonly ovnControllerConnected: Gauge;
  /** Unix time of the last host API request from each host identity (liveness host → DPU). */
  readonly hostLastSeen: Gauge<'host'>;
  /** Drift found (and repaired unless alert-only) by kind, e.g. `chassis`, `foreign-port`, `foreign-tc-filter`. */
  readonly policyDrift: Counter<'kind'>;
  readonly tcFlows: Gauge<'state'>;
  readonly tcPackets: Counter<'path'>;
  readonly tcBytes: Counter<'path'>;
  /** Per representor/uplink: hw packets / all packets of its flower filters, since the agent started. */
  readonly tcOffloadRatio: Gauge<'port'>;
  /** OVS's own count: `dpctl/dump-flows type=offloaded` lines. */
  readonly ovsOffloadedFlows: Gauge;
  /** OVS's datapath flows by where they live: `dpctl/dump-flows type=tc` vs `type=ovs`. */
  readonly ovsDatapathFlows: Gauge<'dp'>;
  /** Offload coverage: tc / (tc + ovs) datapath flows (0..1); NaN with no flows. */
  readonly ovsTcFlowShare: Gauge;
  /** Seconds since the TC stats behind dpu_tc_* were dumped (they are cached between scrapes). */
  readonly tcStatsAgeSeconds: Gauge;
  /**
   * The offload collector's hook: every dpu_tc_* / dpu_ovs_offloaded_flows collect()
   * calls it (it refreshes the cache when stale, single-flight, and resolves at once
   * unless there is no data yet).
   */
  bindTcCollector(kick: () => Promise<void>): void;
  /** Read the pool's counts at scrape time (the pool need not push updates). */
  bindPoolStatus(read: () => { readonly total: number; readonly free: number; readonly leased: number; readonly broken?: number }): void;
}

export interface MetricsOptions {
  /** Include prom-client's process_* / nodejs_* defaults (default true). */
  readonly processMetrics?: boolean;
}

export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  let readPool: (() => { readonly total: number; readonly free: number; readonly leased: number; readonly broken?: number }) | undefined;
  let kickTc: (() => Promise<void>) | undefined;
  let readUnaccepted: (() => number) | undefined;
  const tcCollect = async (): Promise<void> => {
    if (kickTc) await kickTc();
  };

  const vfPool = new Gauge({
    name: 'dpu_vf_pool',
    help: 'VFs on this DPU by state (free, leased, total; broken = leases whose VF vanished).',
    labelNames: ['state'] as const,
    registers,
    collect() {
      if (!readPool) return;
      const s = readPool();
      this.set({ state: 'total' }, s.total);
      this.set({ state: 'free' }, s.free);
      this.set({ state: 'leased' }, s.leased);
      this.set({ state: 'broken' }, s.broken ?? 0);
    },
  });

  return {
    registry,
    vfPool,
    vfAllocations: new Counter({
      name: 'dpu_vf_allocations_total',
      help: 'AllocateVf outcomes by result (ok or a failure reason).',
      labelNames: ['result'] as const,
      registers,
    }),
    vfAttachSeconds: new Histogram({
      name: 'dpu_vf_attach_seconds',
      help: 'Time to attach a VF, split into the agent phase and the wait for ovn-installed.',
      labelNames: ['phase'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    hostApiRequests: new Counter({
      name: 'dpu_host_api_requests_total',
      help: 'Host API requests by method and gRPC status code.',
      labelNames: ['method', 'code'] as const,
      registers,
    }),
    hostApiRejected: new Counter({
      name: 'dpu_host_api_rejected_total',
      help: 'Host API requests or connections rejected by a limit or edge check, by reason.',
      labelNames: ['reason'] as const,
      registers,
    }),
    hostApiSessionsClosed: new Counter({
      name: 'dpu_host_api_sessions_closed_total',
      help: 'Established host API HTTP/2 sessions closed by the server, by reason (idle, keepalive-timeout, cert-revoked, cert-untrusted).',
      labelNames: ['reason'] as const,
      registers,
    }),
    tlsReloads: new Counter({
      name: 'dpu_host_api_tls_reloads_total',
      help: 'Host API TLS file reloads by result (ok; error = refused, the previous material stays in use).',
      labelNames: ['result'] as const,
      registers,
    }),
    certExpiry: new Gauge({
      name: 'dpu_host_api_cert_expiry_timestamp_seconds',
      help: 'notAfter (Unix time) of the host API server cert, the client CA, the CRL nextUpdate, and each accepted host cert.',
      labelNames: ['cert', 'host'] as const,
      registers,
    }),
    unacceptedLeases: new Gauge({
      name: 'dpu_host_api_unaccepted_leases',
      help: 'Leases held by a host identity this DPU no longer accepts (api.peer.identity).',
      registers,
      collect() {
        if (readUnaccepted) this.set(readUnaccepted());
      },
    }),
    bindUnacceptedLeases(read) {
      readUnaccepted = read;
    },
    ovsdbConnected: new Gauge({
      name: 'dpu_ovsdb_connected',
      help: '1 when the agent is connected to the local Open_vSwitch database.',
      registers,
    }),
    ovsdbReconnects: new Counter({
      name: 'dpu_ovsdb_reconnects_total',
      help: 'Reconnections to the Open_vSwitch database.',
      registers,
    }),
    ovnControllerConnected: new Gauge({
      name: 'dpu_ovn_controller_connected',
      help: '1 when ovn-controller reports it is connected to the OVN southbound database.',
      registers,
    }),
    hostLastSeen: new Gauge({
      name: 'dpu_host_last_seen_timestamp_seconds',
      help: 'Unix time of the last host API request per host identity (client certificate CN).',
      labelNames: ['host'] as const,
      registers,
    }),
    policyDrift: new Counter({
      name: 'dpu_policy_drift_total',
      help: 'Drift from the desired state found by the audits, by kind.',
      labelNames: ['kind'] as const,
      registers,
    }),
    tcFlows: new Gauge({
      name: 'dpu_tc_flows',
      help: 'TC flower filters on representors by offload state.',
      labelNames: ['state'] as const,
      registers,
      collect: tcCollect,
    }),
    tcPackets: new Counter({
      name: 'dpu_tc_packets_total',
      help: 'Packets matched by TC flower filters, by path (hw = offloaded, sw = software).',
      labelNames: ['path'] as const,
      registers,
      collect: tcCollect,
    }),
    tcBytes: new Counter({
      name: 'dpu_tc_bytes_total',
      help: 'Bytes matched by TC flower filters, by path.',
      labelNames: ['path'] as const,
      registers,
      collect: tcCollect,
    }),
    tcOffloadRatio: new Gauge({
      name: 'dpu_tc_offload_ratio',
      help: 'Per port: packets forwarded in hardware / all packets of its TC flower filters (0..1), since the agent started.',
      labelNames: ['port'] as const,
      registers,
      collect: tcCollect,
    }),
    ovsOffloadedFlows: new Gauge({
      name: 'dpu_ovs_offloaded_flows',
      help: 'Datapath flows OVS reports as offloaded (dpctl/dump-flows type=offloaded).',
      registers,
      collect: tcCollect,
    }),
    ovsDatapathFlows: new Gauge({
      name: 'dpu_ovs_datapath_flows',
      help: 'Datapath flows by datapath: dp=tc (OVS put them into TC flower) or dp=ovs (kept in the kernel datapath only).',
      labelNames: ['dp'] as const,
      registers,
      collect: tcCollect,
    }),
    ovsTcFlowShare: new Gauge({
      name: 'dpu_ovs_tc_flow_share',
      help: 'Offload coverage: datapath flows in TC / all datapath flows (0..1; NaN with no flows).',
      registers,
      collect: tcCollect,
    }),
    tcStatsAgeSeconds: new Gauge({
      name: 'dpu_tc_stats_age_seconds',
      help: 'Age of the cached TC dump behind the dpu_tc_* metrics.',
      registers,
      collect: tcCollect,
    }),
    bindTcCollector(kick) {
      kickTc = kick;
    },
    bindPoolStatus(read) {
      readPool = read;
    },
  };
}

/** Typed label helpers: keep call sites inside the closed sets above. */
export function countRejected(m: Metrics, reason: HostApiRejectReason): void {
  m.hostApiRejected.inc({ reason });
}

export function countSessionClosed(m: Metrics, reason: SessionCloseReason): void {
  m.hostApiSessionsClosed.inc({ reason });
}

export function observeAttach(m: Metrics, phase: AttachPhase, ms: number): void {
  m.vfAttachSeconds.observe({ phase }, ms / 1000);
}
