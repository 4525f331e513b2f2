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
