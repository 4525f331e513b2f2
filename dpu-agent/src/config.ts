import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { ConfigError } from './errors.ts';
import { type Remote, parseRemotes } from './jsonrpc/remote.ts';

// Validated once at the edge (file + env), then frozen and passed down. Units
// live in the names. Unknown keys are errors: a typo in a security-relevant
// setting must not be silently ignored.

export type EncapType = 'geneve' | 'vxlan';
export type TcPolicy = 'none' | 'skip_sw' | 'skip_hw';
export type DatapathType = 'system' | 'netdev';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface TlsPaths {
  readonly key: string;
  readonly cert: string;
  readonly ca: string;
}

export interface ChassisConfig {
  /** OVN chassis name (`external_ids:system-id`). */
  readonly systemId: string;
  readonly hostname: string;
  /** What ovn-controller dials: one remote or a comma-separated Raft cluster list. */
  readonly ovnRemote: string;
  readonly encapType: EncapType;
  readonly encapIp: string;
  readonly bridge: string;
  readonly datapathType: DatapathType;
  readonly transportZones: readonly string[];
  readonly hwOffload: boolean;
  readonly tcPolicy: TcPolicy;
}

/** Limits of the host API (DESIGN.md §4). Per-peer = per client-certificate CN. */
export interface ApiLimits {
  /** Largest request message (connect readMaxBytes); larger → RESOURCE_EXHAUSTED. */
  readonly maxMessageBytes: number;
  /** Most entries in ListVfs.valid_attachments. */
  readonly maxValidAttachments: number;
  /** Token bucket per peer: refill rate and burst size. */
  readonly ratePerSecond: number;
  readonly rateBurst: number;
  /** Calls of one peer in flight at once. */
  readonly maxConcurrentPerPeer: number;
  /** TLS connections of one peer at once. */
  readonly maxConnectionsPerPeer: number;
  /** TCP connections in total (authenticated or not). */
  readonly maxConnections: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection. */
  readonly maxConcurrentStreams: number;
  /** HTTP/2 header fields per request (node http2 maxHeaderListPairs). */
  readonly maxHeaderListPairs: number;
  /** HTTP/2 per-session memory (node http2 maxSessionMemory, in MiB). */
  readonly maxSessionMemoryMb: number;
  /** A TLS handshake must finish within this. */
  readonly tlsHandshakeTimeoutMs: number;
  /** An HTTP/2 connection with no open stream is closed after this. */
  readonly sessionIdleTimeoutMs: number;
  /** Each HTTP/2 connection is PINGed this often; no ACK within this long closes it (dead peer, GOAWAY'd session). */
  readonly keepalivePingMs: number;
  /** A request's body must be complete this long after its headers (slowloris). */
  readonly requestBodyTimeoutMs: number;
  /** Server-side cap on a call's deadline; the client's grpc-timeout applies when shorter. */
  readonly maxDeadlineMs: number;
  /** On stop, in-flight calls get this long before they are cancelled. */
  readonly shutdownGraceMs: number;
}

/** Host API listener (host-facing address only; never a wildcard). */
export interface ApiConfig {
  readonly listenAddress: string;
  readonly port: number;
  readonly tls: ApiTlsConfig;
  /** The one host this DPU serves (README "Host identity"). */
  readonly peer: ApiPeerConfig;
  readonly limits: ApiLimits;
}

/** Host API TLS files; all re-read on change (fs events + poll) without a restart. */
export interface ApiTlsConfig {
  readonly key: string;
  readonly cert: string;
  /** CA bundle that signs the hosts' client certificates (old + new CA during a rotation). */
  readonly clientCa: string;
  /** X.509 CRL(s) of the host CA, PEM or DER; checked on every handshake. */
  readonly crl: string | undefined;
  /** Poll interval for the files (the fallback when no file events arrive). */
  readonly reloadPollMs: number;
  /** Warn this many days before the server cert, a CA, a peer cert or the CRL expires. */
  readonly expiryWarningDays: number;
}

export interface ApiPeerConfig {
  /** Accepted host: client cert CN `<identity>` or `system:node:<identity>`. Default chassis.hostname (= the node name). */
  readonly identity: string;
  /** When set, the client cert must also carry this URI SAN (e.g. a SPIFFE ID). */
  readonly uri: string | undefined;
}

