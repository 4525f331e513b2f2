import { EventEmitter } from 'node:events';
import type { Logger } from '../log.ts';
import type { OvsdbClient } from '../ovsdb/client.ts';
import { type RowOf, ovnNbColumns } from '../ovsdb/model/index.ts';
import type { Monitor } from '../ovsdb/monitor.ts';
import { contains, hostOf, parseCidr, parseIp } from './ip.ts';

// The agent's view of the control plane's intent for pods: what OVN's
// Northbound DB says a logical switch port is (MAC, IPs, requested chassis,
// owner uid) and where its gateway is. Read through our own monitor — no
// polling, no ovn-nbctl. Everything a pod may send comes from here, never from
// the host's request.

export interface PodPort {
  readonly lsp: string;
  readonly mac: string;
  /** CIDRs: the pod IP with the switch's prefix length. */
  readonly ips: readonly string[];
  readonly gateways: readonly string[];
  /** options:requested-chassis, split on commas (OVN ≥ 22.06 allows a list). */
  readonly requestedChassis: readonly string[];
  /** The pod UID the control plane recorded, if any. */
  readonly podUid: string | undefined;
  /**
   * options:iface-id-ver, if set (ovn-kubernetes: the pod UID): ovn-controller binds
   * the port only to an interface with the same external_ids:iface-id-ver (lease.ts EXT.ifaceIdVer).
   */
  readonly ifaceIdVer: string | undefined;
  readonly up: boolean;
}

/** What the view reads from the Northbound DB (ovsdb/model: the monitor request and the row types). */
const VIEW = ovnNbColumns({
  Logical_Switch_Port: ['name', 'addresses', 'dynamic_addresses', 'options', 'external_ids', 'type', 'up'],
  Logical_Switch: ['name', 'ports', 'other_config'],
  Logical_Router_Port: ['name', 'networks'],
});
type NbRow<T extends keyof typeof VIEW.selection> = RowOf<typeof VIEW, T>;

export interface OvnViewOptions {
  readonly client: OvsdbClient;
  readonly logger: Logger;
  /** external_ids key where the control plane records the pod UID. */
  readonly podUidKey: string;
}

export declare interface OvnView {
  on(event: 'lsp', l: (name: string, kind: 'insert' | 'modify' | 'delete') => void): this;
}

export class OvnView extends EventEmitter {
  private monitor: Monitor | undefined;
  /** LSP name → row uuid, kept from change events so lookups are O(1). */
  private readonly byName = new Map<string, string>();
  /**
   * LSP uuid → its Logical_Switch's uuid, from the same events: a lookup (once per lease on
   * every orphan sweep) would otherwise scan every switch's port set — all of a cluster's
   * pods with a central NB.
   */
  private readonly switchOf = new Map<string, string>();

  constructor(private readonly opts: OvnViewOptions) {
    super();
  }

  get connected(): boolean {
    return this.opts.client.connected && this.monitor !== undefined;
  }

  async start(): Promise<void> {
    await this.opts.client.start();
    const m = this.opts.client.monitor(VIEW.requests);
    m.on('change', (c) => {
      if (c.table === 'Logical_Switch') {
        this.indexSwitchPorts(c.uuid, VIEW.changed('Logical_Switch', c.old), VIEW.changed('Logical_Switch', c.new));
        return;
      }
      if (c.table !== 'Logical_Switch_Port') return;
      const name = VIEW.changed('Logical_Switch_Port', c.new ?? c.old)?.name ?? '';
      if (c.kind === 'delete') {
        if (this.byName.get(name) === c.uuid) this.byName.delete(name);
      } else {
        this.byName.set(name, c.uuid);
      }
      this.emit('lsp', name, c.kind);
    });
    this.monitor = m;
    await m.ready;
  }

  stop(): void {
    this.monitor?.close();
  }

  /**
   * Catch up with the NB server: an echo round trip on the monitor's connection.
   * ovsdb-server flushes a session's pending monitor updates before it reads the
   * session's next request (jsonrpc-server.c, ovsdb_jsonrpc_session_run), so once the
   * echo is answered every change committed before it has reached our replica. For a
   * CNI ADD that follows the LSP's creation closely (the control plane creates the port,
   * then the kubelet runs the pod). Never throws: a failed echo only means no catching up.
   */
  async sync(timeoutMs = 2000): Promise<void> {
    try {
      await this.opts.client.request('echo', ['dpu-agent sync'], timeoutMs);
    } catch {
      /* not connected or slow: the caller decides with what it has */
    }
  }

