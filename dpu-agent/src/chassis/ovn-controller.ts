import { EventEmitter } from 'node:events';
import type { Logger } from '../log.ts';
import { UnixctlClient } from '../unixctl/client.ts';
import { unixctlPath } from '../unixctl/path.ts';

// Is ovn-controller connected to the Southbound DB? Asked over its control
// socket (same as: ovn-appctl -t ovn-controller connection-status), never by
// spawning a process. Feeds /readyz and dpu_ovn_controller_connected.

export interface OvnControllerProbeOptions {
  /** Where ovn-controller keeps ovn-controller.pid and its .ctl socket. */
  readonly rundir: string;
  readonly intervalMs: number;
  readonly logger: Logger;
}

export declare interface OvnControllerProbe {
  on(event: 'change', l: (connected: boolean) => void): this;
}

export class OvnControllerProbe extends EventEmitter {
  private timer: NodeJS.Timeout | undefined;
  private client: UnixctlClient | undefined;
  private readonly log: Logger;
  connected = false;

  constructor(private readonly opts: OvnControllerProbeOptions) {
    super();
    this.log = opts.logger.child({ component: 'ovn-controller' });
  }

  start(): void {
    const tick = (): void => {
      void this.probe().finally(() => {
        if (this.timer !== undefined) this.timer = setTimeout(tick, this.opts.intervalMs).unref();
      });
    };
    this.timer = setTimeout(tick, 0).unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.client?.close();
  }

  /** One probe; also usable directly. */
  async probe(): Promise<boolean> {
    let ok = false;
    try {
      if (!this.client || this.client.closed) {
        // The pid (and so the socket name) changes when ovn-controller restarts: look it up each reconnect.
        this.client = await UnixctlClient.connect(await unixctlPath(this.opts.rundir, 'ovn-controller'), { timeoutMs: 2000 });
      }
      ok = (await this.client.call('connection-status', [], { timeoutMs: 2000 })).trim() === 'connected';
    } catch (err) {
      this.client?.close();
      this.client = undefined;
      if (this.connected) this.log.warn({ err }, 'ovn-controller not reachable');
    }
    if (ok !== this.connected) {
      this.connected = ok;
      this.log.info({ connected: ok }, 'ovn-controller SB connection changed');
      this.emit('change', ok);
    }
    return ok;
  }
}
