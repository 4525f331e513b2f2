import { readTlsFiles, TlsFilesError } from '../../contract/tls-files.ts';
import { HostPresence } from './api/host-presence.ts';
import { HostApiServer } from './api/server.ts';
import { OvnControllerProbe } from './chassis/ovn-controller.ts';
import { ChassisReconciler } from './chassis/reconciler.ts';
import type { AgentConfig, TlsPaths } from './config.ts';
import { ConfigError } from './errors.ts';
import { type Hardware, openHardware } from './hw/backend.ts';
import { RtLinkCounters } from './hw/link-stats.ts';
import { LinkWatch } from './hw/link-watch.ts';
import { LinkQuarantine } from './hw/quarantine.ts';
import { RtLinkQuarantine, RtLinks } from './hw/rtlink.ts';
import { BRIDGE_AUDIT_MONITOR, BridgeAudit, claimedIfaceIds } from './offload/bridge-audit.ts';
import { OffloadCollector } from './offload/collector.ts';
import { UnixctlOvsView } from './offload/ovs-view.ts';
import { TcQuarantine } from './offload/quarantine.ts';
import { sysfsIfindex } from './offload/tc-api.ts';
import { TcAudit, listDevices } from './offload/tc-audit.ts';
import { TcEvents } from './offload/tc-events.ts';
import { Tc } from './tc/index.ts';
import type { TlsFiles } from './jsonrpc/transport.ts';
import type { Logger } from './log.ts';
import { createMetrics, type Metrics, observeAttach } from './metrics/metrics.ts';
import { MetricsServer, type Readiness } from './metrics/server.ts';
import { OvsdbClient } from './ovsdb/client.ts';
import { type Monitor, mergeMonitorRequests } from './ovsdb/monitor.ts';
import { OvnView } from './ports/ovn.ts';
import { POOL_MONITOR } from './ports/bridge-view.ts';
import { VfPool } from './ports/pool.ts';
import { startMallocTrim } from './util/malloc-trim.ts';

// Wires the parts together. Everything is built from the frozen config and one
// logger; nothing global, so tests can run several agents in one process.

/** How often glibc's free pages go back to the kernel after start (util/malloc-trim.ts). */
const MALLOC_TRIM_INTERVAL_MS = 60_000;
const mib = (b: number): number => Math.round(b / 104857.6) / 10;

export class Agent {
  readonly ovsdb: OvsdbClient;
  readonly chassis: ChassisReconciler;
  /** Present when the config names an OVN Northbound remote. */
  readonly nb: OvsdbClient | undefined;
  readonly ovn: OvnView | undefined;
  readonly pool: VfPool | undefined;
  /** The eSwitch backend the config names (built with the VF pool). */
  private readonly hw: Hardware | undefined;
  readonly audit: BridgeAudit | undefined;
  /** The Bridge/Port/Interface replica the audit and the pool share (when both run). */
  private readonly bridgeView: Monitor | undefined;
  readonly ovnController: OvnControllerProbe;
  /** Per-agent registry (no prom-client globals) and the management listener. */
  readonly metrics: Metrics;
  readonly mgmt: MetricsServer;
  /** The host API; present when the config has an `api` section and the VF pool is on. */
  api: HostApiServer | undefined;
  private readonly log: Logger;
  private readonly rootLogger: Logger;
  private gcTimer: NodeJS.Timeout | undefined;
  private stopTrim: (() => void) | undefined;
  private linkWatch: LinkWatch | undefined;
  /** TC (offload/): our rtnetlink socket, the quarantine drop filter, the TC audit, the stats collector. */
  readonly tc: Tc | undefined;
  readonly tcQuarantine: TcQuarantine | undefined;
  readonly tcAudit: TcAudit | undefined;
  readonly offloadStats: OffloadCollector | undefined;
  private tcEvents: TcEvents | undefined;

