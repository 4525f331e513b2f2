// A representor that is not leased must not forward anything (DESIGN §1). The
// pool calls `lift` as the very last step before plugging and `apply` as the
// very first step of a release, so there is no window where an unleased
// representor forwards. The TC drop filter (offload/quarantine.ts) stacks on the
// same interface; the link-down one here keeps the representor administratively
// down (RtLinkQuarantine in rtlink.ts does the same over rtnetlink).
import { HwError } from '../errors.ts';
import { type CommandRunner, defaultRunner } from '../util/command.ts';
import type { Representor } from './types.ts';

export interface Quarantine {
  apply(representor: string): Promise<void>;
  lift(representor: string): Promise<void>;
  /**
   * Optional, for the pool's start: read the representors' current state in a few
   * dumps, so that the apply/lift calls made until the returned `end()` skip what is
   * already so (a link already down or up, a filter that cannot be there, no address
   * to flush) instead of one round of requests per representor.
   */
  survey?(representors: readonly Representor[]): Promise<() => void>;
}

/** The link-down quarantine with an `ip` process per call (when there is no rtnetlink socket). */
export class LinkQuarantine implements Quarantine {
  constructor(private readonly run: CommandRunner = defaultRunner) {}

  // same as: ip link set dev pf0vf3 down
  async apply(representor: string): Promise<void> {
    await this.set(representor, 'down');
  }

  // same as: ip link set dev pf0vf3 up
  async lift(representor: string): Promise<void> {
    await this.set(representor, 'up');
  }

  private async set(dev: string, state: 'up' | 'down'): Promise<void> {
    const r = await this.run(['ip', 'link', 'set', 'dev', dev, state]);
    if (r.code !== 0) throw new HwError(`set ${dev} ${state}: ${r.stderr.trim() || `exit ${r.code}`}`);
  }
}
