// The OVSDB side of re-asserting a lease after a hijack of its iface-id, against a
// real ovsdb-server: the bridge audit removes the foreign port, the pool re-asserts
// the lease (wired as in the agent), and a stand-in for ovn-controller that follows
// OVN 23.03's binding.c rules for the rows involved re-claims the leased interface.
// The stand-in (not ovn-controller itself: that is the lab test,
// test/security/dataplane-attacks.test.ts) reproduces the failure seen there: the
// foreign interface's deletion releases the LSP (consider_iface_release with ofport
// set) and removes ovn-installed from the leased interface, and only an Interface
// update in iface-id / iface-id-ver (ovs_interface_change_need_handle) makes it
// claim that interface again. It also follows the iface-id-ver rule (binding.c
// ovs_iface_matches_lport_iface_id_ver): an LSP that pins options:iface-id-ver (as
// ovn-kubernetes does, with the pod UID) is bound only to an interface carrying the same
// external_ids:iface-id-ver, and released from one that stops carrying it — so the
// re-assertion must not touch iface-id-ver (it flips encap-ip).
import t from 'tap';
import { wireLeaseReassert } from '../../dpu-agent/src/agent.ts';
import { silentLogger } from '../../dpu-agent/src/log.ts';
import { BridgeAudit } from '../../dpu-agent/src/offload/bridge-audit.ts';
import { Uuid, strMap } from '../../dpu-agent/src/ovsdb/atoms.ts';
import { OvsdbClient } from '../../dpu-agent/src/ovsdb/client.ts';
import type { Monitor } from '../../dpu-agent/src/ovsdb/monitor.ts';
import { type Mutation, eq, op } from '../../dpu-agent/src/ovsdb/ops.ts';
import { EXT, plugOps, reassertOps } from '../../dpu-agent/src/ports/lease.ts';
import type { OvnView } from '../../dpu-agent/src/ports/ovn.ts';
import { type ReassertOutcome, VfPool } from '../../dpu-agent/src/ports/pool.ts';
import type { Quarantine } from '../../dpu-agent/src/hw/quarantine.ts';
import { FakeHw } from '../helpers/fake-hw.ts';
import { ovsVsctl } from '../helpers/ovsdb/cli.ts';
import { startOvsdbServer, type OvsdbServer } from '../helpers/ovsdb/server.ts';

type Tap = { teardown(fn: () => unknown): void };

const noQuarantine: Quarantine = { apply: async () => undefined, lift: async () => undefined };

/**
 * ovn-controller's binding rules for VIF interfaces, reduced to what this scenario
 * touches (controller/binding.c, 23.03): one binding per iface-id; an interface is
 * considered for claiming only when inserted or when iface-id / iface-id-ver /
 * encap-ip changed (ovs_interface_change_need_handle); an LSP in `pins` (its
 * options:iface-id-ver) is claimed only for an interface with that
 * external_ids:iface-id-ver, and a considered interface that lacks it is released
 * (consider_vif_lport); a claim (or a bound interface that lost ovn-installed,
 * claim_lport) ends with ovn-installed + ovn-installed-ts set; the deletion of
 * another interface with the same iface-id releases the LSP and removes
 * ovn-installed from the bound one.
 */
