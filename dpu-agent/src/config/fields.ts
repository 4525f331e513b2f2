// Reading one field of the raw (file + env) config: each helper checks the type and
// range and names the key in its ConfigError, so a bad config is refused at the edge.
import { isIP } from 'node:net';
import { ConfigError } from '../errors.ts';
import { type Remote, parseRemotes } from '../jsonrpc/remote.ts';
import type { TlsPaths } from './types.ts';

export type Json = Record<string, unknown>;

/** An IP address to bind; wildcards (0.0.0.0, ::) are refused so each listener stays on its own network. */
export function listenAddress(o: Json, path: string, dflt?: string): string {
  const v = str(o, path, dflt);
  const family = isIP(v);
  if (family === 0) throw new ConfigError(path, `${JSON.stringify(v)} is not an IP address`);
  if ((family === 4 && v === '0.0.0.0') || (family === 6 && /^[0:]+$/.test(v))) {
    throw new ConfigError(path, 'must be a specific address, not a wildcard');
  }
  return v;
}

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function section(o: Json, key: string): Json {
  const v = o[key];
  if (v === undefined) return {};
  if (!isObject(v)) throw new ConfigError(key, 'must be an object');
  return v;
}

export function checkKeys(o: Json, prefix: string, allowed: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new ConfigError(`${prefix}${k}`, `unknown key (allowed: ${allowed.join(', ')})`);
  }
}

export function setPath(o: Json, path: string, value: string): void {
  // Nested paths (api.tls.key, api.limits.maxMessageBytes) walk one object per level.
  const parts = path.split('.');
  const key = parts.pop() as string;
  let s = o;
  let at = '';
  for (const p of parts) {
    at = at ? `${at}.${p}` : p;
    // A malformed section in the file must fail, not be silently replaced by the env value.
    if (s[p] !== undefined && !isObject(s[p])) throw new ConfigError(at, 'must be an object');
    s = (s[p] = isObject(s[p]) ? s[p] : {}) as Json;
  }
  s[key] = value;
}

export function str(o: Json, path: string, dflt?: string): string {
  const v = o[leaf(path)];
  if (v === undefined) {
    if (dflt !== undefined) return dflt;
    throw new ConfigError(path, 'is required');
  }
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(path, 'must be a non-empty string');
  return v;
}

export function strList(o: Json, path: string): string[] {
  const v = o[leaf(path)];
  if (v === undefined) return [];
  // env gives "a,b"; the file gives ["a","b"].
  if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter(Boolean);
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new ConfigError(path, 'must be a list of strings');
  return v as string[];
}

export function bool(o: Json, path: string, dflt: boolean): boolean {
  const v = o[leaf(path)];
  if (v === undefined) return dflt;
  if (typeof v === 'boolean') return v;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new ConfigError(path, 'must be true or false');
}

export function int(o: Json, path: string, dflt: number, min: number, max: number): number {
  let v = o[leaf(path)];
  if (v === undefined) return dflt;
  if (typeof v === 'string' && /^\d+$/.test(v)) v = Number(v);
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(path, `must be an integer in [${min}, ${max}]`);
  }
  return v;
}

export function oneOf<T extends string>(o: Json, path: string, allowed: readonly T[], dflt: T): T {
  const v = o[leaf(path)];
  if (v === undefined) return dflt;
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new ConfigError(path, `must be one of ${allowed.join(', ')} (got ${JSON.stringify(v)})`);
  }
  return v as T;
}

export function remotes(path: string, value: string): Remote[] {
  try {
    return parseRemotes(value);
  } catch (err) {
    throw new ConfigError(path, (err as Error).message);
  }
}

export function leaf(path: string): string {
  return path.slice(path.lastIndexOf('.') + 1);
}

export function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

export function tlsSection(o: Json, path: string): TlsPaths | undefined {
  const t = o[leaf(path)];
  if (t === undefined) return undefined;
  if (!isObject(t)) throw new ConfigError(path, 'must be an object {key, cert, ca}');
  checkKeys(t, `${path}.`, ['key', 'cert', 'ca']);
  return { key: str(t, `${path}.key`), cert: str(t, `${path}.cert`), ca: str(t, `${path}.ca`) };
}
