import { parseArgs } from 'node:util';
import { Agent } from './agent.ts';
import { ENV_KEYS, loadConfig } from './config.ts';
import { DpuError } from './errors.ts';
import { createLogger } from './log.ts';
import { VERSION } from './version.ts';

const HELP = `dpu-agent ${VERSION} — owns OVS br-int and the OVN chassis on a DPU

Usage: dpu-agent --config FILE [--check]

  -c, --config FILE   JSON config (see README "Configuration")
      --check         validate the config, print it, and exit
  -v, --version       print the version
  -h, --help          this text

Environment overrides (win over the file):
${Object.entries(ENV_KEYS)
  .map(([k, v]) => `  ${k.padEnd(36)} ${v}`)
  .join('\n')}

Exit codes: 0 clean stop, 2 bad usage or config, 1 runtime failure.
`;

async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' },
        check: { type: 'boolean' },
        version: { type: 'boolean', short: 'v' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
  } catch (err) {
    process.stderr.write(`dpu-agent: ${(err as Error).message}\n${HELP}`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (args.values.version) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  let config;
  try {
    config = await loadConfig(args.values.config);
  } catch (err) {
    process.stderr.write(`dpu-agent: ${(err as Error).message}\n`);
    return 2;
  }
  if (args.values.check) {
    process.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
    return 0;
  }

  const root = createLogger({ level: config.log.level });
  const log = root.child({ component: 'main' });
  let agent: Agent;
  try {
    agent = await Agent.create(config, root);
  } catch (err) {
    process.stderr.write(`dpu-agent: ${(err as Error).message}\n`);
    return err instanceof DpuError && err.code === 'DPU_ERR_CONFIG' ? 2 : 1;
  }
  // Resolves with the signal that asked us to stop, or with the start-up error.
  const outcome = await new Promise<string | Error>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
    agent.start().catch((err: unknown) => resolve(err instanceof Error ? err : new Error(String(err))));
  });
  if (outcome instanceof Error) {
    log.fatal({ err: outcome }, 'agent failed to start');
    await agent.stop();
    return outcome instanceof DpuError && outcome.code === 'DPU_ERR_CONFIG' ? 2 : 1;
  }
  log.info({ signal: outcome }, 'stopping');
  await agent.stop();
  log.info('stopped');
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`dpu-agent: fatal: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
