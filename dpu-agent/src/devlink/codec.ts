// devlink over generic netlink, the messages only (pure: bytes in, values out, and
// back). The I/O is client.ts.
//
//   genetlink message = nlmsghdr (type = family id) + genlmsghdr { u8 cmd; u8 version;
//   u16 reserved } + attributes.
//
// The "devlink" family id is dynamic: nlctrl (GENL_ID_CTRL = 16) resolves it with
// CTRL_CMD_GETFAMILY + CTRL_ATTR_FAMILY_NAME (include/uapi/linux/genetlink.h).
//
// Numbers: Linux 6.1 include/uapi/linux/devlink.h and genetlink.h (Debian bookworm's
// linux-libc-dev 6.1.187, the kernel the lane boots; checked with a C program printing
// the enum values, and against torvalds/linux's devlink.h for the older entries). All
// of these are ABI ("don't change the order or add anything between").
//   same as: devlink -j port show; devlink port function set pci/…/N hw_addr MAC
import { NetlinkMalformedError } from '../errors.ts';
import {
  AttrWriter,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  NLA_TYPE_MASK,
  type NlMessage,
  encodeMessage,
  hu16,
  hu32,
  stringAt,
} from '../netlink/nl.ts';

export const GENL_HDRLEN = 4;

// nlctrl (genetlink.h)
export const GENL_ID_CTRL = 16;
export const CTRL_CMD_NEWFAMILY = 1;
export const CTRL_CMD_GETFAMILY = 3;
export const CTRL_ATTR_FAMILY_ID = 1; // u16
export const CTRL_ATTR_FAMILY_NAME = 2; // string
export const CTRL_ATTR_VERSION = 3; // u32
const CTRL_VERSION = 2; // what iproute2/libmnl send in genlmsghdr.version for nlctrl

// devlink.h
export const DEVLINK_GENL_NAME = 'devlink';
export const DEVLINK_GENL_VERSION = 1;
export const DEVLINK_CMD_PORT_GET = 5; // can dump
export const DEVLINK_CMD_PORT_SET = 6;
export const DEVLINK_CMD_PORT_NEW = 7; // the reply (and notification) to PORT_GET
export const DEVLINK_CMD_PORT_DEL = 8;

export const DEVLINK_ATTR_BUS_NAME = 1; // string
export const DEVLINK_ATTR_DEV_NAME = 2; // string
export const DEVLINK_ATTR_PORT_INDEX = 3; // u32
export const DEVLINK_ATTR_PORT_TYPE = 4; // u16
export const DEVLINK_ATTR_PORT_NETDEV_IFINDEX = 6; // u32
export const DEVLINK_ATTR_PORT_NETDEV_NAME = 7; // string
export const DEVLINK_ATTR_PORT_FLAVOUR = 77; // u16
export const DEVLINK_ATTR_PORT_NUMBER = 78; // u32
export const DEVLINK_ATTR_PORT_PCI_PF_NUMBER = 127; // u16
export const DEVLINK_ATTR_PORT_PCI_VF_NUMBER = 128; // u16
export const DEVLINK_ATTR_PORT_FUNCTION = 145; // nested: DEVLINK_PORT_FUNCTION_ATTR_*
export const DEVLINK_ATTR_PORT_EXTERNAL = 149; // u8
export const DEVLINK_ATTR_PORT_CONTROLLER_NUMBER = 150; // u32
export const DEVLINK_ATTR_PORT_PCI_SF_NUMBER = 164; // u32

export const DEVLINK_PORT_FUNCTION_ATTR_HW_ADDR = 1; // binary

/** enum devlink_port_flavour, by the names `devlink port show` prints. */
export const PORT_FLAVOURS = ['physical', 'cpu', 'dsa', 'pcipf', 'pcivf', 'virtual', 'unused', 'pcisf'] as const;
export const DEVLINK_PORT_FLAVOUR_PCI_VF = 4;
/** enum devlink_port_type: 0 notset, 1 auto, 2 eth, 3 ib. */
export const PORT_TYPES = ['notset', 'auto', 'eth', 'ib'] as const;

/** A flavour number → its iproute2 name (`flavour<N>` for one newer than this table). */
export const flavourName = (n: number): string => PORT_FLAVOURS[n] ?? `flavour${n}`;
const flavourNumber = (name: string): number => {
  const i = (PORT_FLAVOURS as readonly string[]).indexOf(name);
  if (i >= 0) return i;
  const m = /^flavour(\d+)$/.exec(name);
  if (!m) throw new NetlinkMalformedError(`unknown devlink port flavour ${JSON.stringify(name)}`);
  return Number(m[1]);
};

