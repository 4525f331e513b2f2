// Where a daemon's control socket lives: <rundir>/<program>.<pid>.ctl, the
// default of unixctl_server_create() (lib/unixctl.c); ovs-appctl -t <program>
// finds the pid the same way, from <rundir>/<program>.pid.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { UnixctlError } from '../errors.ts';

export async function unixctlPath(rundir: string, program: string): Promise<string> {
  const pidfile = path.join(rundir, `${program}.pid`);
  let text: string;
  try {
    text = await readFile(pidfile, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new UnixctlError(program, `cannot read pidfile ${JSON.stringify(pidfile)} (${code}); is ${program} running?`);
  }
  // read_pidfile() (lib/daemon-unix.c) reads a decimal pid from the first line.
  const pidText = (text.split('\n', 1)[0] ?? '').trim();
  const pid = /^\d+$/.test(pidText) ? Number(pidText) : NaN;
  if (!Number.isSafeInteger(pid) || pid <= 0) {
    throw new UnixctlError(program, `pidfile ${JSON.stringify(pidfile)} does not hold a pid`);
  }
  return path.join(rundir, `${program}.${pid}.ctl`);
}
