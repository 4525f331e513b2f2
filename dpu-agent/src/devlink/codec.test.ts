import t from 'tap';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { AttrWriter, HOST_LE, NLA_F_NESTED, encodeMessage, getBytes, getString, getU32, parseAttrs, parseMessages, parseNested } from '../netlink/nl.ts';
import {
  DEVLINK_ATTR_PORT_FUNCTION,
  DEVLINK_CMD_PORT_DEL,
  type DevlinkPort,
  GENL_ID_CTRL,
  PORT_FLAVOURS,
  PORT_TYPES,
  decodeFamily,
  decodePort,
  encodeGetFamily,
  encodePortDump,
  encodePortGet,
  encodePortMessage,
  encodePortSetHwAddr,
  formatHandle,
  parseHandle,
} from './codec.ts';
import { asIproute2Prints, parseDevlinkPortsJson } from './iproute2.ts';

/** A `.hex` fixture: `#` comments and whitespace dropped. */
const hexFixture = (name: string): Buffer =>
  Buffer.from(
    readFileSync(new URL(`./testdata/${name}`, import.meta.url), 'utf8')
      .split('\n')
      .map((l) => l.replace(/#.*/, ''))
      .join('')
      .replace(/\s+/g, ''),
    'hex',
  );

const FAMILY = 20;
const BF2_VF0: DevlinkPort = {
  bus: 'pci',
  dev: '0000:03:00.0',
  index: 4097,
  handle: 'pci/0000:03:00.0/4097',
  type: 'eth',
  ifindex: 6,
  netdev: 'pf0vf0',
  flavour: 'pcivf',
  controller: 1,
  pfnum: 0,
  vfnum: 0,
  external: true,
  hwAddr: '0a:58:0a:f4:01:05',
};

t.test('a hand-made BlueField pcivf port message decodes (function hw_addr in its nest)', { skip: !HOST_LE && 'little-endian fixture' }, async (t) => {
  const msgs = parseMessages(hexFixture('bf2-pf0vf0-port.hex'));
  t.equal(msgs.length, 1);
  t.same(decodePort(msgs[0]!, FAMILY), BF2_VF0);
  t.equal(decodePort(msgs[0]!, FAMILY + 1), undefined, 'another family');
  // The same port as the hand-made `devlink -j port show` of a BlueField-2 describes it.
  const json = parseDevlinkPortsJson(readFileSync(new URL('../hw/testdata/devlink-port-show-bf2.json', import.meta.url), 'utf8'));
  const { type: _type, ...fromNetlink } = asIproute2Prints(BF2_VF0);
  const { type: _t2, ...fromJson } = json.find((p) => p.netdev === 'pf0vf0')!;
  t.same(fromNetlink, fromJson);
  t.same(encodePortMessage(1, FAMILY, BF2_VF0, 0x2).length, msgs[0]!.hdr.len - 16, 'ours omits the two undecoded attributes (2 × 8 B)');
});

t.test('requests: family lookup, port dump/get, function set (bytes as iproute2 sends them)', { skip: !HOST_LE && 'little-endian bytes' }, async (t) => {
  const fam = encodeGetFamily(9, 'devlink');
  t.equal(
    fam.toString('hex'),
    // nlmsghdr len 32, GENL_ID_CTRL, REQUEST|ACK, seq 9 | CTRL_CMD_GETFAMILY v2 | CTRL_ATTR_FAMILY_NAME "devlink\0"
    '20000000' + '1000' + '0500' + '09000000' + '00000000' + '03020000' + '0c000200' + '6465766c696e6b00',
  );
  const dump = parseMessages(encodePortDump(3, FAMILY))[0]!;
  t.same([dump.hdr.type, dump.hdr.flags, dump.body.toString('hex')], [FAMILY, 0x301, '05010000'], 'PORT_GET, REQUEST|DUMP, no attributes');

  const get = parseMessages(encodePortGet(4, FAMILY, parseHandle('pci/0000:03:00.0/4097')))[0]!;
  t.equal(get.hdr.flags, 0x5, 'REQUEST|ACK');
  const ga = parseAttrs(get.body, 4);
  t.same(ga.map((a) => a.type), [1, 2, 3]);
  t.same([getString(ga[0]!), getString(ga[1]!), getU32(ga[2]!)], ['pci', '0000:03:00.0', 4097]);

  const set = encodePortSetHwAddr(5, FAMILY, parseHandle('pci/0000:03:00.0/4098'), '0A-58-0A-F4-01-09');
  const sm = parseMessages(set)[0]!;
  t.same([sm.hdr.type, sm.hdr.flags, sm.body[0], sm.body[1]], [FAMILY, 0x5, 6, 1], 'PORT_SET v1, ACKed');
  const sa = parseAttrs(sm.body, 4);
  t.same(sa.map((a) => a.type), [1, 2, 3, DEVLINK_ATTR_PORT_FUNCTION]);
  t.equal(sa[3]!.flags, NLA_F_NESTED, 'the nest is flagged, as libmnl does');
  const fn = parseNested(sa[3]!);
  t.same(fn.map((a) => [a.type, Buffer.from(getBytes(a)).toString('hex')]), [[1, '0a580af40109']]);
  t.equal(set.subarray(-16).toString('hex'), '1000' + '9180' + '0a00' + '0100' + '0a580af40109' + '0000', 'nest bytes');
});

t.test('handles', async (t) => {
  t.same(parseHandle('pci/0000:03:00.0/4097'), { bus: 'pci', dev: '0000:03:00.0', index: 4097 });
  t.same(parseHandle('auxiliary/mlx5_core.sf.2/98304'), { bus: 'auxiliary', dev: 'mlx5_core.sf.2', index: 98304 });
  t.equal(formatHandle(parseHandle('netdevsim/netdevsim1/0')), 'netdevsim/netdevsim1/0');
  for (const bad of ['pci/0000:03:00.0', 'pf0vf0', 'pci/0000:03:00.0/x', 'pci/0000:03:00.0/4294967296']) {
    t.throws(() => parseHandle(bad), { code: 'DPU_ERR_NETLINK_MALFORMED' }, bad);
  }
  t.throws(() => encodePortSetHwAddr(1, FAMILY, parseHandle('pci/a/1'), '0a:58:zz:00:00:01'), { code: 'DPU_ERR_NETLINK_MALFORMED' });
});

t.test('nlctrl NEWFAMILY reply decodes; others do not', async (t) => {
  const w = new AttrWriter(64).raw(Buffer.from([1, 2, 0, 0])); // CTRL_CMD_NEWFAMILY v2
  w.string(2, 'devlink').u16(1, 27).u32(3, 1).u32(4, 0).u32(5, 200);
  w.nest(6, (n) => n.nest(1, (o) => o.u32(1, 5).u32(2, 0x0a))); // CTRL_ATTR_OPS: skipped
  const m = parseMessages(encodeMessage({ type: GENL_ID_CTRL, flags: 0, seq: 1 }, w.toBuffer()))[0]!;
  t.same(decodeFamily(m), { id: 27, name: 'devlink', version: 1 });
  t.equal(decodeFamily({ ...m, hdr: { ...m.hdr, type: 27 } }), undefined, 'not nlctrl');
  const noId = new AttrWriter().raw(Buffer.from([1, 2, 0, 0])).string(2, 'devlink');
  t.equal(decodeFamily({ hdr: m.hdr, body: noId.toBuffer() }), undefined, 'no family id');
});

t.test('port messages: what is not a port, malformed ones', async (t) => {
  const msg = (body: Buffer) => ({ hdr: { len: 16 + body.length, type: FAMILY, flags: 0, seq: 1, pid: 0 }, body });
  const del = parseMessages(encodePortMessage(1, FAMILY, BF2_VF0))[0]!;
  del.body[0] = DEVLINK_CMD_PORT_DEL;
  t.equal(decodePort(del, FAMILY), undefined, 'PORT_DEL notification');
  t.equal(decodePort(msg(Buffer.alloc(2)), FAMILY), undefined, 'short genl header');
  const head = Buffer.from([7, 1, 0, 0]);
  t.throws(() => decodePort(msg(Buffer.concat([head, Buffer.from([0x20, 0, 1, 0, 0, 0, 0, 0])])), FAMILY), { code: 'DPU_ERR_NETLINK_MALFORMED' }, 'overrun');
  const noIndex = new AttrWriter().raw(head).string(1, 'pci').string(2, 'x').toBuffer();
  t.throws(() => decodePort(msg(noIndex), FAMILY), { message: /without bus name, dev name or port index/ });
  const shortIndex = new AttrWriter().raw(head).string(1, 'pci').string(2, 'x').u16(3, 1).toBuffer();
  t.throws(() => decodePort(msg(shortIndex), FAMILY), { message: /port index has 2 B, need 4/ });
  const fnOverrun = new AttrWriter().raw(head).string(1, 'pci').string(2, 'x').u32(3, 1).bytes(DEVLINK_ATTR_PORT_FUNCTION, Buffer.from([0x10, 0, 1, 0])).toBuffer();
  t.throws(() => decodePort(msg(fnOverrun), FAMILY), { code: 'DPU_ERR_NETLINK_MALFORMED' }, 'overrun inside the function nest');
  const future = new AttrWriter().raw(head).string(1, 'pci').string(2, 'x').u32(3, 1).u16(77, 42).u16(4, 9).u32(999, 7).toBuffer();
  t.match(decodePort(msg(future), FAMILY), { flavour: 'flavour42', type: 'type9' }, 'newer flavours/types and attributes pass');
});

const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const name = fc.stringMatching(/^[a-z0-9][a-z0-9:._-]{0,30}$/);
const portArb: fc.Arbitrary<DevlinkPort> = fc
  .record(
    {
      bus: fc.stringMatching(/^[a-z0-9]{1,12}$/),
      dev: name,
      index: u32,
      type: fc.constantFrom(...PORT_TYPES),
      flavour: fc.constantFrom(...PORT_FLAVOURS, 'flavour9'),
      netdev: fc.stringMatching(/^[a-z0-9]{1,15}$/),
      ifindex: u32,
      number: u32,
      controller: u32,
      pfnum: u16,
      vfnum: u16,
      sfnum: u32,
      external: fc.boolean(),
      hwAddr: fc.uint8Array({ minLength: 1, maxLength: 20 }).map((b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':')),
    },
    { requiredKeys: ['bus', 'dev', 'index'] },
  )
  .map((p) => ({ ...p, handle: formatHandle(p) }));

t.test('round trip: any port, encoded as the kernel does, decodes to itself', async (t) => {
  fc.assert(
    fc.property(portArb, fc.integer({ min: 0x10, max: 0xffff }), (p, family) => {
      const [m, ...rest] = parseMessages(encodePortMessage(1, family, p, 0x2));
      t.equal(rest.length, 0);
      t.same(decodePort(m!, family), p);
    }),
    { numRuns: 300 },
  );
});

t.test('round trip: handles, and the set request carries exactly the port and address', async (t) => {
  fc.assert(
    fc.property(portArb, fc.uint8Array({ minLength: 6, maxLength: 6 }), (p, mac) => {
      t.same(parseHandle(p.handle), { bus: p.bus, dev: p.dev, index: p.index });
      const text = [...mac].map((x) => x.toString(16).padStart(2, '0')).join(':');
      const m = parseMessages(encodePortSetHwAddr(2, 30, p, text))[0]!;
      const a = parseAttrs(m.body, 4);
      t.same([getString(a[0]!), getString(a[1]!), getU32(a[2]!)], [p.bus, p.dev, p.index]);
      t.same(Buffer.from(getBytes(parseNested(a[3]!)[0]!)), Buffer.from(mac));
    }),
    { numRuns: 200 },
  );
});
