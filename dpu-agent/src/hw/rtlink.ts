// Link state over rtnetlink instead of an `ip` process per call: the quarantine
// sits on the allocation path, and a process spawn costs ~10 ms there.
//   same as: ip link set dev pf0vf3 up|down
import { HwError, NetlinkError } from '../errors.ts';
import type { Quarantine } from '../ports/quarantine.ts';
import { NLM_F_ACK, NLM_F_REQUEST, encodeMessage, writeU16, writeU32 } from '../tc/nl.ts';
import type { RtNetlink } from '../tc/socket.ts';

const RTM_NEWLINK = 16;
const IFLA_IFNAME = 3;
const IFF_UP = 0x1;

/** RTM_NEWLINK (no CREATE: an existing link only) addressed by name, changing IFF_UP alone. Pure. */
export function encodeSetLinkUp(seq: number, name: string, up: boolean): Buffer {
  const nameBytes = Buffer.from(`${name}\0`);
  const attrLen = 4 + nameBytes.length;
  const body = Buffer.alloc(16 + ((attrLen + 3) & ~3));
  // struct ifinfomsg { u8 family; u8 pad; u16 type; s32 index (0 = by IFLA_IFNAME); u32 flags; u32 change; }
  writeU32(body, 8, up ? IFF_UP : 0);
  writeU32(body, 12, IFF_UP);
  writeU16(body, 16, attrLen);
  writeU16(body, 18, IFLA_IFNAME);
  nameBytes.copy(body, 20);
  return encodeMessage({ type: RTM_NEWLINK, flags: NLM_F_REQUEST | NLM_F_ACK, seq }, body);
}

/** The representor down/up half of the quarantine, on one shared rtnetlink socket. */
export class RtLinkQuarantine implements Quarantine {
  constructor(private readonly nl: RtNetlink) {}

  apply(representor: string): Promise<void> {
    return this.set(representor, false);
  }

  lift(representor: string): Promise<void> {
    return this.set(representor, true);
  }

  private async set(dev: string, up: boolean): Promise<void> {
    try {
      await this.nl.request((seq) => encodeSetLinkUp(seq, dev, up), `link set ${dev} ${up ? 'up' : 'down'}`);
    } catch (err) {
      const why = err instanceof NetlinkError ? err.message : String(err);
      throw new HwError(`set ${dev} ${up ? 'up' : 'down'}: ${why}`, { cause: err });
    }
  }
}
