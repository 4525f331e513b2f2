// The lab's PKI, issued with certs.ts under <run>/pki at `lab up`:
//   ca            the hosts' CA, configured on every DPU (api.tls.clientCa); also signs the DPUs' server certs
//   dpuK-server   CN=dpuK, SAN IP:<dpuK's API link address> (what host-shim dials)
//   hostK         client, CN=hostK — the host identity leases belong to
//   rogue-ca      a second CA nobody trusts; rogue = CN=host1 signed by it (attack tests)
//   ca.crl        the CA's CRL (api.tls.crl on every DPU), empty at `up`; tests rewrite it
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { caAt, issueCert, makeCa, writeCrl } from './certs.ts';
import { apiDpuIp } from './plan.ts';
import type { LabRun } from './run.ts';

export interface PemPair {
  readonly key: string;
  readonly cert: string;
}

export const pkiDir = (run: LabRun): string => join(run.state.dir, 'pki');
export const caPath = (run: LabRun): string => join(pkiDir(run), 'ca.crt');
export const crlPath = (run: LabRun): string => join(pkiDir(run), 'ca.crl');
/** Key/cert paths of a named identity: `dpuK-server`, `hostK`, `rogue`. */
export function pemPair(run: LabRun, name: string): PemPair {
  return { key: join(pkiDir(run), `${name}.key`), cert: join(pkiDir(run), `${name}.crt`) };
}

/** Lab certs live as long as a lab run may. */
const validity = { days: 7 };

/** Makes the whole PKI for `dpus` DPU/host pairs. Idempotent per run dir (overwrites). */
export async function makeLabPki(run: LabRun, dpus: number): Promise<void> {
  const dir = pkiDir(run);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const [ca, rogueCa] = await Promise.all([makeCa(dir, 'ca', validity), makeCa(dir, 'rogue-ca', validity)]);
  const leaves: Promise<unknown>[] = [issueCert(rogueCa, 'rogue', { cn: 'host1', usage: 'client', validity })];
  for (let k = 1; k <= dpus; k++) {
    leaves.push(issueCert(ca, `dpu${k}-server`, { cn: `dpu${k}`, usage: 'server', san: [`IP:${apiDpuIp(k)}`], validity }));
    leaves.push(issueCert(ca, `host${k}`, { usage: 'client', validity }));
  }
  await Promise.all(leaves);
  await writeLabCrl(run, crlPath(run));
}

// ---- rotation and revocation (identity tests) ----------------------------------

/** Another CA `name` in the lab PKI dir. */
export async function makeLabCa(run: LabRun, name: string): Promise<void> {
  await makeCa(pkiDir(run), name, validity);
}

/** A client identity `name` (CN=`cn`), or with `serverIp` a server cert for that API address, signed by CA `opts.ca`. */
export async function makeLabLeaf(run: LabRun, name: string, cn: string, opts: { ca?: string; serverIp?: string } = {}): Promise<void> {
  const ca = caAt(pkiDir(run), opts.ca ?? 'ca');
  await issueCert(ca, name, opts.serverIp ? { cn, usage: 'server', san: [`IP:${opts.serverIp}`], validity } : { cn, usage: 'client', validity });
}

/** Writes a PEM CRL of CA `ca` revoking exactly the named identities' certs to `out`. */
export function writeLabCrl(run: LabRun, out: string, revoke: readonly string[] = [], ca = 'ca'): Promise<void> {
  const dir = pkiDir(run);
  return writeCrl(caAt(dir, ca), out, revoke.map((name) => join(dir, `${name}.crt`)));
}
