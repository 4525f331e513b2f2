import { EventEmitter } from 'node:events';
import type { ChassisConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { OvsdbClient } from '../ovsdb/client.ts';
import type { Monitor } from '../ovsdb/monitor.ts';
import { CoalescedPasses } from '../util/coalesce.ts';
import { CHASSIS_VIEW, type ChassisPlan, type Difference, type DriftKind, planChassis } from './desired.ts';

// Keeps the chassis identity and br-int as configured. The first pass after
// (re)connecting applies the config; any difference found later, when the
// replica had converged, was made by someone else: that is drift, which is
// logged with its details, counted, and repaired unless alert-only.

export interface ChassisReconcilerOptions {
  readonly client: OvsdbClient;
  readonly config: ChassisConfig;
  readonly logger: Logger;
  /** false = alert-only: report drift, do not repair it. */
  readonly repairDrift: boolean;
  /** How long to wait for our own write to come back through the monitor. */
  readonly settleTimeoutMs?: number;
}

export declare interface ChassisReconciler {
  on(event: 'applied', l: (differences: readonly Difference[]) => void): this;
  on(event: 'drift', l: (differences: readonly Difference[], repaired: boolean) => void): this;
  on(event: 'converged', l: () => void): this;
  on(event: 'error', l: (err: Error) => void): this;
}

export class ChassisReconciler extends EventEmitter {
  private readonly log: Logger;
  private monitor: Monitor | undefined;
  /** Passes run one at a time; a burst of row events collapses into one more. */
  private readonly passes = new CoalescedPasses(
    () => this.pass(),
    (err) => this.log.error({ err }, 'chassis reconcile pass crashed'),
  );
  private converged = false;
  private stopped = false;
  /** Writes the agent made (0 on a restart with nothing to change). */
  writes = 0;
  readonly drift = new Map<DriftKind, number>();

  constructor(private readonly opts: ChassisReconcilerOptions) {
    super();
    this.log = opts.logger.child({ component: 'chassis', systemId: opts.config.systemId });
  }

  /** Start watching; resolves when the chassis first matches the config. */
  async start(): Promise<void> {
    const m = this.opts.client.monitor(CHASSIS_VIEW.requests);
    this.monitor = m;
    // A resync after reconnect is a fresh start: differences then are applied, not counted as drift
    // unless the replica had converged before and the server changed in between.
    m.on('change', () => this.schedule());
    m.on('synced', () => this.schedule());
    const converged = new Promise<void>((resolve) => this.once('converged', resolve));
    await m.ready;
    this.schedule();
    await converged;
  }

  stop(): void {
    this.stopped = true;
    this.monitor?.close();
  }

  /** True when the last pass found nothing to change. */
  get isConverged(): boolean {
    return this.converged;
  }

  plan(): ChassisPlan {
    const m = this.monitor;
    if (!m) return { differences: [], ops: [] };
    const ovs = [...CHASSIS_VIEW.rows(m, 'Open_vSwitch').values()][0];
    return planChassis(this.opts.config, ovs, CHASSIS_VIEW.rows(m, 'Bridge').values());
  }

  private schedule(): void {
    if (this.stopped) return;
    void this.passes.schedule();
  }

  private async pass(): Promise<void> {
    if (this.stopped || !this.opts.client.connected) return;
    const plan = this.plan();
    if (plan.ops.length === 0) {
      if (!this.converged) {
        this.converged = true;
        this.log.info('chassis matches config');
        this.emit('converged');
      }
      return;
    }
    const isDrift = this.converged;
    if (isDrift) {
      for (const d of plan.differences) this.drift.set(d.kind, (this.drift.get(d.kind) ?? 0) + 1);
      this.log.warn({ differences: plan.differences, repair: this.opts.repairDrift }, 'chassis drift detected');
      this.emit('drift', plan.differences, this.opts.repairDrift);
      if (!this.opts.repairDrift) return;
    }
    this.converged = false;
    try {
      await this.opts.client.transact(plan.ops);
      this.writes++;
      this.log.info({ differences: plan.differences }, isDrift ? 'chassis drift repaired' : 'chassis config applied');
      if (!isDrift) this.emit('applied', plan.differences);
      await this.settle();
      // One more pass confirms convergence (and emits 'converged').
      this.schedule();
    } catch (err) {
      // "timed out" from our wait guard, a disconnect, …: the next monitor event runs another pass.
      this.log.warn({ err }, 'chassis reconcile failed; will retry on next change');
      this.emit('error', err as Error);
      if (!this.stopped) setTimeout(() => this.schedule(), 500).unref();
    }
  }

  /** Wait until our own write is visible in the replica, so it is never mistaken for drift. */
  private async settle(): Promise<void> {
    const m = this.monitor;
    if (!m) return;
    const deadline = this.opts.settleTimeoutMs ?? 5000;
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (this.stopped || this.plan().ops.length === 0) done();
      };
      const done = (): void => {
        clearTimeout(timer);
        m.off('change', check);
        resolve();
      };
      const timer = setTimeout(done, deadline);
      m.on('change', check);
      check();
    });
  }
}
