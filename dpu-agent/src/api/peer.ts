import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { ApiPeerConfig } from '../config.ts';
import { isHostName } from '../../../contract/names.ts';

// Who is calling, from the verified client certificate only (never a request
// field or header), and whether it is the one host this DPU serves.
//
// Identity rule (README "Host identity"), following what real issuers produce:
//   - the Kubernetes CSR API (signer kubernetes.io/kube-apiserver-client-kubelet)
//     issues node client certs with CN=`system:node:<nodeName>`, O=`system:nodes`;
//   - cert-manager puts what the Certificate asks for in the CN (commonName) and
//     the SANs (dnsNames, uris).
// The host name is the subject CN with an optional `system:node:` prefix removed;
// it must be exactly one CN and an RFC 1123 host name. It is the lease owner.
// The peer is accepted when that name equals `api.peer.identity` (default: the
// chassis hostname, i.e. the Kubernetes node name) and, when `api.peer.uri` is
// set, the certificate also carries that URI SAN (e.g. a SPIFFE ID).

export const NODE_CN_PREFIX = 'system:node:';

export interface Peer {
  /** Host name from the certificate (lease owner); undefined = not an identity (bad-peer-identity). */
  readonly name: string | undefined;
  /** The one host this DPU serves presented this certificate. */
  readonly accepted: boolean;
  /** What the certificate claims, for logs: CN, URI SANs, serial, notAfter. */
  readonly presented: PresentedIdentity;
}

export interface PresentedIdentity {
  readonly cn: string | string[] | undefined;
  readonly uris: readonly string[];
  readonly serial: string | undefined;
  readonly notAfter: string | undefined;
}

/**
 * URI SANs from node's `subjectaltname` (`DNS:a, URI:b`). Node JSON-quotes a value
 * holding separators or quotes (`URI:"x, URI:y"`): a quoted value is one entry,
 * never split into a forged second one.
 */
export function uriSans(cert: Pick<PeerCertificate, 'subjectaltname'>): string[] {
  const san = cert.subjectaltname;
  if (typeof san !== 'string' || san === '') return [];
  const out: string[] = [];
  const entry = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/y;
  for (let m = entry.exec(san); m; m = entry.exec(san)) {
    let value = m[2]!;
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        continue;
      }
    }
    if (m[1] === 'URI') out.push(value);
    if (entry.lastIndex >= san.length) break;
  }
  return out;
}

/** The host name a certificate names (see the rule above), or undefined. */
export function hostNameOf(cert: Pick<PeerCertificate, 'subject'>): string | undefined {
  const cn: unknown = cert.subject?.CN;
  if (typeof cn !== 'string') return undefined;
  const name = cn.startsWith(NODE_CN_PREFIX) ? cn.slice(NODE_CN_PREFIX.length) : cn;
  return isHostName(name) ? name : undefined;
}

export function judgePeer(cert: PeerCertificate, rule: ApiPeerConfig): Peer {
  const name = hostNameOf(cert);
  const uris = uriSans(cert);
  const accepted = name !== undefined && name === rule.identity && (rule.uri === undefined || uris.includes(rule.uri));
  return {
    name,
    accepted,
    presented: { cn: cert.subject?.CN, uris, serial: cert.serialNumber, notAfter: cert.valid_to },
  };
}

/** The peer of an authorized TLS socket, or undefined (not TLS, not verified, no certificate). */
export function peerFromSocket(sock: TLSSocket | undefined, rule: ApiPeerConfig): Peer | undefined {
  if (!sock || typeof sock.getPeerCertificate !== 'function' || sock.authorized !== true) return undefined;
  const cert = sock.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return undefined;
  return judgePeer(cert, rule);
}
