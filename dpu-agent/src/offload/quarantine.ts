// TC quarantine (DESIGN §1: "Unbound representors are quarantined (TC drop at
// ingress)"). Stacks on the link-down quarantine of hw/quarantine.ts behind the
// same `Quarantine` interface, so the VF pool does not change:
//   apply: drop filter FIRST, then link down, then flush addresses;
//   lift:  link up, then remove the drop filter LAST.
// The pool calls `lift` as the last step before the plug and `apply` as the first
// step of a release, so an unleased representor never forwards.
//
// The drop filter, same as:
//   tc qdisc add dev pf0vf3 clsact
//   tc filter replace dev pf0vf3 ingress prio 1 handle 1 protocol all flower [skip_sw|skip_hw] \
//      action drop cookie 6470752d6167656e742d71756172          ("dpu-agent-quar")
// or, when the kernel has no cls_flower, the same with `matchall`. Which one is
// decided by probing on the first apply; with neither (or no act_gact, or no
// clsact) the quarantine says so in one log line and stays link-down only.
//
// Marks, so the audit (tc-audit.ts) tells our filters from OVS's (16-byte UFID
// cookie) and from foreign ones: prio 1 + handle 1 + protocol all + the cookie.
// The cookie is 14 bytes, not the issue's "dpu-agent-quarantine": the kernel caps
// TC_COOKIE_MAX_SIZE at 16 (act_api.c tcf_action_init_1 → EINVAL), and a length
// other than 16 can never be mistaken for an OVS UFID.
// Prio 1 puts the drop ahead of every OVS filter (OVS uses 2..4 and 5+; 1 is its
// ingress policer, a matchall that only `ingress_policing_rate` creates, which the
// agent never sets on representors).
import type { TcPolicy } from '../config.ts';
import { TcError } from '../errors.ts';
import type { AddrInfo, RtLinks } from '../hw/rtlink.ts';
import type { Quarantine } from '../hw/quarantine.ts';
import type { Representor } from '../hw/types.ts';
import type { Logger } from '../log.ts';
import { AttrWriter } from '../netlink/nl.ts';
import {
  ETH_P_ALL,
  TC_H_CLSACT,
  TC_PARENT_INGRESS,
  dropAction,
  encodeActions,
  isFlower,
  decodeActions,
  type FlowerFilter,
  type FlowerFlags,
  type OtherFilter,
  type TcAction,
  type TcFilter,
} from '../tc/index.ts';
import { type CommandRunner, defaultRunner } from '../util/command.ts';
import { sysfsIfindex, type IfindexResolver, type TcApi } from './tc-api.ts';

export const QUARANTINE_PRIO = 1;
export const QUARANTINE_HANDLE = 1;
/** "dpu-agent-quar" in hex (TCA_ACT_COOKIE, ≤ 16 bytes). */
export const QUARANTINE_COOKIE = Buffer.from('dpu-agent-quar').toString('hex');

// cls_matchall TCA_OPTIONS (linux/pkt_cls.h TCA_MATCHALL_*)
export const TCA_MATCHALL_CLASSID = 1;
export const TCA_MATCHALL_ACT = 2;
export const TCA_MATCHALL_FLAGS = 3;
export const TCA_MATCHALL_PCNT = 4;

export type QuarantineMode = 'unknown' | 'flower' | 'matchall' | 'link-only';

/** tc-policy → classifier flags (OVS maps other_config:tc-policy the same way). */
export function policyFlags(policy: TcPolicy): FlowerFlags {
  if (policy === 'skip_sw') return { skipSw: true };
  if (policy === 'skip_hw') return { skipHw: true };
  return {};
}

/** The flower drop-all filter for one representor. Pure. */
export function quarantineFlower(ifindex: number, flags: FlowerFlags): FlowerFilter {
  const f: FlowerFilter = {
    kind: 'flower',
    ifindex,
    parent: TC_PARENT_INGRESS,
    chain: 0,
    prio: QUARANTINE_PRIO,
    protocol: ETH_P_ALL,
    handle: QUARANTINE_HANDLE,
    key: {},
    actions: [dropAction({ cookie: QUARANTINE_COOKIE })],
  };
  if (Object.keys(flags).length > 0) f.flags = flags;
  return f;
}

