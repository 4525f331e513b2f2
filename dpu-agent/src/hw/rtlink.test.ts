import t from 'tap';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { AttrWriter, encodeMessage, parseMessages } from '../netlink/nl.ts';
import { decodeLink, encodeGetLink, encodeLinkDump, encodeSetLinkAddress, encodeSetLinkUp } from './rtlink.ts';

t.test('RTM_NEWLINK by name, IFF_UP in flags and change', async (t) => {
  const m = encodeSetLinkUp(7, 'pf0vf3', true);
  t.equal(m.readUInt32LE(0), m.length);
  t.equal(m.readUInt16LE(4), 16, 'RTM_NEWLINK');
  t.equal(m.readUInt16LE(6), 0x5, 'REQUEST|ACK, no CREATE');
  t.equal(m.readUInt32LE(8), 7, 'seq');
  t.equal(m.readInt32LE(16 + 4), 0, 'ifindex 0: by name');
  t.equal(m.readUInt32LE(16 + 8), 1, 'flags IFF_UP');
  t.equal(m.readUInt32LE(16 + 12), 1, 'change IFF_UP only');
  t.equal(m.subarray(36, 42).toString(), 'pf0vf3');
  t.equal(encodeSetLinkUp(1, 'x', false).readUInt32LE(16 + 8), 0, 'down clears IFF_UP');
});

t.test('RTM_NEWLINK decode: the five attributes we use, others skipped; requests', async (t) => {
  const w = new AttrWriter(256);
  const hdr = Buffer.alloc(16);
  hdr.writeInt32LE(7, 4);
  hdr.writeUInt32LE(0x1 | 0x10000, 8); // IFF_UP | IFF_LOWER_UP
  w.raw(hdr);
  w.u32(4, 1500); // IFLA_MTU
  w.string(3, 'pf0vf3');
  w.bytes(1, Buffer.from('0a580a000001', 'hex'));
  w.nest(18, (n) => n.string(1, 'veth')); // IFLA_LINKINFO
  w.u8(16, 2); // IFLA_OPERSTATE: LOWERLAYERDOWN
  w.u32(5, 22); // IFLA_LINK
  w.u32(37, 0); // IFLA_LINK_NETNSID
  const m = { hdr: { len: 0, type: 16, flags: 0, seq: 1, pid: 0 }, body: w.toBuffer() };
  t.same(decodeLink(m), { ifindex: 7, name: 'pf0vf3', mac: '0a:58:0a:00:00:01', up: true, operUp: true, link: 22, linkNetnsid: 0 });
  t.equal(decodeLink({ ...m, hdr: { ...m.hdr, type: 20 } }), undefined, 'not a link message');
  const own = new AttrWriter(64).raw(hdr).string(3, 'lo').u32(5, 7);
  t.same(decodeLink({ ...m, body: own.toBuffer() }), { ifindex: 7, name: 'lo', up: true, operUp: true }, 'IFLA_LINK naming itself is no peer');
  const bad = Buffer.concat([hdr, Buffer.from([0x40, 0, 3, 0])]);
  t.throws(() => decodeLink({ ...m, body: bad }), { code: 'DPU_ERR_NETLINK_MALFORMED' });
  // Requests: a set of the MAC never carries IFLA_TARGET_NETNSID unless asked (it would move the link).
  const set = parseMessages(encodeSetLinkAddress(3, 22, '0a:58:0a:00:00:01'))[0]!;
  t.equal(set.hdr.type, 19, 'RTM_SETLINK');
  t.equal(set.body.readInt32LE(4), 22);
  t.equal(set.body.length, 16 + 12, 'ifinfomsg + IFLA_ADDRESS only');
  const get = parseMessages(encodeGetLink(4, { ifindex: 22, nsid: 5 }))[0]!;
  t.equal(get.hdr.flags, 0x5, 'REQUEST|ACK');
  t.ok(get.body.subarray(16).includes(Buffer.from([8, 0, 46, 0, 5, 0, 0, 0])), 'IFLA_TARGET_NETNSID 5');
  t.equal(parseMessages(encodeLinkDump(5))[0]!.hdr.flags, 0x301, 'REQUEST|DUMP');
  t.ok(encodeMessage({ type: 1, flags: 0, seq: 0 }, Buffer.alloc(0)).length === 16);
});

