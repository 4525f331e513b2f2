// The one retry of an interrupted dump. The kernel flags a dump part NLM_F_DUMP_INTR
// when the table changed while it walked it (nl_dump_check_consistent): the parts
// may miss or repeat entries. The socket (socket.ts) turns that flag into a
// NetlinkError EINTR once NLMSG_DONE arrives; the dump is then run again, at most
// DUMP_ATTEMPTS times in all. iproute2 only warns ("Dump was interrupted and may be
// inconsistent"); we never hand an inconsistent dump to a reconciler.
import { NetlinkError } from '../errors.ts';
import type { NlMessage } from './message.ts';

/** Runs of one dump in all, the first included. */
export const DUMP_ATTEMPTS = 3;
const EINTR = 4;

/** The error of a dump whose parts the kernel flagged NLM_F_DUMP_INTR. */
export function dumpInterruptedError(): NetlinkError {
  return new NetlinkError(EINTR, 'EINTR', 'dump interrupted (NLM_F_DUMP_INTR)');
}

/** Whether `err` says the dump was interrupted and may simply be run again. */
export function isDumpInterrupted(err: unknown): boolean {
  return err instanceof NetlinkError && err.errno === EINTR;
}

/** What dumpRetrying needs of a socket (RtNetlink). */
export interface Dumper {
  dump(build: (seq: number) => Buffer, what: string): Promise<NlMessage[]>;
}

/**
 * Every part of a dump, run again while the kernel reports it interrupted, at most
 * `attempts` runs; the last EINTR (and any other error at once) is thrown as is.
 */
export async function dumpRetrying(nl: Dumper, build: (seq: number) => Buffer, what: string, attempts = DUMP_ATTEMPTS): Promise<NlMessage[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await nl.dump(build, what);
    } catch (err) {
      if (!isDumpInterrupted(err) || attempt >= attempts) throw err;
    }
  }
}
