import t from 'tap';
import { ETH_P_ALL, TC_PARENT_INGRESS, isFlower } from '../tc/index.ts';
import type { Quarantine } from '../hw/quarantine.ts';
import { FakeTc } from '../../../test/helpers/fake-tc.ts';
import {
  QUARANTINE_COOKIE,
  QUARANTINE_HANDLE,
  QUARANTINE_PRIO,
  TcQuarantine,
  filterActions,
  isQuarantineFilter,
  quarantineFlower,
  quarantineMatchall,
} from './quarantine.ts';
import { memoryLogger } from '../../../test/helpers/memory-logger.ts';
import type { AddrInfo, RtLinks } from '../hw/rtlink.ts';
import type { Representor } from '../hw/types.ts';

const IFX: Record<string, number> = { pf0vf0: 10, pf0vf1: 11, pf0vf2: 12 };

/** Addresses over "rtnetlink": the same two calls as RtLinks, on an in-memory list. */
function fakeAddrs(steps: string[], list: AddrInfo[]): Pick<RtLinks, 'addresses' | 'flushAddresses'> {
  return {
    addresses: async (ifindex?: number) => {
      steps.push('addr dump');
      return list.filter((a) => ifindex === undefined || a.ifindex === ifindex);
    },
    flushAddresses: async (ifindex: number, known?: readonly AddrInfo[]) => {
      const mine = (known ?? list).filter((a) => a.ifindex === ifindex);
      if (!known) steps.push('addr dump');
      for (const a of mine) {
        steps.push(`addr del ${ifindex}`);
        list.splice(list.indexOf(a), 1);
      }
      return mine.length;
    },
  };
}
const addr = (ifindex: number): AddrInfo => ({ family: 2, prefixlen: 24, ifindex, body: Buffer.alloc(8) });

function setup(o: { kinds?: string[]; clsact?: boolean; policy?: 'none' | 'skip_sw' | 'skip_hw'; addrs?: AddrInfo[] } = {}) {
  const tc = new FakeTc({ ...(o.kinds ? { kinds: o.kinds } : {}), ...(o.clsact === false ? { clsact: false } : {}) });
  const steps: string[] = [];
  const origReplace = tc.replaceFilter.bind(tc);
  tc.replaceFilter = async (f) => {
    steps.push(`filter+ ${f.ifindex}`);
    return origReplace(f);
  };
  const origOther = tc.replaceOtherFilter.bind(tc);
  tc.replaceOtherFilter = async (f) => {
    steps.push(`filter+ ${f.ifindex}`);
    return origOther(f);
  };
  const origDel = tc.deleteFilter.bind(tc);
  tc.deleteFilter = async (id) => {
    steps.push(`filter- ${id.ifindex}`);
    return origDel(id);
  };
  const origDelPrio = tc.deleteFilterPrio.bind(tc);
  tc.deleteFilterPrio = async (id) => {
    steps.push(`filter- ${id.ifindex}`);
    return origDelPrio(id);
  };
  const link: Quarantine = {
    apply: async (r) => void steps.push(`down ${r}`),
    lift: async (r) => void steps.push(`up ${r}`),
  };
  const { logger, lines } = memoryLogger();
  const q = new TcQuarantine({
    tc,
    link,
    tcPolicy: o.policy ?? 'none',
    logger,
    ifindexOf: async (d) => {
      if (o.addrs) steps.push(`ifindex ${d}`); // the rtnetlink tests count lookups too
      return IFX[d];
    },
    ...(o.addrs ? { addrs: fakeAddrs(steps, o.addrs) } : {}),
    run: async (argv) => {
      steps.push(argv.join(' '));
      return { code: 0, stdout: '', stderr: '' };
    },
  });
  return { tc, q, steps, lines };
}

