// An rtnetlink socket inside a named netns (/run/netns/NAME, as `ip netns add` makes),
// for code that runs outside the netns it manages (tests, tools; the agent itself runs
// in the DPU netns and needs none of this). A socket stays bound to the netns it was
// created in, so: setns(NAME) on this thread, create it, setns back — all synchronous
// (the `netlink` package creates the socket in its constructor), so no other JS runs
// in between, and libuv's threadpool threads are never moved (setns is per thread).
// Restoring is not optional: a thread left in the wrong netns would open every later
// socket (the host API, OVSDB) there, so a failed restore is fatal.
import { closeSync, openSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { HwError } from '../errors.ts';
import { RtNetlink, type RtNetlinkOptions } from '../netlink/socket.ts';
import { libcFunction } from '../util/libc.ts';

const CLONE_NEWNET = 0x40000000;

type SetNs = (fd: number, nstype: number) => number;
const libcSetns = (): SetNs | null => libcFunction<SetNs>('int setns(int fd, int nstype)');

/** `ip netns` names only: no path tricks. */
export function netnsPath(name: string): string {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$/.test(name)) throw new HwError(`invalid netns name ${JSON.stringify(name)}`);
  return `/run/netns/${name}`;
}

/** Runs `fn` (synchronous) with this thread in netns `name`, then moves it back. */
export function withNetns<T>(name: string, fn: () => T): T {
  const setns = libcSetns();
  if (!setns) throw new HwError('setns unavailable (koffi/libc not loadable)');
  const target = openSync(netnsPath(name), 'r');
  let home: number | undefined;
  try {
    home = openSync('/proc/thread-self/ns/net', 'r');
    if (setns(target, CLONE_NEWNET) !== 0) throw new HwError(`setns into netns ${name} failed (root? does it exist?)`);
    try {
      return fn();
    } finally {
      if (setns(home, CLONE_NEWNET) !== 0) {
        // Cannot happen short of losing CAP_SYS_ADMIN in between; never carry on in the wrong netns.
        process.stderr.write(`dpu-agent: cannot return to the original netns after entering ${name}; aborting\n`);
        process.abort();
      }
    }
  } finally {
    if (home !== undefined) closeSync(home);
    closeSync(target);
  }
}

/** An rtnetlink socket in netns `name`; undefined name = this process's netns. */
export function openRtNetlinkIn(name: string | undefined, opts: RtNetlinkOptions = {}): RtNetlink {
  return name === undefined ? new RtNetlink(opts) : withNetns(name, () => new RtNetlink(opts));
}

/** Named netns (same as: ip netns list). */
export async function listNetns(): Promise<string[]> {
  try {
    return (await readdir('/run/netns')).filter((n) => /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(n));
  } catch {
    return [];
  }
}

/** Calls `fn` with an fd of netns `name`, closed after (for RTM_GETNSID's NETNSA_FD). */
export async function withNetnsFd<T>(name: string, fn: (fd: number) => Promise<T>): Promise<T | undefined> {
  let fd: number;
  try {
    fd = openSync(netnsPath(name), 'r');
  } catch {
    return undefined; // gone
  }
  try {
    return await fn(fd);
  } finally {
    closeSync(fd);
  }
}
