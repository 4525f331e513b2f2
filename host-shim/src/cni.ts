import { isIfname, isPodName, isPodNamespace, isPodUid, isSandboxId } from '../../contract/names.ts';
import { CNI_ERR } from '../../contract/cni.ts';
import { CniError } from './errors.ts';

// The CNI side of the shim, pure: environment (spec §"Parameters"), network
// configuration from stdin (§"Network configuration"), results (§"Success").
// Spec: CNI 1.1.0 (containernetworking/cni SPEC.md).

export const SUPPORTED_VERSIONS = ['0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const CURRENT_VERSION: CniVersion = '1.1.0';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'STATUS' | 'GC';
const COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'];

export interface PodArgs {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

export interface CniEnv {
  readonly command: CniCommand;
  readonly containerId: string;
  /** Path of the pod's network namespace (e.g. /var/run/netns/cni-…); may be empty on DEL. */
  readonly netns: string;
  readonly ifname: string;
  /** From CNI_ARGS K8S_POD_*; undefined when the runtime did not pass them. */
  readonly pod: PodArgs | undefined;
}

export interface Timeouts {
  readonly addMs: number;
  readonly delMs: number;
  readonly checkMs: number;
  /** STATUS must answer fast: the runtime polls it. */
  readonly statusMs: number;
  readonly gcMs: number;
}

export interface ValidAttachment {
  readonly containerId: string;
  readonly ifname: string;
}

export interface NetConf {
  readonly cniVersion: CniVersion;
  readonly name: string;
  readonly type: string;
  /** The DPU agent's host API, https://ADDRESS:PORT. */
  readonly agentUrl: string;
  /** Name to check in the agent's server certificate, when it differs from the URL host. */
  readonly serverName: string | undefined;
  readonly tls: { readonly key: string; readonly cert: string; readonly ca: string };
  /** Host PF whose VFs the DPU hands out. */
  readonly pf: string;
  /** Root of sysfs (default /sys; the lab points it at an emulated tree). */
  readonly sysfsRoot: string;
  /** `netdev` (default): the VF netdev moves into the pod; `vfio`: the VF is bound to vfio-pci and handed over as a PCI device (DPDK, KubeVirt). */
  readonly deviceMode: 'netdev' | 'vfio';
  /** Where the shim remembers each attachment's original VF name (for DEL). */
  readonly stateDir: string;
  readonly timeouts: Timeouts;
  /** GC only: `cni.dev/valid-attachments`. */
  readonly validAttachments: readonly ValidAttachment[];
}

const DEFAULT_TIMEOUTS: Timeouts = { addMs: 60_000, delMs: 15_000, checkMs: 10_000, statusMs: 2_000, gcMs: 15_000 };

/** Keys the spec defines for any plugin's config, plus the runtime-injected ones. */
const SPEC_KEYS = new Set([
  'cniVersion', 'cniVersions', 'name', 'type', 'args', 'runtimeConfig', 'capabilities', 'prevResult', 'dns',
  'disableCheck', 'disableGC',
]);
const OWN_KEYS = new Set(['agentUrl', 'serverName', 'tls', 'pf', 'sysfsRoot', 'stateDir', 'timeouts', 'deviceMode']);

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** CNI_ARGS: `K=V;K=V` (spec §"Parameters"). Unknown keys are ignored (kubelet sets IgnoreUnknown=1). */
export function parseCniArgs(s: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of s.split(';')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new CniError(CNI_ERR.INVALID_ENV, 'CNI_ARGS is malformed', `expected KEY=VALUE pairs separated by ';', got ${JSON.stringify(part)}`);
    out.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return out;
}

export function parseEnv(env: NodeJS.ProcessEnv): CniEnv {
  const command = env['CNI_COMMAND'] ?? '';
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw new CniError(CNI_ERR.INVALID_ENV, 'CNI_COMMAND is missing or unknown', `expected one of ${COMMANDS.join(', ')}`);
  }
  const cmd = command as CniCommand;
  if (cmd === 'VERSION' || cmd === 'STATUS' || cmd === 'GC') {
    return { command: cmd, containerId: '', netns: '', ifname: '', pod: undefined };
  }
  const containerId = env['CNI_CONTAINERID'] ?? '';
  if (!isSandboxId(containerId)) {
    throw new CniError(CNI_ERR.INVALID_ENV, 'CNI_CONTAINERID is missing or invalid', 'must be 1..128 characters of [A-Za-z0-9_.-]');
  }
  const ifname = env['CNI_IFNAME'] ?? '';
  if (!isIfname(ifname)) {
    throw new CniError(CNI_ERR.INVALID_ENV, 'CNI_IFNAME is missing or invalid', "must be 1..15 bytes without '/', ':' or whitespace");
  }
  const netns = env['CNI_NETNS'] ?? '';
  if ((cmd === 'ADD' || cmd === 'CHECK') && netns === '') throw new CniError(CNI_ERR.INVALID_ENV, 'CNI_NETNS is required', `for ${cmd}`);
  if (netns !== '' && !netns.startsWith('/')) throw new CniError(CNI_ERR.INVALID_ENV, 'CNI_NETNS must be an absolute path', '');
  const args = parseCniArgs(env['CNI_ARGS'] ?? '');
  const namespace = args.get('K8S_POD_NAMESPACE');
  const name = args.get('K8S_POD_NAME');
  const uid = args.get('K8S_POD_UID');
  let pod: PodArgs | undefined;
  if (namespace !== undefined || name !== undefined || uid !== undefined) {
    if (namespace === undefined || !isPodNamespace(namespace)) throw new CniError(CNI_ERR.INVALID_ENV, 'K8S_POD_NAMESPACE is missing or invalid', 'must be a DNS-1123 label');
    if (name === undefined || !isPodName(name)) throw new CniError(CNI_ERR.INVALID_ENV, 'K8S_POD_NAME is missing or invalid', 'must be a DNS-1123 subdomain');
    if (uid === undefined || !isPodUid(uid)) throw new CniError(CNI_ERR.INVALID_ENV, 'K8S_POD_UID is missing or invalid', 'must be a UUID');
    pod = { namespace, name, uid };
  }
  if (!pod && cmd !== 'DEL') {
    throw new CniError(CNI_ERR.INVALID_ENV, 'CNI_ARGS must carry K8S_POD_NAMESPACE, K8S_POD_NAME and K8S_POD_UID', 'the DPU allocates VFs per Kubernetes pod');
  }
  return { command: cmd, containerId, netns, ifname, pod };
}

/** Parses stdin. Errors: 6 not JSON, 1 version, 2 unsupported field (ipam), 7 anything else invalid. */
export function parseNetConf(stdin: string): NetConf {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(CNI_ERR.DECODE_FAILURE, 'network configuration is not valid JSON', (err as Error).message);
  }
  if (!isObject(raw)) throw new CniError(CNI_ERR.DECODE_FAILURE, 'network configuration must be a JSON object');
  const bad = (what: string, details = ''): CniError => new CniError(CNI_ERR.INVALID_CONFIG, `invalid network configuration: ${what}`, details);

  const cniVersion = raw['cniVersion'];
  if (typeof cniVersion !== 'string') throw bad('cniVersion is required');
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(cniVersion)) {
    throw new CniError(CNI_ERR.INCOMPATIBLE_VERSION, `incompatible CNI version ${JSON.stringify(cniVersion)}`, `supported: ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  if (raw['ipam'] !== undefined) {
    throw new CniError(CNI_ERR.UNSUPPORTED_FIELD, 'ipam is not supported', 'addresses come from OVN through the DPU agent');
  }
  for (const k of Object.keys(raw)) {
    if (!SPEC_KEYS.has(k) && !OWN_KEYS.has(k) && !k.startsWith('cni.dev/')) throw bad(`unknown key ${JSON.stringify(k)}`);
  }
  const str = (o: Json, k: string, path: string, dflt?: string): string => {
    const v = o[k];
    if (v === undefined && dflt !== undefined) return dflt;
    if (typeof v !== 'string' || v === '') throw bad(`${path} must be a non-empty string`);
    return v;
  };
  const name = str(raw, 'name', 'name');
  const type = str(raw, 'type', 'type');
  const agentUrl = str(raw, 'agentUrl', 'agentUrl');
  let url: URL;
  try {
    url = new URL(agentUrl);
  } catch {
    throw bad('agentUrl must be a URL like https://192.0.2.1:50051');
  }
  if (url.protocol !== 'https:' || url.pathname !== '/' || url.search || url.username) throw bad('agentUrl must be https://HOST:PORT');
  const serverName = raw['serverName'] === undefined ? undefined : str(raw, 'serverName', 'serverName');

  const tls = raw['tls'];
  if (!isObject(tls)) throw bad('tls must be an object {key, cert, ca}');
  for (const k of Object.keys(tls)) if (!['key', 'cert', 'ca'].includes(k)) throw bad(`unknown key tls.${k}`);
  const pf = str(raw, 'pf', 'pf');
  if (!isIfname(pf)) throw bad('pf must be a network interface name');
  const sysfsRoot = str(raw, 'sysfsRoot', 'sysfsRoot', '/sys');
  const stateDir = str(raw, 'stateDir', 'stateDir', '/var/lib/cni/dpu-host-shim');
  if (!sysfsRoot.startsWith('/') || !stateDir.startsWith('/')) throw bad('sysfsRoot and stateDir must be absolute paths');

  const deviceMode = str(raw, 'deviceMode', 'deviceMode', 'netdev');
  if (deviceMode !== 'netdev' && deviceMode !== 'vfio') throw bad('deviceMode must be "netdev" or "vfio"');

  const t = raw['timeouts'] ?? {};
  if (!isObject(t)) throw bad('timeouts must be an object');
  const timeouts: Record<string, number> = { ...DEFAULT_TIMEOUTS };
  for (const [k, v] of Object.entries(t)) {
    if (!(k in DEFAULT_TIMEOUTS)) throw bad(`unknown key timeouts.${k}`, `allowed: ${Object.keys(DEFAULT_TIMEOUTS).join(', ')}`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 100 || v > 600_000) throw bad(`timeouts.${k} must be an integer in [100, 600000] (ms)`);
    timeouts[k] = v;
  }

  const va = raw['cni.dev/valid-attachments'] ?? [];
  if (!Array.isArray(va)) throw bad('cni.dev/valid-attachments must be a list');
  const validAttachments = va.map((a: unknown, i) => {
    if (!isObject(a) || typeof a['containerID'] !== 'string' || typeof a['ifname'] !== 'string') {
      throw bad(`cni.dev/valid-attachments[${i}] must be {containerID, ifname}`);
    }
    return { containerId: a['containerID'], ifname: a['ifname'] };
  });

  return {
    cniVersion: cniVersion as CniVersion,
    name,
    type,
    agentUrl: url.origin,
    serverName,
    tls: { key: str(tls, 'key', 'tls.key'), cert: str(tls, 'cert', 'tls.cert'), ca: str(tls, 'ca', 'tls.ca') },
    pf,
    sysfsRoot,
    deviceMode,
    stateDir,
    timeouts: timeouts as unknown as Timeouts,
    validAttachments,
  };
}

/** What the agent handed out, as the shim applied it. */
export interface AppliedInterface {
  readonly ifname: string;
  readonly mac: string;
  readonly mtu: number;
  readonly netns: string;
  readonly ips: readonly { readonly address: string; readonly gateway: string }[];
  readonly routes: readonly { readonly dst: string; readonly gateway: string }[];
  /** vfio mode: the VF's PCI address; the interface is then not in the netns. */
  readonly pciId?: string;
}

/** A spec-correct ADD result for `version` (§"ADD Success"; `mtu` on interfaces is new in 1.1.0). */
export function formatResult(version: CniVersion, i: AppliedInterface): Json {
  const iface: Json = i.pciId ? { name: i.ifname, mac: i.mac } : { name: i.ifname, mac: i.mac, sandbox: i.netns };
  if (version === '1.1.0' && i.mtu > 0) iface['mtu'] = i.mtu;
  // CNI 1.1 `pciID`: what KubeVirt / DPDK apps read (Multus passes it on as the device ID).
  if (version === '1.1.0' && i.pciId) iface['pciID'] = i.pciId;
  return {
    cniVersion: version,
    interfaces: [iface],
    ips: i.ips.map((ip) => ({
      ...(version === '0.4.0' ? { version: ip.address.includes(':') ? '6' : '4' } : {}),
      address: ip.address,
      ...(ip.gateway ? { gateway: ip.gateway } : {}),
      interface: 0,
    })),
    routes: i.routes.map((r) => ({ dst: r.dst, ...(r.gateway ? { gw: r.gateway } : {}) })),
    dns: {},
  };
}

export function versionResult(): Json {
  return { cniVersion: CURRENT_VERSION, supportedVersions: [...SUPPORTED_VERSIONS] };
}
