import { constants as osslConstants, createPrivateKey, X509Certificate } from 'node:crypto';
import { createSecureContext, type PeerCertificate, type SecureContextOptions } from 'node:tls';
import type { TlsFileSet, TlsPathSet } from '../../../contract/tls-files.ts';
import type { ApiTlsConfig } from '../config.ts';
import { certNames, type Crl, crlSignedBy, normalSerial, parseCertBundle, parseCrlFile, pemBlocks, toPem } from './der.ts';

// The host API's TLS material as one value, built from the files and validated
// before it is used: a set that does not load (unparseable, key/cert mismatch,
// expired server cert, a CRL no CA in the bundle signed) is refused and the old
// material stays. Also answers, for an open session, whether its peer
// certificate is still good under this material (revoked? still chains to a
// trusted CA?), so a rotation can close what the new material would refuse.

export type ApiTlsFile = 'key' | 'cert' | 'clientCa' | 'crl';

export interface ServerTlsMaterial {
  /** What the listener's secure context is made of (http2 setSecureContext). */
  readonly options: SecureContextOptions;
  readonly serverCert: X509Certificate;
  readonly caCerts: readonly X509Certificate[];
  readonly crls: readonly Crl[];
}

/** TLS options that stay the same across reloads (they are part of every secure context). */
export const BASE_TLS_OPTIONS = {
  minVersion: 'TLSv1.3',
  // No session resumption: a resumed TLS 1.3 session skips the client certificate
  // check, so a revoked or rotated-out certificate could come back through a ticket.
  secureOptions: osslConstants.SSL_OP_NO_TICKET,
} as const satisfies SecureContextOptions;

export function apiTlsPaths(tls: ApiTlsConfig): TlsPathSet<ApiTlsFile> | TlsPathSet<Exclude<ApiTlsFile, 'crl'>> {
  return { key: tls.key, cert: tls.cert, clientCa: tls.clientCa, ...(tls.crl !== undefined ? { crl: tls.crl } : {}) };
}

export function buildServerTls(files: Partial<TlsFileSet<ApiTlsFile>> & TlsFileSet<'key' | 'cert' | 'clientCa'>, now = Date.now()): ServerTlsMaterial {
  const certDer = pemBlocks(files.cert.toString('latin1'), 'CERTIFICATE')[0];
  if (!certDer) throw new Error('tls.cert: no CERTIFICATE PEM block');
  const serverCert = new X509Certificate(certDer);
  if (Date.parse(serverCert.validTo) <= now) throw new Error(`tls.cert: expired (notAfter ${serverCert.validTo})`);
  if (!serverCert.checkPrivateKey(createPrivateKey(files.key))) throw new Error('tls.key does not match tls.cert');
  const caCerts = parseCertBundle(files.clientCa);
  let crls: Crl[] = [];
  if (files.crl) {
    crls = parseCrlFile(files.crl);
    for (const crl of crls) {
      if (!caCerts.some((ca) => crlSignedBy(crl, ca))) throw new Error('tls.crl: not signed by any CA in tls.clientCa');
    }
    // With a CRL configured OpenSSL checks revocation for every chain: a CA without
    // its own CRL would fail every handshake of the hosts it signed.
    for (const ca of caCerts) {
      const subject = certNames(ca.raw).subject;
      if (!crls.some((crl) => crl.issuer === subject)) throw new Error(`tls.crl: no CRL for the CA ${JSON.stringify(ca.subject)} (each CA in tls.clientCa needs one)`);
    }
  }
  const options: SecureContextOptions = {
    ...BASE_TLS_OPTIONS,
    key: files.key,
    cert: files.cert,
    ca: files.clientCa,
    ...(crls.length > 0 ? { crl: crls.map((c) => toPem(c.der, 'X509 CRL')) } : {}),
  };
  // Throws what the listener would throw (bad PEM, unsupported key): refused here, not at the next handshake.
  createSecureContext(options);
  return { options, serverCert, caCerts, crls };
}

export type PeerVerdict = 'ok' | 'revoked' | 'untrusted';

/**
 * Judges an open session's peer certificate (with its chain, getPeerCertificate(true))
 * under `m`: `revoked` when a CRL of its issuer lists it, `untrusted` when no
 * certificate of its chain is issued by a CA of the current bundle.
 */
export function judgeOpenPeer(cert: PeerCertificate, m: ServerTlsMaterial): PeerVerdict {
  if (!cert.raw) return 'untrusted';
  const leaf = certNames(cert.raw);
  const serial = normalSerial(leaf.serial);
  if (m.crls.some((crl) => crl.issuer === leaf.issuer && crl.revoked.has(serial))) return 'revoked';
  type Linked = PeerCertificate & { issuerCertificate?: Linked };
  const chain: X509Certificate[] = [];
  for (let c: Linked | undefined = cert; c?.raw && chain.length < 8; ) {
    chain.push(new X509Certificate(c.raw));
    const next: Linked | undefined = c.issuerCertificate;
    c = next && next !== c ? next : undefined;
  }
  const trusted = chain.some((c) => m.caCerts.some((ca) => ca.fingerprint256 === c.fingerprint256 || (c.checkIssued(ca) && c.verify(ca.publicKey))));
  return trusted ? 'ok' : 'untrusted';
}
