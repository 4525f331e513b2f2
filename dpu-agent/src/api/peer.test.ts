import t from 'tap';
import type { PeerCertificate } from 'node:tls';
import { hostNameOf, judgePeer, uriSans } from './peer.ts';

const cert = (subject: Record<string, unknown>, san?: string): PeerCertificate =>
  ({ subject, subjectaltname: san, serialNumber: '0A', valid_to: 'Dec 10 00:00:00 2026 GMT' }) as unknown as PeerCertificate;

t.test('host name: CN, or CN=system:node:<name> (Kubernetes CSR API node certs)', async (t) => {
  t.equal(hostNameOf(cert({ CN: 'host1' })), 'host1');
  t.equal(hostNameOf(cert({ CN: 'system:node:worker-3.example', O: 'system:nodes' })), 'worker-3.example');
  t.equal(hostNameOf(cert({ CN: ['host1', 'host2'] })), undefined, 'two CNs: not an identity');
  t.equal(hostNameOf(cert({ O: 'nobody' })), undefined, 'no CN');
  t.equal(hostNameOf(cert({ CN: 'system:node:' })), undefined, 'empty node name');
  t.equal(hostNameOf(cert({ CN: 'system:serviceaccount:x:y' })), undefined, 'other system: names are not host names');
});

t.test('accepted: the configured identity, and the URI SAN when one is required', async (t) => {
  const rule = { identity: 'host1', uri: undefined };
  t.equal(judgePeer(cert({ CN: 'host1' }), rule).accepted, true);
  t.equal(judgePeer(cert({ CN: 'system:node:host1' }), rule).accepted, true);
  const other = judgePeer(cert({ CN: 'host2' }), rule);
  t.equal(other.accepted, false);
  t.equal(other.name, 'host2', 'still a host name (for the log and the connection cap)');
  t.same(other.presented, { cn: 'host2', uris: [], serial: '0A', notAfter: 'Dec 10 00:00:00 2026 GMT' });
  const withUri = { identity: 'host1', uri: 'spiffe://c/node/host1' };
  t.equal(judgePeer(cert({ CN: 'host1' }, 'DNS:host1, URI:spiffe://c/node/host1'), withUri).accepted, true);
  t.equal(judgePeer(cert({ CN: 'host1' }, 'URI:spiffe://c/node/host2'), withUri).accepted, false);
  t.equal(judgePeer(cert({ CN: 'host1' }), withUri).accepted, false, 'no SAN at all');
  t.same(uriSans(cert({}, 'URI:"x, URI:spiffe://c/node/host1, URI:y", DNS:h')), ['x, URI:spiffe://c/node/host1, URI:y'], 'a quoted (escaped) value stays one entry: no forged match');
  t.same(uriSans(cert({}, 'DNS:a, URI:spiffe://c/1, IP Address:10.0.0.1, URI:urn:x')), ['spiffe://c/1', 'urn:x']);
});
