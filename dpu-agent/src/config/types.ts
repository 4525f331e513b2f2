// The validated, frozen config: what parseConfig (config.ts) returns and every
// component reads. Units live in the names.

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
  readonly hw: HwConfig;
}

/**
 * The eSwitch backend, told apart by `backend` (the key the file already has): each
 * variant carries only what its backend reads, so code switches on it once (hw/backend.ts).
 */
export type HwConfig = BlueFieldHwConfig | EmulatedHwConfig;

export interface BlueFieldHwConfig {
  readonly backend: 'bluefield';
  /** The uplink whose eSwitch holds the VF representors; also audited and counted by offload/. */
  readonly uplink: string;
}

export interface EmulatedHwConfig {
  readonly backend: 'emulated';
  /** The netns holding the VF ends (the lab's host). */
  readonly hostNetns: string;
  /** The uplink audited and counted by offload/ (skipped while there is no netdev of that name). */
  readonly uplink: string;
}
