// Policy integrity of TC (DESIGN §1): on our representors and the uplink(s), the
// only TC filters allowed are
//   - our quarantine drop filter, on representors that are not leased (quarantine.ts),
//   - OVS's datapath flows: flower, an action cookie of 16 bytes (the UFID), and —
//     when ovs-vswitchd answers — a UFID that `dpctl/dump-flows -m type=tc` lists.
// Anything else is foreign: another classifier, a flower filter without an OVS
// cookie, a cookie OVS does not know, our drop filter on a leased representor
// (quarantine-stale). A quarantined representor without our filter is
// quarantine-missing and gets it back. Foreign filters are deleted (or only
// reported in alert-only mode: reconcile.repairDrift=false), logged with what they
// are, and counted in dpu_policy_drift_total{kind}.
//
// Scale (100,000 filters over 1,000 representors): a pass first reads every device
// through the partial view (tc/view.ts: id, kind, first cookie — no key, no
// action options). A device whose filters can all only be OVS flows (flower, a
// 16-byte UFID as first cookie, not the quarantine filter's id) keeps just those
// UFIDs until ovs-vswitchd's list is in; any other device has the same dump
// decoded in full and goes through auditDevice, as does a device with a UFID
// OVS does not list (re-read then). No filter object outlives its device's turn
// but those of findings.
//
// When: every intervalMs over all devices, and on RTNLGRP_TC notifications over the
// devices they name (debounced). A candidate is re-read after confirmMs before it
// is acted on, so a short-lived filter (OVS's feature probes at port start-up,
// one being replaced) is not taken for an intruder.
import { EventEmitter } from 'node:events';
import type { Logger } from '../log.ts';
import { type FilterView, type TcFilter, ETH_P_ALL, TC_PARENT_EGRESS, TC_PARENT_INGRESS, decodeFilterMessage, formatHandle, isFlower } from '../tc/index.ts';
import type { NlMessage } from '../netlink/nl.ts';
import type { OvsView } from './ovs-view.ts';
import { QUARANTINE_HANDLE, QUARANTINE_PRIO, type TcQuarantine, filterActions, isQuarantineFilter } from './quarantine.ts';
import { sysfsIfindex, type IfindexResolver, type TcApi } from './tc-api.ts';
import type { TcEvents } from './tc-events.ts';

export type DriftKind = 'foreign-tc-filter' | 'quarantine-missing' | 'quarantine-stale';
export type DeviceRole = 'quarantined' | 'leased' | 'uplink';

export interface AuditDevice {
  readonly name: string;
  readonly ifindex: number;
  readonly role: DeviceRole;
}

/** What the logs say about a filter: where it sits and what it does, never its whole key. */
export interface FilterSummary {
  hook: 'ingress' | 'egress';
  kind: string;
  chain: number;
  prio: number;
  protocol: string;
  handle: string;
  actions: string[];
  cookies: string[];
  why: string;
}

export interface Finding {
  readonly kind: DriftKind;
  readonly device: AuditDevice;
  /** Absent for quarantine-missing. */
  readonly filter?: TcFilter;
  readonly summary?: FilterSummary;
}

const OVS_COOKIE_HEX = 32; // 16-byte UFID

/** Whose filter is this, and why. Pure. */
export function classify(f: TcFilter, ovsUfids?: ReadonlySet<string>): { owner: 'quarantine' | 'ovs' | 'foreign'; why: string } {
  if (isQuarantineFilter(f)) return { owner: 'quarantine', why: 'dpu-agent quarantine drop' };
  if (!isFlower(f)) return { owner: 'foreign', why: `classifier ${f.kind} (OVS only installs flower)` };
  const cookies = f.actions.map((a) => a.cookie).filter((c): c is string => c !== undefined);
  const ufid = cookies.find((c) => c.length === OVS_COOKIE_HEX);
  if (!ufid) return { owner: 'foreign', why: cookies.length ? 'action cookie is not a 16-byte UFID' : 'no action cookie (OVS always sets its UFID)' };
  if (ovsUfids && !ovsUfids.has(ufid)) return { owner: 'foreign', why: 'UFID unknown to ovs-vswitchd (dpctl/dump-flows type=tc)' };
  return { owner: 'ovs', why: 'OVS datapath flow' };
}

export function summarize(f: TcFilter, why: string): FilterSummary {
  return {
    hook: f.parent === TC_PARENT_EGRESS ? 'egress' : 'ingress',
    kind: f.kind,
    chain: f.chain ?? 0,
    prio: f.prio,
    protocol: `0x${f.protocol.toString(16).padStart(4, '0')}`,
    handle: f.kind === 'flower' ? String(f.handle) : formatHandle(f.handle),
    actions: filterActions(f).map((a) => a.kind),
    cookies: filterActions(f).flatMap((a) => (a.cookie ? [a.cookie] : [])),
    why,
  };
}

