// Text ⇄ bytes for the addresses flower and actions carry. Decoded values are in
// one canonical text form (MAC lower-case colon, IPv4 dotted quad, IPv6 RFC 5952)
// so a decoded filter compares equal to the one that was encoded.
import { isIPv4, isIPv6 } from 'node:net';
import { TcInvalidError } from '../errors.ts';

export function macToBytes(mac: string): Buffer {
  const m = /^([0-9a-fA-F]{2}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})$/.exec(mac);
  if (!m) throw new TcInvalidError(`invalid MAC ${JSON.stringify(mac)}`);
  return Buffer.from(m.slice(1, 7).join(''), 'hex');
}

export function bytesToMac(b: Uint8Array): string {
  if (b.length === 6) return macAt(b, 0);
  let s = '';
  for (let i = 0; i < b.length; i++) s += (i ? ':' : '') + (b[i]! < 16 ? '0' : '') + b[i]!.toString(16);
  return s;
}

// Lower-case hex digit char codes, for building address text in one flat string.
const HEX = Array.from('0123456789abcdef', (c) => c.charCodeAt(0));

/** The 6 bytes at `b[o]` as a MAC (one flat string, no per-byte pieces). */
export function macAt(b: Uint8Array, o: number): string {
  const x0 = b[o]!, x1 = b[o + 1]!, x2 = b[o + 2]!, x3 = b[o + 3]!, x4 = b[o + 4]!, x5 = b[o + 5]!;
  return String.fromCharCode(
    HEX[x0 >> 4]!, HEX[x0 & 15]!, 58, HEX[x1 >> 4]!, HEX[x1 & 15]!, 58, HEX[x2 >> 4]!, HEX[x2 & 15]!, 58,
    HEX[x3 >> 4]!, HEX[x3 & 15]!, 58, HEX[x4 >> 4]!, HEX[x4 & 15]!, 58, HEX[x5 >> 4]!, HEX[x5 & 15]!,
  );
}

/** The 4 bytes at `b[o]` as a dotted quad. */
export const ipv4At = (b: Uint8Array, o: number): string => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;

export function ipv4ToBytes(ip: string): Buffer {
  if (!isIPv4(ip)) throw new TcInvalidError(`invalid IPv4 address ${JSON.stringify(ip)}`);
  return Buffer.from(ip.split('.').map(Number));
}

export function bytesToIpv4(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

export function ipv6ToBytes(ip: string): Buffer {
  if (!isIPv6(ip) || ip.includes('%')) throw new TcInvalidError(`invalid IPv6 address ${JSON.stringify(ip)}`);
  let text = ip;
  const words: number[] = [];
  // Trailing dotted quad (::ffff:1.2.3.4) becomes two words.
  const dq = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  let tail: number[] = [];
  if (dq) {
    const v4 = ipv4ToBytes(dq[1]!);
    tail = [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!];
    text = text.slice(0, -dq[1]!.length);
    if (text.endsWith(':') && !text.endsWith('::')) text = text.slice(0, -1);
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':').map((x) => parseInt(x, 16)) : [];
  const r = rest !== undefined && rest !== '' ? rest.split(':').map((x) => parseInt(x, 16)) : [];
  const fill = 8 - h.length - r.length - tail.length;
  words.push(...h, ...(rest !== undefined ? new Array<number>(fill).fill(0) : []), ...r, ...tail);
  if (words.length !== 8) throw new TcInvalidError(`invalid IPv6 address ${JSON.stringify(ip)}`);
  const out = Buffer.alloc(16);
  words.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}

/** RFC 5952: lower-case hex, longest run (≥2) of zero words as "::" (first on ties). */
export const bytesToIpv6 = (b: Uint8Array): string => ipv6At(b, 0);

/** The 16 bytes at `b[o]` as RFC 5952 text. */
export function ipv6At(b: Uint8Array, o: number): string {
  const w: number[] = [];
  for (let i = o; i < o + 16; i += 2) w.push((b[i]! << 8) | b[i + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':');
  if (bestLen < 2) return hex(w);
  return `${hex(w.slice(0, bestStart))}::${hex(w.slice(bestStart + bestLen))}`;
}

export function hexToBytes(hex: string, size?: number): Buffer {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(hex)) throw new TcInvalidError(`invalid hex ${JSON.stringify(hex)}`);
  const b = Buffer.from(hex, 'hex');
  if (size !== undefined && b.length !== size) throw new TcInvalidError(`hex ${hex} is ${b.length} B, need ${size}`);
  return b;
}

export function bytesToHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}