/** The same as a matchall filter (options raw: matchall has no codec of its own). Pure. */
export function quarantineMatchall(ifindex: number, flags: FlowerFlags): OtherFilter {
  const w = new AttrWriter(128);
  encodeActions(w, [dropAction({ cookie: QUARANTINE_COOKIE })]);
  const options = [{ type: TCA_MATCHALL_ACT, data: w.toBuffer() }];
  const bits = (flags.skipHw ? 1 : 0) | (flags.skipSw ? 2 : 0);
  if (bits) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(bits); // host order; the agent runs on little-endian (x86, arm64 BlueField)
    options.push({ type: TCA_MATCHALL_FLAGS, data: b });
  }
  return { kind: 'matchall', ifindex, parent: TC_PARENT_INGRESS, chain: 0, prio: QUARANTINE_PRIO, protocol: ETH_P_ALL, handle: QUARANTINE_HANDLE, options };
}

/** The actions of any filter we can decode (flower: typed; matchall: from its raw ACT option). */
export function filterActions(f: TcFilter): TcAction[] {
  if (isFlower(f)) return f.actions;
  if (f.kind === 'matchall' && 'options' in f && f.options) {
    const act = f.options.find((o) => o.type === TCA_MATCHALL_ACT);
    if (!act) return [];
    try {
      const data = Buffer.from(act.data.buffer, act.data.byteOffset, act.data.byteLength);
      return decodeActions({ type: TCA_MATCHALL_ACT, flags: 0, data });
    } catch {
      return [];
    }
  }
  return [];
}

/** One of our quarantine filters: prio 1, handle 1, protocol all, ingress, drop with our cookie. Pure. */
export function isQuarantineFilter(f: TcFilter): boolean {
  if (f.prio !== QUARANTINE_PRIO || f.handle !== QUARANTINE_HANDLE || f.protocol !== ETH_P_ALL || f.parent !== TC_PARENT_INGRESS) return false;
  if ((f.chain ?? 0) !== 0 || (f.kind !== 'flower' && f.kind !== 'matchall')) return false;
  const acts = filterActions(f);
  return acts.length === 1 && acts[0]!.cookie === QUARANTINE_COOKIE && acts[0]!.params?.control === 2; // TC_ACT_SHOT
}

export interface TcQuarantineOptions {
  readonly tc: TcApi;
  /** The link-down quarantine this one stacks on (hw/quarantine.ts). */
  readonly link: Quarantine;
  readonly tcPolicy: TcPolicy;
  readonly logger: Logger;
  /** `ip addr flush` over rtnetlink (hw/rtlink.ts RtLinks); without it, an `ip` process per flush. */
  readonly addrs?: Pick<RtLinks, 'addresses' | 'flushAddresses'>;
  readonly run?: CommandRunner;
  readonly ifindexOf?: IfindexResolver;
}

/** What a survey (see Quarantine.survey) knew of one representor; undefined fields: unknown. */
interface Hint {
  ifindex: number | undefined;
  up: boolean | undefined;
  clsact: boolean | undefined;
  addrs: AddrInfo[] | undefined;
}

interface Survey {
  reps: Map<string, { ifindex: number; up: boolean | undefined }>;
  /** Ifindexes with a clsact/ingress qdisc; undefined when the dump failed. */
  clsact: Set<number> | undefined;
  addrs: Map<number, AddrInfo[]> | undefined;
}

export class TcQuarantine implements Quarantine {
  private modeValue: QuarantineMode = 'unknown';
  private probing: Promise<QuarantineMode> | undefined;
  /** Representors we quarantined (name → ifindex), and the ones we lifted (leased). */
  private readonly held = new Map<string, number>();
  private readonly open = new Set<string>();
  /** Per-representor op chain: apply/lift/reinstall of one device never interleave. */
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly log: Logger;
  private readonly run: CommandRunner;
  private readonly ifindexOf: IfindexResolver;
  private flags: FlowerFlags;
  private surveyed: Survey | undefined;

  constructor(private readonly opts: TcQuarantineOptions) {
    this.log = opts.logger.child({ component: 'quarantine' });
    this.run = opts.run ?? defaultRunner;
    this.ifindexOf = opts.ifindexOf ?? sysfsIfindex;
    this.flags = policyFlags(opts.tcPolicy);
  }

  get mode(): QuarantineMode {
    return this.modeValue;
  }

  /** Representors that must carry our drop filter (name → ifindex). */
  quarantined(): ReadonlyMap<string, number> {
    return this.held;
  }