/**
 * Findings on one device given its filters (both hooks). Pure.
 * `quarantineActive`: the quarantine has TC filters at all (not link-only).
 */
export function auditDevice(dev: AuditDevice, filters: readonly TcFilter[], o: { ovsUfids?: ReadonlySet<string>; quarantineActive: boolean }): Finding[] {
  const out: Finding[] = [];
  let ours = false;
  for (const f of filters) {
    const c = classify(f, o.ovsUfids);
    if (c.owner === 'quarantine') {
      if (dev.role === 'quarantined') ours = true;
      else out.push({ kind: 'quarantine-stale', device: dev, filter: f, summary: summarize(f, `quarantine drop filter on a ${dev.role} device`) });
    } else if (c.owner === 'foreign') {
      out.push({ kind: 'foreign-tc-filter', device: dev, filter: f, summary: summarize(f, c.why) });
    }
  }
  if (dev.role === 'quarantined' && o.quarantineActive && !ours) out.push({ kind: 'quarantine-missing', device: dev });
  return out;
}

/** Every representor the quarantine knows (quarantined or leased) and the uplinks, with their roles. */
export async function listDevices(q: Pick<TcQuarantine, 'quarantined' | 'lifted'>, uplinks: readonly string[], ifindexOf: IfindexResolver = sysfsIfindex): Promise<AuditDevice[]> {
  const out: AuditDevice[] = [...q.quarantined()].map(([name, ifindex]) => ({ name, ifindex, role: 'quarantined' as const }));
  for (const name of q.lifted()) {
    const ifindex = await ifindexOf(name);
    if (ifindex !== undefined) out.push({ name, ifindex, role: 'leased' });
  }
  for (const name of uplinks) {
    const ifindex = await ifindexOf(name);
    if (ifindex !== undefined) out.push({ name, ifindex, role: 'uplink' });
  }
  return out;
}

/**
 * Whether the view alone shows a filter that classify() can only call an OVS
 * flow once its UFID is known: flower, its first cookie a 16-byte UFID (so the
 * UFID classify picks), not at the quarantine filter's place. Anything else
 * goes to the full decode. Pure.
 */
export function ovsOnlyUfid(v: FilterView): string | undefined {
  if (v.kind !== 'flower' || v.cookie === undefined || v.cookie.length !== OVS_COOKIE_HEX) return undefined;
  if (v.prio === QUARANTINE_PRIO && v.handle === QUARANTINE_HANDLE && v.protocol === ETH_P_ALL) return undefined;
  return v.cookie;
}

/** A device after the first read: the UFIDs of its OVS-only filters, and the full decode of the rest when there was any. */
interface Glance {
  ufids: string[];
  full: TcFilter[] | undefined;
  filters: number;
}

export const filterKey = (f: TcFilter): string => `${f.ifindex}/${f.parent}/${f.chain ?? 0}/${f.prio}/${f.protocol}/${f.kind}/${f.handle}`;
const findingKey = (x: Finding): string => (x.filter ? `${x.kind}:${filterKey(x.filter)}` : `${x.kind}:${x.device.ifindex}`);

export interface TcAuditOptions {
  readonly tc: TcApi;
  readonly quarantine: TcQuarantine;
  /** Uplink netdev names (e.g. p0), audited like leased representors. */
  readonly uplinks: readonly string[];
  readonly repair: boolean;
  readonly intervalMs: number;
  /** Re-read a candidate after this long before acting (default 1000). */
  readonly confirmMs?: number;
  /** Notifications debounce (default 200). */
  readonly debounceMs?: number;
  readonly events?: TcEvents;
  readonly ovs?: OvsView;
  readonly logger: Logger;
  readonly ifindexOf?: IfindexResolver;
}

export declare interface TcAudit {
  on(event: 'drift', l: (kind: DriftKind, findings: readonly Finding[], repaired: boolean) => void): this;
  on(event: 'pass', l: (r: { devices: number; filters: number; findings: number; ms: number }) => void): this;
}

export class TcAudit extends EventEmitter {
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  /** Devices named by notifications since the last pass; `all` after an overrun. */
  private dirty = new Set<number>();
  private dirtyAll = false;
  /** Findings already reported (alert-only) so each is logged and counted once. */
  private readonly handled = new Set<string>();
  private readonly ifindexOf: IfindexResolver;
  private stopped = false;
  passes = 0;

