// Pure helpers: representor names and VF MAC addresses.
import { HwError } from '../errors.ts';
import type { VfId } from './types.ts';

const REP_RE = /^pf(\d{1,2})vf(\d{1,4})$/;

/** `pf0vf3` → {pf:0, vf:3}; anything else (uplink `p0`, `pf0hpf`, `en3f0pf0sf0`) → undefined. */
export function parseRepresentorName(name: string): VfId | undefined {
  const m = REP_RE.exec(name);
  if (!m) return undefined;
  const pf = Number(m[1]);
  const vf = Number(m[2]);
  // Reject leading zeros so the mapping is a bijection (pf0vf03 is not pf0vf3).
  if (String(pf) !== m[1] || String(vf) !== m[2]) return undefined;
  return { pf, vf };
}

export function representorName(v: VfId): string {
  if (!Number.isInteger(v.pf) || v.pf < 0 || v.pf > 99 || !Number.isInteger(v.vf) || v.vf < 0 || v.vf > 9999) {
    throw new HwError(`invalid VF id pf=${v.pf} vf=${v.vf}`);
  }
  return `pf${v.pf}vf${v.vf}`;
}

export function compareVf(a: VfId, b: VfId): number {
  return a.pf - b.pf || a.vf - b.vf;
}

/**
 * Normalises a MAC to lower-case colon form and checks it is one a VF may carry:
 * unicast (I/G bit clear) and not all-zero. Throws HwError otherwise.
 */
export function normaliseVfMac(mac: string): string {
  const m = /^([0-9a-fA-F]{2})([:-]?)([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})\2([0-9a-fA-F]{2})$/.exec(mac);
  if (!m) throw new HwError(`invalid MAC ${JSON.stringify(mac)}`);
  const bytes = [m[1], m[3], m[4], m[5], m[6], m[7]].map((b) => b!.toLowerCase());
  if ((parseInt(bytes[0]!, 16) & 1) === 1) throw new HwError(`MAC ${mac} is multicast`);
  if (bytes.every((b) => b === '00')) throw new HwError(`MAC ${mac} is all-zero`);
  return bytes.join(':');
}

/** A locally administered MAC per VF: what a VF nobody leases carries instead of its last tenant's. */
export function scrubMac(pf: number, vf: number): string {
  const h = (n: number): string => (n & 0xff).toString(16).padStart(2, '0');
  return `02:00:00:${h(pf)}:${h(vf >> 8)}:${h(vf)}`;
}
