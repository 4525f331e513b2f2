// OVS "active" stream names (lib/stream.c, ovsdb-server(1) "--remote"):
//   unix:FILE        tcp:HOST[:PORT]        ssl:HOST[:PORT]
// HOST is an IPv4 literal, a bracketed IPv6 literal ([::1]) or a DNS name;
// PORT defaults to 6640 (OVSDB_PORT; callers pass 6641/6642 for OVN NB/SB).

import net from 'node:net';
import { RemoteSyntaxError } from '../errors.ts';

export const OVSDB_DEFAULT_PORT = 6640;

export type Remote =
  | { kind: 'unix'; path: string }
  | { kind: 'tcp' | 'ssl'; host: string; port: number };

// RFC 1123 host names: labels of letters, digits and inner hyphens.
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

export function parseRemote(s: string, defaultPort: number = OVSDB_DEFAULT_PORT): Remote {
  const colon = s.indexOf(':');
  if (colon < 0) throw new RemoteSyntaxError(s, 'expected unix:PATH, tcp:HOST[:PORT] or ssl:HOST[:PORT]');
  const method = s.slice(0, colon);
  const rest = s.slice(colon + 1);
  switch (method) {
    case 'unix':
      if (rest === '') throw new RemoteSyntaxError(s, 'empty socket path');
      if (rest.includes('\0')) throw new RemoteSyntaxError(s, 'socket path contains NUL');
      return { kind: 'unix', path: rest };
    case 'tcp':
    case 'ssl': {
      const { host, port } = parseHostPort(s, rest, defaultPort);
      return { kind: method, host, port };
    }
    default:
      // punix:/ptcp:/pssl: are listeners; this agent only connects out.
      throw new RemoteSyntaxError(s, `unsupported connection method ${JSON.stringify(method)}`);
  }
}

function parseHostPort(s: string, rest: string, defaultPort: number): { host: string; port: number } {
  let host: string;
  let portText: string | undefined;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) throw new RemoteSyntaxError(s, "missing ']' after IPv6 address");
    host = rest.slice(1, close);
    if (!net.isIPv6(host)) throw new RemoteSyntaxError(s, `${JSON.stringify(host)} is not an IPv6 address`);
    const after = rest.slice(close + 1);
    if (after !== '') {
      if (!after.startsWith(':')) throw new RemoteSyntaxError(s, "expected ':PORT' after ']'");
      portText = after.slice(1);
    }
  } else {
    const colon = rest.indexOf(':');
    host = colon < 0 ? rest : rest.slice(0, colon);
    portText = colon < 0 ? undefined : rest.slice(colon + 1);
    if (host === '') throw new RemoteSyntaxError(s, 'empty host');
    // Like OVS (inet_parse_tokens), an IPv6 literal needs brackets, or its
    // colons would be read as the port separator.
    if (portText !== undefined && portText.includes(':')) {
      throw new RemoteSyntaxError(s, 'IPv6 addresses must be written in brackets, e.g. tcp:[::1]:6640');
    }
    if (!net.isIPv4(host) && !HOSTNAME.test(host)) {
      throw new RemoteSyntaxError(s, `${JSON.stringify(host)} is not an IPv4 address or host name`);
    }
  }
  const port = portText === undefined ? defaultPort : parsePort(s, portText);
  return { host, port };
}

function parsePort(s: string, text: string): number {
  if (!/^\d{1,5}$/.test(text)) throw new RemoteSyntaxError(s, `invalid port ${JSON.stringify(text)}`);
  const port = Number(text);
  // Port 0 only makes sense for a listener (ptcp:0).
  if (port < 1 || port > 65535) throw new RemoteSyntaxError(s, `port ${port} out of range 1-65535`);
  return port;
}

export function formatRemote(r: Remote): string {
  if (r.kind === 'unix') return `unix:${r.path}`;
  const host = net.isIPv6(r.host) ? `[${r.host}]` : r.host;
  return `${r.kind}:${host}:${r.port}`;
}

/**
 * A comma-separated remote list, as held in external_ids:ovn-remote for a
 * clustered southbound DB. Split like ovsdb_session_parse_remote()
 * (lib/ovsdb-session.c): only at a comma followed by optional blanks and
 * "method:", so a unix: path may itself contain commas. The "cid:<uuid>"
 * cluster-id entry OVS accepts there is refused rather than silently dropped,
 * since we would not enforce it.
 */
export function parseRemotes(s: string, defaultPort: number = OVSDB_DEFAULT_PORT): Remote[] {
  const remotes: Remote[] = [];
  for (const part of s.split(/,(?=[ \t]*[a-z]+:)/)) {
    const name = part.trim();
    if (name === '') continue;
    if (name.startsWith('cid:')) throw new RemoteSyntaxError(s, 'cid: entries are not supported');
    remotes.push(parseRemote(name, defaultPort));
  }
  if (remotes.length === 0) throw new RemoteSyntaxError(s, 'no remotes');
  return remotes;
}