  constructor(private readonly opts: TcAuditOptions) {
    super();
    this.log = opts.logger.child({ component: 'tc-audit' });
    this.ifindexOf = opts.ifindexOf ?? sysfsIfindex;
  }

  /** Periodic passes, plus notification-driven ones from `events` (default: the option). */
  start(events: TcEvents | undefined = this.opts.events): void {
    this.stopped = false;
    this.timer = setInterval(() => void this.schedule(), this.opts.intervalMs);
    this.timer.unref();
    const ev = events;
    if (ev) {
      ev.on('change', (ifindex) => this.touch(ifindex));
      ev.on('overrun', () => this.touch(undefined));
    }
    this.log.info({ intervalMs: this.opts.intervalMs, notifications: ev !== undefined, ovsCrossCheck: this.opts.ovs !== undefined, repair: this.opts.repair }, 'TC audit started');
    void this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.debounce) clearTimeout(this.debounce);
  }

  private touch(ifindex: number | undefined): void {
    if (ifindex === undefined) this.dirtyAll = true;
    else this.dirty.add(ifindex);
    if (this.debounce || this.stopped) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      const all = this.dirtyAll;
      const only = this.dirty;
      this.dirty = new Set();
      this.dirtyAll = false;
      void this.schedule(all ? undefined : only);
    }, this.opts.debounceMs ?? 200);
    this.debounce.unref();
  }

  /** Queues one pass (over `only` ifindexes, or every device). Resolves with its findings. */
  schedule(only?: ReadonlySet<number>): Promise<Finding[]> {
    const run = this.chain.then(() => this.pass(only));
    this.chain = run.catch((err: unknown) => this.log.warn({ err }, 'TC audit pass failed'));
    return run;
  }

  /** The devices and their roles right now. */
  devices(): Promise<AuditDevice[]> {
    return listDevices(this.opts.quarantine, this.opts.uplinks, this.ifindexOf);
  }

  private async dumpDevice(dev: AuditDevice, qdiscKind: string | undefined): Promise<TcFilter[]> {
    if (!qdiscKind) return [];
    const out = await this.opts.tc.dumpAnyFilters(dev.ifindex, TC_PARENT_INGRESS);
    if (qdiscKind === 'clsact') out.push(...(await this.opts.tc.dumpAnyFilters(dev.ifindex, TC_PARENT_EGRESS)));
    return out;
  }

  /**
   * One device, both hooks, through the partial view; the dump's messages are
   * decoded in full only when some filter is not OVS-only (ovsOnlyUfid) or the
   * device is quarantined (auditDevice looks for our filter there).
   */
  private async glance(dev: AuditDevice, qdiscKind: string | undefined): Promise<Glance> {
    const g: Glance = { ufids: [], full: undefined, filters: 0 };
    if (!qdiscKind) return g;
    let msgs: NlMessage[] = [];
    let needFull = dev.role === 'quarantined';
    const visit = (v: FilterView, m: NlMessage): void => {
      g.filters++;
      msgs.push(m);
      const ufid = ovsOnlyUfid(v);
      if (ufid === undefined) needFull = true;
      else if (!needFull) g.ufids.push(ufid);
    };
    await this.opts.tc.scanFilters(dev.ifindex, TC_PARENT_INGRESS, {}, visit);
    if (qdiscKind === 'clsact') await this.opts.tc.scanFilters(dev.ifindex, TC_PARENT_EGRESS, {}, visit);
    if (needFull) {
      g.full = msgs.map(decodeFilterMessage);
      g.ufids = [];
    }
    msgs = [];
    return g;
  }

  private async pass(only?: ReadonlySet<number>): Promise<Finding[]> {
    const t0 = performance.now();
    this.passes++;
    const devices = (await this.devices()).filter((d) => !only || only.has(d.ifindex));
    if (devices.length === 0) return [];
    const qdiscs = new Map<number, string>();
    for (const q of await this.opts.tc.dumpQdiscs()) if (q.parent === 0xfffffff1) qdiscs.set(q.ifindex, q.kind);
    const glances = new Map<number, Glance>();
    let nFilters = 0;
    for (const d of devices) {
      try {
        const g = await this.glance(d, qdiscs.get(d.ifindex));
        glances.set(d.ifindex, g);
        nFilters += g.filters;
      } catch (err) {
        this.log.warn({ err, device: d.name }, 'TC dump failed; device skipped this pass');
      }
    }
    // After the TC dump: a flow OVS adds meanwhile is missing from neither.
    const ufids = await this.ovsUfids();
    const quarantineActive = this.opts.quarantine.mode === 'flower' || this.opts.quarantine.mode === 'matchall';
    let findings: Finding[] = [];
    for (const d of devices) {
      const g = glances.get(d.ifindex);
      if (!g) continue;
      glances.delete(d.ifindex);
      let fs = g.full;
      if (!fs) {
        // OVS-only filters: no finding unless OVS does not list a UFID; then the device is read again in full.
        if (!ufids || g.ufids.every((u) => ufids.has(u))) continue;
        try {
          fs = await this.dumpDevice(d, qdiscs.get(d.ifindex));
        } catch (err) {
          this.log.warn({ err, device: d.name }, 'TC dump failed; device skipped this pass');
          continue;
        }
      }
      findings.push(...auditDevice(d, fs, { ...(ufids ? { ovsUfids: ufids } : {}), quarantineActive }));
    }
    // Forget findings that are gone, so a re-added filter is seen again.
    const now = new Set(findings.map(findingKey));
    for (const k of this.handled) {
      const dev = Number(k.split(':')[1]?.split('/')[0]);
      if (!now.has(k) && (!only || only.has(dev))) this.handled.delete(k);
    }
    findings = findings.filter((x) => !this.handled.has(findingKey(x)));
    if (findings.length > 0) findings = await this.confirm(findings, quarantineActive);
    for (const kind of ['foreign-tc-filter', 'quarantine-stale', 'quarantine-missing'] as const) {
      const list = findings.filter((x) => x.kind === kind);
      if (list.length > 0) await this.act(kind, list);
    }
    const ms = performance.now() - t0;
    this.emit('pass', { devices: devices.length, filters: nFilters, findings: findings.length, ms });
    return findings;
  }

  private async ovsUfids(): Promise<Set<string> | undefined> {
    if (!this.opts.ovs) return undefined;
    try {
      return await this.opts.ovs.tcUfids();
    } catch (err) {
      // No cross-check this pass (ovs-vswitchd restarting, not there): cookies alone decide.
      this.log.debug({ err }, 'dpctl/dump-flows unavailable: UFIDs not cross-checked');
      return undefined;
    }
  }

  /** Re-reads the devices of the candidates after confirmMs; keeps those still there. */
  private async confirm(findings: Finding[], quarantineActive: boolean): Promise<Finding[]> {
    const wait = this.opts.confirmMs ?? 1000;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const devs = new Map(findings.map((x) => [x.device.ifindex, x.device]));
    const qdiscs = new Map<number, string>();
    for (const q of await this.opts.tc.dumpQdiscs()) if (q.parent === 0xfffffff1) qdiscs.set(q.ifindex, q.kind);
    const ufids = await this.ovsUfids();
    // Roles may have changed meanwhile (a lease, a release): take them afresh.
    const current = new Map((await this.devices()).map((d) => [d.ifindex, d]));
    const out: Finding[] = [];
    for (const [ifindex] of devs) {
      const d = current.get(ifindex);
      if (!d) continue;
      let fs: TcFilter[];
      try {
        fs = await this.dumpDevice(d, qdiscs.get(ifindex));
      } catch {
        continue;
      }
      const again = new Set(auditDevice(d, fs, { ...(ufids ? { ovsUfids: ufids } : {}), quarantineActive }).map(findingKey));
      out.push(...findings.filter((x) => x.device.ifindex === ifindex && again.has(findingKey(x))));
    }
    return out;
  }

  private async act(kind: DriftKind, list: Finding[]): Promise<void> {
    const repair = this.opts.repair;
    const details = list.map((x) => ({ device: x.device.name, role: x.device.role, ...(x.summary ? { filter: x.summary } : {}) }));
    this.log.warn({ kind, findings: details, repair }, kind === 'quarantine-missing' ? 'quarantine drop filter missing' : 'TC filters that should not be there');
    let repaired = repair;
    for (const x of list) {
      if (!repair) {
        this.handled.add(findingKey(x));
        continue;
      }
      try {
        if (x.kind === 'quarantine-missing') await this.opts.quarantine.reinstall(x.device.name);
        else await this.remove(x.filter as TcFilter);
      } catch (err) {
        repaired = false;
        this.log.error({ err, device: x.device.name, kind }, 'TC drift not repaired; retrying next pass');
      }
    }
    this.emit('drift', kind, list, repaired);
  }

  // same as: tc filter del dev X ingress|egress [chain C] prio P protocol Y handle H flower
  //     or, for another classifier, the whole instance: tc filter del dev X … prio P protocol Y KIND
  private async remove(f: TcFilter): Promise<void> {
    if (isFlower(f)) await this.opts.tc.deleteFilter(f);
    else await this.opts.tc.deleteFilterPrio({ ifindex: f.ifindex, parent: f.parent, chain: f.chain ?? 0, prio: f.prio, protocol: f.protocol, kind: f.kind });
  }
}