/** One devlink port (DEVLINK_CMD_PORT_NEW), the fields the agent and `devlink port show` use. */
export interface DevlinkPort {
  readonly bus: string;
  readonly dev: string;
  readonly index: number;
  /** `bus/dev/index`, as devlink prints and takes it: `pci/0000:03:00.0/4097`. */
  readonly handle: string;
  /** `eth`, `ib`, … */
  readonly type?: string;
  readonly flavour?: string;
  readonly netdev?: string;
  readonly ifindex?: number;
  /** DEVLINK_ATTR_PORT_NUMBER (physical/cpu/dsa ports). */
  readonly number?: number;
  readonly controller?: number;
  readonly pfnum?: number;
  readonly vfnum?: number;
  readonly sfnum?: number;
  /** The port's function sits on an external controller (the BlueField's host). */
  readonly external?: boolean;
  /** DEVLINK_PORT_FUNCTION_ATTR_HW_ADDR, lower-case colon hex. */
  readonly hwAddr?: string;
}

export interface PortHandle {
  readonly bus: string;
  readonly dev: string;
  readonly index: number;
}

/** `pci/0000:03:00.0/4097` → parts (the bus has no `/`; the index is the last field). */
export function parseHandle(handle: string): PortHandle {
  const m = /^([^/]+)\/(.+)\/(\d+)$/.exec(handle);
  if (!m || Number(m[3]) > 0xffffffff) throw new NetlinkMalformedError(`not a devlink port handle: ${JSON.stringify(handle)}`);
  return { bus: m[1] as string, dev: m[2] as string, index: Number(m[3]) };
}

export const formatHandle = (h: PortHandle): string => `${h.bus}/${h.dev}/${h.index}`;

const genlHeader = (cmd: number, version: number): Buffer => Buffer.from([cmd, version, 0, 0]);

function hexAddr(b: Buffer, o: number, n: number): string {
  const parts: string[] = [];
  for (let i = 0; i < n; i++) parts.push((b[o + i] as number).toString(16).padStart(2, '0'));
  return parts.join(':');
}

/** `0a:58:…` (or `-`/no separators, any length ≥ 1) → bytes. */
export function addrBytes(mac: string): Buffer {
  const hex = mac.replace(/[:-]/g, '');
  if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(hex)) throw new NetlinkMalformedError(`not a hardware address: ${JSON.stringify(mac)}`);
  return Buffer.from(hex, 'hex');
}

// ---- nlctrl ---------------------------------------------------------------------------

/** CTRL_CMD_GETFAMILY by name (ACKed; the NEWFAMILY reply comes first). Pure. */
export function encodeGetFamily(seq: number, name: string): Buffer {
  const w = new AttrWriter(32).raw(genlHeader(CTRL_CMD_GETFAMILY, CTRL_VERSION)).string(CTRL_ATTR_FAMILY_NAME, name);
  return encodeMessage({ type: GENL_ID_CTRL, flags: NLM_F_REQUEST | NLM_F_ACK, seq }, w.toBuffer());
}

export interface GenlFamily {
  readonly id: number;
  readonly name: string;
  readonly version: number;
}

/** A CTRL_CMD_NEWFAMILY reply → id, name, version; undefined for anything else. Pure. */
export function decodeFamily(m: NlMessage): GenlFamily | undefined {
  const b = m.body;
  if (m.hdr.type !== GENL_ID_CTRL || b.length < GENL_HDRLEN || b[0] !== CTRL_CMD_NEWFAMILY) return undefined;
  let id: number | undefined;
  let name = '';
  let version = 0;
  walk(b, GENL_HDRLEN, b.length, (type, o, n) => {
    if (type === CTRL_ATTR_FAMILY_ID && n >= 2) id = hu16(b, o);
    else if (type === CTRL_ATTR_FAMILY_NAME) name = stringAt(b, o, n);
    else if (type === CTRL_ATTR_VERSION && n >= 4) version = hu32(b, o);
  });
  return id === undefined ? undefined : { id, name, version };
}

// ---- ports ---------------------------------------------------------------------------

/** DEVLINK_CMD_PORT_GET dump of every port of every devlink instance. Pure. */
export function encodePortDump(seq: number, family: number): Buffer {
  return encodeMessage({ type: family, flags: NLM_F_REQUEST | NLM_F_DUMP, seq }, genlHeader(DEVLINK_CMD_PORT_GET, DEVLINK_GENL_VERSION));
}

