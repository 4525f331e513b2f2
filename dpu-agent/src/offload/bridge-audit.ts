import { EventEmitter } from 'node:events';
import type { Logger } from '../log.ts';
import { Uuid } from '../ovsdb/atoms.ts';
import type { OvsdbClient } from '../ovsdb/client.ts';
import { type RowOf, vswitchColumns } from '../ovsdb/model/index.ts';
import { type Monitor, type MonitorRequests, coversRequests } from '../ovsdb/monitor.ts';
import { type Operation, eq, op } from '../ovsdb/ops.ts';
import { leaseFromInterface } from '../ports/lease.ts';
import { CoalescedPasses } from '../util/coalesce.ts';

// Nothing may sit on br-int that nobody owns (DESIGN §1): a port there can
// inject traffic straight into OVN's pipeline. Owners: the bridge's own
// internal port, ovn-controller (tunnel ports tagged ovn-chassis-id, patch ports
// tagged ovn-*-port), and the agent's leases. Everything else is foreign: it is
// removed (or only reported, in alert-only mode), logged and counted.

export interface ForeignPort {
  readonly portUuid: string;
  readonly name: string;
  readonly interfaces: readonly { name: string; type: string; ifaceId: string | undefined }[];
}

/** What the audit reads (ovsdb/model: the monitor request and the row types). */
const VIEW = vswitchColumns({
  Bridge: ['name', 'ports'],
  Port: ['name', 'interfaces', 'external_ids'],
  Interface: ['name', 'type', 'external_ids'],
});
type AuditRow<T extends keyof typeof VIEW.selection> = RowOf<typeof VIEW, T>;

/** Pure: the foreign ports on `bridge`, given the Bridge/Port/Interface tables. */
export function findForeignPorts(
  bridge: string,
  bridges: ReadonlyMap<string, AuditRow<'Bridge'>>,
  ports: ReadonlyMap<string, AuditRow<'Port'>>,
  interfaces: ReadonlyMap<string, AuditRow<'Interface'>>,
): ForeignPort[] {
  const br = [...bridges.values()].find((b) => b.name === bridge);
  if (!br) return [];
  const out: ForeignPort[] = [];
  for (const pu of br.ports) {
    const port = ports.get(pu.value);
    if (!port) continue;
    const ifaces = port.interfaces.map((iu) => interfaces.get(iu.value)).filter((r) => r !== undefined);
    if (port.name === bridge || ifaces.every((i) => owned(port, i))) continue;
    out.push({
      portUuid: pu.value,
      name: port.name,
      interfaces: ifaces.map((i) => ({ name: i.name, type: i.type, ifaceId: i.external_ids.get('iface-id') })),
    });
  }
  return out;
}

/**
 * ovn-controller tags its tunnel and patch ports on the Port row (encaps.c, patch.c:
 * ovsrec_port_set_external_ids), not the Interface; either row's tag counts.
 */
function owned(port: AuditRow<'Port'>, i: AuditRow<'Interface'>): boolean {
  const tagged = (k: string): boolean => port.external_ids.has(k) || i.external_ids.has(k);
  const type = i.type;
  // ovn-controller's tunnels to other chassis (encaps.c).
  if (tagged('ovn-chassis-id') && ['geneve', 'vxlan', 'stt'].includes(type)) return true;
  // ovn-controller's patch ports to provider bridges / l3 gateways (patch.c).
  if (type === 'patch' && [...port.external_ids.keys(), ...i.external_ids.keys()].some((k) => k.startsWith('ovn-') && k.endsWith('-port'))) return true;
  return leaseFromInterface(i) !== undefined;
}

/** same as: ovs-vsctl --if-exists del-port br-int NAME (for each) */
export function removePortOps(bridge: string, foreign: readonly ForeignPort[]): Operation[] {
  if (foreign.length === 0) return [];
  return [
    op.mutate('Bridge', [eq('name', bridge)], [['ports', 'delete', foreign.map((f) => new Uuid(f.portUuid))]]),
    op.comment(`dpu-agent: audit removed foreign ports ${foreign.map((f) => f.name).join(',')}`),
  ];
}