  private constructor(
    readonly config: AgentConfig,
    logger: Logger,
    tls: { ovsdb?: TlsFiles; ovn?: TlsFiles },
  ) {
    this.log = logger.child({ component: 'agent' });
    this.rootLogger = logger;
    this.metrics = createMetrics();
    this.ovsdb = new OvsdbClient({
      remotes: config.ovsdb.remote,
      database: 'Open_vSwitch',
      requestTimeoutMs: config.ovsdb.requestTimeoutMs,
      ...(tls.ovsdb ? { tls: tls.ovsdb } : {}),
      logger,
    });
    this.chassis = new ChassisReconciler({
      client: this.ovsdb,
      config: config.chassis,
      repairDrift: config.reconcile.repairDrift,
      logger,
    });
    // Failures are logged by the reconciler and retried on the next change.
    this.chassis.on('error', () => undefined);
    this.ovnController = new OvnControllerProbe({ rundir: config.ovn.controllerRundir, intervalMs: 5000, logger });
    // The bridge audit and the VF pool watch the same rows (br-int's ports and interfaces):
    // one shared replica instead of two copies of every Interface row, and one update
    // decoded per change instead of two — with 1,000 leases that is memory and plug latency.
    const sharedBridgeView = config.reconcile.auditBridge && config.ovn.nbRemote ? this.ovsdb.monitor(mergeMonitorRequests(BRIDGE_AUDIT_MONITOR, POOL_MONITOR)) : undefined;
    this.bridgeView = sharedBridgeView;
    if (config.reconcile.auditBridge) {
      this.audit = new BridgeAudit({
        client: this.ovsdb,
        bridge: config.chassis.bridge,
        repair: config.reconcile.repairDrift,
        logger,
        ...(sharedBridgeView ? { monitor: sharedBridgeView } : {}),
      });
    }
    if (config.ovn.nbRemote) {
      this.nb = new OvsdbClient({
        remotes: config.ovn.nbRemote,
        database: 'OVN_Northbound',
        requestTimeoutMs: config.ovsdb.requestTimeoutMs,
        ...(tls.ovn ? { tls: tls.ovn } : {}),
        logger,
      });
      this.ovn = new OvnView({ client: this.nb, logger, podUidKey: config.ovn.podUidKey });
      this.tc = openTc(logger);
      // Link state over the same rtnetlink socket when there is one; `ip` processes otherwise.
      const link = this.tc ? new RtLinkQuarantine(this.tc.nl) : new LinkQuarantine();
      const ovsView = new UnixctlOvsView(config.offload.ovsRundir, { logger });
      if (this.tc && config.offload.tcQuarantine) {
        this.tcQuarantine = new TcQuarantine({ tc: this.tc, link, addrs: new RtLinks(this.tc.nl), tcPolicy: config.chassis.tcPolicy, logger });
        if (config.offload.tcAudit) {
          this.tcAudit = new TcAudit({
            tc: this.tc,
            quarantine: this.tcQuarantine,
            uplinks: [config.hw.uplink],
            repair: config.reconcile.repairDrift,
            intervalMs: config.offload.tcAuditIntervalMs,
            ovs: ovsView,
            logger,
          });
        }
      }
      if (this.tc) {
        const q = this.tcQuarantine;
        this.offloadStats = new OffloadCollector({
          tc: this.tc,
          // Representors the quarantine knows (all of them once the pool started) and the uplink;
          // without the TC quarantine, the leased ones.
          devices: () => (q ? listDevices(q, [config.hw.uplink]) : leasedDevices(this.pool, config.hw.uplink)),
          intervalMs: config.offload.statsIntervalMs,
          metrics: this.metrics,
          ovs: ovsView,
          logger,
        });
      }
      this.hw = openHardware(config.hw, { ...(this.tc ? { nl: this.tc.nl } : {}), logger });
      this.pool = new VfPool({
        ovs: this.ovsdb,
        ...(sharedBridgeView ? { monitor: sharedBridgeView } : {}),
        ovn: this.ovn,
        hw: this.hw.backend,
        quarantine: this.tcQuarantine ?? link,
        logger,
        bridge: config.chassis.bridge,
        chassisNames: [config.chassis.systemId, config.chassis.hostname],
        mtu: config.ports.mtu,
        ovnInstalledTimeoutMs: config.ports.ovnInstalledTimeoutMs,
        encapIp: config.chassis.encapIp,
        maxLeasesPerPeer: config.ports.maxLeasesPerHost,
        orphanGraceMs: config.ports.orphanGraceMs,
        ...(this.tc ? { counters: new RtLinkCounters(this.tc.nl) } : {}),
      });
    }
    this.mgmt = new MetricsServer({
      metrics: this.metrics,
      listenAddress: config.metrics.listenAddress,
      port: config.metrics.port,
      ready: () => this.readiness(),
      logger,
    });
    this.wireMetrics();
    if (this.audit && this.pool) wireLeaseReassert(this.audit, this.pool);
  }