export interface AgentConfig {
  readonly ovsdb: {
    /** Local Open_vSwitch database, e.g. `unix:/var/run/openvswitch/db.sock`. */
    readonly remote: string;
    readonly tls: TlsPaths | undefined;
    readonly requestTimeoutMs: number;
  };
  readonly chassis: ChassisConfig;
  readonly reconcile: {
    /** false = alert-only: drift is logged and counted but not repaired. */
    readonly repairDrift: boolean;
    /** Audit the integration bridge for ports nobody owns (offload/bridge-audit). */
    readonly auditBridge: boolean;
  };
  readonly log: { readonly level: LogLevel };
  /** Host API; undefined when the file has no `api` section (agent without a host, e.g. tests). */
  readonly api: ApiConfig | undefined;
  /** Management listener: /metrics, /healthz, /readyz (plain HTTP). */
  readonly metrics: { readonly listenAddress: string; readonly port: number };
  /** The control plane's intent (OVN Northbound). Without it the VF pool is off. */
  readonly ovn: {
    readonly nbRemote: string | undefined;
    readonly tls: TlsPaths | undefined;
    /** Logical_Switch_Port external_ids key holding the pod UID, checked when present. */
    readonly podUidKey: string;
    /** ovn-controller's run dir (its pidfile and control socket), for the SB connection probe. */
    readonly controllerRundir: string;
  };
  readonly ports: {
    readonly mtu: number;
    readonly ovnInstalledTimeoutMs: number;
    readonly maxLeasesPerHost: number;
    readonly orphanGraceMs: number;
    readonly gcIntervalMs: number;
    /** A host that sent no request for this long is "away"; its next request is a return. */
    readonly hostSilenceMs: number;
    /** CNI GC from a host is deferred until it has been back this long (0 = never). */
    readonly hostReturnGraceMs: number;
  };
  /** TC on representors and the uplink (hw.uplink) (offload/): quarantine filter, audit, stats. */
  readonly offload: {
    /** Drop filter at ingress of unleased representors on top of link-down (false = link-down only). */
    readonly tcQuarantine: boolean;
    /** Audit the TC filters of representors and uplinks (foreign → removed/alerted per reconcile.repairDrift). */
    readonly tcAudit: boolean;
    readonly tcAuditIntervalMs: number;
    /** A scrape never dumps TC more than once per this. */
    readonly statsIntervalMs: number;
    /** ovs-vswitchd's run dir (its pidfile and unixctl socket), for dpctl/dump-flows. */
    readonly ovsRundir: string;
  };
  readonly hw: {
    readonly backend: 'emulated' | 'bluefield';
    /** emulated only: the netns holding the VF ends (the lab's host). */
    readonly hostNetns: string | undefined;
    /** bluefield only: the uplink whose eSwitch holds the VF representors. */
    readonly uplink: string;
  };
}

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
// Same rule OVS applies to names it accepts in a few places; keeps chassis names
// safe to use as OVN identifiers and in logs.
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const BRIDGE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,14}$/; // IFNAMSIZ-1

type Json = Record<string, unknown>;

