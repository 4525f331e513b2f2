// The few X.509 fields the host API needs that node:crypto does not expose: a
// CRL's issuer, validity and revoked serials (RFC 5280 §5.1), and a
// certificate's issuer and subject as DER (RFC 5280 §4.1), to match a CRL to
// the CA that signed it and to the certificates it revokes. A minimal DER walk:
// definite lengths only (DER forbids the rest), no schema beyond these fields.
import { verify as verifySignature, X509Certificate } from 'node:crypto';

interface Tlv {
  readonly tag: number;
  /** Whole element (tag + length + content). */
  readonly raw: Buffer;
  readonly content: Buffer;
}

export class DerError extends Error {
  constructor(message: string) {
    super(`DER: ${message}`);
    this.name = 'DerError';
  }
}

function readTlv(buf: Buffer, at: number): Tlv {
  if (at + 2 > buf.length) throw new DerError('truncated header');
  const tag = buf[at]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tags are not used in X.509');
  let len = buf[at + 1]!;
  let off = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError('indefinite or oversized length');
    if (off + n > buf.length) throw new DerError('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[off + i]!;
    off += n;
  }
  if (off + len > buf.length) throw new DerError('element runs past its parent');
  return { tag, raw: buf.subarray(at, off + len), content: buf.subarray(off, off + len) };
}

function children(parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = 0; at < parent.content.length; ) {
    const c = readTlv(parent.content, at);
    out.push(c);
    at += c.raw.length;
  }
  return out;
}

const SEQUENCE = 0x30;
const INTEGER = 0x02;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;

function expect(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw new DerError(`${what}: want tag 0x${tag.toString(16)}, got ${t ? `0x${t.tag.toString(16)}` : 'nothing'}`);
  return t;
}

/** Serial as node prints it (X509Certificate.serialNumber): upper-case hex, no leading zero bytes. */
export function serialHex(content: Buffer): string {
  let i = 0;
  while (i < content.length - 1 && content[i] === 0) i++;
  return content.subarray(i).toString('hex').toUpperCase();
}

/** Normalises any hex serial (node's, ours) for comparison. */
export function normalSerial(hex: string): string {
  return hex.toUpperCase().replace(/^(00)+(?=..)/, '');
}

function time(t: Tlv): Date {
  const s = t.content.toString('latin1');
  const m = t.tag === UTC_TIME ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) throw new DerError(`bad time ${JSON.stringify(s)}`);
  let year = Number(m[1]);
  // RFC 5280 §4.1.2.5.1: UTCTime YY >= 50 is 19YY.
  if (t.tag === UTC_TIME) year += year >= 50 ? 1900 : 2000;
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

const isTime = (t: Tlv | undefined): t is Tlv => t !== undefined && (t.tag === UTC_TIME || t.tag === GENERALIZED_TIME);

export interface Crl {
  /** The issuer Name, DER, hex: equals the signing CA's subject. */
  readonly issuer: string;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  /** Revoked serials, normalised (normalSerial). */
  readonly revoked: ReadonlySet<string>;
  readonly der: Buffer;
  /** TBSCertList, signature algorithm OID and signature, for verification against the CA. */
  readonly tbs: Buffer;
  readonly sigAlg: string;
  readonly signature: Buffer;
}