  /** Representors that are leased: none of our filters may stay there. */
  lifted(): ReadonlySet<string> {
    return this.open;
  }

  apply(representor: string): Promise<void> {
    return this.serial(representor, async () => {
      const h = this.hint(representor);
      this.open.delete(representor);
      const ifindex = h?.ifindex ?? (await this.ifindexOf(representor));
      if (ifindex !== undefined) {
        this.held.set(representor, ifindex);
        await this.install(representor, ifindex, h?.clsact === true); // first: from here on nothing is forwarded
      } else {
        this.log.warn({ representor }, 'representor not found: no drop filter');
      }
      if (h?.up !== false) await this.opts.link.apply(representor);
      await this.flushAddresses(representor, ifindex, h?.addrs);
    });
  }

  lift(representor: string): Promise<void> {
    return this.serial(representor, async () => {
      const h = this.hint(representor);
      if (h?.up !== true) await this.opts.link.lift(representor);
      const ifindex = this.held.get(representor) ?? h?.ifindex ?? (await this.ifindexOf(representor));
      this.held.delete(representor);
      this.open.add(representor);
      // No clsact/ingress qdisc (surveyed): no filter of ours can be there.
      if (ifindex !== undefined && this.modeValue !== 'link-only' && h?.clsact !== false) await this.remove(representor, ifindex); // last
    });
  }

  /**
   * The pool's start (Quarantine.survey): links (from the representors' discovery),
   * qdiscs and addresses in one dump each; apply/lift until end() use them once per
   * representor. A failed dump only means that part is done the long way.
   */
  async survey(representors: readonly Representor[]): Promise<() => void> {
    const reps = new Map(representors.map((r) => [r.name, { ifindex: r.ifindex, up: r.adminUp }]));
    let clsact: Set<number> | undefined;
    try {
      clsact = new Set((await this.opts.tc.dumpQdiscs()).filter((q) => q.parent === TC_H_CLSACT).map((q) => q.ifindex));
    } catch (err) {
      this.log.warn({ err }, 'qdisc dump failed: quarantine start without it');
    }
    let addrs: Map<number, AddrInfo[]> | undefined;
    if (this.opts.addrs) {
      try {
        addrs = new Map();
        for (const a of await this.opts.addrs.addresses()) addrs.set(a.ifindex, [...(addrs.get(a.ifindex) ?? []), a]);
      } catch (err) {
        addrs = undefined;
        this.log.warn({ err }, 'address dump failed: quarantine start without it');
      }
    }
    const s: Survey = { reps, clsact, addrs };
    this.surveyed = s;
    return () => {
      if (this.surveyed === s) this.surveyed = undefined;
    };
  }

  /** What the survey knew of this representor; used once (apply/lift change it). */
  private hint(representor: string): Hint | undefined {
    const s = this.surveyed;
    const r = s?.reps.get(representor);
    if (!s || !r) return undefined;
    s.reps.delete(representor);
    return {
      ifindex: r.ifindex,
      up: r.up,
      clsact: s.clsact ? s.clsact.has(r.ifindex) : undefined,
      addrs: s.addrs ? (s.addrs.get(r.ifindex) ?? []) : undefined,
    };
  }

  /**
   * The audit found our filter missing on a quarantined representor: put it back
   * (serialised with apply/lift, and only if the representor is still quarantined).
   * True when a filter was installed.
   */
  reinstall(representor: string): Promise<boolean> {
    return this.serial(representor, async () => {
      const ifindex = this.held.get(representor);
      if (ifindex === undefined || this.modeValue === 'link-only') return false;
      return this.install(representor, ifindex);
    });
  }

  /** Decides flower / matchall / link-only once, on the first device we quarantine. */
  private probe(ifindex: number): Promise<QuarantineMode> {
    this.probing ??= (async () => {
      const reasons: string[] = [];
      try {
        await this.opts.tc.ensureClsact(ifindex);
      } catch (err) {
        reasons.push(`clsact: ${errText(err)}`);
        return this.settle('link-only', reasons);
      }
      for (const mode of ['flower', 'matchall'] as const) {
        try {
          await this.addFilter(mode, ifindex);
          return this.settle(mode, reasons);
        } catch (err) {
          reasons.push(`${mode}: ${errText(err)}`);
          // Anything but "not there" (ENOENT: classifier or act_gact module missing;
          // EOPNOTSUPP) is a real failure of this device, not a missing feature.
          if (!(err instanceof TcError) || !['ENOENT', 'EOPNOTSUPP'].includes(err.errnoName)) throw err;
        }
      }
      return this.settle('link-only', reasons);
    })();
    // A device-specific failure is not a verdict on the kernel: probe again next time.
    this.probing.catch(() => (this.probing = undefined));
    return this.probing;
  }