/** [default, min, max] of every host API limit. */
const API_LIMIT_RANGES: { readonly [K in keyof ApiLimits]: readonly [number, number, number] } = {
  maxMessageBytes: [256 * 1024, 1024, 16 * 1024 * 1024],
  maxValidAttachments: [2048, 1, 100_000],
  ratePerSecond: [20, 1, 10_000],
  rateBurst: [40, 1, 100_000],
  maxConcurrentPerPeer: [16, 1, 10_000],
  maxConnectionsPerPeer: [8, 1, 10_000],
  maxConnections: [256, 1, 100_000],
  maxConcurrentStreams: [32, 1, 10_000],
  maxHeaderListPairs: [64, 8, 10_000],
  maxSessionMemoryMb: [10, 1, 1024],
  tlsHandshakeTimeoutMs: [5_000, 100, 120_000],
  sessionIdleTimeoutMs: [60_000, 100, 3_600_000],
  keepalivePingMs: [10_000, 100, 600_000],
  requestBodyTimeoutMs: [5_000, 100, 600_000],
  maxDeadlineMs: [120_000, 100, 3_600_000],
  shutdownGraceMs: [5_000, 0, 600_000],
};

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
  const hw = section(merged, 'hw');
  checkKeys(ovn, 'ovn.', ['nbRemote', 'tls', 'podUidKey', 'controllerRundir']);
  checkKeys(ports, 'ports.', ['mtu', 'ovnInstalledTimeoutMs', 'maxLeasesPerHost', 'orphanGraceMs', 'gcIntervalMs', 'hostSilenceMs', 'hostReturnGraceMs']);
  checkKeys(hw, 'hw.', ['backend', 'hostNetns', 'uplink']);
  const offload = section(merged, 'offload');
  checkKeys(offload, 'offload.', ['tcQuarantine', 'tcAudit', 'tcAuditIntervalMs', 'statsIntervalMs', 'ovsRundir']);
  const nbRemote = ovn['nbRemote'] === undefined ? undefined : str(ovn, 'ovn.nbRemote');
  if (nbRemote !== undefined) remotes('ovn.nbRemote', nbRemote);
  const ovnTls = tlsSection(ovn, 'ovn.tls');
  if (nbRemote !== undefined && parseRemotes(nbRemote).some((r) => r.kind === 'ssl') && !ovnTls) {
    throw new ConfigError('ovn.tls', 'required for an ssl: remote');
  }
  const hwBackend = oneOf(hw, 'hw.backend', ['emulated', 'bluefield'] as const, 'bluefield');
  const hostNetns = hw['hostNetns'] === undefined ? undefined : str(hw, 'hw.hostNetns');
  if (hwBackend === 'emulated' && hostNetns === undefined) throw new ConfigError('hw.hostNetns', 'is required for the emulated backend');

  const ovsdbRemote = str(ovsdb, 'ovsdb.remote', 'unix:/var/run/openvswitch/db.sock');
  const ovsdbRemotes = remotes('ovsdb.remote', ovsdbRemote);
  let tls: TlsPaths | undefined;
  if (ovsdb['tls'] !== undefined) {
    const t = ovsdb['tls'];
    if (!isObject(t)) throw new ConfigError('ovsdb.tls', 'must be an object {key, cert, ca}');
    checkKeys(t, 'ovsdb.tls.', ['key', 'cert', 'ca']);
    tls = { key: str(t, 'ovsdb.tls.key'), cert: str(t, 'ovsdb.tls.cert'), ca: str(t, 'ovsdb.tls.ca') };
  }
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
    hw: { backend: hwBackend, hostNetns, uplink: str(hw, 'hw.uplink', 'p0') },
    offload: {
      tcQuarantine: bool(offload, 'offload.tcQuarantine', true),
      tcAudit: bool(offload, 'offload.tcAudit', true),
      tcAuditIntervalMs: int(offload, 'offload.tcAuditIntervalMs', 30_000, 1000, 3_600_000),
      statsIntervalMs: int(offload, 'offload.statsIntervalMs', 5000, 500, 600_000),
      ovsRundir: str(offload, 'offload.ovsRundir', '/var/run/openvswitch'),
    },
  });
}

function tlsSection(o: Json, path: string): TlsPaths | undefined {
  const t = o[leaf(path)];
  if (t === undefined) return undefined;
  if (!isObject(t)) throw new ConfigError(path, 'must be an object {key, cert, ca}');
  checkKeys(t, `${path}.`, ['key', 'cert', 'ca']);
  return { key: str(t, `${path}.key`), cert: str(t, `${path}.cert`), ca: str(t, `${path}.ca`) };
}

function parseApi(api: Json, chassisHostname: string): ApiConfig {
  checkKeys(api, 'api.', ['listenAddress', 'port', 'tls', 'peer', 'limits']);
  const t = api['tls'];
  if (!isObject(t)) throw new ConfigError('api.tls', 'is required: an object {key, cert, clientCa}');
  checkKeys(t, 'api.tls.', ['key', 'cert', 'clientCa', 'crl', 'reloadPollMs', 'expiryWarningDays']);
  const limitsSec = api['limits'] ?? {};
  if (!isObject(limitsSec)) throw new ConfigError('api.limits', 'must be an object');
  const names = Object.keys(API_LIMIT_RANGES) as (keyof ApiLimits)[];
  checkKeys(limitsSec, 'api.limits.', names);
  const limits = Object.fromEntries(
    names.map((k) => {
      const [dflt, min, max] = API_LIMIT_RANGES[k];
      return [k, int(limitsSec, `api.limits.${k}`, dflt, min, max)];
    }),
  ) as unknown as ApiLimits;
  if (limits.rateBurst < limits.ratePerSecond) {
    throw new ConfigError('api.limits.rateBurst', 'must be >= api.limits.ratePerSecond');
  }
  return {
    // No default: the host-facing address is deployment-specific, and a wildcard
    // would also expose the API on the management network.
    listenAddress: listenAddress(api, 'api.listenAddress'),
    port: int(api, 'api.port', 50051, 0, 65535),
    tls: {
      key: str(t, 'api.tls.key'),
      cert: str(t, 'api.tls.cert'),
      clientCa: str(t, 'api.tls.clientCa'),
      crl: t['crl'] === undefined ? undefined : str(t, 'api.tls.crl'),
      reloadPollMs: int(t, 'api.tls.reloadPollMs', 10_000, 100, 3_600_000),
      expiryWarningDays: int(t, 'api.tls.expiryWarningDays', 14, 0, 3650),
    },
    peer: parseApiPeer(section(api, 'peer'), chassisHostname),
    limits,
  };
}

