// Pure naming/addressing of the lab (no root needed).
import t from 'tap';
import {
  lspName, macForIp, parsePodRef, pgName, podIp, podNs, randomPrefix, sbRemotes, validatePrefix,
} from '../../scripts/labkit/plan.ts';

t.test('prefixes: no dashes, so "<prefix>-" never matches another run', async (t) => {
  t.equal(validatePrefix('dpl1a2b'), 'dpl1a2b');
  for (const bad of ['a', 'dpl-x', 'DPL', '1abc', 'abcdefghijklm']) t.throws(() => validatePrefix(bad), bad);
  let i = 0;
  const seq = [0.1, 0.5, 0.9, 0.99];
  const p = randomPrefix(() => seq[i++ % seq.length]!);
  t.match(p, /^dpl[a-z0-9]{4}$/);
  t.equal(validatePrefix(p), p);
});

t.test('pods: refs, LSP and netns names', async (t) => {
  t.same(parsePodRef('web/a-1'), { namespace: 'web', name: 'a-1' });
  for (const bad of ['web', 'web/', '/a', 'a/b/c', 'Web/a', 'web/-a']) t.throws(() => parsePodRef(bad), bad);
  t.equal(lspName({ namespace: 'web', name: 'a-1' }), 'web_a-1');
  t.equal(podNs('dplx', { namespace: 'web', name: 'a.b' }), 'dplx-pod-web-a-b');
  const long = podNs('dplx', { namespace: 'n'.repeat(40), name: 'm'.repeat(40) });
  t.ok(long.length <= 64 && long.startsWith('dplx-pod-'), long);
  t.not(long, podNs('dplx', { namespace: 'n'.repeat(40), name: `${'m'.repeat(39)}x` }), 'truncated names stay distinct');
});

t.test('port group names are OVN identifiers', async (t) => {
  t.match(pgName('deny', 'web/a-1<-*'), /^deny_[A-Za-z0-9_]+$/);
  t.ok(pgName('deny', 'x'.repeat(100)).length <= 60);
});

t.test('addresses', async (t) => {
  t.equal(podIp(2, 0), '198.18.2.10');
  t.throws(() => podIp(0, 0));
  t.equal(macForIp('198.18.2.10'), '0a:58:c6:12:02:0a');
  t.throws(() => macForIp('198.18.2'));
  t.same(sbRemotes(3), ['tcp:100.64.0.1:6642', 'tcp:100.64.0.1:6652', 'tcp:100.64.0.1:6662']);
});
