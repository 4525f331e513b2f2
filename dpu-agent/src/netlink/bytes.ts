// Host-order integer reads and writes for netlink payloads. Netlink is host order;
// only values the uapi marks __be16/__be32 are network order (nbe16/nbe32, Buffer BE reads).
import { endianness } from 'node:os';

export const HOST_LE = endianness() === 'LE';

export const align4 = (n: number): number => (n + 3) & ~3;

export function writeU64(b: Buffer, at: number, v: number): void {
  const hi = Math.floor(v / 0x1_0000_0000);
  const lo = v >>> 0;
  if (HOST_LE) {
    b.writeUInt32LE(lo, at);
    b.writeUInt32LE(hi >>> 0, at + 4);
  } else {
    b.writeUInt32BE(hi >>> 0, at);
    b.writeUInt32BE(lo, at + 4);
  }
}

export function readU64(b: Buffer, at: number): number {
  return HOST_LE
    ? b.readUInt32LE(at + 4) * 0x1_0000_0000 + b.readUInt32LE(at)
    : b.readUInt32BE(at) * 0x1_0000_0000 + b.readUInt32BE(at + 4);
}

export const readU16 = (b: Buffer, at: number): number => (HOST_LE ? b.readUInt16LE(at) : b.readUInt16BE(at));
export const readU32 = (b: Buffer, at: number): number => (HOST_LE ? b.readUInt32LE(at) : b.readUInt32BE(at));
export const readS32 = (b: Buffer, at: number): number => (HOST_LE ? b.readInt32LE(at) : b.readInt32BE(at));
export function writeU16(b: Buffer, at: number, v: number): void {
  if (HOST_LE) b.writeUInt16LE(v, at);
  else b.writeUInt16BE(v, at);
}
export function writeU32(b: Buffer, at: number, v: number): void {
  if (HOST_LE) b.writeUInt32LE(v >>> 0, at);
  else b.writeUInt32BE(v >>> 0, at);
}
export function writeS32(b: Buffer, at: number, v: number): void {
  if (HOST_LE) b.writeInt32LE(v | 0, at);
  else b.writeInt32BE(v | 0, at);
}

/**
 * Host-order u16/u32/s32/u64 and big-endian u16/u32 at `o`, as plain byte reads
 * (no bounds-checked Buffer method call): what the range decoders use in their hot
 * loops. Callers check the length first.
 */
export const hu16: (b: Uint8Array, o: number) => number = HOST_LE
  ? (b, o) => b[o]! | (b[o + 1]! << 8)
  : (b, o) => (b[o]! << 8) | b[o + 1]!;
export const hu32: (b: Uint8Array, o: number) => number = HOST_LE
  ? (b, o) => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16)) + b[o + 3]! * 0x1000000
  : (b, o) => b[o]! * 0x1000000 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);
export const hs32 = (b: Uint8Array, o: number): number => hu32(b, o) | 0;
export const hu64: (b: Uint8Array, o: number) => number = HOST_LE
  ? (b, o) => hu32(b, o + 4) * 0x1_0000_0000 + hu32(b, o)
  : (b, o) => hu32(b, o) * 0x1_0000_0000 + hu32(b, o + 4);
export const nbe16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
export const nbe32 = (b: Uint8Array, o: number): number => b[o]! * 0x1000000 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);
