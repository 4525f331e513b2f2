// Running external commands for the lab: one place, bounded by a timeout, with
// the command's stderr kept on the error (the lab is a trusted operator tool, so
// forwarding tool text to the user is fine here, unlike the agent's host API).
import { execFile } from 'node:child_process';
import { constants } from 'node:os';

export interface RunOptions {
  /** Kill the command after this long (default 30 s). */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly code: number | string,
    readonly stderr: string,
  ) {
    super(`${argv.join(' ')} failed (${code}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
    this.name = 'CommandError';
  }
}

/** Runs argv, never throws on a non-zero exit; throws only when it cannot be run or times out. */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error('run: empty argv');
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      {
        timeout: opts.timeoutMs ?? 30_000,
        killSignal: 'SIGKILL',
        env: opts.env ?? process.env,
        cwd: opts.cwd,
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (!err) return resolve({ stdout, stderr, code: 0 });
        if (typeof err.code === 'number') return resolve({ stdout, stderr, code: err.code });
        if (err.killed) return reject(new CommandError(argv, `timeout after ${opts.timeoutMs ?? 30_000} ms`, stderr));
        // Killed by a signal of its own (ovs-vsctl --timeout ends with SIGALRM): shell-style 128+n.
        if (err.signal) return resolve({ stdout, stderr, code: 128 + (constants.signals[err.signal] ?? 0) });
        reject(new CommandError(argv, (err as NodeJS.ErrnoException).code ?? 'spawn-error', err.message));
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Runs argv and returns trimmed stdout; a non-zero exit throws CommandError. */
export async function sh(argv: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(argv, opts);
  if (r.code !== 0) throw new CommandError(argv, r.code, r.stderr || r.stdout);
  return r.stdout.trim();
}

/** argv prefixed to run inside a network namespace. */
export function inNs(ns: string, argv: readonly string[]): string[] {
  return ['ip', 'netns', 'exec', ns, ...argv];
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `probe` until it returns a non-undefined value, at most `tries` times
 * `intervalMs` apart. Every wait loop in the lab goes through here so each is bounded.
 */
export async function poll<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  opts: { tries: number; intervalMs: number },
): Promise<T> {
  let last: unknown;
  for (let i = 0; i < opts.tries; i++) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (i + 1 < opts.tries) await sleep(opts.intervalMs);
  }
  const why = last instanceof Error ? `: ${last.message}` : '';
  throw new Error(`timed out waiting for ${what} (${opts.tries} tries, ${opts.intervalMs} ms apart)${why}`);
}
