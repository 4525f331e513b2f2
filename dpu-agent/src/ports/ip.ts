import { isIP } from 'node:net';

// Small, pure address helpers for turning OVN's addresses/networks into what a
// pod interface needs. Both families, via BigInt.

export interface Cidr {
  readonly family: 4 | 6;
  readonly addr: bigint;
  readonly prefix: number;
  readonly text: string;
}

export function parseIp(ip: string): { family: 4 | 6; addr: bigint } | undefined {
  const fam = isIP(ip);
  if (fam === 4) {
    const parts = ip.split('.').map(Number);
    return { family: 4, addr: parts.reduce((a, p) => (a << 8n) | BigInt(p), 0n) };
  }
  if (fam === 6) {
    const [head, tail] = ip.includes('::') ? (ip.split('::') as [string, string]) : [ip, undefined];
    const h = head ? head.split(':') : [];
    const tl = tail !== undefined && tail !== '' ? tail.split(':') : [];
    // An embedded IPv4 tail (::ffff:1.2.3.4) is two groups.
    const expand = (groups: string[]): string[] =>
      groups.flatMap((g) => {
        if (!g.includes('.')) return [g];
        const v4 = parseIp(g);
        const n = v4 ? Number(v4.addr) : 0;
        return [((n >>> 16) & 0xffff).toString(16), (n & 0xffff).toString(16)];
      });
    const hh = expand(h);
    const tt = expand(tl);
    const groups = tail === undefined ? hh : [...hh, ...Array(8 - hh.length - tt.length).fill('0'), ...tt];
    return { family: 6, addr: groups.reduce((a, g) => (a << 16n) | BigInt(parseInt(g || '0', 16)), 0n) };
  }
  return undefined;
}

export function parseCidr(text: string): Cidr | undefined {
  const [ip, p] = text.split('/');
  if (!ip) return undefined;
  const parsed = parseIp(ip);
  if (!parsed) return undefined;
  const max = parsed.family === 4 ? 32 : 128;
  const prefix = p === undefined ? max : Number(p);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return undefined;
  return { ...parsed, prefix, text };
}

export function contains(net: Cidr, ip: string): boolean {
  const a = parseIp(ip);
  if (!a || a.family !== net.family) return false;
  const bits = BigInt(net.family === 4 ? 32 : 128);
  const shift = bits - BigInt(net.prefix);
  return a.addr >> shift === net.addr >> shift;
}

/** The address part of "10.0.0.1/24". */
export function hostOf(cidr: string): string {
  return cidr.split('/')[0] ?? cidr;
}
