// Decodes whatever real-kernel dumps the kernel lane recorded (testdata/kernel-*.bin,
// recorded by scripts/kernel-fixtures from test/kernel/tc-flower.ts and ovs-offload.ts) and, where the lane
// also saved `tc -s -j filter show` output (kernel-*.tc.json), checks that our
// decode agrees with iproute2's. With no recordings yet, this says so and passes.
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decodeFilterMessage, encodeFilterMessage, isFlower, type FlowerFilter } from './filter.ts';
import { parseMessages, NLMSG_DONE } from '../netlink/nl.ts';
import { RTM_NEWTFILTER } from './tcmsg.ts';
import { compareWithTcJson } from './testdata/tcjson.ts';

const dir = fileURLToPath(new URL('./testdata/', import.meta.url));
const bins = readdirSync(dir).filter((f) => /^kernel-.*\.bin$/.test(f));

t.test('recorded kernel dumps', async (t) => {
  if (bins.length === 0) {
    t.pass('no kernel-*.bin recorded yet (scripts/kernel-fixtures records them in the kernel lane)');
    return;
  }
  for (const name of bins) {
    t.test(name, async (t) => {
      const msgs = parseMessages(readFileSync(dir + name));
      const filters: FlowerFilter[] = [];
      for (const m of msgs) {
        if (m.hdr.type !== RTM_NEWTFILTER) continue;
        const f = decodeFilterMessage(m);
        if (isFlower(f) && f.handle !== 0) filters.push(f);
        // Our encoder reproduces a decoded kernel message's meaning.
        t.same(decodeFilterMessage(parseMessages(encodeFilterMessage(f, { flags: m.hdr.flags, seq: m.hdr.seq }))[0]!), f);
      }
      t.ok(filters.length > 0, `${filters.length} flower filters decoded`);
      t.notOk(msgs.some((m) => m.hdr.type === NLMSG_DONE), 'recording holds the parts only');
      const json = dir + name.replace(/\.bin$/, '.tc.json');
      if (existsSync(json)) {
        const cmp = compareWithTcJson(filters, JSON.parse(readFileSync(json, 'utf8')));
        for (const w of cmp.warnings) t.comment(`warn ${w}`);
        t.same(cmp.errors, [], 'agrees with tc -s -j filter show');
      }
    });
  }
});
