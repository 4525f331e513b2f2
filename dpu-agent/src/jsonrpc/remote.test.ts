import t from 'tap';
import fc from 'fast-check';
import { RemoteSyntaxError } from '../errors.ts';
import { formatRemote, parseRemote, parseRemotes, type Remote } from './remote.ts';

t.test('parses the remote forms OVS accepts', (t) => {
  const cases: Array<[string, Remote]> = [
    ['unix:/var/run/openvswitch/db.sock', { kind: 'unix', path: '/var/run/openvswitch/db.sock' }],
    ['unix:relative/db.sock', { kind: 'unix', path: 'relative/db.sock' }],
    ['tcp:1.2.3.4:6640', { kind: 'tcp', host: '1.2.3.4', port: 6640 }],
    ['tcp:1.2.3.4', { kind: 'tcp', host: '1.2.3.4', port: 6640 }],
    ['tcp:[::1]:6641', { kind: 'tcp', host: '::1', port: 6641 }],
    ['tcp:[fe80::1]', { kind: 'tcp', host: 'fe80::1', port: 6640 }],
    ['ssl:10.0.0.1:6642', { kind: 'ssl', host: '10.0.0.1', port: 6642 }],
    ['ssl:ovn-sb.example.com', { kind: 'ssl', host: 'ovn-sb.example.com', port: 6640 }],
    ['ssl:[2001:db8::5]:443', { kind: 'ssl', host: '2001:db8::5', port: 443 }],
  ];
  for (const [s, want] of cases) t.strictSame(parseRemote(s), want, s);
  t.end();
});

t.test('default port is the caller’s', (t) => {
  t.strictSame(parseRemote('ssl:10.0.0.1', 6642), { kind: 'ssl', host: '10.0.0.1', port: 6642 });
  t.strictSame(parseRemote('ssl:10.0.0.1:7000', 6642), { kind: 'ssl', host: '10.0.0.1', port: 7000 });
  t.end();
});

t.test('rejects malformed remotes with RemoteSyntaxError', (t) => {
  const bad = [
    '',
    'db.sock',
    'unix:',
    'ptcp:6640',
    'punix:/tmp/x',
    'http:1.2.3.4:80',
    'tcp:',
    'tcp::6640',
    'tcp:1.2.3.4:',
    'tcp:1.2.3.4:0',
    'tcp:1.2.3.4:65536',
    'tcp:1.2.3.4:66a',
    'tcp:1.2.3.4:-1',
    'tcp:::1',
    'tcp:fe80::1:6640',
    'tcp:[::1',
    'tcp:[::1]6640',
    'tcp:[1.2.3.4]:6640',
    'tcp:[zz]:6640',
    'tcp:bad_host:6640',
    'tcp:-bad.example:6640',
    'ssl:host name:6640',
  ];
  for (const s of bad) {
    t.throws(() => parseRemote(s), RemoteSyntaxError, JSON.stringify(s));
  }
  const err = (() => {
    try {
      parseRemote('tcp:1.2.3.4:99999');
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  t.type(err, RemoteSyntaxError);
  t.equal((err as RemoteSyntaxError).code, 'DPU_ERR_REMOTE_SYNTAX');
  t.equal((err as RemoteSyntaxError).remote, 'tcp:1.2.3.4:99999');
  t.end();
});

t.test('formatRemote brackets IPv6 and always writes the port', (t) => {
  t.equal(formatRemote({ kind: 'unix', path: '/run/ovn/ovnsb_db.sock' }), 'unix:/run/ovn/ovnsb_db.sock');
  t.equal(formatRemote({ kind: 'tcp', host: '127.0.0.1', port: 6640 }), 'tcp:127.0.0.1:6640');
  t.equal(formatRemote({ kind: 'ssl', host: '::1', port: 6642 }), 'ssl:[::1]:6642');
  t.equal(formatRemote({ kind: 'ssl', host: 'sb.example', port: 6642 }), 'ssl:sb.example:6642');
  t.end();
});

t.test('property: parse(format(r)) === r', (t) => {
  const octet = fc.integer({ min: 0, max: 255 });
  const ipv4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
  const ipv6 = fc.ipV6().filter((h) => !h.includes('.')); // Node normalises neither form; keep pure hex
  const host = fc.oneof(ipv4, ipv6, fc.domain());
  const port = fc.integer({ min: 1, max: 65535 });
  const net = fc.record({ kind: fc.constantFrom('tcp' as const, 'ssl' as const), host, port });
  const unix = fc.record({
    kind: fc.constant('unix' as const),
    path: fc.string({ minLength: 1 }).filter((p) => !p.includes('\0')),
  });
  fc.assert(
    fc.property(fc.oneof(net, unix), (r: Remote) => {
      const back = parseRemote(formatRemote(r));
      if (JSON.stringify(back) !== JSON.stringify(r)) throw new Error(`${formatRemote(r)} -> ${JSON.stringify(back)}`);
    }),
  );
  t.pass('round trip holds');
  t.end();
});

t.test('parseRemotes splits a cluster list', (t) => {
  t.strictSame(parseRemotes('ssl:10.0.0.1:6642,ssl:10.0.0.2:6642, ssl:[::1]:6642'), [
    { kind: 'ssl', host: '10.0.0.1', port: 6642 },
    { kind: 'ssl', host: '10.0.0.2', port: 6642 },
    { kind: 'ssl', host: '::1', port: 6642 },
  ]);
  t.strictSame(parseRemotes('tcp:10.0.0.1'), [{ kind: 'tcp', host: '10.0.0.1', port: 6640 }]);
  t.strictSame(parseRemotes('tcp:10.0.0.1,tcp:10.0.0.2', 6641), [
    { kind: 'tcp', host: '10.0.0.1', port: 6641 },
    { kind: 'tcp', host: '10.0.0.2', port: 6641 },
  ]);
  t.end();
});

t.test('parseRemotes only splits before "method:", like ovsdb_session_parse_remote', (t) => {
  t.strictSame(parseRemotes('unix:/tmp/a,b.sock,tcp:1.2.3.4'), [
    { kind: 'unix', path: '/tmp/a,b.sock' },
    { kind: 'tcp', host: '1.2.3.4', port: 6640 },
  ]);
  t.end();
});

t.test('parseRemotes errors', (t) => {
  t.throws(() => parseRemotes(''), RemoteSyntaxError);
  t.throws(() => parseRemotes('  '), RemoteSyntaxError);
  t.throws(() => parseRemotes('tcp:1.2.3.4,ptcp:1'), RemoteSyntaxError);
  t.throws(() => parseRemotes('tcp:1.2.3.4,bogus'), RemoteSyntaxError, 'non-method tail stays glued and fails');
  t.throws(
    () => parseRemotes('tcp:1.2.3.4,cid:1f4d3d0a-3b7a-4a4e-8b1f-5b1f3a8e9c11'),
    RemoteSyntaxError,
    'cid: is refused, not ignored',
  );
  t.end();
});