t.test('sets a real link down and up in a netns, and names a missing one', async (t) => {
  const ns = `rl${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  t.teardown(() => execFileSync('ip', ['netns', 'del', ns]));
  execFileSync('ip', ['-n', ns, 'link', 'add', 'pf0vf1', 'type', 'veth', 'peer', 'name', 'vf1']);
  const here = (f: string): string => JSON.stringify(new URL(f, import.meta.url).pathname);
  const out = execFileSync(
    'ip',
    ['netns', 'exec', ns, process.execPath, '--import', 'tsx', '-e', `
      const { RtLinkQuarantine } = await import(${here('./rtlink.ts')});
      const { RtNetlink } = await import(${here('../netlink/socket.ts')});
      const { execFileSync } = await import('node:child_process');
      const nl = new RtNetlink();
      const q = new RtLinkQuarantine(nl);
      const up = () => JSON.parse(execFileSync('ip', ['-j', 'link', 'show', 'dev', 'pf0vf1'], { encoding: 'utf8' }))[0].flags.includes('UP');
      const seen = [];
      await q.lift('pf0vf1'); seen.push(up());
      await q.apply('pf0vf1'); seen.push(up());
      let err = '';
      try { await q.apply('nosuchdev'); } catch (e) { err = e.code + ' ' + e.message; }
      nl.close();
      process.stdout.write(JSON.stringify({ seen, err }));
    `],
    { encoding: 'utf8', timeout: 30_000 },
  );
  const r = JSON.parse(out) as { seen: boolean[]; err: string };
  t.same(r.seen, [true, false], 'up, then down');
  t.match(r.err, /^DPU_ERR_HW set nosuchdev down: .*(ENODEV|No such device)/);
});

t.test('links, MACs, nsids and address flush against a real netns', async (t) => {
  const tag = `rl${randomBytes(3).toString('hex')}`;
  const [dpu, host] = [`${tag}-d`, `${tag}-h`];
  for (const ns of [dpu, host]) execFileSync('ip', ['netns', 'add', ns]);
  t.teardown(() => {
    for (const ns of [dpu, host]) execFileSync('ip', ['netns', 'del', ns]);
  });
  execFileSync('ip', ['-n', dpu, 'link', 'add', 'pf0vf1', 'type', 'veth', 'peer', 'name', 'vf1', 'netns', host]);
  execFileSync('ip', ['-n', dpu, 'link', 'set', 'pf0vf1', 'up']);
  for (const a of ['192.0.2.1/24', '192.0.2.2/24', '2001:db8::1/64']) execFileSync('ip', ['-n', dpu, 'addr', 'add', a, 'dev', 'pf0vf1']);
  execFileSync('ip', ['-n', dpu, 'link', 'add', 'other', 'type', 'veth', 'peer', 'name', 'other2']);
  execFileSync('ip', ['-n', dpu, 'addr', 'add', '198.51.100.1/24', 'dev', 'other']);
  const { openRtNetlinkIn } = await import('./netns.ts');
  const { RtLinks } = await import('./rtlink.ts');
  const nl = openRtNetlinkIn(dpu);
  t.teardown(() => nl.close());
  const links = new RtLinks(nl);
  const rep = await links.get({ name: 'pf0vf1' });
  t.match(rep, { name: 'pf0vf1', up: true, linkNetnsid: Number });
  t.equal(await links.get({ name: 'nosuch' }), undefined, 'ENODEV → undefined');
  t.equal(await links.nsidOfNetns(host), rep!.linkNetnsid, 'RTM_GETNSID on the host netns fd gives the representor peer nsid');
  const vf = await links.get({ ifindex: rep!.link!, nsid: rep!.linkNetnsid! });
  t.equal(vf?.name, 'vf1', 'read across netns by IFLA_TARGET_NETNSID');
  t.ok((await links.dump(rep!.linkNetnsid)).some((l) => l.name === 'vf1'), 'dump of the other netns');
  // Writes go through a socket inside the netns.
  const hnl = openRtNetlinkIn(host);
  t.teardown(() => hnl.close());
  await new RtLinks(hnl).setAddress(rep!.link!, '0a:58:00:00:00:01');
  t.equal((await links.get({ ifindex: rep!.link!, nsid: rep!.linkNetnsid! }))?.mac, '0a:58:00:00:00:01');
  t.equal((await links.dump()).filter((l) => l.name === 'pf0vf1').length, 1, 'the representor stayed where it was');
  const ifx = rep!.ifindex;
  t.equal((await links.addresses(ifx)).length >= 3, true, 'its addresses (+ IPv6 link-local)');
  const n = await links.flushAddresses(ifx);
  t.ok(n >= 2, `deleted ${n} (a secondary IPv4 goes with its primary)`);
  t.same(await links.addresses(ifx), [], 'none left on pf0vf1');
  t.equal((await links.addresses()).filter((a) => a.family === 2).length, 1, 'the other link keeps its address');
  t.equal(await links.flushAddresses(ifx), 0, 'flush of nothing');
});
