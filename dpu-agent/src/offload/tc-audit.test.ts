import t from 'tap';
import { ETH_P_ALL, ETH_P_IP, TC_PARENT_EGRESS, TC_PARENT_INGRESS, dropAction, mirredAction, type FlowerFilter, type OtherFilter } from '../tc/index.ts';
import { FakeTc } from '../../../test/helpers/fake-tc.ts';
import { ufidToCookie, ufidsFromDumpFlows, countFlows, type OvsView } from './ovs-view.ts';
import { TcQuarantine, isQuarantineFilter, quarantineFlower } from './quarantine.ts';
import { TcAudit, auditDevice, classify, type DriftKind, type Finding } from './tc-audit.ts';
import { memoryLogger } from '../../../test/helpers/memory-logger.ts';

const IFX: Record<string, number> = { pf0vf0: 10, pf0vf1: 11, p0: 2 };
const UFID = 'aabbccdd00112233445566778899aabb';

const ovsFilter = (ifindex: number, cookie = UFID, prio = 2): FlowerFilter => ({
  kind: 'flower', ifindex, parent: TC_PARENT_INGRESS, chain: 0, prio, protocol: ETH_P_IP, handle: 0,
  key: { ethType: ETH_P_IP, ipv4Dst: '10.0.0.2' }, actions: [mirredAction(3, 'egress-redirect', { cookie })],
});
const foreignFlower = (ifindex: number): FlowerFilter => ({
  kind: 'flower', ifindex, parent: TC_PARENT_INGRESS, chain: 0, prio: 7, protocol: ETH_P_IP, handle: 0, key: { ethType: ETH_P_IP, ipProto: 1 }, actions: [dropAction()],
});
const foreignU32 = (ifindex: number, parent = TC_PARENT_INGRESS): OtherFilter => ({ kind: 'u32', ifindex, parent, chain: 0, prio: 9, protocol: ETH_P_IP, handle: 0x80000800 });

async function setup(o: { repair?: boolean; ovs?: OvsView } = {}) {
  const tc = new FakeTc();
  const { logger, lines } = memoryLogger();
  const link = { apply: async () => undefined, lift: async () => undefined };
  const ifindexOf = async (d: string) => IFX[d];
  const run = async () => ({ code: 0, stdout: '', stderr: '' });
  const q = new TcQuarantine({ tc, link, tcPolicy: 'none', logger, ifindexOf, run });
  await q.apply('pf0vf0'); // unleased
  await q.apply('pf0vf1');
  await q.lift('pf0vf1'); // leased
  const audit = new TcAudit({ tc, quarantine: q, uplinks: ['p0'], repair: o.repair ?? true, intervalMs: 60_000, confirmMs: 0, logger, ifindexOf, ...(o.ovs ? { ovs: o.ovs } : {}) });
  const drift: Array<{ kind: DriftKind; findings: readonly Finding[]; repaired: boolean }> = [];
  audit.on('drift', (kind, findings, repaired) => drift.push({ kind, findings, repaired }));
  return { tc, q, audit, lines, drift };
}

t.test('classify (pure)', async (t) => {
  t.equal(classify(quarantineFlower(1, {})).owner, 'quarantine');
  t.equal(classify(ovsFilter(1)).owner, 'ovs');
  t.equal(classify(ovsFilter(1), new Set([UFID])).owner, 'ovs');
  t.match(classify(ovsFilter(1), new Set(['00'.repeat(16)])), { owner: 'foreign', why: /unknown to ovs-vswitchd/ });
  t.match(classify(ovsFilter(1, 'abcd')), { owner: 'foreign', why: /not a 16-byte UFID/ });
  t.match(classify(foreignFlower(1)), { owner: 'foreign', why: /no action cookie/ });
  t.match(classify(foreignU32(1)), { owner: 'foreign', why: /classifier u32/ });
});

t.test('auditDevice (pure): roles decide where our filter belongs', async (t) => {
  const rep = { name: 'pf0vf0', ifindex: 10, role: 'quarantined' as const };
  t.same(auditDevice(rep, [quarantineFlower(10, {})], { quarantineActive: true }), []);
  t.match(auditDevice(rep, [], { quarantineActive: true }), [{ kind: 'quarantine-missing' }]);
  t.same(auditDevice(rep, [], { quarantineActive: false }), [], 'link-only: nothing to miss');
  const leased = { ...rep, role: 'leased' as const };
  t.match(auditDevice(leased, [quarantineFlower(10, {}), ovsFilter(10)], { quarantineActive: true }), [{ kind: 'quarantine-stale' }]);
  const f = auditDevice(leased, [foreignU32(10, TC_PARENT_EGRESS)], { quarantineActive: true });
  t.match(f, [{ kind: 'foreign-tc-filter', summary: { hook: 'egress', kind: 'u32', prio: 9, protocol: '0x0800', handle: '8000:800' } }]);
});

