// The eSwitch backend the config names, built once here: the agent switches on
// nothing, it holds a Hardware and calls what it needs.
import type { HwConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { RtNetlink } from '../netlink/socket.ts';
import { BlueFieldHw } from './bluefield.ts';
import { EmulatedHw } from './emulated.ts';
import type { HwBackend } from './types.ts';

export interface Hardware {
  /** What the VF pool drives. */
  readonly backend: HwBackend;
  /**
   * A representor came or went, or link notifications were lost: drop what may be
   * stale (BlueField: the cached devlink port list; emulated: nothing is cached).
   */
  linksChanged(): void;
  /** Closes the sockets the backend opened for itself (not one it was given). */
  close(): void;
}

export interface HardwareDeps {
  /** An rtnetlink socket in the representors' netns to share (the agent's TC socket); emulated only. */
  readonly nl?: RtNetlink;
  readonly logger: Logger;
}

export function openHardware(config: HwConfig, deps: HardwareDeps): Hardware {
  switch (config.backend) {
    case 'emulated': {
      const hw = new EmulatedHw({ hostNs: config.hostNetns, ...(deps.nl ? { nl: deps.nl } : {}) });
      return { backend: hw, linksChanged: () => undefined, close: () => hw.close() };
    }
    case 'bluefield': {
      const hw = new BlueFieldHw({ uplink: config.uplink, log: deps.logger.child({ component: 'devlink' }) });
      return { backend: hw, linksChanged: () => hw.invalidatePorts(), close: () => hw.close() };
    }
  }
}
