import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

// Throw-away PKI for mTLS tests, made with the openssl CLI in a temp dir:
//   ca        signs the DPU's server cert and the hosts' client certs
//   server    CN=dpu-agent, SAN IP:127.0.0.1 + DNS:localhost
//   host1     client, CN=host1          host2   client, CN=host2
//   noCn      client, subject O=nobody (no CN)
//   otherCa   a second CA; rogue = CN=host1 signed by it (must be refused)
// P-256 keys: fast to make. Same as `openssl req -x509 …` / `openssl x509 -req …`.

const run = promisify(execFile);

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
  cleanup(): Promise<void>;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  await run('openssl', args, { cwd: dir });
}

async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`]);
  await openssl(dir, [
    'req', '-x509', '-new', '-key', `${name}.key`, '-sha256', '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-out', `${name}.crt`,
  ]);
}

async function makeLeaf(dir: string, name: string, ca: string, subj: string, ext: string): Promise<KeyPair> {
  await openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`]);
  await openssl(dir, ['req', '-new', '-key', `${name}.key`, '-subj', subj, '-out', `${name}.csr`]);
  await writeFile(join(dir, `${name}.ext`), ext);
  await openssl(dir, [
    // -set_serial, not -CAcreateserial: leaves are signed in parallel and would race on ca.srl.
    'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-set_serial', `0x${randomBytes(8).toString('hex')}`,
    '-days', '2', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.crt`,
  ]);
  const keyPath = join(dir, `${name}.key`);
  const certPath = join(dir, `${name}.crt`);
  return { key: await readFile(keyPath), cert: await readFile(certPath), keyPath, certPath };
}

const CLIENT_EXT = 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n';
const SERVER_EXT = 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n';

export async function makePki(): Promise<Pki> {
  const dir = await mkdtemp(join(tmpdir(), 'dpu-pki-'));
  await makeCa(dir, 'ca');
  await makeCa(dir, 'other-ca');
  const [server, host1, host2, noCn, rogue] = await Promise.all([
    makeLeaf(dir, 'server', 'ca', '/CN=dpu-agent', SERVER_EXT),
    makeLeaf(dir, 'host1', 'ca', '/CN=host1', CLIENT_EXT),
    makeLeaf(dir, 'host2', 'ca', '/CN=host2', CLIENT_EXT),
    makeLeaf(dir, 'nocn', 'ca', '/O=nobody', CLIENT_EXT),
    makeLeaf(dir, 'rogue', 'other-ca', '/CN=host1', CLIENT_EXT),
  ]);
  return {
    dir,
    ca: await readFile(join(dir, 'ca.crt')),
    caPath: join(dir, 'ca.crt'),
    otherCa: await readFile(join(dir, 'other-ca.crt')),
    otherCaPath: join(dir, 'other-ca.crt'),
    server,
    host1,
    host2,
    noCn,
    rogue,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

// ---- identity and revocation (host API TLS tests) ----------------------------
// Extra material on an existing Pki dir: leaves with a chosen subject/SAN, more
// CAs, CRLs (`openssl ca -gencrl` over a hand-written index.txt, the CLI's own
// database format: R <notAfter> <revoked at> <serial> unknown <subject>).

/** A client (or server) leaf with subject `subj`, optional extra SAN line, signed by `ca` (a CA name in the dir). */
export async function issueLeaf(pki: Pick<Pki, 'dir'>, name: string, opts: { subj: string; ca?: string; san?: string; server?: boolean }): Promise<KeyPair> {
  const ext = opts.server ? SERVER_EXT : `${CLIENT_EXT}${opts.san ? `subjectAltName=${opts.san}\n` : ''}`;
  return makeLeaf(pki.dir, name, opts.ca ?? 'ca', opts.subj, ext);
}

/** Another CA in the dir (`<name>.crt`, `<name>.key`); returns the cert path. */
export async function issueCa(pki: Pick<Pki, 'dir'>, name: string): Promise<string> {
  await makeCa(pki.dir, name);
  return join(pki.dir, `${name}.crt`);
}

/** Serial (upper-case hex) of a PEM certificate, as openssl prints it. */
export async function serialOf(certPath: string): Promise<string> {
  const { stdout } = await run('openssl', ['x509', '-in', certPath, '-noout', '-serial']);
  return stdout.trim().replace(/^serial=/, '');
}

/** A CRL by `ca` revoking `revoked` (empty = a valid CRL revoking nothing), PEM or DER, written to `out`. */
export async function makeCrl(pki: Pick<Pki, 'dir'>, out: string, revoked: readonly string[] = [], opts: { ca?: string; der?: boolean } = {}): Promise<void> {
  const ca = opts.ca ?? 'ca';
  const db = join(pki.dir, `${ca}-${randomBytes(4).toString('hex')}`);
  const lines = await Promise.all(revoked.map(async (certPath) => `R\t491231235959Z\t250101000000Z\t${await serialOf(certPath)}\tunknown\t/CN=revoked\n`));
  await writeFile(`${db}.index`, lines.join(''));
  await writeFile(
    `${db}.cnf`,
    `[ca]\ndefault_ca=d\n[d]\ndatabase=${db}.index\ndefault_md=sha256\ndefault_crl_days=2\ncrl_extensions=e\n[e]\nauthorityKeyIdentifier=keyid:always\n`,
  );
  const pem = `${db}.crl.pem`;
  await openssl(pki.dir, ['ca', '-gencrl', '-config', `${db}.cnf`, '-keyfile', `${ca}.key`, '-cert', `${ca}.crt`, '-out', pem]);
  if (opts.der) await openssl(pki.dir, ['crl', '-in', pem, '-outform', 'DER', '-out', out]);
  else await writeFile(out, await readFile(pem));
}