t.test('repair: foreign filters removed, OVS and ours kept, missing quarantine reinstalled', async (t) => {
  const { tc, audit, drift, lines } = await setup();
  tc.inject(ovsFilter(11));
  tc.inject(ovsFilter(2, 'ffeeddccbbaa99887766554433221100', 3));
  const ff = tc.inject(foreignFlower(11));
  tc.inject(foreignU32(2));
  tc.inject({ ...foreignU32(2), handle: 0x80000801 }); // same u32 instance: one delete takes both
  tc.filters.set(10, []); // our drop filter vanished from the unleased representor
  const found = await audit.schedule();
  t.equal(found.length, 4);
  t.same(drift.map((d) => [d.kind, d.findings.length, d.repaired]), [['foreign-tc-filter', 3, true], ['quarantine-missing', 1, true]]);
  t.equal(tc.on(11).length, 1, 'leased rep keeps only the OVS filter');
  t.equal(classify(tc.on(11)[0]!).owner, 'ovs');
  t.notOk(tc.on(11).some((f) => f.handle === ff.handle && f.prio === 7));
  t.same(tc.on(2).map((f) => f.kind), ['flower'], 'uplink: u32 instance gone, OVS filter kept');
  t.ok(isQuarantineFilter(tc.on(10)[0]!), 'drop filter back');
  const warn = lines.find((l) => l['kind'] === 'foreign-tc-filter');
  t.match(warn?.['findings'], [{ device: 'pf0vf1', role: 'leased', filter: { kind: 'flower', prio: 7, actions: ['gact'], why: /no action cookie/ } }]);
  drift.length = 0;
  t.same(await audit.schedule(), [], 'clean afterwards');
  t.equal(drift.length, 0);
});

t.test('alert-only: reported and counted once, nothing deleted', async (t) => {
  const { tc, audit, drift } = await setup({ repair: false });
  tc.inject(foreignFlower(11));
  await audit.schedule();
  await audit.schedule();
  t.same(drift.map((d) => [d.kind, d.findings.length, d.repaired]), [['foreign-tc-filter', 1, false]]);
  t.equal(tc.on(11).length, 1, 'left in place');
  tc.filters.set(11, []);
  await audit.schedule();
  tc.inject(foreignFlower(11));
  await audit.schedule();
  t.equal(drift.length, 2, 'a filter that went and came back is reported again');
});

t.test('our drop filter on a leased representor is stale and removed', async (t) => {
  const { tc, audit, drift } = await setup();
  tc.inject(quarantineFlower(11, {}));
  await audit.schedule();
  t.same(drift.map((d) => d.kind), ['quarantine-stale']);
  t.equal(tc.on(11).length, 0);
});

t.test('UFID cross-check with OVS: a forged 16-byte cookie is foreign', async (t) => {
  const ovs: OvsView = { tcUfids: async () => new Set([UFID]), offloadedFlows: async () => 1, offloadStats: async () => '' };
  const { tc, audit, drift } = await setup({ ovs });
  tc.inject(ovsFilter(11));
  tc.inject(ovsFilter(11, '11'.repeat(16), 4));
  await audit.schedule();
  t.equal(drift[0]?.findings.length, 1);
  t.match(drift[0]?.findings[0]?.summary, { prio: 4, why: /unknown to ovs-vswitchd/ });
  t.same(tc.on(11).map((f) => f.prio), [2]);
  const down: OvsView = { tcUfids: async () => Promise.reject(new Error('no ovs-vswitchd')), offloadedFlows: async () => 0, offloadStats: async () => '' };
  const b = await setup({ ovs: down });
  b.tc.inject(ovsFilter(11, '11'.repeat(16), 4));
  await b.audit.schedule();
  t.equal(b.drift.length, 0, 'without OVS the cookie shape alone decides');
});

