// The host API section (`api`): listener, TLS files, the served host and limits (DESIGN.md §4).
import { ConfigError } from '../errors.ts';
import { isHostName } from '../../../contract/names.ts';
import { type Json, checkKeys, int, isObject, listenAddress, section, str } from './fields.ts';
import type { ApiConfig, ApiLimits, ApiPeerConfig } from './types.ts';

/** [default, min, max] of every host API limit. */
export const API_LIMIT_RANGES: { readonly [K in keyof ApiLimits]: readonly [number, number, number] } = {
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

export function parseApi(api: Json, chassisHostname: string): ApiConfig {
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

function parseApiPeer(peer: Json, chassisHostname: string): ApiPeerConfig {
  checkKeys(peer, 'api.peer.', ['identity', 'uri']);
  const identity = str(peer, 'api.peer.identity', chassisHostname);
  if (!isHostName(identity)) throw new ConfigError('api.peer.identity', `${JSON.stringify(identity)} is not a host name (set it when the OS host name is not the node name)`);
  const uri = peer['uri'] === undefined ? undefined : str(peer, 'api.peer.uri');
  // Compared with the SAN list node prints (`URI:a, DNS:b`): no separators or quotes inside.
  if (uri !== undefined && (!/^[a-z][a-z0-9+.-]*:\S+$/i.test(uri) || /[,"]/.test(uri))) throw new ConfigError('api.peer.uri', 'must be an absolute URI without commas or quotes');
  return { identity, uri };
}
