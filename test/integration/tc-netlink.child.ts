// Runs inside a netns (spawned by tc-netlink.test.ts): exercises our tc library
// against this machine's kernel and prints one JSON report on stdout. This kernel
// has clsact/ingress and cls_u32 but no cls_flower and no act_* modules, so the
// flower add is expected to fail with the kernel's ENOENT + extack.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { TcError } from '../../dpu-agent/src/errors.ts';
import { ETH_P_IP, TC_PARENT_INGRESS, Tc, dropAction } from '../../dpu-agent/src/tc/index.ts';

const dev = process.argv[2] ?? 'tca';
const ifindex = Number(readFileSync(`/sys/class/net/${dev}/ifindex`, 'utf8'));
const tcj = (...args: string[]): unknown => JSON.parse(execFileSync('tc', ['-j', ...args], { encoding: 'utf8' }) || '[]');

async function main(): Promise<Record<string, unknown>> {
  const r: Record<string, unknown> = {};
  const tc = new Tc({ timeoutMs: 3000 });
  try {
    r['extAck'] = tc.nl.extAck;
    r['ensure1'] = await tc.ensureClsact(ifindex);
    r['ensure2'] = await tc.ensureClsact(ifindex);
    r['qdiscs'] = await tc.dumpQdiscs(ifindex);
    r['cliQdiscs'] = tcj('qdisc', 'show', 'dev', dev);
    try {
      await tc.addFilter({
        kind: 'flower', ifindex, parent: TC_PARENT_INGRESS, prio: 2, protocol: ETH_P_IP, handle: 0,
        key: { ethType: ETH_P_IP, ipProto: 6, tcpDst: 80 }, flags: { skipHw: true }, actions: [dropAction()],
      });
      r['flowerAdd'] = 'ok';
    } catch (err) {
      r['flowerAdd'] = err instanceof TcError ? { code: err.code, errno: err.errno, errnoName: err.errnoName, extack: err.extack, op: err.op } : String(err);
    }
    // u32 filters made by iproute2, dumped by us.
    for (const args of [
      ['prio', '1', 'protocol', 'ip', 'u32', 'match', 'u32', '0', '0'],
      ['prio', '3', 'protocol', 'ipv6', 'u32', 'match', 'u32', '0', '0', 'classid', '1:2'],
      ['chain', '5', 'prio', '7', 'protocol', 'all', 'u32', 'match', 'u32', '0', '0'],
    ]) execFileSync('tc', ['filter', 'add', 'dev', dev, 'ingress', ...args]);
    const all = await tc.dumpAnyFilters(ifindex, TC_PARENT_INGRESS);
    r['dump'] = all.map((f) => ({ kind: f.kind, prio: f.prio, protocol: f.protocol, handle: f.handle, chain: f.chain ?? 0, ifindex: f.ifindex, parent: f.parent }));
    r['dumpChain5'] = (await tc.dumpAnyFilters(ifindex, TC_PARENT_INGRESS, { chain: 5 })).map((f) => ({ prio: f.prio, chain: f.chain }));
    r['flowerOnly'] = (await tc.dumpFilters(ifindex, TC_PARENT_INGRESS)).length;
    // The partial view (tc/view.ts) of the same hook: the same filters, where and what kind.
    const scan: unknown[] = [];
    await tc.scanFilters(ifindex, TC_PARENT_INGRESS, {}, (v) => scan.push({ kind: v.kind, prio: v.prio, protocol: v.protocol, handle: v.handle, chain: v.chain, ifindex: v.ifindex, parent: v.parent }));
    r['scan'] = scan;
    r['cliFilters'] = tcj('filter', 'show', 'dev', dev, 'ingress');
    r['cliFiltersChain5'] = tcj('filter', 'show', 'dev', dev, 'ingress', 'chain', '5');
    const leaf = all.find((f) => f.prio === 3 && (f.handle & 0xfff) !== 0);
    if (leaf) {
      const id = { ifindex, parent: TC_PARENT_INGRESS, prio: leaf.prio, protocol: leaf.protocol, handle: leaf.handle, chain: 0, kind: 'u32' };
      r['get'] = (await tc.getFilter(id))?.kind;
      r['del1'] = await tc.deleteFilter(id);
      r['del2'] = await tc.deleteFilter(id);
      r['getAfter'] = (await tc.getFilter(id)) ?? null;
    }
    r['delMissingChain'] = await tc.deleteFilter({ ifindex, parent: TC_PARENT_INGRESS, prio: 9, protocol: ETH_P_IP, handle: 1, chain: 77, kind: 'u32' });
    r['qdel1'] = await tc.deleteQdisc(ifindex);
    r['qdel2'] = await tc.deleteQdisc(ifindex);
    r['stray'] = tc.nl.strayMessages;
  } finally {
    tc.close();
  }
  return r;
}

main().then(
  (r) => process.stdout.write(JSON.stringify(r) + '\n'),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  },
);
