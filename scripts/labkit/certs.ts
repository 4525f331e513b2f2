// Throw-away certificate authorities and the certs they issue, made with the
// openssl CLI: the one PKI generator of the repo. The lab's PKI (pki.ts), the
// test PKI (test/helpers/pki.ts), the OVSDB helper's SSL certs and the jsonrpc
// transport test all issue through here. No lab state: it only writes into the
// dir it is given, so tests import it without a lab run.
//
// A CA is a self-signed cert plus an `openssl ca` database in its dir
// (<name>.cnf, <name>.index, <name>.srl, issued copies in <name>.issued/), so a
// cert can get any validity window, one in the past included (an expired cert),
// and revocation and CRLs are `openssl ca -config <configPath> -revoke <crt>` /
// `-gencrl` on that same database.
// Keys: P-256, made in-process (PKCS#8 PEM, mode 0600). Issuing from one CA is
// serialised (openssl ca rewrites its index and serial files); keys and CSRs are
// made in parallel.
// Same as:
//   openssl req -x509 -new -key ca.key -subj /CN=ca -days N -addext basicConstraints=critical,CA:TRUE …
//   openssl req -new -key leaf.key -subj /CN=leaf -out leaf.csr
//   openssl ca -config ca.cnf -batch -notext -preserveDN -in leaf.csr -extfile leaf.ext \
//     (-days N | -startdate YYYYMMDDHHMMSSZ -enddate YYYYMMDDHHMMSSZ) -out leaf.crt
import { generateKeyPair, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sh } from './sh.ts';

/** A cert's validity: `days` from now, or an explicit window (in the past for an expired cert). */
export type Validity = { readonly days: number } | { readonly notBefore: Date; readonly notAfter: Date };

export interface Ca {
  readonly name: string;
  readonly dir: string;
  readonly keyPath: string;
  readonly certPath: string;
  /** The `openssl ca` config of this CA (its index and serial), for -revoke / -gencrl. */
  readonly configPath: string;
}

export interface IssuedCert {
  readonly keyPath: string;
  readonly certPath: string;
}

export interface CertSpec {
  /** extendedKeyUsage: serverAuth or clientAuth. */
  readonly usage: 'server' | 'client';
  /** Subject CN; default: the cert's file name. Ignored when `subject` is given. */
  readonly cn?: string;
  /** The whole subject in openssl's form, e.g. `/O=nobody` for a cert without CN. */
  readonly subject?: string;
  /** subjectAltName entries, e.g. `['IP:127.0.0.1', 'DNS:localhost']`. */
  readonly san?: readonly string[];
  /** Default: 2 days from now. */
  readonly validity?: Validity;
}

const DEFAULT_DAYS = 2;
const genKeyPair = promisify(generateKeyPair);

const openssl = (args: readonly string[]): Promise<string> => sh(['openssl', ...args]);

