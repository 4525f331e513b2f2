// Running a tool (`ip`, `tc`) as a child process, behind an injectable function so
// unit tests need no root. Only the fallbacks use it: the hot paths speak netlink.
import { execFile } from 'node:child_process';
import { HwError } from '../errors.ts';

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs argv and resolves with its exit code and output; rejects only when it cannot run at all. */
export type CommandRunner = (argv: readonly string[]) => Promise<CommandResult>;

/** execFile without a shell, 10 s timeout; a non-zero exit is a result, not an error. */
export const defaultRunner: CommandRunner = (argv) =>
  new Promise((resolve, reject) => {
    const [file, ...args] = argv;
    if (!file) {
      reject(new HwError('empty command'));
      return;
    }
    execFile(file, args, { timeout: 10_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') reject(new HwError(`${file}: cannot run`, { cause: err }));
      else resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
  });
