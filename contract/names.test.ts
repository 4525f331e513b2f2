import t from 'tap';
import fc from 'fast-check';
import { isHostName, isIfname, isPodName, isPodNamespace, isPodUid, isSandboxId } from './names.ts';

t.test('namespace: DNS-1123 label, at most 63', async (t) => {
  for (const ok of ['default', 'kube-system', 'a', '0', 'a-b-c', 'x'.repeat(63)]) t.ok(isPodNamespace(ok), ok);
  for (const bad of ['', 'Default', '-a', 'a-', 'a.b', 'a_b', 'x'.repeat(64), 'ä', 'a b', 'a\n']) t.notOk(isPodNamespace(bad), JSON.stringify(bad));
});

t.test('pod name: DNS-1123 subdomain, at most 253', async (t) => {
  for (const ok of ['web-0', 'a.b.c', 'x'.repeat(253), `${'a'.repeat(63)}.${'b'.repeat(63)}`]) t.ok(isPodName(ok), ok);
  for (const bad of ['', 'Web', 'a..b', '.a', 'a.', '-a', 'a-.b', 'x'.repeat(254), 'a/b', 'a_b']) t.notOk(isPodName(bad), JSON.stringify(bad));
});

t.test('uid: canonical UUID', async (t) => {
  t.ok(isPodUid('1b4e28ba-2fa1-11d2-883f-0016d3cca427'));
  t.ok(isPodUid('1B4E28BA-2FA1-11D2-883F-0016D3CCA427'));
  for (const bad of ['', '1b4e28ba2fa111d2883f0016d3cca427', '1b4e28ba-2fa1-11d2-883f-0016d3cca42', 'g'.repeat(8) + '-2fa1-11d2-883f-0016d3cca427', '{1b4e28ba-2fa1-11d2-883f-0016d3cca427}']) {
    t.notOk(isPodUid(bad), bad);
  }
});

t.test('sandbox id: [A-Za-z0-9_.-]{1,128}', async (t) => {
  for (const ok of ['abc', 'A.b_c-1', 'f'.repeat(64), 'x'.repeat(128)]) t.ok(isSandboxId(ok), ok);
  for (const bad of ['', 'x'.repeat(129), 'a/b', 'a b', 'a:b', 'é']) t.notOk(isSandboxId(bad), JSON.stringify(bad));
});

t.test('ifname: libcni ValidateInterfaceName + dev_valid_name', async (t) => {
  for (const ok of ['eth0', 'net1', 'x'.repeat(15), 'a.b', '...', 'é'.repeat(7)]) t.ok(isIfname(ok), ok);
  for (const bad of ['', '.', '..', 'x'.repeat(16), 'é'.repeat(8), 'a/b', 'a:b', 'a b', 'a\tb', 'a\u00a0b', 'a\u0000', 'a\u007f']) {
    t.notOk(isIfname(bad), JSON.stringify(bad));
  }
});

t.test('host name (client cert CN)', async (t) => {
  for (const ok of ['host1', 'node-1.example.com', 'A1']) t.ok(isHostName(ok), ok);
  for (const bad of ['', '-a', 'a..b', 'a b', 'a_b', `${'a'.repeat(64)}`, 'host1\u0000']) t.notOk(isHostName(bad), JSON.stringify(bad));
});

t.test('property: accepted names never contain separators or controls', async (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (s) => {
      for (const ok of [isPodNamespace(s), isPodName(s), isSandboxId(s), isIfname(s), isHostName(s)]) {
        if (ok && /[/\s\u0000-\u001f]/u.test(s)) return false;
      }
      return true;
    }),
    { numRuns: 2000 },
  );
  t.pass('no accepted name carries a separator, whitespace or control char');
});