t.test('pure values: the flower and matchall drop filters carry our marks', async (t) => {
  const f = quarantineFlower(7, { skipSw: true });
  t.match(f, { kind: 'flower', ifindex: 7, parent: TC_PARENT_INGRESS, prio: QUARANTINE_PRIO, handle: QUARANTINE_HANDLE, protocol: ETH_P_ALL, key: {}, flags: { skipSw: true } });
  t.equal(f.actions[0]?.cookie, QUARANTINE_COOKIE);
  t.equal(Buffer.from(QUARANTINE_COOKIE, 'hex').toString(), 'dpu-agent-quar');
  t.ok(Buffer.from(QUARANTINE_COOKIE, 'hex').length < 16, 'shorter than a UFID and within TC_COOKIE_MAX_SIZE');
  t.ok(isQuarantineFilter(f));
  const m = quarantineMatchall(7, {});
  t.equal(m.kind, 'matchall');
  t.equal(filterActions(m)[0]?.cookie, QUARANTINE_COOKIE, 'matchall action nest decodes back');
  t.ok(isQuarantineFilter(m));
  t.notOk(isQuarantineFilter({ ...f, prio: 2 }), 'other prio: not ours');
  t.notOk(isQuarantineFilter({ ...f, actions: [{ ...f.actions[0]!, cookie: '00'.repeat(16) }] }), 'UFID cookie: not ours');
  t.notOk(isQuarantineFilter({ ...f, actions: [{ kind: 'gact', params: { kind: 'gact', control: 0 }, cookie: QUARANTINE_COOKIE }] }), 'pass verdict: not ours');
});

t.test('flower: apply installs the drop filter first, lift removes it last', async (t) => {
  const { tc, q, steps, lines } = setup();
  await q.apply('pf0vf0');
  t.equal(q.mode, 'flower');
  t.same(steps, ['filter+ 10', 'filter+ 10', 'down pf0vf0', 'ip addr flush dev pf0vf0'], 'probe add, install, then down and flush');
  const fs = tc.on(10);
  t.equal(fs.length, 1, 'one filter (replace is idempotent)');
  t.ok(isQuarantineFilter(fs[0]!));
  t.ok(isFlower(fs[0]!) && fs[0].flags?.notInHw, 'software on a device without hardware');
  t.same([...q.quarantined()], [['pf0vf0', 10]]);
  t.ok(lines.some((l) => l['msg']?.toString().includes('TC quarantine: flower')), 'says which mode');

  steps.length = 0;
  await q.apply('pf0vf0');
  t.equal(tc.on(10).length, 1, 'apply twice: still one filter');
  t.equal(steps[0], 'filter+ 10', 'filter first again');

  steps.length = 0;
  await q.lift('pf0vf0');
  t.same(steps, ['up pf0vf0', 'filter- 10'], 'link up, then the filter goes last');
  t.equal(tc.on(10).length, 0);
  t.same([...q.lifted()], ['pf0vf0']);
  t.equal(q.quarantined().size, 0);
  await q.lift('pf0vf0');
  t.pass('lift twice is fine');
});

t.test('no flower: matchall', async (t) => {
  const { tc, q, lines } = setup({ kinds: ['matchall', 'u32'] });
  await q.apply('pf0vf1');
  t.equal(q.mode, 'matchall');
  t.equal(tc.on(11)[0]?.kind, 'matchall');
  t.ok(isQuarantineFilter(tc.on(11)[0]!));
  const probe = lines.find((l) => String(l['msg']).includes('TC quarantine: matchall'));
  t.match(probe?.['fallbacks'], [/flower: ENOENT/]);
  await q.lift('pf0vf1');
  t.equal(tc.on(11).length, 0, 'whole prio deleted on lift');
});

t.test('neither flower nor matchall (this host): link-down only, said once', async (t) => {
  const { tc, q, steps, lines } = setup({ kinds: ['u32'] });
  await q.apply('pf0vf0');
  await q.apply('pf0vf1');
  t.equal(q.mode, 'link-only');
  t.equal(tc.on(10).length + tc.on(11).length, 0);
  t.ok(steps.includes('down pf0vf0') && steps.includes('down pf0vf1') && steps.includes('ip addr flush dev pf0vf1'));
  const warns = lines.filter((l) => String(l['msg']).includes('link-down only'));
  t.equal(warns.length, 1, 'one log line');
  t.match(warns[0]?.['reasons'], [/flower: ENOENT/, /matchall: ENOENT/]);
  await q.lift('pf0vf0');
  t.ok(steps.includes('up pf0vf0'));
  t.notOk(await q.reinstall('pf0vf1'), 'reinstall is a no-op without TC');
});

t.test('no clsact: link-only', async (t) => {
  const { q } = setup({ clsact: false });
  await q.apply('pf0vf0');
  t.equal(q.mode, 'link-only');
});

t.test('tc-policy skip_sw: refused without hardware → software, with a warning; skip_hw passes through', async (t) => {
  const a = setup({ policy: 'skip_sw' });
  await a.q.apply('pf0vf0');
  const f = a.tc.on(10)[0];
  t.ok(f && isFlower(f) && !f.flags?.skipSw, 'fell back to no skip flag');
  t.ok(a.lines.some((l) => String(l['msg']).includes('skip_sw drop filter refused')));
  const b = setup({ policy: 'skip_hw' });
  await b.q.apply('pf0vf0');
  const g = b.tc.on(10)[0];
  t.ok(g && isFlower(g) && g.flags?.skipHw);
});

