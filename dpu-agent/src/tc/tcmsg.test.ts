import t from 'tap';
import fc from 'fast-check';
import {
  ETH_P_ALL,
  ETH_P_IP,
  TC_H_MAKE,
  TC_PARENT_EGRESS,
  TC_PARENT_INGRESS,
  decodeTcMsg,
  encodeTcMsg,
  formatHandle,
  splitTcmInfo,
  tcmInfo,
} from './tcmsg.ts';

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

t.test('handles and parents (reference B1)', async (t) => {
  t.equal(TC_PARENT_INGRESS, 0xfffffff2);
  t.equal(TC_PARENT_EGRESS, 0xfffffff3);
  t.equal(TC_H_MAKE(0xffff0000, 0xfff1), 0xfffffff1);
  t.equal(formatHandle(TC_PARENT_INGRESS), 'ffff:fff2');
  t.equal(formatHandle(0xffff0000), 'ffff:');
});

t.test('tcm_info = (prio << 16) | htons(proto)', { skip: !LE && 'values below are for little-endian' }, async (t) => {
  t.equal(tcmInfo(2, ETH_P_IP), 0x00020008);
  t.equal(tcmInfo(1, ETH_P_ALL) & 0xffff, 0x0300);
  const b = encodeTcMsg({ family: 0, ifindex: 7, handle: 0, parent: TC_PARENT_INGRESS, info: tcmInfo(2, ETH_P_IP) });
  t.equal(b.subarray(16).toString('hex'), '08000200', 'protocol bytes are network order in memory');
});

t.test('tcm_info and tcmsg round trip', async () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }), (prio, protocol) => {
      const s = splitTcmInfo(tcmInfo(prio, protocol));
      return s.prio === prio && s.protocol === protocol;
    }),
  );
  fc.assert(
    fc.property(
      fc.record({
        family: fc.integer({ min: 0, max: 255 }),
        ifindex: fc.integer({ min: 0, max: 0xffffffff }),
        handle: fc.integer({ min: 0, max: 0xffffffff }),
        parent: fc.integer({ min: 0, max: 0xffffffff }),
        info: fc.integer({ min: 0, max: 0xffffffff }),
      }),
      (m) => JSON.stringify(decodeTcMsg(encodeTcMsg(m))) === JSON.stringify(m),
    ),
  );
});