function handleAttrs(w: AttrWriter, h: PortHandle): AttrWriter {
  return w.string(DEVLINK_ATTR_BUS_NAME, h.bus).string(DEVLINK_ATTR_DEV_NAME, h.dev).u32(DEVLINK_ATTR_PORT_INDEX, h.index);
}

/** DEVLINK_CMD_PORT_GET of one port (ACKed; the PORT_NEW reply comes first). Pure. */
export function encodePortGet(seq: number, family: number, h: PortHandle): Buffer {
  const w = handleAttrs(new AttrWriter(96).raw(genlHeader(DEVLINK_CMD_PORT_GET, DEVLINK_GENL_VERSION)), h);
  return encodeMessage({ type: family, flags: NLM_F_REQUEST | NLM_F_ACK, seq }, w.toBuffer());
}

/**
 * DEVLINK_CMD_PORT_SET with DEVLINK_ATTR_PORT_FUNCTION { HW_ADDR }: the MAC the port's
 * function (the host's VF) gets, set by the eSwitch manager. The nest carries
 * NLA_F_NESTED as iproute2's (libmnl's) does. Pure.
 */
export function encodePortSetHwAddr(seq: number, family: number, h: PortHandle, mac: string): Buffer {
  const w = handleAttrs(new AttrWriter(112).raw(genlHeader(DEVLINK_CMD_PORT_SET, DEVLINK_GENL_VERSION)), h);
  w.nest(DEVLINK_ATTR_PORT_FUNCTION, (n) => n.bytes(DEVLINK_PORT_FUNCTION_ATTR_HW_ADDR, addrBytes(mac)), true);
  return encodeMessage({ type: family, flags: NLM_F_REQUEST | NLM_F_ACK, seq }, w.toBuffer());
}

/**
 * A DEVLINK_CMD_PORT_NEW message as the kernel builds it (devlink_nl_port_fill):
 * for tests and fixtures — the inverse of decodePort. Pure.
 */
export function encodePortMessage(seq: number, family: number, p: DevlinkPort, flags = 0): Buffer {
  const w = handleAttrs(new AttrWriter(192).raw(genlHeader(DEVLINK_CMD_PORT_NEW, DEVLINK_GENL_VERSION)), p);
  if (p.type !== undefined) {
    const t = (PORT_TYPES as readonly string[]).indexOf(p.type);
    w.u16(DEVLINK_ATTR_PORT_TYPE, t >= 0 ? t : Number(p.type.replace(/^type/, '')));
  }
  if (p.ifindex !== undefined) w.u32(DEVLINK_ATTR_PORT_NETDEV_IFINDEX, p.ifindex);
  if (p.netdev !== undefined) w.string(DEVLINK_ATTR_PORT_NETDEV_NAME, p.netdev);
  if (p.flavour !== undefined) w.u16(DEVLINK_ATTR_PORT_FLAVOUR, flavourNumber(p.flavour));
  if (p.number !== undefined) w.u32(DEVLINK_ATTR_PORT_NUMBER, p.number);
  if (p.controller !== undefined) w.u32(DEVLINK_ATTR_PORT_CONTROLLER_NUMBER, p.controller);
  if (p.pfnum !== undefined) w.u16(DEVLINK_ATTR_PORT_PCI_PF_NUMBER, p.pfnum);
  if (p.vfnum !== undefined) w.u16(DEVLINK_ATTR_PORT_PCI_VF_NUMBER, p.vfnum);
  if (p.sfnum !== undefined) w.u32(DEVLINK_ATTR_PORT_PCI_SF_NUMBER, p.sfnum);
  if (p.external !== undefined) w.u8(DEVLINK_ATTR_PORT_EXTERNAL, p.external ? 1 : 0);
  if (p.hwAddr !== undefined) {
    const addr = addrBytes(p.hwAddr);
    w.nest(DEVLINK_ATTR_PORT_FUNCTION, (n) => n.bytes(DEVLINK_PORT_FUNCTION_ATTR_HW_ADDR, addr), true);
  }
  return encodeMessage({ type: family, flags, seq }, w.toBuffer());
}