t.test('a candidate that goes away before confirmation is not acted on', async (t) => {
  const tc = new FakeTc();
  const { logger } = memoryLogger();
  const ifindexOf = async (d: string) => IFX[d];
  const q = new TcQuarantine({ tc, link: { apply: async () => undefined, lift: async () => undefined }, tcPolicy: 'none', logger, ifindexOf, run: async () => ({ code: 0, stdout: '', stderr: '' }) });
  await q.apply('pf0vf1');
  await q.lift('pf0vf1');
  const audit = new TcAudit({ tc, quarantine: q, uplinks: [], repair: true, intervalMs: 60_000, confirmMs: 30, logger, ifindexOf });
  const probe = tc.inject({ ...foreignFlower(11), prio: 0xffff });
  setTimeout(() => void tc.deleteFilter(probe), 5);
  let drift = 0;
  audit.on('drift', () => drift++);
  t.same(await audit.schedule(), []);
  t.equal(drift, 0);
});

t.test('notifications: only the named devices are audited, debounced', async (t) => {
  const { tc, audit } = await setup();
  const { EventEmitter } = await import('node:events');
  const events = new EventEmitter();
  const a = new TcAudit({ ...(audit as unknown as { opts: ConstructorParameters<typeof TcAudit>[0] }).opts, events: events as never, debounceMs: 10 });
  a.start();
  t.teardown(() => a.stop());
  await new Promise((r) => setTimeout(r, 20));
  const before = tc.dumps;
  tc.inject(foreignFlower(11));
  events.emit('change', 11, 44);
  events.emit('change', 11, 44);
  await new Promise((r) => setTimeout(r, 60));
  t.equal(tc.dumps - before, 4, 'one device: ingress + egress in the pass, again in the confirm re-read');
  t.equal(tc.on(11).length, 0, 'removed');
});

t.test('ovs-view parsing (pure)', async (t) => {
  // dpctl prints the u128 as four host-order u32 words; the cookie is their memory image.
  t.equal(ufidToCookie('ufid:00112233-4455-6677-8899-aabbccddeeff'), '3322110077665544bbaa9988ffeeddcc');
  const text = 'ufid:00112233-4455-6677-8899-aabbccddeeff, recirc_id(0),in_port(2) packets:1, actions:3\nufid:ffffffff-0000-0000-0000-000000000001, x\n';
  t.equal(ufidsFromDumpFlows(text).size, 2);
  t.equal(countFlows(text), 2);
  t.equal(countFlows(''), 0);
});

t.test('ovsOnlyUfid (pure): what the partial view clears without a full decode', async (t) => {
  const { ovsOnlyUfid } = await import('./tc-audit.ts');
  const { FilterView } = await import('../tc/index.ts');
  const v = Object.assign(new FilterView(), { kind: 'flower', prio: 2, handle: 5, protocol: ETH_P_IP, cookie: UFID, actions: 1 });
  t.equal(ovsOnlyUfid(v), UFID);
  t.equal(ovsOnlyUfid(Object.assign(new FilterView(), v, { cookie: 'abcd' })), undefined, 'not a 16-byte UFID');
  t.equal(ovsOnlyUfid(Object.assign(new FilterView(), v, { cookie: undefined })), undefined, 'no cookie');
  t.equal(ovsOnlyUfid(Object.assign(new FilterView(), v, { kind: 'u32' })), undefined, 'another classifier');
  t.equal(ovsOnlyUfid(Object.assign(new FilterView(), v, { prio: 1, handle: 1, protocol: ETH_P_ALL })), undefined, "the quarantine filter's place");
});

t.test('scale path: many OVS flows cleared by the view; an unknown UFID among them still found (device re-read in full)', async (t) => {
  const known = new Set<string>();
  const ovs: OvsView = { tcUfids: async () => known, offloadedFlows: async () => 0, offloadStats: async () => '' };
  const { tc, audit, drift } = await setup({ repair: false, ovs });
  for (let i = 0; i < 50; i++) {
    const u = i.toString(16).padStart(32, '0');
    known.add(u);
    tc.inject(ovsFilter(11, u));
    tc.inject(ovsFilter(2, u, 3));
  }
  t.same(await audit.schedule(), [], 'OVS flows with known UFIDs: nothing');
  tc.inject(ovsFilter(2, 'ff'.repeat(16), 4));
  const found = await audit.schedule();
  t.match(found, [{ kind: 'foreign-tc-filter', device: { name: 'p0' }, summary: { why: /unknown to ovs-vswitchd/, prio: 4 } }]);
  t.equal(drift.length, 1);
});