class OvnControllerStandIn {
  /** iface-id → the Interface uuid it is bound to. */
  readonly bound = new Map<string, string>();
  /** LSP → its options:iface-id-ver (the Port_Binding pins it). */
  readonly pins = new Map<string, string>();
  claims = 0;
  releases = 0;
  /** Releases for an iface-id-ver mismatch ("Mismatch iface-id-ver for lport …"). */
  mismatches = 0;
  paused = false;
  /** Interface name → inserts of it handled. */
  readonly inserts = new Map<string, number>();
  private readonly m: Monitor;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly c: OvsdbClient) {
    this.m = c.monitor({ Interface: { columns: ['name', 'external_ids'] } });
    this.m.on('change', (ch) => {
      this.chain = this.chain.then(() => this.handle(ch.kind, ch.uuid, ch.old, ch.new)).catch(() => undefined);
    });
  }

  get ready(): Promise<void> {
    return this.m.ready;
  }

  close(): void {
    this.m.close();
  }

  private async handle(kind: string, uuid: string, oldRow?: Record<string, unknown>, newRow?: Record<string, unknown>): Promise<void> {
    if (this.paused) return;
    if (kind === 'insert') {
      const name = String(newRow?.['name']);
      this.inserts.set(name, (this.inserts.get(name) ?? 0) + 1);
    }
    const oldExt = strMap(oldRow?.['external_ids'] as never);
    const ext = strMap(newRow?.['external_ids'] as never);
    if (kind === 'delete') {
      const id = oldExt.get(EXT.ifaceId);
      const holder = id === undefined ? undefined : this.bound.get(id);
      if (id === undefined || holder === undefined) return;
      // consider_iface_release: the LSP is released, whichever interface held it.
      this.bound.delete(id);
      this.releases++;
      if (holder !== uuid) await this.mark(holder, false);
      return;
    }
    const id = ext.get(EXT.ifaceId);
    if (id === undefined) return;
    const changed = (k: string): boolean => oldExt.get(k) !== ext.get(k);
    const needHandle = kind === 'insert' || changed(EXT.ifaceId) || changed(EXT.ifaceIdVer) || changed(EXT.encapIp);
    if (!needHandle) return;
    const holder = this.bound.get(id);
    const pin = this.pins.get(id);
    if (pin !== undefined && ext.get(EXT.ifaceIdVer) !== pin) {
      // consider_vif_lport: no binding for this interface; a claimed LSP is released.
      this.mismatches++;
      if (holder !== undefined) {
        this.bound.delete(id);
        this.releases++;
        await this.mark(holder, false);
      }
      return;
    }
    if (holder === undefined) {
      // A plug by the agent is claimed; a foreign one is deleted before ovn-controller
      // sees its ofport (the race that leaves the LSP released, as in the lab).
      if (!ext.has(EXT.sandbox)) return;
      this.bound.set(id, uuid);
      this.claims++;
      await this.mark(uuid, true);
    } else if (holder === uuid && ext.get(EXT.ovnInstalled) !== 'true') {
      this.claims++;
      await this.mark(uuid, true);
    }
  }

  private async mark(uuid: string, installed: boolean): Promise<void> {
    const mutation: Mutation = installed
      ? ['external_ids', 'insert', new Map([[EXT.ovnInstalled, 'true'], [EXT.ovnInstalledTs, String(Date.now())]])]
      : ['external_ids', 'delete', [EXT.ovnInstalled]];
    await this.c.transact([op.mutate('Interface', [eq('_uuid', new Uuid(uuid))], [mutation])]);
  }
}

interface Rig {
  srv: OvsdbServer;
  pool: VfPool;
  audit: BridgeAudit;
  ovnc: OvnControllerStandIn;
  outcomes: ReassertOutcome[];
  auditRemoved: string[];
  /** The audit's next pass waits for it (see hijack). */
  gate: Promise<void>;
  ext: (iface: string) => Promise<string>;
}

