import t from 'tap';
import fc from 'fast-check';
import { HwError } from '../errors.ts';
import { normaliseVfMac, parseRepresentorName, representorName } from './representor.ts';

t.test('representor names map both ways', async (t) => {
  t.same(parseRepresentorName('pf0vf3'), { pf: 0, vf: 3 });
  t.same(parseRepresentorName('pf1vf127'), { pf: 1, vf: 127 });
  for (const n of ['p0', 'pf0hpf', 'pf0vf', 'pf0vf03', 'pf00vf1', 'en3f0pf0sf0', 'pf0vf3 ', 'xpf0vf1']) {
    t.equal(parseRepresentorName(n), undefined, n);
  }
  t.equal(representorName({ pf: 0, vf: 7 }), 'pf0vf7');
  t.throws(() => representorName({ pf: 0, vf: -1 }), HwError);
  t.throws(() => representorName({ pf: 0.5, vf: 1 }), HwError);
});

t.test('name ⇄ VF id is a bijection', async () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 9999 }), (pf, vf) => {
      const back = parseRepresentorName(representorName({ pf, vf }));
      return back !== undefined && back.pf === pf && back.vf === vf;
    }),
  );
});

t.test('VF MACs are normalised and must be unicast, non-zero', async (t) => {
  t.equal(normaliseVfMac('0A:58:C6:12:01:0A'), '0a:58:c6:12:01:0a');
  t.equal(normaliseVfMac('0a-58-c6-12-01-0a'), '0a:58:c6:12:01:0a');
  t.equal(normaliseVfMac('0a58c612010a'), '0a:58:c6:12:01:0a');
  t.throws(() => normaliseVfMac('01:00:5e:00:00:01'), { code: 'DPU_ERR_HW' }, 'multicast');
  t.throws(() => normaliseVfMac('00:00:00:00:00:00'), { code: 'DPU_ERR_HW' }, 'zero');
  t.throws(() => normaliseVfMac('0a:58:c6:12:01'), HwError);
  t.throws(() => normaliseVfMac('0a:58-c6:12:01:0a'), HwError, 'mixed separators');
});
