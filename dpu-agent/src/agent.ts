import { readFile } from 'node:fs/promises';
import { ChassisReconciler } from './chassis/reconciler.ts';
import type { AgentConfig } from './config.ts';
import { ConfigError } from './errors.ts';
import type { TlsFiles } from './jsonrpc/transport.ts';
import type { Logger } from './log.ts';
import { OvsdbClient } from './ovsdb/client.ts';

// Wires the parts together. Everything is built from the frozen config and one
// logger; nothing global, so tests can run several agents in one process.

export class Agent {
  readonly ovsdb: OvsdbClient;
  readonly chassis: ChassisReconciler;
  private readonly log: Logger;

  private constructor(
    readonly config: AgentConfig,
    logger: Logger,
    tls: TlsFiles | undefined,
  ) {
    this.log = logger.child({ component: 'agent' });
    this.ovsdb = new OvsdbClient({
      remotes: config.ovsdb.remote,
      database: 'Open_vSwitch',
      requestTimeoutMs: config.ovsdb.requestTimeoutMs,
      ...(tls ? { tls } : {}),
      logger,
    });
    this.chassis = new ChassisReconciler({
      client: this.ovsdb,
      config: config.chassis,
      repairDrift: config.reconcile.repairDrift,
      logger,
    });
    // Failures are logged by the reconciler and retried on the next change.
    this.chassis.on('error', () => undefined);
  }

  static async create(config: AgentConfig, logger: Logger): Promise<Agent> {
    let tls: TlsFiles | undefined;
    const paths = config.ovsdb.tls;
    if (paths) {
      const read = async (key: 'key' | 'cert' | 'ca'): Promise<Buffer> => {
        try {
          return await readFile(paths[key]);
        } catch (err) {
          throw new ConfigError(`ovsdb.tls.${key}`, `cannot read ${paths[key]}: ${(err as Error).message}`);
        }
      };
      tls = { key: await read('key'), cert: await read('cert'), ca: await read('ca') };
    }
    return new Agent(config, logger, tls);
  }

  async start(): Promise<void> {
    this.log.info({ remote: this.config.ovsdb.remote }, 'connecting to Open_vSwitch database');
    await this.ovsdb.start();
    await this.chassis.start();
    this.log.info({ writes: this.chassis.writes }, 'agent ready');
  }

  async stop(): Promise<void> {
    this.chassis.stop();
    await this.ovsdb.stop();
  }
}