/** Calls `fn(type, payloadOffset, payloadLen)` for each TLV in `b[start, end)`. */
function walk(b: Buffer, start: number, end: number, fn: (type: number, o: number, n: number) => void): void {
  for (let off = start; off + 4 <= end; ) {
    const len = hu16(b, off);
    if (len < 4 || off + len > end) throw new NetlinkMalformedError(`devlink attribute length ${len} at ${off} overruns ${end}`);
    fn(hu16(b, off + 2) & NLA_TYPE_MASK, off + 4, len - 4);
    off += (len + 3) & ~3;
  }
}

function need(n: number, size: number, what: string): void {
  if (n < size) throw new NetlinkMalformedError(`devlink ${what} has ${n} B, need ${size}`);
}

/**
 * A DEVLINK_CMD_PORT_NEW message of family `family` → DevlinkPort; undefined for
 * other messages (another family, PORT_DEL notifications). Throws
 * NetlinkMalformedError on a truncated attribute or a port without its handle. Pure.
 */
export function decodePort(m: NlMessage, family: number): DevlinkPort | undefined {
  const b = m.body;
  if (m.hdr.type !== family || b.length < GENL_HDRLEN || b[0] !== DEVLINK_CMD_PORT_NEW) return undefined;
  let bus: string | undefined;
  let dev: string | undefined;
  let index: number | undefined;
  const p: { -readonly [K in keyof DevlinkPort]?: DevlinkPort[K] } = {};
  walk(b, GENL_HDRLEN, b.length, (type, o, n) => {
    switch (type) {
      case DEVLINK_ATTR_BUS_NAME:
        bus = stringAt(b, o, n);
        break;
      case DEVLINK_ATTR_DEV_NAME:
        dev = stringAt(b, o, n);
        break;
      case DEVLINK_ATTR_PORT_INDEX:
        need(n, 4, 'port index');
        index = hu32(b, o);
        break;
      case DEVLINK_ATTR_PORT_TYPE: {
        need(n, 2, 'port type');
        const t = hu16(b, o);
        p.type = PORT_TYPES[t] ?? `type${t}`;
        break;
      }
      case DEVLINK_ATTR_PORT_NETDEV_IFINDEX:
        need(n, 4, 'netdev ifindex');
        p.ifindex = hu32(b, o);
        break;
      case DEVLINK_ATTR_PORT_NETDEV_NAME:
        p.netdev = stringAt(b, o, n);
        break;
      case DEVLINK_ATTR_PORT_FLAVOUR:
        need(n, 2, 'port flavour');
        p.flavour = flavourName(hu16(b, o));
        break;
      case DEVLINK_ATTR_PORT_NUMBER:
        need(n, 4, 'port number');
        p.number = hu32(b, o);
        break;
      case DEVLINK_ATTR_PORT_CONTROLLER_NUMBER:
        need(n, 4, 'controller number');
        p.controller = hu32(b, o);
        break;
      case DEVLINK_ATTR_PORT_PCI_PF_NUMBER:
        need(n, 2, 'pf number');
        p.pfnum = hu16(b, o);
        break;
      case DEVLINK_ATTR_PORT_PCI_VF_NUMBER:
        need(n, 2, 'vf number');
        p.vfnum = hu16(b, o);
        break;
      case DEVLINK_ATTR_PORT_PCI_SF_NUMBER:
        need(n, 4, 'sf number');
        p.sfnum = hu32(b, o);
        break;
      case DEVLINK_ATTR_PORT_EXTERNAL:
        need(n, 1, 'external');
        p.external = b[o] !== 0;
        break;
      case DEVLINK_ATTR_PORT_FUNCTION:
        walk(b, o, o + n, (ft, fo, fn) => {
          if (ft === DEVLINK_PORT_FUNCTION_ATTR_HW_ADDR && fn > 0) p.hwAddr = hexAddr(b, fo, fn);
        });
        break;
    }
  });
  if (bus === undefined || dev === undefined || index === undefined) {
    throw new NetlinkMalformedError('devlink port message without bus name, dev name or port index');
  }
  return { bus, dev, index, handle: formatHandle({ bus, dev, index }), ...p };
}

// ---- raw requests --------------------------------------------------------------------

/** Any devlink command with attributes written by `fill` (ACKed, or a dump). Pure. */
export function encodeDevlinkRequest(seq: number, family: number, cmd: number, fill: (w: AttrWriter) => void, dump = false): Buffer {
  const w = new AttrWriter(64).raw(genlHeader(cmd, DEVLINK_GENL_VERSION));
  fill(w);
  return encodeMessage({ type: family, flags: NLM_F_REQUEST | (dump ? NLM_F_DUMP : NLM_F_ACK), seq }, w.toBuffer());
}