  /** /readyz: OVSDB connected, br-int as configured, ovn-controller on the SB, and the VF pool ready when there is one. */
  readiness(): Readiness {
    const reasons: string[] = [];
    if (!this.ovsdb.connected) reasons.push('ovsdb-not-connected');
    else if (!this.chassis.isConverged) reasons.push('chassis-not-applied');
    if (!this.ovnController.connected) reasons.push('ovn-controller-not-connected');
    const s = this.pool?.status();
    if (s && !s.ovnConnected) reasons.push('ovn-not-connected');
    if (s && !s.ready && reasons.length === 0) reasons.push('vf-pool-not-ready');
    return { ready: reasons.length === 0, reasons };
  }

  private wireMetrics(): void {
    const m = this.metrics;
    let connects = 0;
    this.ovsdb.on('connected', () => {
      m.ovsdbConnected.set(1);
      if (connects++ > 0) m.ovsdbReconnects.inc();
    });
    this.ovsdb.on('disconnected', () => m.ovsdbConnected.set(0));
    this.ovnController.on('change', (c) => m.ovnControllerConnected.set(c ? 1 : 0));
    this.chassis.on('drift', (diffs) => {
      for (const d of diffs) m.policyDrift.inc({ kind: d.kind });
    });
    this.audit?.on('drift', (kind, ports) => m.policyDrift.inc({ kind }, ports.length));
    this.tcAudit?.on('drift', (kind, findings) => m.policyDrift.inc({ kind }, findings.length));
    if (this.pool) {
      const pool = this.pool;
      m.bindPoolStatus(() => pool.status());
      pool.on('reasserted', (o) => {
        if (o.result === 'reclaimed') m.policyDrift.inc({ kind: 'binding-reclaimed' });
        else if (o.result === 'not-installed') m.policyDrift.inc({ kind: 'binding-reclaim-failed' });
      });
      pool.on('allocated', (_a, t) => {
        observeAttach(m, 'agent', t.agentMs);
        observeAttach(m, 'ovn_installed', t.ovnInstalledMs);
      });
    }
  }

  static async create(config: AgentConfig, logger: Logger): Promise<Agent> {
    return new Agent(config, logger, {
      ...(config.ovsdb.tls ? { ovsdb: await readTls(config.ovsdb.tls, 'ovsdb.tls') } : {}),
      ...(config.ovn.tls ? { ovn: await readTls(config.ovn.tls, 'ovn.tls') } : {}),
    });
  }

