import type { TLSSocket } from 'node:tls';
import { isHostName } from '../../../contract/names.ts';

/**
 * The caller's identity: the subject CN of its verified client certificate (the
 * host name). undefined when the socket is not an authorized TLS socket or the
 * CN is missing, repeated, or not a host name — the call is then refused with
 * UNAUTHENTICATED / bad-peer-identity. Never taken from a request field or header.
 */
export function peerFromSocket(sock: TLSSocket | undefined): string | undefined {
  if (!sock || typeof sock.getPeerCertificate !== 'function' || sock.authorized !== true) return undefined;
  const cert = sock.getPeerCertificate();
  const cn: unknown = cert?.subject?.CN;
  if (typeof cn !== 'string' || !isHostName(cn)) return undefined;
  return cn;
}