async function rig(t: Tap, opts: { timeoutMs?: number; ifaceIdVer?: string } = {}): Promise<Rig> {
  const srv = await startOvsdbServer(t);
  await ovsVsctl(srv.unixRemote, 'add-br', 'br-int');
  const agentClient = new OvsdbClient({ remotes: srv.unixRemote, database: 'Open_vSwitch' });
  const ovncClient = new OvsdbClient({ remotes: srv.unixRemote, database: 'Open_vSwitch' });
  await Promise.all([agentClient.start(), ovncClient.start()]);
  const ovnc = new OvnControllerStandIn(ovncClient);
  if (opts.ifaceIdVer !== undefined) ovnc.pins.set('sec_a', opts.ifaceIdVer);
  await ovnc.ready;
  const pool = new VfPool({
    ovs: agentClient,
    ovn: { lookup: () => undefined, connected: true } as unknown as OvnView,
    hw: new FakeHw(4),
    quarantine: noQuarantine,
    logger: silentLogger(),
    bridge: 'br-int',
    chassisNames: ['dpu1'],
    mtu: 1400,
    ovnInstalledTimeoutMs: opts.timeoutMs ?? 5000,
    encapIp: ENCAP_IP,
    maxLeasesPerPeer: 10,
    orphanGraceMs: 60_000,
  });
  const audit = new BridgeAudit({ client: agentClient, bridge: 'br-int', repair: true, logger: silentLogger() });
  t.teardown(async () => {
    audit.stop();
    pool.stop();
    ovnc.close();
    await Promise.all([agentClient.stop(), ovncClient.stop()]);
  });
  // The lease, as an allocation writes it; the stand-in claims it.
  await agentClient.transact(
    plugOps({ bridge: 'br-int', representor: 'pf0vf0', pf: 0, vf: 0, lsp: 'sec_a', mac: '0a:58:c6:12:01:0a', key: { pod: { namespace: 'sec', name: 'a', uid: 'uid-a' }, sandboxId: 'sb-a', ifname: 'eth0' }, peer: 'host1', leaseTime: new Date().toISOString(), ...(opts.ifaceIdVer !== undefined ? { ifaceIdVer: opts.ifaceIdVer } : {}) }),
  );
  const ext = (iface: string): Promise<string> => ovsVsctl(srv.unixRemote, '--if-exists', 'get', 'Interface', iface, 'external_ids');
  await until(async () => (await ext('pf0vf0')).includes('ovn-installed="true"'));
  await pool.start();
  await audit.start();
  wireLeaseReassert(audit, pool);
  const outcomes: ReassertOutcome[] = [];
  pool.on('reasserted', (o) => outcomes.push(o));
  const auditRemoved: string[] = [];
  audit.on('drift', (_k, ports) => auditRemoved.push(...ports.map((p) => p.name)));
  const r: Rig = { srv, pool, audit, ovnc, outcomes, auditRemoved, ext, gate: Promise.resolve() };
  const pass = (audit as unknown as { pass: () => Promise<void> }).pass.bind(audit);
  (audit as unknown as { pass: () => Promise<void> }).pass = async () => {
    await r.gate;
    return pass();
  };
  return r;
}

async function until(cond: () => boolean | Promise<boolean>, tries = 250): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('condition not met');
}

const ENCAP_IP = '192.0.2.10';

/**
 * A foreign plug of `lsp` on `rep`. The audit's removal waits until the stand-in has
 * seen the foreign interface: ovsdb-server drops a row inserted and deleted between
 * two monitor updates, so without the gate ovn-controller (and the stand-in) may never
 * see it, and nothing is released (as in the lab, where the release shows only now
 * and then).
 */
const hijack = (r: Rig, rep: string, lsp: string, ver?: string): Promise<string> => {
  const n0 = r.ovnc.inserts.get(rep) ?? 0;
  r.gate = until(() => (r.ovnc.inserts.get(rep) ?? 0) > n0);
  return ovsVsctl(r.srv.unixRemote, '--may-exist', 'add-port', 'br-int', rep, '--', 'set', 'Interface', rep, `external_ids:iface-id=${lsp}`, 'external_ids:attached-mac="0a:58:c6:12:01:0a"', ...(ver ? [`external_ids:iface-id-ver=${ver}`] : []));
};

const POD_UID = '3f1c2a9e-0000-4000-8000-00000000000a';

