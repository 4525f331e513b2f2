import t from 'tap';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { encodeSetLinkUp } from './rtlink.ts';

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
      const { RtNetlink } = await import(${here('../tc/socket.ts')});
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
