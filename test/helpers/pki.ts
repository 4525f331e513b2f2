import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Ca, type CertSpec, caAt, issueCert, makeCa, serialOf, writeCrl } from '../../scripts/labkit/certs.ts';

// Throw-away PKI for mTLS tests, in a temp dir, issued with the repo's one
// generator (scripts/labkit/certs.ts, the openssl CLI):
//   ca        signs the DPU's server cert and the hosts' client certs
//   server    CN=dpu-agent, SAN IP:127.0.0.1 + DNS:localhost
//   host1     client, CN=host1          host2   client, CN=host2
//   noCn      client, subject O=nobody (no CN)
//   otherCa   a second CA; rogue = CN=host1 signed by it (must be refused)
// `issue` makes more (a chosen CN/SAN/validity, from either CA).

export interface KeyPair {
  readonly key: Buffer;
  readonly cert: Buffer;
  readonly keyPath: string;
  readonly certPath: string;
}

export interface Pki {
  readonly dir: string;
  readonly ca: Buffer;
  readonly caPath: string;
  readonly otherCa: Buffer;
  readonly otherCaPath: string;
  readonly server: KeyPair;
  readonly host1: KeyPair;
  readonly host2: KeyPair;
  readonly noCn: KeyPair;
  readonly rogue: KeyPair;
  /** The two CAs themselves, to issue from (and to revoke with: `Ca.configPath`). */
  readonly authorities: { readonly ca: Ca; readonly otherCa: Ca };
  /** Issues `<dir>/<name>.{key,crt}` from `from` (default: the trusted `ca`). */
  issue(name: string, spec: CertSpec, from?: Ca): Promise<KeyPair>;
  cleanup(): Promise<void>;
}

async function keyPair(ca: Ca, name: string, spec: CertSpec): Promise<KeyPair> {
  const { keyPath, certPath } = await issueCert(ca, name, spec);
  return { key: await readFile(keyPath), cert: await readFile(certPath), keyPath, certPath };
}

export async function makePki(): Promise<Pki> {
  const dir = await mkdtemp(join(tmpdir(), 'dpu-pki-'));
  const [ca, otherCa] = await Promise.all([makeCa(dir, 'ca'), makeCa(dir, 'other-ca')]);
  const [server, host1, host2, noCn, rogue] = await Promise.all([
    keyPair(ca, 'server', { cn: 'dpu-agent', usage: 'server', san: ['IP:127.0.0.1', 'DNS:localhost'] }),
    keyPair(ca, 'host1', { usage: 'client' }),
    keyPair(ca, 'host2', { usage: 'client' }),
    keyPair(ca, 'nocn', { subject: '/O=nobody', usage: 'client' }),
    keyPair(otherCa, 'rogue', { cn: 'host1', usage: 'client' }),
  ]);
  return {
    dir,
    ca: await readFile(ca.certPath),
    caPath: ca.certPath,
    otherCa: await readFile(otherCa.certPath),
    otherCaPath: otherCa.certPath,
    server,
    host1,
    host2,
    noCn,
    rogue,
    authorities: { ca, otherCa },
    issue: (name, spec, from = ca) => keyPair(from, name, spec),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

// ---- identity and revocation (host API TLS tests) ----------------------------
// More material in an existing Pki dir, by CA name ('ca', 'other-ca' or one issueCa made).

/** A client (or, with `server`, a server cert for 127.0.0.1/localhost) with subject `subj` and an optional extra SAN, from CA `ca`. */
export async function issueLeaf(pki: Pick<Pki, 'dir'>, name: string, opts: { subj: string; ca?: string; san?: string; server?: boolean }): Promise<KeyPair> {
  const san = opts.server ? ['IP:127.0.0.1', 'DNS:localhost'] : opts.san ? [opts.san] : [];
  return keyPair(caAt(pki.dir, opts.ca ?? 'ca'), name, { subject: opts.subj, usage: opts.server ? 'server' : 'client', san });
}

/** Another CA in the dir (`<name>.crt`, `<name>.key`); returns the cert path. */
export async function issueCa(pki: Pick<Pki, 'dir'>, name: string): Promise<string> {
  return (await makeCa(pki.dir, name)).certPath;
}

/** A CRL by CA `opts.ca` (default 'ca') revoking the certs at `revoked`, PEM or DER, written to `out`. */
export function makeCrl(pki: Pick<Pki, 'dir'>, out: string, revoked: readonly string[] = [], opts: { ca?: string; der?: boolean } = {}): Promise<void> {
  return writeCrl(caAt(pki.dir, opts.ca ?? 'ca'), out, revoked, opts.der ? { der: true } : {});
}

export { serialOf };
