// The lab's PKI, made with the openssl CLI under <run>/pki at `lab up`:
//   ca            the hosts' CA, configured on every DPU (api.tls.clientCa); also signs the DPUs' server certs
//   dpuK-server   CN=dpuK, SAN IP:<dpuK's API link address> (what host-shim dials)
//   hostK         client, CN=hostK — the host identity leases belong to
//   rogue-ca      a second CA nobody trusts; rogue = CN=host1 signed by it (attack tests)
//   ca.crl        the CA's CRL (api.tls.crl on every DPU), empty at `up`; tests rewrite it
// P-256 keys (fast). Same as `openssl req -x509 …` / `openssl x509 -req …`.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { apiDpuIp } from './plan.ts';
import type { LabRun } from './run.ts';
import { sh } from './sh.ts';

export interface PemPair {
  readonly key: string;
  readonly cert: string;
}

export const pkiDir = (run: LabRun): string => join(run.state.dir, 'pki');
export const caPath = (run: LabRun): string => join(pkiDir(run), 'ca.crt');
export const rogueCaPath = (run: LabRun): string => join(pkiDir(run), 'rogue-ca.crt');
export const crlPath = (run: LabRun): string => join(pkiDir(run), 'ca.crl');
/** Key/cert paths of a named identity: `dpuK-server`, `hostK`, `rogue`. */
export function pemPair(run: LabRun, name: string): PemPair {
  return { key: join(pkiDir(run), `${name}.key`), cert: join(pkiDir(run), `${name}.crt`) };
}

const openssl = (dir: string, args: string[]): Promise<string> => sh(['openssl', ...args], { cwd: dir });

async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`]);
  await openssl(dir, [
    'req', '-x509', '-new', '-key', `${name}.key`, '-sha256', '-days', '7', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', `${name}.crt`,
  ]);
}

async function makeLeaf(dir: string, name: string, ca: string, cn: string, ext: string): Promise<void> {
  await openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`]);
  await openssl(dir, ['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`]);
  writeFileSync(join(dir, `${name}.ext`), ext);
  await openssl(dir, [
    // -set_serial, not -CAcreateserial: leaves are signed in parallel and would race on ca.srl.
    'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-set_serial', `0x${randomBytes(8).toString('hex')}`,
    '-days', '7', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.crt`,
  ]);
}

const CLIENT_EXT = 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n';
const serverExt = (ip: string): string =>
  `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:${ip}\n`;

/** Makes the whole PKI for `dpus` DPU/host pairs. Idempotent per run dir (overwrites). */
export async function makeLabPki(run: LabRun, dpus: number): Promise<void> {
  const dir = pkiDir(run);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  await Promise.all([makeCa(dir, 'ca'), makeCa(dir, 'rogue-ca')]);
  const leaves: Promise<void>[] = [makeLeaf(dir, 'rogue', 'rogue-ca', 'host1', CLIENT_EXT)];
  for (let k = 1; k <= dpus; k++) {
    leaves.push(makeLeaf(dir, `dpu${k}-server`, 'ca', `dpu${k}`, serverExt(apiDpuIp(k))));
    leaves.push(makeLeaf(dir, `host${k}`, 'ca', `host${k}`, CLIENT_EXT));
  }
  await Promise.all(leaves);
  await writeLabCrl(run, crlPath(run));
}

// ---- rotation and revocation (identity tests) ----------------------------------

/** Another CA `name` in the lab PKI dir. */
export async function makeLabCa(run: LabRun, name: string): Promise<void> {
  await makeCa(pkiDir(run), name);
}

/** A client identity `name` (CN=`cn`), or with `serverIp` a server cert for that API address, signed by `ca`. */
export async function makeLabLeaf(run: LabRun, name: string, cn: string, opts: { ca?: string; serverIp?: string } = {}): Promise<void> {
  await makeLeaf(pkiDir(run), name, opts.ca ?? 'ca', cn, opts.serverIp ? serverExt(opts.serverIp) : CLIENT_EXT);
}

/**
 * Writes a PEM CRL of `ca` revoking the certs of the named identities to `out`.
 * same as: openssl ca -gencrl, over a database (index.txt) listing them revoked.
 */
export async function writeLabCrl(run: LabRun, out: string, revoke: readonly string[] = [], ca = 'ca'): Promise<void> {
  const dir = pkiDir(run);
  const db = join(dir, `${ca}-crl-${randomBytes(4).toString('hex')}`);
  const serials = await Promise.all(revoke.map(async (name) => (await openssl(dir, ['x509', '-in', `${name}.crt`, '-noout', '-serial'])).trim().replace(/^serial=/, '')));
  writeFileSync(`${db}.index`, serials.map((s) => `R\t491231235959Z\t250101000000Z\t${s}\tunknown\t/CN=revoked\n`).join(''));
  writeFileSync(`${db}.cnf`, `[ca]\ndefault_ca=d\n[d]\ndatabase=${db}.index\ndefault_md=sha256\ndefault_crl_days=7\n`);
  await openssl(dir, ['ca', '-gencrl', '-config', `${db}.cnf`, '-keyfile', `${ca}.key`, '-cert', `${ca}.crt`, '-out', `${db}.crl`]);
  writeFileSync(out, readFileSync(`${db}.crl`));
}