// RFC 1123 host name (what a Kubernetes node name is), ≤ 253.
const HOST_NAME_RE = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function parseApiPeer(peer: Json, chassisHostname: string): ApiPeerConfig {
  checkKeys(peer, 'api.peer.', ['identity', 'uri']);
  const identity = str(peer, 'api.peer.identity', chassisHostname);
  if (!HOST_NAME_RE.test(identity)) throw new ConfigError('api.peer.identity', `${JSON.stringify(identity)} is not a host name (set it when the OS host name is not the node name)`);
  const uri = peer['uri'] === undefined ? undefined : str(peer, 'api.peer.uri');
  // Compared with the SAN list node prints (`URI:a, DNS:b`): no separators or quotes inside.
  if (uri !== undefined && (!/^[a-z][a-z0-9+.-]*:\S+$/i.test(uri) || /[,"]/.test(uri))) throw new ConfigError('api.peer.uri', 'must be an absolute URI without commas or quotes');
  return { identity, uri };
}

/** An IP address to bind; wildcards (0.0.0.0, ::) are refused so each listener stays on its own network. */
function listenAddress(o: Json, path: string, dflt?: string): string {
  const v = str(o, path, dflt);
  const family = isIP(v);
  if (family === 0) throw new ConfigError(path, `${JSON.stringify(v)} is not an IP address`);
  if ((family === 4 && v === '0.0.0.0') || (family === 6 && /^[0:]+$/.test(v))) {
    throw new ConfigError(path, 'must be a specific address, not a wildcard');
  }
  return v;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function section(o: Json, key: string): Json {
  const v = o[key];
  if (v === undefined) return {};
  if (!isObject(v)) throw new ConfigError(key, 'must be an object');
  return v;
}

function checkKeys(o: Json, prefix: string, allowed: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new ConfigError(`${prefix}${k}`, `unknown key (allowed: ${allowed.join(', ')})`);
  }
}

function setPath(o: Json, path: string, value: string): void {
  // Nested paths (api.tls.key, api.limits.maxMessageBytes) walk one object per level.
  const parts = path.split('.');
  const key = parts.pop() as string;
  let s = o;
  let at = '';
  for (const p of parts) {
    at = at ? `${at}.${p}` : p;
    // A malformed section in the file must fail, not be silently replaced by the env value.
    if (s[p] !== undefined && !isObject(s[p])) throw new ConfigError(at, 'must be an object');
    s = (s[p] = isObject(s[p]) ? s[p] : {}) as Json;
  }
  s[key] = value;
}

function str(o: Json, path: string, dflt?: string): string {
  const v = o[leaf(path)];
  if (v === undefined) {
    if (dflt !== undefined) return dflt;
    throw new ConfigError(path, 'is required');
  }
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(path, 'must be a non-empty string');
  return v;
}

function strList(o: Json, path: string): string[] {
  const v = o[leaf(path)];
  if (v === undefined) return [];
  // env gives "a,b"; the file gives ["a","b"].
  if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter(Boolean);
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new ConfigError(path, 'must be a list of strings');
  return v as string[];
}

function bool(o: Json, path: string, dflt: boolean): boolean {
  const v = o[leaf(path)];
  if (v === undefined) return dflt;
  if (typeof v === 'boolean') return v;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new ConfigError(path, 'must be true or false');
}

function int(o: Json, path: string, dflt: number, min: number, max: number): number {
  let v = o[leaf(path)];
  if (v === undefined) return dflt;
  if (typeof v === 'string' && /^\d+$/.test(v)) v = Number(v);
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(path, `must be an integer in [${min}, ${max}]`);
  }
  return v;
}

function oneOf<T extends string>(o: Json, path: string, allowed: readonly T[], dflt: T): T {
  const v = o[leaf(path)];
  if (v === undefined) return dflt;
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new ConfigError(path, `must be one of ${allowed.join(', ')} (got ${JSON.stringify(v)})`);
  }
  return v as T;
}

function remotes(path: string, value: string): Remote[] {
  try {
    return parseRemotes(value);
  } catch (err) {
    throw new ConfigError(path, (err as Error).message);
  }
}

function leaf(path: string): string {
  return path.slice(path.lastIndexOf('.') + 1);
}

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
