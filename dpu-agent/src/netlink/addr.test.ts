import t from 'tap';
import fc from 'fast-check';
import { bytesToIpv6, bytesToMac, ipv6ToBytes, macToBytes, ipv4ToBytes, hexToBytes } from './addr.ts';
import { TcInvalidError } from '../errors.ts';

t.test('IPv6 text is RFC 5952 canonical', async (t) => {
  const cases: Array<[string, string]> = [
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['fe80:0:0:0:0:0:0:0', 'fe80::'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['::ffff:10.0.0.1', '::ffff:a00:1'],
    ['2001:DB8::A', '2001:db8::a'],
  ];
  for (const [input, want] of cases) t.equal(bytesToIpv6(ipv6ToBytes(input)), want, input);
});

t.test('IPv6 and MAC bytes ⇄ text round trip', async () => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => ipv6ToBytes(bytesToIpv6(b)).equals(Buffer.from(b))));
  fc.assert(fc.property(fc.uint8Array({ minLength: 6, maxLength: 6 }), (b) => macToBytes(bytesToMac(b)).equals(Buffer.from(b))));
});

t.test('bad text is a TcInvalidError', async (t) => {
  t.throws(() => macToBytes('aa:bb'), TcInvalidError);
  t.throws(() => ipv4ToBytes('10.0.0.256'), TcInvalidError);
  t.throws(() => ipv6ToBytes('1::2::3'), TcInvalidError);
  t.throws(() => hexToBytes('abc'), TcInvalidError);
  t.throws(() => hexToBytes('00', 16), { code: 'DPU_ERR_TC_INVALID' });
});
