// What the offload/ modules need from the tc library, as one narrow interface:
// the real `Tc` (tc/tc.ts) implements it, and so does the in-memory FakeTc
// (test/helpers/fake-tc.ts) the unit tests and the scrape bench use (STYLE 8: a fake only
// where it implements the same interface as the real thing).
import { readFile } from 'node:fs/promises';
import type { Tc } from '../tc/index.ts';

export type TcApi = Pick<
  Tc,
  'ensureClsact' | 'replaceFilter' | 'replaceOtherFilter' | 'deleteFilter' | 'deleteFilterPrio' | 'dumpAnyFilters' | 'dumpFilters' | 'dumpQdiscs' | 'scanFilters'
>;

/** Netdev name → ifindex, undefined when there is no such device (in the agent's netns). */
export type IfindexResolver = (dev: string) => Promise<number | undefined>;

// same as: cat /sys/class/net/DEV/ifindex
export const sysfsIfindex: IfindexResolver = async (dev) => {
  if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(dev)) return undefined;
  try {
    const n = Number((await readFile(`/sys/class/net/${dev}/ifindex`, 'utf8')).trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
};
