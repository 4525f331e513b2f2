import t from 'tap';
import { NetlinkError } from '../errors.ts';
import { EmulatedHw, type EmulatedHwOptions, type LinkApi, representorsFromLinks } from './emulated.ts';
import type { LinkInfo, LinkSelector } from './rtlink.ts';

const link = (ifindex: number, name: string, o: Partial<LinkInfo> = {}): LinkInfo => ({ ifindex, name, up: false, operUp: false, ...o });

/**
 * In-memory netns: `undefined` is the representors' netns, numbers are nsids as seen
 * from there, `names` the /run/netns names. Implements the same LinkApi as RtLinks
 * (and the per-netns writer), recording every call.
 */
class FakeLinks implements LinkApi {
  readonly ns = new Map<number | undefined, LinkInfo[]>();
  readonly names = new Map<string, number>();
  readonly calls: string[] = [];
  opened = 0;
  closed = 0;
  /** Called before a setAddress takes effect (to move a VF in between). */
  beforeSet: (() => void) | undefined;

  async dump(nsid?: number): Promise<LinkInfo[]> {
    this.calls.push(`dump ${nsid ?? 'own'}`);
    const l = this.ns.get(nsid);
    if (!l) throw new NetlinkError(22, 'EINVAL', 'Invalid target network namespace id');
    return [...l];
  }

  async get(sel: LinkSelector): Promise<LinkInfo | undefined> {
    this.calls.push(`get ${sel.name ?? sel.ifindex} ${sel.nsid ?? 'own'}`);
    return this.ns.get(sel.nsid)?.find((l) => (sel.name !== undefined ? l.name === sel.name : l.ifindex === sel.ifindex));
  }

  async nsidOfNetns(name: string): Promise<number | undefined> {
    this.calls.push(`nsid ${name}`);
    return this.names.get(name);
  }

  async setAddress(ifindex: number, mac: string, nsid?: number): Promise<void> {
    // The kernel would MOVE the device into that netns (RTM_SETLINK + IFLA_TARGET_NETNSID).
    if (nsid !== undefined) throw new Error('setAddress with a target nsid moves the device');
    return this.write(undefined, ifindex, mac, 'own');
  }

  /** The options that make EmulatedHw use this fake for everything. */
  opts(): EmulatedHwOptions {
    return {
      hostNs: 'h1',
      links: this,
      listNetns: async () => [...this.names.keys()],
      openIn: (name) => {
        this.opened++;
        return { api: { setAddress: (ifindex, mac) => this.write(this.names.get(name), ifindex, mac, name) }, close: () => void this.closed++ };
      },
    };
  }

  private async write(nsid: number | undefined, ifindex: number, mac: string, via: string): Promise<void> {
    this.calls.push(`set ${ifindex} ${mac} via ${via}`);
    const hook = this.beforeSet;
    this.beforeSet = undefined;
    hook?.();
    const list = this.ns.get(nsid) ?? [];
    const i = list.findIndex((l) => l.ifindex === ifindex);
    if (i < 0) throw new NetlinkError(19, 'ENODEV', undefined);
    list[i] = { ...list[i]!, mac };
  }

  macOf(nsid: number | undefined, ifindex: number): string | undefined {
    return this.ns.get(nsid)?.find((l) => l.ifindex === ifindex)?.mac;
  }
}

/** DPU netns: lo, p0, pf0vf0..2 whose peers vf0..2 are in the host (nsid 0); vf1 was moved into a pod (nsid 3, eth0). */
function lab(): FakeLinks {
  const f = new FakeLinks();
  f.ns.set(undefined, [
    link(1, 'lo', { up: true }),
    link(9, 'p0', { mac: 'aa:00:00:00:00:09', up: true, operUp: true }),
    link(5, 'pf0vf0', { mac: 'aa:00:00:00:00:00', link: 20, linkNetnsid: 0 }),
    link(7, 'pf0vf1', { mac: 'aa:00:00:00:00:01', up: true, operUp: true, link: 2, linkNetnsid: 3 }),
    link(11, 'pf0vf2', { link: 22, linkNetnsid: 0 }),
    link(12, 'pf0vf3'), // no peer (not a veth)
  ]);
  f.ns.set(0, [link(1, 'lo'), link(20, 'vf0', { mac: '02:00:00:00:00:00' }), link(22, 'vf2', { mac: '0a:58:0a:00:00:02' })]);
  f.ns.set(3, [link(1, 'lo'), link(2, 'eth0', { mac: '0a:58:0a:00:00:01' })]);
  f.names.set('h1', 0).set('pod-a', 3).set('other', 7);
  return f;
}

