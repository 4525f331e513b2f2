import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { API_LIMIT_RANGES, parseApi } from './config/api.ts';
import {
  type Json,
  bool,
  checkKeys,
  deepFreeze,
  int,
  isObject,
  listenAddress,
  oneOf,
  remotes,
  section,
  setPath,
  str,
  strList,
  tlsSection,
} from './config/fields.ts';
import { parseHw } from './config/hw.ts';
import type { AgentConfig, LogLevel } from './config/types.ts';
import { ConfigError } from './errors.ts';
import { parseRemotes } from './jsonrpc/remote.ts';

export type * from './config/types.ts';

// Validated once at the edge (file + env), then frozen and passed down. Units
// live in the names. Unknown keys are errors: a typo in a security-relevant
// setting must not be silently ignored.

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
// Same rule OVS applies to names it accepts in a few places; keeps chassis names
// safe to use as OVN identifiers and in logs.
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const BRIDGE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,14}$/; // IFNAMSIZ-1

/** Environment overrides: `DPU_AGENT_<SECTION>_<KEY>` in SCREAMING_SNAKE, e.g. DPU_AGENT_CHASSIS_ENCAP_IP. */
export const ENV_KEYS: Record<string, string> = {
  DPU_AGENT_OVSDB_REMOTE: 'ovsdb.remote',
  DPU_AGENT_OVSDB_REQUEST_TIMEOUT_MS: 'ovsdb.requestTimeoutMs',
  DPU_AGENT_CHASSIS_SYSTEM_ID: 'chassis.systemId',
  DPU_AGENT_CHASSIS_HOSTNAME: 'chassis.hostname',
  DPU_AGENT_CHASSIS_OVN_REMOTE: 'chassis.ovnRemote',
  DPU_AGENT_CHASSIS_ENCAP_TYPE: 'chassis.encapType',
  DPU_AGENT_CHASSIS_ENCAP_IP: 'chassis.encapIp',
  DPU_AGENT_CHASSIS_BRIDGE: 'chassis.bridge',
  DPU_AGENT_CHASSIS_DATAPATH_TYPE: 'chassis.datapathType',
  DPU_AGENT_CHASSIS_TRANSPORT_ZONES: 'chassis.transportZones',
  DPU_AGENT_CHASSIS_HW_OFFLOAD: 'chassis.hwOffload',
  DPU_AGENT_CHASSIS_TC_POLICY: 'chassis.tcPolicy',
  DPU_AGENT_RECONCILE_REPAIR_DRIFT: 'reconcile.repairDrift',
  DPU_AGENT_RECONCILE_AUDIT_BRIDGE: 'reconcile.auditBridge',
  DPU_AGENT_LOG_LEVEL: 'log.level',
  DPU_AGENT_API_LISTEN_ADDRESS: 'api.listenAddress',
  DPU_AGENT_API_PORT: 'api.port',
  DPU_AGENT_API_TLS_KEY: 'api.tls.key',
  DPU_AGENT_API_TLS_CERT: 'api.tls.cert',
  DPU_AGENT_API_TLS_CLIENT_CA: 'api.tls.clientCa',
  DPU_AGENT_API_TLS_CRL: 'api.tls.crl',
  DPU_AGENT_API_PEER_IDENTITY: 'api.peer.identity',
  DPU_AGENT_API_PEER_URI: 'api.peer.uri',
  // DPU_AGENT_API_LIMITS_MAX_MESSAGE_BYTES → api.limits.maxMessageBytes, etc.
  ...Object.fromEntries(
    Object.keys(API_LIMIT_RANGES).map((k) => [`DPU_AGENT_API_LIMITS_${k.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`, `api.limits.${k}`]),
  ),
  DPU_AGENT_METRICS_LISTEN_ADDRESS: 'metrics.listenAddress',
  DPU_AGENT_METRICS_PORT: 'metrics.port',
  DPU_AGENT_OVN_NB_REMOTE: 'ovn.nbRemote',
  DPU_AGENT_OVN_CONTROLLER_RUNDIR: 'ovn.controllerRundir',
  DPU_AGENT_PORTS_MTU: 'ports.mtu',
  DPU_AGENT_OFFLOAD_TC_QUARANTINE: 'offload.tcQuarantine',
  DPU_AGENT_OFFLOAD_TC_AUDIT: 'offload.tcAudit',
  DPU_AGENT_OFFLOAD_TC_AUDIT_INTERVAL_MS: 'offload.tcAuditIntervalMs',
  DPU_AGENT_OFFLOAD_STATS_INTERVAL_MS: 'offload.statsIntervalMs',
  DPU_AGENT_OFFLOAD_OVS_RUNDIR: 'offload.ovsRundir',
  DPU_AGENT_HW_BACKEND: 'hw.backend',
  DPU_AGENT_HW_HOST_NETNS: 'hw.hostNetns',
  DPU_AGENT_HW_UPLINK: 'hw.uplink',
};

