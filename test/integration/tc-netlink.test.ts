// Our tc library against this machine's real kernel, in a throwaway netns:
// clsact add/del (idempotent), RTM_GETQDISC and RTM_GETTFILTER dumps (multi-part
// until NLMSG_DONE), filter get/delete, and error + extack decoding (adding a
// flower filter fails here: no cls_flower). Flower itself is tested by the
// kernel lane (test/kernel/tc-flower.ts).
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = process.getuid?.() === 0;
const hasIp = spawnSync('ip', ['-V']).status === 0 && spawnSync('tc', ['-V']).status === 0;
const ns = `dpu-tcnl-${process.pid}`;
const child = fileURLToPath(new URL('./tc-netlink.child.ts', import.meta.url));

t.test('tc over rtnetlink in a netns', { skip: (!root || !hasIp) && 'needs root and iproute2' }, async (t) => {
  execFileSync('ip', ['netns', 'add', ns]);
  t.teardown(() => void spawnSync('ip', ['netns', 'del', ns]));
  execFileSync('ip', ['-n', ns, 'link', 'add', 'tca', 'type', 'veth', 'peer', 'name', 'tcb']);
  execFileSync('ip', ['-n', ns, 'link', 'set', 'tca', 'up']);
  const run = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', child, 'tca'], { encoding: 'utf8', timeout: 60_000 });
  t.equal(run.status, 0, `child exit (stderr: ${run.stderr.slice(0, 2000)})`);
  const r = JSON.parse(run.stdout) as Record<string, any>;

  t.equal(r.extAck, true, 'NETLINK_EXT_ACK set through koffi on the netlink package socket');
  t.same(r.ensure1, { created: true, kind: 'clsact' });
  t.same(r.ensure2, { created: false, kind: 'clsact' }, 'EEXIST on a clsact is success');
  t.ok(r.qdiscs.some((q: any) => q.kind === 'clsact' && q.handle === 0xffff0000 && q.parent === 0xfffffff1), 'clsact ffff: parent ffff:fff1');
  t.equal(r.qdiscs.length, r.cliQdiscs.length, 'same qdiscs as tc -j qdisc show');

  if (r.flowerAdd === 'ok') {
    t.pass('this kernel has cls_flower');
  } else {
    t.match(r.flowerAdd, { code: 'DPU_ERR_TC', errno: 2, errnoName: 'ENOENT', extack: 'TC classifier not found', op: 'filter add' }, 'typed error with errno and extack');
  }

  // Our dump vs iproute2's: same filters (tc -j also prints the per-prio heads and
  // the u32 hash-table nodes; we drop the handle-0 heads only).
  // u32 prints its handle as htid:hash:node (12:8:12 bits, f_u32.c print_u32).
  const u32Handle = (fh: string): number => {
    const [htid = '0', hash = '0', node = '0'] = fh.split(':');
    return ((parseInt(htid || '0', 16) << 20) | (parseInt(hash || '0', 16) << 12) | parseInt(node || '0', 16)) >>> 0;
  };
  const cli = (r.cliFilters as any[]).filter((f) => f.options?.fh !== undefined);
  t.same(
    new Set(r.dump.map((f: any) => `${f.chain}/${f.prio}/${f.handle}`)),
    new Set(cli.map((f) => `${f.chain}/${f.pref}/${u32Handle(f.options.fh)}`)),
    'same (chain, prio, handle) set as tc -j filter show',
  );
  for (const f of r.dump) {
    t.equal(f.kind, 'u32');
    t.equal(f.parent, 0xfffffff2);
  }
  t.same(new Set(r.dump.map((f: any) => `${f.prio}/${f.protocol.toString(16)}/${f.chain}`)), new Set(['1/800/0', '3/86dd/0', '7/3/5']));
  t.ok(r.dumpChain5.length > 0 && r.dumpChain5.every((f: any) => f.prio === 7 && f.chain === 5), 'TCA_CHAIN picks one chain');
  t.equal(r.dumpChain5.length, (r.cliFiltersChain5 as any[]).filter((f) => f.options?.fh !== undefined).length);
  t.equal(r.flowerOnly, 0, 'dumpFilters keeps flower only');
  t.same(r.scan, r.dump, 'scanFilters (the partial view) sees the same filters as the full decode');

  t.equal(r.get, 'u32', 'get by handle');
  t.equal(r.del1, true, 'delete');
  t.equal(r.del2, false, 'delete twice is idempotent (ENOENT)');
  t.equal(r.getAfter, null, 'get after delete: absent');
  t.equal(r.delMissingChain, false, 'delete in a chain that does not exist (EINVAL) is absent, not an error');
  t.equal(r.qdel1, true);
  t.equal(r.qdel2, false, 'qdisc delete twice is idempotent');
});