t.test('representors come from the DPU netns links, sorted, with admin and oper state', async (t) => {
  const reps = representorsFromLinks([...lab().ns.get(undefined)!].reverse());
  t.same(
    reps.map((r) => [r.name, r.vf, r.ifindex, r.operUp, r.adminUp]),
    [
      ['pf0vf0', 0, 5, false, false],
      ['pf0vf1', 1, 7, true, true],
      ['pf0vf2', 2, 11, false, false],
      ['pf0vf3', 3, 12, false, false],
    ],
  );
  t.equal(reps[2]!.mac, undefined);
  const f = lab();
  t.equal((await new EmulatedHw(f.opts()).discoverRepresentors()).length, 4);
  t.same(f.calls, ['dump own'], 'one dump, no process');
});

t.test('setVfMac sets the representor peer by ifindex, through a socket in its netns, normalised', async (t) => {
  const f = lab();
  const hw = new EmulatedHw(f.opts());
  await hw.setVfMac({ pf: 0, vf: 2 }, '0A:58:C6:12:01:0A');
  t.equal(f.macOf(0, 22), '0a:58:c6:12:01:0a', 'host-side VF end');
  t.same(f.calls, ['get pf0vf2 own', 'nsid h1', 'set 22 0a:58:c6:12:01:0a via h1'], 'the representor, the host nsid once, the write');
  t.equal(f.ns.get(undefined)!.find((l) => l.name === 'pf0vf2')!.mac, undefined, 'representor MAC unchanged');
  f.calls.length = 0;
  await hw.setVfMac({ pf: 0, vf: 0 }, '0a:58:c6:12:01:0b');
  t.same(f.calls, ['get pf0vf0 own', 'set 20 0a:58:c6:12:01:0b via h1'], 'the allocation path: two requests, host socket kept');
  t.equal(f.opened, 1);

  // A VF the host moved into a pod netns (and renamed) is reached through a socket opened there for the write.
  f.calls.length = 0;
  await hw.setVfMac({ pf: 0, vf: 1 }, '0a:58:0a:00:00:99');
  t.equal(f.macOf(3, 2), '0a:58:0a:00:00:99', 'moved VF (eth0 in the pod netns)');
  t.same(f.calls, ['get pf0vf1 own', 'nsid h1', 'nsid pod-a', 'set 2 0a:58:0a:00:00:99 via pod-a'], 'found by its nsid among the named netns');
  t.same([f.opened, f.closed], [2, 1], 'the pod socket is closed after the write');
  f.calls.length = 0;
  await hw.setVfMac({ pf: 0, vf: 1 }, '0a:58:0a:00:00:98');
  t.same(f.calls, ['get pf0vf1 own', 'nsid pod-a', 'set 2 0a:58:0a:00:00:98 via pod-a'], 'the name is remembered (and checked)');
  t.equal(await hw.getVfMac({ pf: 0, vf: 1 }), '0a:58:0a:00:00:98', 'read by nsid from the representors\' socket');
  hw.close();
  t.same([f.opened, f.closed], [3, 3], 'close() closes the host socket');
});

t.test('a VF in a netns without a name cannot be written; a new host netns is followed', async (t) => {
  const f = lab();
  const hw = new EmulatedHw(f.opts());
  f.names.delete('pod-a');
  await t.rejects(hw.setVfMac({ pf: 0, vf: 1 }, '0a:58:0a:00:00:99'), { code: 'DPU_ERR_HW', message: /without a name under \/run\/netns \(nsid 3\)/ });
  await hw.setVfMac({ pf: 0, vf: 0 }, '0a:58:0a:00:00:01');
  // The host netns deleted and made again: its VFs now sit behind nsid 5.
  f.ns.set(5, f.ns.get(0)!);
  f.names.set('h1', 5);
  const own = f.ns.get(undefined)!;
  for (let i = 0; i < own.length; i++) if (own[i]!.linkNetnsid === 0) own[i] = { ...own[i]!, linkNetnsid: 5 };
  f.calls.length = 0;
  await hw.setVfMac({ pf: 0, vf: 2 }, '0a:58:0a:00:00:02');
  await hw.setVfMac({ pf: 0, vf: 0 }, '0a:58:0a:00:00:03');
  t.equal(f.macOf(5, 20), '0a:58:0a:00:00:03');
  t.same(f.calls.filter((c) => c.startsWith('set')), ['set 22 0a:58:0a:00:00:02 via h1', 'set 20 0a:58:0a:00:00:03 via h1']);
  t.equal(f.calls.filter((c) => c.startsWith('get')).length + f.calls.filter((c) => c.startsWith('set')).length, 4, 'then back to two requests');
  hw.close();
  t.equal(f.opened, f.closed, 'every socket closed');
});

