import { CNI_ERR } from '../../contract/cni.ts';
import { createAgentClient } from './agent.ts';
import { CURRENT_VERSION, type CniVersion, parseEnv, parseNetConf, versionResult } from './cni.ts';
import { cmdAdd, cmdCheck, cmdDel, cmdGc, cmdStatus, type Deps } from './commands.ts';
import { CniError } from './errors.ts';
import { IpNetOps } from './netdev.ts';

// dpu-host-shim: the CNI plugin on the untrusted host. The runtime execs it with
// CNI_* in the environment and the network configuration on stdin; it prints one
// JSON result (or error) on stdout and exits 0 (or 1). See host-shim/README.md.

const MAX_STDIN_BYTES = 1024 * 1024;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of process.stdin) {
    const b = c as Buffer;
    n += b.length;
    if (n > MAX_STDIN_BYTES) throw new CniError(CNI_ERR.DECODE_FAILURE, 'network configuration too large', `over ${MAX_STDIN_BYTES} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function print(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v)}\n`);
}

async function main(): Promise<number> {
  let version: CniVersion = CURRENT_VERSION;
  let close = (): void => undefined;
  try {
    const env = parseEnv(process.env);
    if (env.command === 'VERSION') {
      print(versionResult());
      return 0;
    }
    const conf = parseNetConf(await readStdin());
    version = conf.cniVersion;
    const agent = await createAgentClient(conf);
    close = agent.close;
    const deps: Deps = {
      env,
      conf,
      client: agent.client,
      net: new IpNetOps(),
      warn: (msg) => process.stderr.write(`dpu-host-shim: ${msg}\n`),
    };
    const timeoutMs = { ADD: conf.timeouts.addMs, DEL: conf.timeouts.delMs, CHECK: conf.timeouts.checkMs, STATUS: conf.timeouts.statusMs, GC: conf.timeouts.gcMs }[env.command];
    // Watchdog: whatever hangs (a TLS connect, an `ip` call), answer within the budget.
    const watchdog = new Promise<never>((_, reject) => {
      setTimeout(
        () => reject(new CniError(env.command === 'STATUS' ? CNI_ERR.NOT_AVAILABLE : CNI_ERR.TRY_AGAIN_LATER, `${env.command} timed out`, `after ${timeoutMs + 1000} ms`)),
        timeoutMs + 1000,
      ).unref();
    });
    const run = { ADD: cmdAdd, DEL: cmdDel, CHECK: cmdCheck, STATUS: cmdStatus, GC: cmdGc }[env.command];
    const out = await Promise.race([run(deps), watchdog]);
    if (out !== undefined) print(out);
    return 0;
  } catch (err) {
    const ce = err instanceof CniError ? err : new CniError(CNI_ERR.IO_FAILURE, 'unexpected failure', (err as Error)?.message ?? String(err));
    print(ce.toJSON(version));
    return 1;
  } finally {
    close();
  }
}

main().then((code) => {
  process.exitCode = code;
  // Do not wait for idle HTTP/2 sessions or timers: the runtime waits on our exit.
  process.stdout.write('', () => process.exit(code));
});
