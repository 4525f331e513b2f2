// What the VF pool reads of the Open_vSwitch DB, from the replica of its monitor
// (shared with the bridge audit when both run): the leases on the integration
// bridge, which representors are plugged anywhere, an Interface's external_ids,
// ovs-vswitchd's cur_cfg, and waits on any of them. Reads only; writes are
// lease.ts ops, sent by the pool.
import { vswitchColumns } from '../ovsdb/model/index.ts';
import type { Monitor, MonitorRequests } from '../ovsdb/monitor.ts';
import { EXT, type Lease, leaseFromInterface } from './lease.ts';

/** What the pool reads (ovsdb/model: the monitor request and the row types). */
const VIEW = vswitchColumns({
  Bridge: ['name', 'ports'],
  Port: ['name', 'interfaces'],
  Interface: ['name', 'external_ids', 'ofport', 'error'],
  Open_vSwitch: ['cur_cfg'],
});

/** What the pool reads of the Open_vSwitch DB; a shared monitor given to the pool must cover it. */
export const POOL_MONITOR: MonitorRequests = VIEW.requests;

export type WaitResult = 'met' | 'timeout' | 'aborted';

export class BridgeView {
  private leaseMemo: { generation: number; leases: readonly Lease[] } | undefined;

  constructor(
    readonly monitor: Monitor,
    /** The integration bridge's name: leases count only on it. */
    private readonly bridge: string,
  ) {}

  /** Leases on the bridge (decoded from their Interface rows). A fresh array each call. */
  leases(): Lease[] {
    // Decoding every Interface's external_ids costs ~2 ms with 1,000 leases, and an
    // allocation, a status read and each sweep ask for the list: decoded once per replica state.
    const gen = this.monitor.generation;
    if (this.leaseMemo?.generation === gen) return [...this.leaseMemo.leases];
    const onBridge = this.bridgePortNames();
    const out: Lease[] = [];
    for (const row of VIEW.rows(this.monitor, 'Interface').values()) {
      const l = leaseFromInterface(row);
      if (l && onBridge.has(l.representor)) out.push(l);
    }
    this.leaseMemo = { generation: gen, leases: out };
    return [...out];
  }

  bridgeUuid(): string | undefined {
    for (const [uuid, b] of VIEW.rows(this.monitor, 'Bridge')) if (b.name === this.bridge) return uuid;
    return undefined;
  }

  /** Names of the ports on the bridge. */
  bridgePortNames(): Set<string> {
    const out = new Set<string>();
    const uuid = this.bridgeUuid();
    const br = uuid ? VIEW.row(this.monitor, 'Bridge', uuid) : undefined;
    const ports = VIEW.rows(this.monitor, 'Port');
    for (const p of br?.ports ?? []) {
      const name = ports.get(p.value)?.name;
      if (name !== undefined) out.add(name);
    }
    return out;
  }

  /** Ports on any bridge: a representor someone put elsewhere is not free either. */
  allPortNames(): Set<string> {
    const out = new Set<string>();
    for (const p of VIEW.rows(this.monitor, 'Port').values()) out.add(p.name);
    return out;
  }

  /** The uuid of the Port row named `name` (on whatever bridge). */
  portUuid(name: string): string | undefined {
    for (const [uuid, r] of VIEW.rows(this.monitor, 'Port')) if (r.name === name) return uuid;
    return undefined;
  }

  /** external_ids of the Interface row `uuid`; undefined when the row is gone. */
  interfaceExternalIds(uuid: string): ReadonlyMap<string, string> | undefined {
    return VIEW.row(this.monitor, 'Interface', uuid)?.external_ids;
  }

  /**
   * ovn-controller marked the interface installed. By uuid (the plugged row): until
   * the row reaches the replica it is simply not installed yet. By name only when
   * the caller has no uuid (a scan of every Interface).
   */
  ovnInstalled(ifaceUuid: string | undefined, representor: string): boolean {
    const rows = VIEW.rows(this.monitor, 'Interface');
    const row = ifaceUuid !== undefined ? rows.get(ifaceUuid) : [...rows.values()].find((r) => r.name === representor);
    return row?.external_ids.get(EXT.ovnInstalled) === 'true';
  }

  /** The last configuration ovs-vswitchd acknowledged (Open_vSwitch cur_cfg); 0 when none runs. */
  curCfg(): number {
    return Number([...VIEW.rows(this.monitor, 'Open_vSwitch').values()][0]?.cur_cfg ?? 0);
  }

  /**
   * 'met' as soon as `cond` holds (checked now and on each replica change), 'timeout'
   * after timeoutMs, 'aborted' when `signal` aborts while waiting.
   */
  waitFor(cond: () => boolean, timeoutMs: number, signal?: AbortSignal): Promise<WaitResult> {
    const m = this.monitor;
    if (cond()) return Promise.resolve('met');
    return new Promise((resolve) => {
      const finish = (r: WaitResult): void => {
        clearTimeout(timer);
        m.off('change', check);
        signal?.removeEventListener('abort', onAbort);
        resolve(r);
      };
      const check = (): void => {
        if (cond()) finish('met');
      };
      const onAbort = (): void => finish('aborted');
      const timer = setTimeout(() => finish('timeout'), timeoutMs);
      m.on('change', check);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