t.test('a filter failure is logged, link down still happens; reinstall repairs', async (t) => {
  const { tc, q, steps, lines } = setup();
  await q.apply('pf0vf0'); // probe done
  tc.filters.clear();
  const { TcError } = await import('../errors.ts');
  tc.failNext.set('qdisc add', new TcError('qdisc add', 11, 12, 'ENOMEM', undefined));
  steps.length = 0;
  await q.apply('pf0vf1');
  t.ok(steps.includes('down pf0vf1'), 'still down');
  t.equal(tc.on(11).length, 0);
  t.ok(lines.some((l) => l['msg'] === 'quarantine drop filter not installed'));
  t.ok(await q.reinstall('pf0vf1'));
  t.ok(isQuarantineFilter(tc.on(11)[0]!));
  await q.lift('pf0vf1');
  t.notOk(await q.reinstall('pf0vf1'), 'not reinstalled on a leased representor');
  t.equal(tc.on(11).length, 0);
});

t.test('apply and lift of one representor never interleave', async (t) => {
  const { q, steps } = setup();
  await Promise.all([q.apply('pf0vf2'), q.lift('pf0vf2'), q.apply('pf0vf2')]);
  const order = steps.filter((s) => s.includes('12') || s.includes('pf0vf2'));
  t.same(order, ['filter+ 12', 'filter+ 12', 'down pf0vf2', 'ip addr flush dev pf0vf2', 'up pf0vf2', 'filter- 12', 'filter+ 12', 'down pf0vf2', 'ip addr flush dev pf0vf2']);
  t.same([...q.quarantined().keys()], ['pf0vf2']);
});

t.test('addresses flushed over rtnetlink: only that link\'s, no process', async (t) => {
  const list = [addr(10), addr(10), addr(11)];
  const { q, steps } = setup({ addrs: list });
  await q.apply('pf0vf0');
  t.same(steps.filter((x) => x.startsWith('addr')), ['addr dump', 'addr del 10', 'addr del 10'], 'no ip process; the other link keeps its address');
  t.same(list.map((a) => a.ifindex), [11]);
  t.notOk(steps.some((x) => x.startsWith('ip ')), 'no process');
});

t.test('survey at start: representors already in their state cost (almost) nothing', async (t) => {
  const list = [addr(12)];
  const { tc, q, steps } = setup({ addrs: list });
  // pf0vf0: unleased, down, clsact there, no address; pf0vf1: leased, up, no qdisc; pf0vf2: unleased but up with an address.
  await tc.ensureClsact(10);
  const rep = (name: string, vf: number, adminUp: boolean): Representor => ({ pf: 0, vf, name, ifindex: IFX[name]!, operUp: adminUp, adminUp });
  steps.length = 0;
  tc.calls.length = 0;
  const end = await q.survey([rep('pf0vf0', 0, false), rep('pf0vf1', 1, true), rep('pf0vf2', 2, true)]);
  t.same(steps, ['addr dump'], 'one address dump (and one qdisc dump)');
  steps.length = 0;
  await q.apply('pf0vf0');
  t.same(steps, ['filter+ 10', 'filter+ 10'], 'the drop filter only (probe + install): no ifindex lookup, link already down, nothing to flush');
  t.equal(tc.calls.filter((c) => c === 'qdisc add 10').length, 1, 'clsact known: added by the probe only, not again by the install');
  steps.length = 0;
  await q.lift('pf0vf1');
  t.same(steps, [], 'leased and up, no qdisc so no filter: nothing to do');
  t.same([...q.lifted()], ['pf0vf1']);
  steps.length = 0;
  await q.apply('pf0vf2');
  t.same(steps, ['filter+ 12', 'down pf0vf2', 'addr del 12'], 'what is not so yet is done');
  t.ok(isQuarantineFilter(tc.on(12)[0]!));
  steps.length = 0;
  await q.apply('pf0vf0');
  t.same(steps, ['ifindex pf0vf0', 'filter+ 10', 'down pf0vf0', 'addr dump'], 'a hint is used once: later calls do the full work');
  end();
  steps.length = 0;
  await q.lift('pf0vf2');
  t.same(steps, ['up pf0vf2', 'filter- 12'], 'after end(): no hints');
});