  async start(): Promise<void> {
    // Management listener first: /healthz answers while the rest comes up.
    await this.mgmt.start().catch((err: unknown) => {
      throw new ConfigError('metrics.port', `cannot listen on ${this.config.metrics.listenAddress}:${this.config.metrics.port}: ${(err as Error).message}`);
    });
    this.log.info({ remote: this.config.ovsdb.remote }, 'connecting to Open_vSwitch database');
    await this.ovsdb.start();
    await this.chassis.start();
    this.ovnController.start();
    await this.audit?.start();
    if (this.pool && this.ovn && this.hw) {
      await this.ovn.start();
      await this.pool.start();
      const pool = this.pool;
      const hw = this.hw;
      this.linkWatch = new LinkWatch(this.log);
      this.linkWatch.on('link', (e) => {
        if (!hw.backend.vfOf(e.name)) return;
        // A representor came or went: what the backend cached of the VFs may have changed with it.
        hw.linksChanged();
        if (e.kind === 'new' && e.adminUp) void pool.keepQuarantined(e.name);
        void pool.rescan();
      });
      this.linkWatch.on('overrun', () => {
        hw.linksChanged();
        void pool.rescan();
      });
      try {
        this.linkWatch.start();
      } catch (err) {
        // Without notifications the pool still works; hot-plugged VFs wait for the next rescan.
        this.log.warn({ err }, 'cannot watch link notifications; representors are rescanned periodically only');
      }
      if (this.tcAudit) {
        try {
          this.tcEvents = new TcEvents(this.log);
        } catch (err) {
          this.log.warn({ err }, 'cannot join RTNLGRP_TC: the TC audit polls only');
        }
        this.tcAudit.start(this.tcEvents);
      }
      this.gcTimer = setInterval(() => {
        this.pool?.sweepOrphans().catch((err: unknown) => this.log.warn({ err }, 'orphan sweep failed'));
        // Belt and braces for lost link notifications.
        void this.pool?.rescan();
      }, this.config.ports.gcIntervalMs);
      this.gcTimer.unref();
      if (this.config.api) {
        const presence = new HostPresence({ silenceMs: this.config.ports.hostSilenceMs, returnGraceMs: this.config.ports.hostReturnGraceMs });
        this.api = await HostApiServer.create({
          config: this.config.api,
          pool: this.pool,
          metrics: this.metrics,
          logger: this.rootLogger,
          presence,
          leaseOwners: () => pool.leases(),
        });
        await this.api.start();
      }
    }
    if (this.config.api && !this.pool) this.log.warn('api is configured but the VF pool is off (no ovn.nbRemote): host API not started');
    this.log.info({ writes: this.chassis.writes, pool: this.pool?.status() }, 'agent ready');
    // The start's transient peak is behind us: hand glibc's free pages back, and keep doing so.
    this.stopTrim = startMallocTrim(MALLOC_TRIM_INTERVAL_MS, (r, first) => {
      const ctx = { available: r.available, released: r.released, rssBeforeMiB: mib(r.rssBefore), rssAfterMiB: mib(r.rssAfter) };
      if (first) this.log.info(ctx, 'malloc heap trimmed');
      else this.log.debug(ctx, 'malloc heap trimmed');
    });
  }

  async stop(): Promise<void> {
    // Host API first: no new allocations while the pool shuts down.
    await this.api?.stop();
    if (this.gcTimer) clearInterval(this.gcTimer);
    this.stopTrim?.();
    this.linkWatch?.stop();
    this.tcAudit?.stop();
    this.tcEvents?.close();
    this.pool?.stop();
    this.ovn?.stop();
    this.audit?.stop();
    this.bridgeView?.close();
    this.ovnController.stop();
    this.chassis.stop();
    await Promise.all([this.ovsdb.stop(), this.nb?.stop()]);
    await this.mgmt.stop();
    this.hw?.close();
    this.tc?.close();
  }
}

/**
 * A foreign port the audit removed may have carried a leased LSP's iface-id:
 * ovn-controller may then have released that LSP instead of giving it back to the
 * leased interface, so the pool re-asserts the lease (a no-op for LSPs it does not
 * lease). Alert-only mode leaves the foreign port in place: nothing to re-assert against.
 */
export function wireLeaseReassert(audit: BridgeAudit, pool: VfPool): void {
  audit.on('drift', (_kind, ports, repaired) => {
    if (!repaired) return;
    for (const lsp of claimedIfaceIds(ports)) void pool.reassert(lsp);
  });
}

/** Our rtnetlink socket for TC, or undefined (logged) when the kernel refuses one. */
function openTc(logger: Logger): Tc | undefined {
  try {
    return new Tc({ log: logger });
  } catch (err) {
    logger.warn({ err }, 'no rtnetlink socket: TC quarantine, audit and offload stats are off');
    return undefined;
  }
}

async function leasedDevices(pool: VfPool | undefined, uplink: string): Promise<{ name: string; ifindex: number }[]> {
  const out: { name: string; ifindex: number }[] = [];
  for (const name of [...(pool?.leases() ?? []).map((l) => l.representor), uplink]) {
    const ifindex = await sysfsIfindex(name);
    if (ifindex !== undefined) out.push({ name, ifindex });
  }
  return out;
}

async function readTls(paths: TlsPaths, key: string): Promise<TlsFiles> {
  try {
    return await readTlsFiles({ key: paths.key, cert: paths.cert, ca: paths.ca });
  } catch (err) {
    if (err instanceof TlsFilesError) throw new ConfigError(`${key}.${err.file}`, `cannot read ${err.path}: ${(err.cause as Error).message}`);
    throw err;
  }
}
