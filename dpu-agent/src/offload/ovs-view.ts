// OVS's own view of its datapath flows, through ovs-vswitchd's unixctl socket (no
// ovs-appctl process): the UFIDs of the flows it offloaded to TC (to tell a real
// OVS filter from one that only carries a 16-byte cookie) and the offloaded count.
// One connection per question, like ovs-appctl: ovs-vswitchd restarts change the
// socket name (<rundir>/ovs-vswitchd.<pid>.ctl).
import type { Logger } from '../log.ts';
import { UnixctlClient, unixctlPath } from '../unixctl/index.ts';

const UFID_SRC = 'ufid:([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})([0-9a-f]{8})';
const UFID_ONE = new RegExp(UFID_SRC);

/**
 * `ufid:<uuid>` as dpctl prints it → the TCA_ACT_COOKIE bytes OVS stores (hex).
 * dpctl prints the ovs_u128 as UUID_FMT over its four host-order u32 words
 * (lib/odp-util.c odp_format_ufid); the cookie is the memcpy of those words
 * (lib/tc.c act_cookie = ufid), so each word goes back to little-endian bytes.
 */
export function ufidToCookie(ufid: string, littleEndian = true): string | undefined {
  const m = UFID_ONE.exec(ufid.startsWith('ufid:') ? ufid : `ufid:${ufid}`);
  if (!m) return undefined;
  const words = [m[1]!, m[2]! + m[3]!, m[4]! + m[5]!, m[6]!];
  const b = Buffer.alloc(16);
  words.forEach((w, i) => (littleEndian ? b.writeUInt32LE(parseInt(w, 16), i * 4) : b.writeUInt32BE(parseInt(w, 16), i * 4)));
  return b.toString('hex');
}

/** Every UFID in a `dpctl/dump-flows -m` text, as cookie hex. Pure. */
export function ufidsFromDumpFlows(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(new RegExp(UFID_SRC, 'g'))) {
    const c = ufidToCookie(m[0]);
    if (c) out.add(c);
  }
  return out;
}

/** Datapath flow lines in a `dpctl/dump-flows` text. Pure. */
export function countFlows(text: string): number {
  let n = 0;
  for (const line of text.split('\n')) if (line.trim() !== '' && !line.startsWith('flow-dump')) n++;
  return n;
}

export interface OvsView {
  /** Cookies (hex) of the flows OVS holds in TC (`dpctl/dump-flows -m type=tc`). */
  tcUfids(): Promise<Set<string>>;
  /** `dpctl/dump-flows type=offloaded` line count. */
  offloadedFlows(): Promise<number>;
  /** `dpctl/offload-stats-show` text (empty for the TC provider, DESIGN §8). */
  offloadStats(): Promise<string>;
  /** Datapath flows in TC (`type=tc`) and in the kernel datapath only (`type=ovs`). */
  datapathFlows?(): Promise<{ tc: number; ovs: number }>;
}

export class UnixctlOvsView implements OvsView {
  constructor(
    private readonly rundir: string,
    private readonly opts: { timeoutMs?: number; logger?: Logger } = {},
  ) {}

  private async call(cmd: string, args: string[]): Promise<string> {
    const c = await UnixctlClient.connect(await unixctlPath(this.rundir, 'ovs-vswitchd'), { timeoutMs: this.opts.timeoutMs ?? 10_000, ...(this.opts.logger ? { logger: this.opts.logger } : {}) });
    try {
      return await c.call(cmd, args);
    } finally {
      c.close();
    }
  }

  // same as: ovs-appctl dpctl/dump-flows -m type=tc
  async tcUfids(): Promise<Set<string>> {
    return ufidsFromDumpFlows(await this.dumpFlows('type=tc', true));
  }

  /** `dpctl/dump-flows [-m] TYPE` text. */
  dumpFlows(type: string, verbose = false): Promise<string> {
    return this.call('dpctl/dump-flows', [...(verbose ? ['-m'] : []), type]);
  }

  // same as: ovs-appctl dpctl/dump-flows type=offloaded | wc -l
  async offloadedFlows(): Promise<number> {
    return countFlows(await this.call('dpctl/dump-flows', ['type=offloaded']));
  }

  // same as: ovs-appctl dpctl/dump-flows type=tc | wc -l; … type=ovs | wc -l
  async datapathFlows(): Promise<{ tc: number; ovs: number }> {
    return { tc: countFlows(await this.dumpFlows('type=tc')), ovs: countFlows(await this.dumpFlows('type=ovs')) };
  }

  // same as: ovs-appctl dpctl/offload-stats-show
  async offloadStats(): Promise<string> {
    return this.call('dpctl/offload-stats-show', []);
  }
}
