import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

// What the shim must remember between ADD and DEL: the VF's host-side name (to
// give it back under the same name) and its index. One small JSON file per
// attachment in stateDir, written atomically (tmp + rename). Losing it is not
// fatal: DEL falls back to a derived name, and the lease lives in the agent.

export interface AttachmentState {
  readonly containerId: string;
  readonly ifname: string;
  readonly vfIndex: number;
  readonly hostName: string;
  readonly netns: string;
  /** vfio mode: the PCI device and the driver it had before vfio-pci. */
  readonly pciId?: string;
  readonly originalDriver?: string;
}

const fileName = (containerId: string, ifname: string): string => `${containerId}_${ifname}.json`;

export async function saveState(dir: string, s: AttachmentState): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, fileName(s.containerId, s.ifname));
  await writeFile(`${path}.tmp`, JSON.stringify(s), { mode: 0o600 });
  await rename(`${path}.tmp`, path);
}

export async function loadState(dir: string, containerId: string, ifname: string): Promise<AttachmentState | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, fileName(containerId, ifname)), 'utf8')) as AttachmentState;
  } catch {
    return undefined;
  }
}

export async function removeState(dir: string, containerId: string, ifname: string): Promise<void> {
  await rm(join(dir, fileName(containerId, ifname)), { force: true });
}

/** GC: drop state files of attachments the runtime no longer lists. Returns how many. */
export async function pruneState(dir: string, keep: readonly { containerId: string; ifname: string }[]): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  const valid = new Set(keep.map((k) => fileName(k.containerId, k.ifname)));
  let n = 0;
  for (const name of names) {
    if (name.endsWith('.json') && !valid.has(name)) {
      await rm(join(dir, name), { force: true });
      n++;
    }
  }
  return n;
}

/** Host name for a VF returned on DEL when its original name is unknown: ≤ 15 chars, stable per attachment. */
export function fallbackHostName(containerId: string, ifname: string): string {
  return `dpuvf${createHash('sha256').update(`${containerId}/${ifname}`).digest('hex').slice(0, 8)}`;
}