  lookup(lsp: string): PodPort | undefined {
    const m = this.monitor;
    if (!m) return undefined;
    const uuid = this.byName.get(lsp);
    const row = uuid ? VIEW.row(m, 'Logical_Switch_Port', uuid) : undefined;
    if (!row || row.type !== '') return undefined;
    const addr = firstAddress(row);
    if (!addr) return undefined;
    const lsUuid = this.switchOf.get(uuid as string);
    const ls = lsUuid ? VIEW.row(m, 'Logical_Switch', lsUuid) : undefined;
    const nets = ls ? this.switchNetworks(ls) : [];
    const ips = addr.ips.map((ip) => {
      const net = nets.find((n) => contains(n.cidr, ip));
      const fam = parseIp(ip)?.family ?? 4;
      return `${ip}/${net ? net.cidr.prefix : fam === 4 ? 32 : 128}`;
    });
    const gateways = addr.ips.flatMap((ip) => nets.filter((n) => n.gateway && contains(n.cidr, ip)).map((n) => n.gateway as string));
    const options = row.options;
    const ext = row.external_ids;
    const up = row.up[0] === true;
    return {
      lsp,
      mac: addr.mac,
      ips,
      gateways,
      requestedChassis: (options.get('requested-chassis') ?? '').split(',').map((s) => s.trim()).filter(Boolean),
      podUid: ext.get(this.opts.podUidKey),
      ifaceIdVer: options.get('iface-id-ver'),
      up,
    };
  }

  private indexSwitchPorts(ls: string, old: NbRow<'Logical_Switch'> | undefined, next: NbRow<'Logical_Switch'> | undefined): void {
    const now = new Set((next?.ports ?? []).map((p) => p.value));
    for (const p of old?.ports ?? []) {
      const u = p.value;
      if (!now.has(u) && this.switchOf.get(u) === ls) this.switchOf.delete(u);
    }
    for (const u of now) this.switchOf.set(u, ls);
  }

  /**
   * Subnets on the switch and their gateway: the router port attached to the
   * switch (LSP type=router → options:router-port → LRP.networks) gives both;
   * other_config:subnet (what ovn-kubernetes sets) gives the prefix when there is no router.
   */
  private switchNetworks(ls: NbRow<'Logical_Switch'>): Array<{ cidr: NonNullable<ReturnType<typeof parseCidr>>; gateway?: string }> {
    const m = this.monitor as Monitor;
    const out: Array<{ cidr: NonNullable<ReturnType<typeof parseCidr>>; gateway?: string }> = [];
    const lsps = VIEW.rows(m, 'Logical_Switch_Port');
    const lrps = [...VIEW.rows(m, 'Logical_Router_Port').values()];
    for (const p of ls.ports) {
      const r = lsps.get(p.value);
      if (!r || r.type !== 'router') continue;
      const lrpName = r.options.get('router-port');
      const lrp = lrps.find((x) => x.name === lrpName);
      for (const n of lrp?.networks ?? []) {
        const cidr = parseCidr(n);
        if (cidr) out.push({ cidr, gateway: hostOf(n) });
      }
    }
    const oc = ls.other_config;
    for (const k of ['subnet', 'ipv6_prefix']) {
      const v = oc.get(k);
      const cidr = v ? parseCidr(k === 'ipv6_prefix' && !v.includes('/') ? `${v}/64` : v) : undefined;
      if (cidr && !out.some((o) => o.cidr.family === cidr.family)) out.push({ cidr });
    }
    return out;
  }
}

/** "MAC IP…" from addresses (or dynamic_addresses when addresses says "dynamic"). */
function firstAddress(row: NbRow<'Logical_Switch_Port'>): { mac: string; ips: string[] } | undefined {
  for (const entry of row.addresses) {
    const text = entry === 'dynamic' ? (row.dynamic_addresses[0] ?? '') : entry;
    const [mac, ...ips] = text.trim().split(/\s+/);
    if (mac && /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) return { mac: mac.toLowerCase(), ips };
  }
  return undefined;
}
