// Offline check of the dumps test/kernel/ovn-offload.ts recorded in the kernel lane
// (dpu-agent/src/tc/testdata/kernel-ovn-<chassis>-*: the raw RTM_NEWTFILTER dump of each
// device, `tc -s -j filter show` of the same filters, `ip -j link show` and OVS's
// `dpctl/dump-flows -m type=tc|ovs`; recorded with scripts/kernel-fixtures). OVN's real
// flows on the kernel datapath: Geneve encap (tunnel_key set with OVN's option) and decap
// (enc_opts + masks), ct_state/ct_mark matches, mirred, gact drop, counters.
// 1. our decode equals tc's JSON field by field (test/helpers/tc-json-strict.ts);
// 2. every flow OVS lists as type=tc is one of the recorded filters (UFID = action cookie),
//    on the device of its in_port;
// 3. every type=ovs flow has a known reason to stay out of TC (test/helpers/dpctl.ts).
// (dpu-agent/src/tc/kernel-fixtures.test.ts also decodes these .bin files and re-encodes them.)
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseMessages } from '../../dpu-agent/src/netlink/nl.ts';
import { ufidsFromDumpFlows } from '../../dpu-agent/src/offload/ovs-view.ts';
import { decodeFilterMessage, isFlower, RTM_NEWTFILTER, type FlowerFilter } from '../../dpu-agent/src/tc/index.ts';
import { dpctlPerPort, explainKernelOnly } from '../helpers/dpctl.ts';
import { strictCompare } from '../helpers/tc-json-strict.ts';

const dir = fileURLToPath(new URL('../../dpu-agent/src/tc/testdata/', import.meta.url));
const chassis = [...new Set(readdirSync(dir).flatMap((f) => /^kernel-ovn-(ch\d+)-dpctl\.txt$/.exec(f)?.[1] ?? []))];

function section(text: string, title: string): string {
  const start = text.indexOf(`# ${title}\n`);
  if (start < 0) return '';
  const rest = text.slice(start + title.length + 3);
  const end = rest.indexOf('\n# ');
  return end < 0 ? rest : rest.slice(0, end + 1);
}

t.test('OVN kernel-datapath dumps recorded in the lane', async (t) => {
  if (chassis.length === 0) {
    t.pass('no kernel-ovn-* recordings (scripts/kernel-fixtures records them)');
    return;
  }
  for (const ch of chassis) {
    t.test(ch, async (t) => {
      const links = JSON.parse(readFileSync(`${dir}kernel-ovn-${ch}-links.json`, 'utf8')) as Array<{ ifindex: number; ifname: string }>;
      const ifname = new Map(links.map((l) => [l.ifindex, l.ifname]));
      const dpctl = readFileSync(`${dir}kernel-ovn-${ch}-dpctl.txt`, 'utf8');
      const tcText = section(dpctl, 'dpctl/dump-flows -m type=tc');
      const byDevice = new Map<string, FlowerFilter[]>();
      for (const bin of readdirSync(dir).filter((f) => f.startsWith(`kernel-ovn-${ch}-`) && f.endsWith('.bin'))) {
        const dev = bin.slice(`kernel-ovn-${ch}-`.length, -'.bin'.length);
        const filters: FlowerFilter[] = [];
        for (const m of parseMessages(readFileSync(dir + bin))) {
          if (m.hdr.type !== RTM_NEWTFILTER) continue;
          const f = decodeFilterMessage(m);
          if (isFlower(f) && f.handle !== 0) filters.push(f);
        }
        byDevice.set(dev, filters);
        const json = dir + bin.replace(/\.bin$/, '.tc.json');
        if (!existsSync(json)) continue;
        const cmp = strictCompare(filters, JSON.parse(readFileSync(json, 'utf8')), ifname);
        t.same(cmp.errors, [], `${dev}: ${filters.length} filters, ${cmp.fields} fields equal to tc -s -j`);
      }
      const all = [...byDevice.values()].flat();
      const cookies = new Set(all.flatMap((f) => f.actions.flatMap((a) => (a.cookie ? [a.cookie] : []))));
      const ufids = ufidsFromDumpFlows(tcText);
      t.ok(ufids.size > 0, `${ufids.size} flows in TC`);
      t.same([...ufids].filter((u) => !cookies.has(u)), [], 'every type=tc flow is a recorded filter (UFID = cookie)');
      for (const [port, want] of dpctlPerPort(tcText, section(dpctl, 'dpctl/show'))) {
        t.equal(byDevice.get(port)?.length, want.flows, `${port}: filters on its ingress = dpctl flows with in_port(${port})`);
      }
      const geneve = all.filter((f) => f.key.encOpts?.geneve?.some((g) => g.class === 0x0102) || f.actions.some((a) => a.params?.kind === 'tunnel_key' && a.params.encOpts?.geneve?.some((g) => g.class === 0x0102)));
      t.ok(geneve.length > 0, `${geneve.length} filters carry OVN's Geneve option (class 0x0102)`);
      t.same(explainKernelOnly(section(dpctl, 'dpctl/dump-flows -m type=ovs')).other, [], 'every type=ovs flow has a known reason to stay out of TC');
    });
  }
});