for (const pinned of [false, true]) {
t.test(`three hijacks in a row, LSP ${pinned ? 'with' : 'without'} options:iface-id-ver: each time the foreign port goes, the LSP is released and the pool re-claims it for the lease`, async (t) => {
  const r = await rig(t, pinned ? { ifaceIdVer: POD_UID } : {});
  for (let i = 1; i <= 3; i++) {
    const claims = r.ovnc.claims;
    const releases = r.ovnc.releases;
    // With a pinned LSP the hijacker writes the pod's iface-id-ver too (as ovn-kubernetes' CNI would).
    await hijack(r, 'pf0vf1', 'sec_a', pinned ? POD_UID : undefined);
    await until(() => r.outcomes.length === i);
    t.same(r.auditRemoved, Array(i).fill('pf0vf1'), `hijack ${i}: the audit removed the foreign port (and nothing else)`);
    t.equal(r.ovnc.releases, releases + 1, `hijack ${i}: its deletion released the LSP (the 23.03 failure)`);
    t.match(r.outcomes[i - 1], { lsp: 'sec_a', representor: 'pf0vf0', result: 'reclaimed' }, `hijack ${i}: the pool says reclaimed`);
    t.equal(r.ovnc.claims, claims + 1, `hijack ${i}: the stand-in claimed the leased interface again (once)`);
    t.equal(r.ovnc.bound.get('sec_a'), r.pool.leases()[0]?.interfaceUuid, `hijack ${i}: bound to the leased interface`);
    const ext = await r.ext('pf0vf0');
    t.match(ext, /ovn-installed="true"/, `hijack ${i}: ovn-installed back on pf0vf0`);
    if (pinned) t.match(ext, new RegExp(`iface-id-ver="?${POD_UID}"?`), `hijack ${i}: iface-id-ver untouched (the LSP's)`);
    else t.notMatch(ext, /iface-id-ver/, `hijack ${i}: no iface-id-ver (the LSP pins none)`);
    t.notMatch(ext, /encap-ip/, `hijack ${i}: encap-ip put back as it was (absent)`);
  }
  t.equal(r.ovnc.mismatches, 0, 'the leased interface never failed the iface-id-ver check');
  const ports = (await ovsVsctl(r.srv.unixRemote, 'list-ports', 'br-int')).split('\n').filter(Boolean);
  t.same(ports, ['pf0vf0'], 'the lease stayed on br-int throughout, the foreign port is gone');
  t.same(r.pool.leases().map((l) => [l.representor, l.lsp, l.key.sandboxId, l.ovnInstalled]), [['pf0vf0', 'sec_a', 'sb-a', true]]);
});
}

t.test('a hijacker without the pinned iface-id-ver cannot take the LSP but makes ovn-controller drop it: re-claimed all the same', async (t) => {
  const r = await rig(t, { ifaceIdVer: POD_UID });
  await hijack(r, 'pf0vf1', 'sec_a');
  await until(() => r.outcomes.length === 1);
  t.match(r.outcomes[0], { lsp: 'sec_a', representor: 'pf0vf0', result: 'reclaimed' });
  t.equal(r.ovnc.bound.get('sec_a'), r.pool.leases()[0]?.interfaceUuid, 'bound to the leased interface');
  t.match(await r.ext('pf0vf0'), /ovn-installed="true"/);
});

t.test('the stand-in enforces the iface-id-ver rule (what the former iface-id-ver flip would have done to a pinned LSP)', async (t) => {
  const r = await rig(t, { ifaceIdVer: POD_UID, timeoutMs: 300 });
  const releases = r.ovnc.releases;
  // The flip 01b70c5 made: iface-id-ver removed from the leased interface.
  await ovsVsctl(r.srv.unixRemote, 'remove', 'Interface', 'pf0vf0', 'external_ids', 'iface-id-ver', '--', 'remove', 'Interface', 'pf0vf0', 'external_ids', 'ovn-installed', 'ovn-installed-ts');
  await until(() => r.ovnc.releases === releases + 1);
  t.equal(r.ovnc.bound.get('sec_a'), undefined, 'LSP released: the pod would be cut off');
  await r.pool.reassert('sec_a');
  t.match(r.outcomes, [{ result: 'not-installed' }], 'an encap-ip flip cannot help an interface without the pinned version');
  await ovsVsctl(r.srv.unixRemote, 'set', 'Interface', 'pf0vf0', `external_ids:iface-id-ver=${POD_UID}`);
  await until(() => r.ovnc.bound.get('sec_a') !== undefined);
  t.pass('re-claimed once the version is back');
});