export async function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<AgentConfig> {
  let raw: unknown = {};
  if (file !== undefined) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new ConfigError('--config', `cannot read ${file}: ${(err as Error).message}`);
    }
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new ConfigError('--config', `${file} is not valid JSON: ${(err as Error).message}`);
    }
  }
  return parseConfig(raw, env);
}

export function parseConfig(raw: unknown, env: NodeJS.ProcessEnv = {}): AgentConfig {
  if (!isObject(raw)) throw new ConfigError('(root)', 'must be a JSON object');
  const merged = structuredClone(raw) as Json;
  for (const [name, path] of Object.entries(ENV_KEYS)) {
    const v = env[name];
    if (v !== undefined) setPath(merged, path, v);
  }
  checkKeys(merged, '', ['ovsdb', 'chassis', 'reconcile', 'log', 'api', 'metrics', 'ovn', 'ports', 'hw', 'offload']);
  const ovsdb = section(merged, 'ovsdb');
  const chassis = section(merged, 'chassis');
  const reconcile = section(merged, 'reconcile');
  const log = section(merged, 'log');
  checkKeys(ovsdb, 'ovsdb.', ['remote', 'tls', 'requestTimeoutMs']);
  checkKeys(chassis, 'chassis.', [
    'systemId', 'hostname', 'ovnRemote', 'encapType', 'encapIp', 'bridge',
    'datapathType', 'transportZones', 'hwOffload', 'tcPolicy',
  ]);
  checkKeys(reconcile, 'reconcile.', ['repairDrift', 'auditBridge']);
  checkKeys(log, 'log.', ['level']);
  const ovn = section(merged, 'ovn');
  const ports = section(merged, 'ports');
  checkKeys(ovn, 'ovn.', ['nbRemote', 'tls', 'podUidKey', 'controllerRundir']);
  checkKeys(ports, 'ports.', ['mtu', 'ovnInstalledTimeoutMs', 'maxLeasesPerHost', 'orphanGraceMs', 'gcIntervalMs', 'hostSilenceMs', 'hostReturnGraceMs']);
  const offload = section(merged, 'offload');
  checkKeys(offload, 'offload.', ['tcQuarantine', 'tcAudit', 'tcAuditIntervalMs', 'statsIntervalMs', 'ovsRundir']);
  const nbRemote = ovn['nbRemote'] === undefined ? undefined : str(ovn, 'ovn.nbRemote');
  if (nbRemote !== undefined) remotes('ovn.nbRemote', nbRemote);
  const ovnTls = tlsSection(ovn, 'ovn.tls');
  if (nbRemote !== undefined && parseRemotes(nbRemote).some((r) => r.kind === 'ssl') && !ovnTls) {
    throw new ConfigError('ovn.tls', 'required for an ssl: remote');
  }
  const hw = parseHw(section(merged, 'hw'));

  const ovsdbRemote = str(ovsdb, 'ovsdb.remote', 'unix:/var/run/openvswitch/db.sock');
  const ovsdbRemotes = remotes('ovsdb.remote', ovsdbRemote);
  const tls = tlsSection(ovsdb, 'ovsdb.tls');
  // Judge the parsed remotes, not the text: `unix:/run/ssl:db.sock` is a unix socket.
  if (ovsdbRemotes.some((r) => r.kind === 'ssl') && !tls) throw new ConfigError('ovsdb.tls', 'required for an ssl: remote');

  const systemId = str(chassis, 'chassis.systemId');
  if (!NAME_RE.test(systemId)) throw new ConfigError('chassis.systemId', `${JSON.stringify(systemId)} must match ${NAME_RE}`);
  const host = str(chassis, 'chassis.hostname', hostname());
  const ovnRemote = str(chassis, 'chassis.ovnRemote');
  remotes('chassis.ovnRemote', ovnRemote);
  const encapType = oneOf(chassis, 'chassis.encapType', ['geneve', 'vxlan'] as const, 'geneve');
  const encapIp = str(chassis, 'chassis.encapIp');
  if (isIP(encapIp) === 0) throw new ConfigError('chassis.encapIp', `${JSON.stringify(encapIp)} is not an IP address`);
  const bridge = str(chassis, 'chassis.bridge', 'br-int');
  if (!BRIDGE_RE.test(bridge)) throw new ConfigError('chassis.bridge', `${JSON.stringify(bridge)} is not a valid bridge name`);
  const datapathType = oneOf(chassis, 'chassis.datapathType', ['system', 'netdev'] as const, 'system');
  const transportZones = strList(chassis, 'chassis.transportZones');
  for (const z of transportZones) {
    if (!NAME_RE.test(z)) throw new ConfigError('chassis.transportZones', `${JSON.stringify(z)} must match ${NAME_RE}`);
  }
  const hwOffload = bool(chassis, 'chassis.hwOffload', true);
  const tcPolicy = oneOf(chassis, 'chassis.tcPolicy', ['none', 'skip_sw', 'skip_hw'] as const, 'none');

  const api = merged['api'] === undefined ? undefined : parseApi(section(merged, 'api'), host);
  const metricsSec = section(merged, 'metrics');
  checkKeys(metricsSec, 'metrics.', ['listenAddress', 'port']);
  const metrics = {
    listenAddress: listenAddress(metricsSec, 'metrics.listenAddress', '127.0.0.1'),
    port: int(metricsSec, 'metrics.port', 9110, 0, 65535),
  };
  if (api && metrics.port !== 0 && api.port === metrics.port && api.listenAddress === metrics.listenAddress) {
    throw new ConfigError('metrics.port', 'the management listener must not share the host API socket');
  }

  return deepFreeze({
    ovsdb: {
      remote: ovsdbRemote,
      tls,
      requestTimeoutMs: int(ovsdb, 'ovsdb.requestTimeoutMs', 10_000, 100, 600_000),
    },
    chassis: { systemId, hostname: host, ovnRemote, encapType, encapIp, bridge, datapathType, transportZones, hwOffload, tcPolicy },
    reconcile: {
      repairDrift: bool(reconcile, 'reconcile.repairDrift', true),
      auditBridge: bool(reconcile, 'reconcile.auditBridge', true),
    },
    log: { level: oneOf(log, 'log.level', LOG_LEVELS, 'info') },
    api,
    metrics,
    ovn: {
      nbRemote,
      tls: ovnTls,
      podUidKey: str(ovn, 'ovn.podUidKey', 'dpu-agent/pod-uid'),
      controllerRundir: str(ovn, 'ovn.controllerRundir', '/var/run/ovn'),
    },
    ports: {
      // Geneve adds 58 bytes to a 1500-byte underlay; ovn-kubernetes uses 1400 the same way.
      mtu: int(ports, 'ports.mtu', 1400, 576, 9000),
      ovnInstalledTimeoutMs: int(ports, 'ports.ovnInstalledTimeoutMs', 10_000, 100, 300_000),
      maxLeasesPerHost: int(ports, 'ports.maxLeasesPerHost', 256, 1, 4096),
      orphanGraceMs: int(ports, 'ports.orphanGraceMs', 60_000, 0, 86_400_000),
      gcIntervalMs: int(ports, 'ports.gcIntervalMs', 10_000, 100, 3_600_000),
      // The shim speaks on every CNI call and STATUS poll; a minute of nothing is a host (or runtime) restart or a cut link.
      hostSilenceMs: int(ports, 'ports.hostSilenceMs', 60_000, 1000, 86_400_000),
      hostReturnGraceMs: int(ports, 'ports.hostReturnGraceMs', 120_000, 0, 86_400_000),
    },
    hw,
    offload: {
      tcQuarantine: bool(offload, 'offload.tcQuarantine', true),
      tcAudit: bool(offload, 'offload.tcAudit', true),
      tcAuditIntervalMs: int(offload, 'offload.tcAuditIntervalMs', 30_000, 1000, 3_600_000),
      statsIntervalMs: int(offload, 'offload.statsIntervalMs', 5000, 500, 600_000),
      ovsRundir: str(offload, 'offload.ovsRundir', '/var/run/openvswitch'),
    },
  });
}