  private settle(mode: QuarantineMode, reasons: string[]): QuarantineMode {
    this.modeValue = mode;
    if (mode === 'link-only') {
      this.log.warn({ reasons }, 'TC quarantine unavailable (no clsact, or neither cls_flower nor cls_matchall with act_gact): quarantine is link-down only');
    } else {
      this.log.info({ mode, flags: this.flags, fallbacks: reasons }, `TC quarantine: ${mode} drop filter at ingress prio ${QUARANTINE_PRIO}`);
    }
    return mode;
  }

  private async addFilter(mode: 'flower' | 'matchall', ifindex: number): Promise<void> {
    try {
      await this.replace(mode, ifindex);
    } catch (err) {
      // skip_sw on a device without hardware (a veth, a representor whose eSwitch
      // refuses the rule): keep the drop in software rather than have none.
      if (!this.flags.skipSw || !(err instanceof TcError) || !['EOPNOTSUPP', 'EINVAL'].includes(err.errnoName)) throw err;
      this.log.warn({ ifindex, errno: err.errnoName, extack: err.extack }, 'skip_sw drop filter refused by the hardware: falling back to software (tc-policy none)');
      this.flags = {};
      await this.replace(mode, ifindex);
    }
  }

  private async replace(mode: 'flower' | 'matchall', ifindex: number): Promise<void> {
    if (mode === 'flower') await this.opts.tc.replaceFilter(quarantineFlower(ifindex, this.flags));
    else await this.opts.tc.replaceOtherFilter(quarantineMatchall(ifindex, this.flags));
  }

  /** Installs (replace: idempotent) the drop filter; false when TC is unavailable or it failed (logged). */
  private async install(representor: string, ifindex: number, clsactThere = false): Promise<boolean> {
    try {
      if (this.modeValue === 'unknown') await this.probe(ifindex);
      if (this.modeValue === 'link-only') return false;
      if (!clsactThere) await this.opts.tc.ensureClsact(ifindex);
      await this.addFilter(this.modeValue as 'flower' | 'matchall', ifindex);
      return true;
    } catch (err) {
      // Link down still follows; the audit sees the filter missing and retries.
      this.log.error({ err, representor, ifindex }, 'quarantine drop filter not installed');
      return false;
    }
  }

  private async remove(representor: string, ifindex: number): Promise<void> {
    const id = { ifindex, parent: TC_PARENT_INGRESS, chain: 0, prio: QUARANTINE_PRIO, protocol: ETH_P_ALL, handle: QUARANTINE_HANDLE };
    try {
      if (this.modeValue === 'matchall') await this.opts.tc.deleteFilterPrio({ ...id, kind: 'matchall' });
      else await this.opts.tc.deleteFilter({ ...id, kind: 'flower' });
    } catch (err) {
      // A leased port left with our drop filter is blackholed: say so; the audit removes it.
      this.log.error({ err, representor, ifindex }, 'quarantine drop filter not removed on lift');
      throw err;
    }
  }

  // same as: ip addr flush dev pf0vf3 — over rtnetlink when we have it (`known`: the survey's list)
  private async flushAddresses(dev: string, ifindex: number | undefined, known: AddrInfo[] | undefined): Promise<void> {
    if (!this.opts.addrs) {
      const r = await this.run(['ip', 'addr', 'flush', 'dev', dev]);
      if (r.code !== 0) this.log.warn({ representor: dev, stderr: r.stderr.trim() }, 'address flush failed');
      return;
    }
    if (ifindex === undefined || known?.length === 0) return;
    try {
      await this.opts.addrs.flushAddresses(ifindex, known);
    } catch (err) {
      this.log.warn({ err, representor: dev }, 'address flush failed');
    }
  }

  private serial<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(name) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.chains.set(name, tail);
    void tail.then(() => {
      if (this.chains.get(name) === tail) this.chains.delete(name);
    });
    return next;
  }
}

function errText(err: unknown): string {
  if (err instanceof TcError) return `${err.errnoName}${err.extack ? ` (${err.extack})` : ''}`;
  return err instanceof Error ? err.message : String(err);
}