t.test('a foreign port with an iface-id nobody leases: removed, nothing re-asserted', async (t) => {
  const r = await rig(t);
  const before = await r.ext('pf0vf0');
  await hijack(r, 'pf0vf2', 'sec_nobody');
  await until(() => r.outcomes.length === 1);
  t.match(r.outcomes[0], { lsp: 'sec_nobody', result: 'no-lease' });
  t.same(r.auditRemoved, ['pf0vf2']);
  t.equal(await r.ext('pf0vf0'), before, 'the lease row untouched');
});

t.test('a healthy lease re-asserted: ovn-controller marks it again, the row ends as it was', async (t) => {
  const r = await rig(t);
  const before = await r.ext('pf0vf0');
  await r.pool.reassert('sec_a');
  t.match(r.outcomes, [{ lsp: 'sec_a', result: 'reclaimed' }]);
  const after = await r.ext('pf0vf0');
  const keys = (s: string): string[] => [...s.matchAll(/"?([\w/-]+)"?=/g)].map((m) => m[1] as string).sort();
  t.same(keys(after), keys(before), 'same keys (only ovn-installed-ts has a new value)');
  t.equal(r.auditRemoved.length, 0, 'the audit never took the lease for a foreign port');
});

t.test('no ovn-controller: not-installed after the bounded wait, the lease stays; the next re-assertion flips encap-ip back', async (t) => {
  const r = await rig(t, { timeoutMs: 300, ifaceIdVer: POD_UID });
  r.ovnc.paused = true;
  await r.pool.reassert('sec_a');
  t.match(r.outcomes, [{ lsp: 'sec_a', result: 'not-installed' }]);
  const ext = await r.ext('pf0vf0');
  t.match(ext, new RegExp(`encap-ip="${ENCAP_IP}"`), "flip left in place (undoing it now could cancel it out): this chassis' own encap IP");
  t.match(ext, new RegExp(`iface-id-ver="?${POD_UID}"?`), 'iface-id-ver untouched: the interface stays claimable');
  t.notMatch(ext, /ovn-installed=/);
  t.equal(r.pool.leases().length, 1, 'lease kept');
  t.equal(r.auditRemoved.length, 0, 'not foreign to the audit');
  r.ovnc.paused = false;
  await r.pool.reassert('sec_a');
  t.match(r.outcomes[1], { result: 'reclaimed' });
  t.match(await r.ext('pf0vf0'), /ovn-installed="true"/);
  t.match(await r.ext('pf0vf0'), new RegExp(`encap-ip="${ENCAP_IP}"`), 'restored to what it was before this re-assertion');
  t.equal(r.ovnc.mismatches, 0, 'never unclaimable');
});

t.test('reassertOps is guarded on the lease: a replaced lease is not touched', async (t) => {
  const r = await rig(t);
  const l = r.pool.leases()[0];
  if (!l) throw new Error('no lease');
  const c = new OvsdbClient({ remotes: r.srv.unixRemote, database: 'Open_vSwitch' });
  t.teardown(() => c.stop());
  await c.start();
  const res = await c.transact(reassertOps({ ...l, key: { ...l.key, sandboxId: 'an-older-sandbox' } }, undefined, ENCAP_IP));
  t.equal(res[0]?.count, 0, 'no row matched');
  t.match(await r.ext('pf0vf0'), /ovn-installed="true"/);
});
