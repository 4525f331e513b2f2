import t from 'tap';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { decodeDatagram } from '../netlink/subscriber.ts';
import { RTM_DELLINK, RTM_NEWLINK } from './link-msg.ts';
import { linkEvent } from './link-watch.ts';

const parseLinkEvents = (buf: Buffer) => decodeDatagram(buf, linkEvent);

function linkMsg(type: number, ifindex: number, name: string, flags = 0): Buffer {
  const nameBuf = Buffer.from(`${name}\0`);
  const attrLen = 4 + nameBuf.length;
  const len = 16 + 16 + ((attrLen + 3) & ~3);
  const b = Buffer.alloc(len);
  b.writeUInt32LE(len, 0);
  b.writeUInt16LE(type, 4);
  b.writeInt32LE(ifindex, 16 + 4);
  b.writeUInt32LE(flags, 16 + 8);
  b.writeUInt16LE(attrLen, 32);
  b.writeUInt16LE(3, 34);
  nameBuf.copy(b, 36);
  return b;
}

t.test('parses RTM_NEWLINK/RTM_DELLINK, ignores other messages', async (t) => {
  const noise = Buffer.alloc(20);
  noise.writeUInt32LE(20, 0);
  noise.writeUInt16LE(20, 4); // RTM_NEWADDR
  const events = parseLinkEvents(Buffer.concat([linkMsg(RTM_NEWLINK, 7, 'pf0vf3'), noise, linkMsg(RTM_DELLINK, 7, 'pf0vf3')]));
  t.same(events.map((e) => [e.kind, e.ifindex, e.name]), [['new', 7, 'pf0vf3'], ['del', 7, 'pf0vf3']]);
  t.same(parseLinkEvents(Buffer.concat([linkMsg(RTM_NEWLINK, 7, 'pf0vf3', 0x1043), linkMsg(RTM_NEWLINK, 7, 'pf0vf3', 0x1002)])).map((e) => e.adminUp), [true, false], 'IFF_UP from ifi_flags');
  const overrun = Buffer.alloc(16);
  overrun.writeUInt32LE(255, 0); // claims more than the datagram holds
  t.throws(() => parseLinkEvents(overrun), { code: 'DPU_ERR_NETLINK_MALFORMED' }, 'a truncated datagram is an error, not a crash');
});

t.test('sees veth pairs appear and vanish in a netns (real kernel notifications)', async (t) => {
  const ns = `lw${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  t.teardown(() => execFileSync('ip', ['netns', 'del', ns]));
  // The watcher must live in that netns: run it in a child process there.
  const child = execFileSync(
    'ip',
    ['netns', 'exec', ns, process.execPath, '--import', 'tsx', '-e', `
      const { LinkWatch } = await import(${JSON.stringify(new URL('./link-watch.ts', import.meta.url).pathname)});
      const { silentLogger } = await import(${JSON.stringify(new URL('../log.ts', import.meta.url).pathname)});
      const { execFileSync } = await import('node:child_process');
      const w = new LinkWatch(silentLogger());
      const seen = [];
      w.on('link', (e) => seen.push(e.kind + ':' + e.name));
      w.start();
      execFileSync('ip', ['link', 'add', 'pf0vf9', 'type', 'veth', 'peer', 'name', 'vf9']);
      execFileSync('ip', ['link', 'del', 'pf0vf9']);
      for (let i = 0; i < 50 && !seen.includes('del:pf0vf9'); i++) await new Promise((r) => setTimeout(r, 20));
      w.stop();
      process.stdout.write(JSON.stringify(seen));
    `],
    { encoding: 'utf8', timeout: 30_000 },
  );
  const seen = JSON.parse(child) as string[];
  t.ok(seen.includes('new:pf0vf9'), 'RTM_NEWLINK seen');
  t.ok(seen.includes('del:pf0vf9'), 'RTM_DELLINK seen');
});