/**
 * The iface-ids the removed ports claimed: each may be a leased LSP whose binding
 * ovn-controller handed to the foreign interface (the pool re-asserts those).
 */
export function claimedIfaceIds(foreign: readonly ForeignPort[]): string[] {
  return [...new Set(foreign.flatMap((f) => f.interfaces.flatMap((i) => (i.ifaceId ? [i.ifaceId] : []))))];
}

/** What the audit reads; a shared monitor given in `monitor` must cover it. */
export const BRIDGE_AUDIT_MONITOR: MonitorRequests = VIEW.requests;

export interface BridgeAuditOptions {
  readonly client: OvsdbClient;
  /** A monitor shared with other components (covering BRIDGE_AUDIT_MONITOR), owned by the caller; default: our own. */
  readonly monitor?: Monitor;
  readonly bridge: string;
  readonly repair: boolean;
  readonly logger: Logger;
}

export declare interface BridgeAudit {
  on(event: 'drift', l: (kind: 'foreign-port', ports: readonly ForeignPort[], repaired: boolean) => void): this;
}

export class BridgeAudit extends EventEmitter {
  private monitor: Monitor | undefined;
  private readonly log: Logger;
  /** Passes run one after another; a burst of changes collapses into one queued pass. */
  private readonly passes = new CoalescedPasses(
    () => this.pass(),
    (err) => this.log.error({ err }, 'bridge audit pass crashed'),
  );
  /** Ports already reported (alert-only) or being removed, so each is handled and counted once. */
  private readonly handled = new Set<string>();

  constructor(private readonly opts: BridgeAuditOptions) {
    super();
    if (opts.monitor && !coversRequests(opts.monitor.requests, BRIDGE_AUDIT_MONITOR)) throw new TypeError('BridgeAudit: the shared monitor does not cover BRIDGE_AUDIT_MONITOR');
    this.log = opts.logger.child({ component: 'audit', bridge: opts.bridge });
  }

  async start(): Promise<void> {
    const m = this.opts.monitor ?? this.opts.client.monitor(BRIDGE_AUDIT_MONITOR);
    this.monitor = m;
    m.on('change', this.onChange);
    m.on('synced', this.onChange);
    await m.ready;
    await this.schedule();
  }

  private readonly onChange = (): void => void this.schedule();

  stop(): void {
    const m = this.monitor;
    if (!m) return;
    m.off('change', this.onChange);
    m.off('synced', this.onChange);
    if (!this.opts.monitor) m.close();
  }

  /** Queue one audit pass (at most one waits behind the running one). */
  schedule(): Promise<void> {
    return this.passes.schedule();
  }

  private async pass(): Promise<void> {
    const m = this.monitor;
    if (!m || !this.opts.client.connected) return;
    const foreign = findForeignPorts(this.opts.bridge, VIEW.rows(m, 'Bridge'), VIEW.rows(m, 'Port'), VIEW.rows(m, 'Interface'));
    // Forget ports that are gone, so a re-added one is seen again.
    const present = new Set(foreign.map((f) => f.portUuid));
    for (const u of this.handled) if (!present.has(u)) this.handled.delete(u);
    const fresh = foreign.filter((f) => !this.handled.has(f.portUuid));
    if (fresh.length === 0) return;
    this.log.warn({ ports: fresh, repair: this.opts.repair }, 'foreign ports on the integration bridge');
    for (const f of fresh) this.handled.add(f.portUuid);
    if (this.opts.repair) {
      try {
        await this.opts.client.transact(removePortOps(this.opts.bridge, fresh));
      } catch (err) {
        for (const f of fresh) this.handled.delete(f.portUuid);
        this.log.warn({ err }, 'removing foreign ports failed; retrying on the next change');
        return;
      }
    }
    this.emit('drift', 'foreign-port', fresh, this.opts.repair);
  }
}