t.test('a VF moved between the lookup and the set is looked up again, once', async (t) => {
  const f = lab();
  const hw = new EmulatedHw(f.opts());
  f.beforeSet = () => {
    // vf0 moves from the host (nsid 0, ifindex 20) into a new pod netns (nsid 4, ifindex 2).
    f.ns.set(0, f.ns.get(0)!.filter((l) => l.ifindex !== 20));
    f.ns.set(4, [link(2, 'eth0', { mac: '02:00:00:00:00:00' })]);
    const own = f.ns.get(undefined)!;
    const i = own.findIndex((l) => l.name === 'pf0vf0');
    own[i] = { ...own[i]!, link: 2, linkNetnsid: 4 };
    f.names.set('pod-b', 4);
  };
  await hw.setVfMac({ pf: 0, vf: 0 }, '0a:58:0a:00:00:07');
  t.equal(f.macOf(4, 2), '0a:58:0a:00:00:07');
  t.same(f.calls.filter((c) => !c.startsWith('nsid')), ['get pf0vf0 own', 'set 20 0a:58:0a:00:00:07 via h1', 'get pf0vf0 own', 'set 2 0a:58:0a:00:00:07 via pod-b']);
});

t.test('errors are HwError; an invalid MAC never reaches the kernel', async (t) => {
  const f = lab();
  const hw = new EmulatedHw(f.opts());
  await t.rejects(hw.setVfMac({ pf: 0, vf: 3 }, '0a:58:c6:12:01:0b'), { code: 'DPU_ERR_HW', message: /no representor pf0vf3 with a VF peer/ });
  await t.rejects(hw.setVfMac({ pf: 0, vf: 9 }, '0a:58:c6:12:01:0b'), { code: 'DPU_ERR_HW', message: /pf0vf9/ });
  f.calls.length = 0;
  await t.rejects(hw.setVfMac({ pf: 0, vf: 0 }, 'ff:ff:ff:ff:ff:ff'), { code: 'DPU_ERR_HW' });
  t.same(f.calls, [], 'refused before any request');
  t.equal(await hw.getVfMac({ pf: 0, vf: 9 }), undefined);
  t.equal(await hw.getVfMac({ pf: 0, vf: 3 }), undefined);
  const broken: LinkApi = { dump: async () => Promise.reject(new NetlinkError(105, 'ENOBUFS', undefined)), get: f.get.bind(f), setAddress: f.setAddress.bind(f), nsidOfNetns: f.nsidOfNetns.bind(f) };
  await t.rejects(new EmulatedHw({ hostNs: 'h1', links: broken }).discoverRepresentors(), { code: 'DPU_ERR_HW', message: /list representors: .*ENOBUFS/ });
});

t.test('getVfMacs: one dump of the DPU netns and one per netns holding VFs', async (t) => {
  const f = lab();
  const hw = new EmulatedHw(f.opts());
  const macs = await hw.getVfMacs([0, 1, 2, 3, 9].map((vf) => ({ pf: 0, vf })));
  t.same(
    [...macs].sort(),
    [
      ['pf0vf0', '02:00:00:00:00:00'],
      ['pf0vf1', '0a:58:0a:00:00:01'],
      ['pf0vf2', '0a:58:0a:00:00:02'],
    ],
    'no entry for a representor without a peer or without a netdev',
  );
  t.same(f.calls, ['dump own', 'dump 0', 'dump 3']);
  // A pod netns that vanished meanwhile costs its VFs only.
  f.ns.delete(3);
  t.same([...(await hw.getVfMacs([{ pf: 0, vf: 0 }, { pf: 0, vf: 1 }]))], [['pf0vf0', '02:00:00:00:00:00']]);
});

t.test('VF id ⇄ representor name via the backend', async (t) => {
  const hw = new EmulatedHw({ hostNs: 'h1' });
  t.equal(hw.representorName({ pf: 0, vf: 5 }), 'pf0vf5');
  t.same(hw.vfOf('pf0vf5'), { pf: 0, vf: 5 });
  t.equal(hw.vfOf('p0'), undefined);
});