function oid(content: Buffer): string {
  const parts: number[] = [Math.floor(content[0]! / 40), content[0]! % 40];
  let v = 0;
  for (let i = 1; i < content.length; i++) {
    v = v * 128 + (content[i]! & 0x7f);
    if (!(content[i]! & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

/** Parses one DER CertificateList (RFC 5280 §5.1). */
export function parseCrl(der: Buffer): Crl {
  const top = expect(readTlv(der, 0), SEQUENCE, 'CertificateList');
  const [tbsT, algT, sigT] = children(top);
  const tbs = expect(tbsT, SEQUENCE, 'tbsCertList');
  const f = children(tbs);
  let i = 0;
  if (f[i]?.tag === INTEGER) i++; // version v2
  expect(f[i++], SEQUENCE, 'signature');
  const issuer = expect(f[i++], SEQUENCE, 'issuer');
  if (!isTime(f[i])) throw new DerError('thisUpdate missing');
  const thisUpdate = time(f[i++]!);
  const nextUpdate = isTime(f[i]) ? time(f[i++]!) : undefined;
  const revoked = new Set<string>();
  if (f[i]?.tag === SEQUENCE) {
    for (const entry of children(f[i++]!)) {
      const serial = expect(children(expect(entry, SEQUENCE, 'revokedCertificate'))[0], INTEGER, 'userCertificate');
      revoked.add(serialHex(serial.content));
    }
  }
  const alg = children(expect(algT, SEQUENCE, 'signatureAlgorithm'))[0];
  const sig = expect(sigT, 0x03, 'signatureValue');
  return {
    issuer: issuer.raw.toString('hex'),
    thisUpdate,
    nextUpdate,
    revoked,
    der,
    tbs: tbs.raw,
    sigAlg: oid(expect(alg, 0x06, 'algorithm').content),
    signature: sig.content.subarray(1), // first byte: unused bits (0)
  };
}

/** issuer and subject Names (DER hex) and serial of a DER certificate. */
export function certNames(der: Buffer): { issuer: string; subject: string; serial: string } {
  const tbs = expect(children(expect(readTlv(der, 0), SEQUENCE, 'Certificate'))[0], SEQUENCE, 'tbsCertificate');
  const f = children(tbs);
  let i = 0;
  if (f[i]?.tag === 0xa0) i++; // [0] version
  const serial = expect(f[i++], INTEGER, 'serialNumber');
  expect(f[i++], SEQUENCE, 'signature');
  const issuer = expect(f[i++], SEQUENCE, 'issuer');
  expect(f[i++], SEQUENCE, 'validity');
  const subject = expect(f[i++], SEQUENCE, 'subject');
  return { issuer: issuer.raw.toString('hex'), subject: subject.raw.toString('hex'), serial: serialHex(serial.content) };
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** The DER blocks of a PEM text with the given label (`X509 CRL`, `CERTIFICATE`). */
export function pemBlocks(text: string, label: string): Buffer[] {
  const out: Buffer[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) if (m[1] === label) out.push(Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64'));
  return out;
}

export function toPem(der: Buffer, label: string): string {
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

/** A CRL file, PEM (one or more blocks) or DER (one list). */
export function parseCrlFile(bytes: Buffer): Crl[] {
  const text = bytes.toString('latin1');
  if (text.includes('-----BEGIN')) {
    const ders = pemBlocks(text, 'X509 CRL');
    if (ders.length === 0) throw new DerError('no "X509 CRL" PEM block');
    return ders.map(parseCrl);
  }
  return [parseCrl(bytes)];
}

/** The certificates of a PEM bundle (a CA file may hold the old and the new CA during a rotation). */
export function parseCertBundle(bytes: Buffer): X509Certificate[] {
  const ders = pemBlocks(bytes.toString('latin1'), 'CERTIFICATE');
  if (ders.length === 0) throw new DerError('no CERTIFICATE PEM block');
  return ders.map((d) => new X509Certificate(d));
}

const HASH_OF_SIG: Readonly<Record<string, string | null>> = {
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.11': 'sha256', // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.3.101.112': null, // Ed25519
};

/** True when `crl` is signed by `ca` (issuer name and signature). */
export function crlSignedBy(crl: Crl, ca: X509Certificate): boolean {
  if (certNames(ca.raw).subject !== crl.issuer) return false;
  const hash = HASH_OF_SIG[crl.sigAlg];
  if (hash === undefined) throw new DerError(`CRL signature algorithm ${crl.sigAlg} not supported`);
  return verifySignature(hash, crl.tbs, ca.publicKey, crl.signature);
}