async function writeKey(path: string): Promise<void> {
  const { privateKey } = await genKeyPair('ec', {
    namedCurve: 'P-256',
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  await writeFile(path, privateKey, { mode: 0o600 });
}

/** openssl's GeneralizedTime form, YYYYMMDDHHMMSSZ. */
const asn1Time = (d: Date): string => `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;

function validityArgs(v: Validity): string[] {
  if ('days' in v) return ['-days', String(v.days)];
  if (v.notAfter.getTime() <= v.notBefore.getTime()) throw new Error('certs: notAfter must be after notBefore');
  return ['-startdate', asn1Time(v.notBefore), '-enddate', asn1Time(v.notAfter)];
}

const caConfig = (ca: Ca): string => `[ca]
default_ca = this
[this]
certificate = ${ca.certPath}
private_key = ${ca.keyPath}
database = ${join(ca.dir, `${ca.name}.index`)}
serial = ${join(ca.dir, `${ca.name}.srl`)}
new_certs_dir = ${join(ca.dir, `${ca.name}.issued`)}
default_md = sha256
default_crl_days = 1
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = optional
organizationName = optional
`;

/** Makes a self-signed CA `<dir>/<name>.{key,crt}` (CN = name) with its `openssl ca` database. */
export async function makeCa(dir: string, name: string, opts: { days?: number } = {}): Promise<Ca> {
  const ca: Ca = {
    name,
    dir,
    keyPath: join(dir, `${name}.key`),
    certPath: join(dir, `${name}.crt`),
    configPath: join(dir, `${name}.cnf`),
  };
  await mkdir(join(dir, `${name}.issued`), { recursive: true, mode: 0o700 });
  await writeKey(ca.keyPath);
  await openssl([
    'req', '-x509', '-new', '-key', ca.keyPath, '-sha256', '-days', String(opts.days ?? DEFAULT_DAYS), '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', ca.certPath,
  ]);
  await writeFile(ca.configPath, caConfig(ca));
  await writeFile(join(dir, `${name}.index`), '');
  // A random first serial: certs of different runs never share one.
  await writeFile(join(dir, `${name}.srl`), `${randomBytes(8).toString('hex').replace(/^./, '1')}\n`);
  return ca;
}

const signing = new Map<string, Promise<unknown>>();

/** Runs `fn` after every earlier signing by the same CA (openssl ca is not safe to run in parallel on one database). */
function serialised<T>(ca: Ca, fn: () => Promise<T>): Promise<T> {
  const prev = signing.get(ca.configPath) ?? Promise.resolve();
  const next = prev.then(fn, fn);
  signing.set(ca.configPath, next.catch(() => undefined));
  return next;
}

/** Issues `<ca.dir>/<name>.{key,crt}` from `ca`, with the subject, SAN, usage and validity of `spec`. */
export async function issueCert(ca: Ca, name: string, spec: CertSpec): Promise<IssuedCert> {
  const keyPath = join(ca.dir, `${name}.key`);
  const certPath = join(ca.dir, `${name}.crt`);
  const csr = join(ca.dir, `${name}.csr`);
  const ext = join(ca.dir, `${name}.ext`);
  await writeKey(keyPath);
  await openssl(['req', '-new', '-key', keyPath, '-subj', spec.subject ?? `/CN=${spec.cn ?? name}`, '-out', csr]);
  const lines = [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature',
    `extendedKeyUsage=${spec.usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
    ...(spec.san !== undefined && spec.san.length > 0 ? [`subjectAltName=${spec.san.join(',')}`] : []),
  ];
  await writeFile(ext, `${lines.join('\n')}\n`);
  const validity = validityArgs(spec.validity ?? { days: DEFAULT_DAYS });
  await serialised(ca, () =>
    openssl(['ca', '-config', ca.configPath, '-batch', '-notext', '-preserveDN', '-in', csr, '-extfile', ext, ...validity, '-out', certPath]),
  );
  return { keyPath, certPath };
}

/** A CA that makeCa made earlier in `dir` (by its file names; nothing is read). */
export function caAt(dir: string, name: string): Ca {
  return { name, dir, keyPath: join(dir, `${name}.key`), certPath: join(dir, `${name}.crt`), configPath: join(dir, `${name}.cnf`) };
}

/** Serial (upper-case hex) of a PEM certificate, as openssl prints it. */
export async function serialOf(certPath: string): Promise<string> {
  return (await openssl(['x509', '-in', certPath, '-noout', '-serial'])).trim().replace(/^serial=/, '');
}

/**
 * Writes a CRL of `ca` revoking exactly the certs at `revoked` (empty: a valid CRL
 * revoking nothing), PEM or DER, to `out`. Stateless: a fresh index lists the
 * revoked serials (the CLI's database format: R <notAfter> <revoked at> <serial>
 * unknown <subject>), so each call states the whole list, as a CA publishing a
 * new CRL does. The CRL names its issuer's key (authorityKeyIdentifier), which
 * is how a verifier picks the CA among several in one bundle.
 * same as: openssl ca -gencrl -config <db>.cnf -keyfile ca.key -cert ca.crt [| openssl crl -outform DER]
 */
export async function writeCrl(ca: Ca, out: string, revoked: readonly string[] = [], opts: { der?: boolean } = {}): Promise<void> {
  const db = join(ca.dir, `${ca.name}-crl-${randomBytes(4).toString('hex')}`);
  const lines = await Promise.all(revoked.map(async (p) => `R\t491231235959Z\t250101000000Z\t${await serialOf(p)}\tunknown\t/CN=revoked\n`));
  await writeFile(`${db}.index`, lines.join(''));
  await writeFile(
    `${db}.cnf`,
    `[ca]\ndefault_ca=d\n[d]\ndatabase=${db}.index\ndefault_md=sha256\ndefault_crl_days=${DEFAULT_DAYS}\ncrl_extensions=e\n[e]\nauthorityKeyIdentifier=keyid:always\n`,
  );
  const pem = `${db}.crl.pem`;
  await openssl(['ca', '-gencrl', '-config', `${db}.cnf`, '-keyfile', ca.keyPath, '-cert', ca.certPath, '-out', pem]);
  if (opts.der) await openssl(['crl', '-in', pem, '-outform', 'DER', '-out', out]);
  else await openssl(['crl', '-in', pem, '-out', out]);
}
