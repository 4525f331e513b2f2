// The one PKI generator (scripts/labkit/certs.ts) against the openssl CLI and
// node's X509Certificate: subjects, SANs, usages, validity windows, the chain,
// and that the CA's database takes `openssl ca -revoke` / `-gencrl`.
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueCert, makeCa } from '../../scripts/labkit/certs.ts';
import { run, sh } from '../../scripts/labkit/sh.ts';

const DAY = 86_400_000;
const x509 = async (path: string): Promise<X509Certificate> => new X509Certificate(await readFile(path));

t.test('subject, SAN, usage, validity and chain of issued certs', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'certs-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const [ca, other] = await Promise.all([makeCa(dir, 'ca'), makeCa(dir, 'other', { days: 7 })]);
  const now = Date.now();
  const [server, client, nocn, expired, foreign] = await Promise.all([
    issueCert(ca, 'server', { cn: 'dpu1', usage: 'server', san: ['IP:127.0.0.1', 'DNS:localhost'] }),
    issueCert(ca, 'client', { usage: 'client', validity: { days: 30 } }),
    issueCert(ca, 'nocn', { subject: '/O=nobody', usage: 'client' }),
    issueCert(ca, 'expired', { cn: 'host9', usage: 'client', validity: { notBefore: new Date(now - 2 * DAY), notAfter: new Date(now - DAY) } }),
    issueCert(other, 'foreign', { cn: 'host1', usage: 'client' }),
  ]);
  const caCert = await x509(ca.certPath);
  t.ok(caCert.ca, 'the CA is a CA');
  t.equal(caCert.subject, 'CN=ca');
  t.ok(Date.parse(((await x509(other.certPath)).validTo)) > now + 6 * DAY, 'CA validity in days');

  const s = await x509(server.certPath);
  t.equal(s.subject, 'CN=dpu1');
  t.equal(s.subjectAltName, 'IP Address:127.0.0.1, DNS:localhost');
  t.same(s.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'serverAuth only');
  t.notOk(s.ca);
  t.ok(s.checkIssued(caCert) && s.verify(caCert.publicKey), 'signed by the CA');

  const c = await x509(client.certPath);
  t.equal(c.subject, 'CN=client', 'CN defaults to the file name');
  t.same(c.keyUsage, ['1.3.6.1.5.5.7.3.2'], 'clientAuth only');
  t.equal(c.subjectAltName, undefined);
  const days = (Date.parse(c.validTo) - Date.parse(c.validFrom)) / DAY;
  t.ok(days > 29.9 && days < 30.1, `30 days (${days})`);

  t.equal((await x509(nocn.certPath)).subject, 'O=nobody', 'a subject without CN is kept as given');

  const e = await x509(expired.certPath);
  t.equal(e.subject, 'CN=host9');
  t.ok(Date.parse(e.validTo) < now && Date.parse(e.validFrom) < Date.parse(e.validTo), 'an expired window');
  t.ok(e.checkIssued(caCert) && e.verify(caCert.publicKey), 'still signed by the CA');

  const f = await x509(foreign.certPath);
  t.notOk(f.verify(caCert.publicKey), 'another CA: not signed by ca');

  t.equal((await stat(server.keyPath)).mode & 0o777, 0o600, 'keys are private');
  const serials = new Set([s, c, e].map((x) => x.serialNumber));
  t.equal(serials.size, 3, 'distinct serials');
});

t.test('revocation and CRL through the CA database', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'certs-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const ca = await makeCa(dir, 'ca');
  const [good, bad] = await Promise.all([issueCert(ca, 'good', { usage: 'client' }), issueCert(ca, 'bad', { usage: 'client' })]);
  await sh(['openssl', 'ca', '-config', ca.configPath, '-revoke', bad.certPath]);
  const crl = join(dir, 'ca.crl');
  await sh(['openssl', 'ca', '-config', ca.configPath, '-gencrl', '-out', crl]);
  const verify = (cert: string) => run(['openssl', 'verify', '-CAfile', ca.certPath, '-crl_check', '-CRLfile', crl, cert]);
  t.equal((await verify(good.certPath)).code, 0, 'not revoked: verifies');
  const r = await verify(bad.certPath);
  t.not(r.code, 0);
  t.match(r.stdout + r.stderr, /certificate revoked/);
});
