// The eSwitch backend section (`hw`), validated into the HwConfig variant of its
// backend: a key of the other backend is an error, not silently ignored.
import { ConfigError } from '../errors.ts';
import { type Json, checkKeys, oneOf, str } from './fields.ts';
import type { HwConfig } from './types.ts';

export function parseHw(hw: Json): HwConfig {
  checkKeys(hw, 'hw.', ['backend', 'hostNetns', 'uplink']);
  const backend = oneOf(hw, 'hw.backend', ['emulated', 'bluefield'] as const, 'bluefield');
  const uplink = str(hw, 'hw.uplink', 'p0');
  if (backend === 'emulated') {
    if (hw['hostNetns'] === undefined) throw new ConfigError('hw.hostNetns', 'is required for the emulated backend');
    return { backend, hostNetns: str(hw, 'hw.hostNetns'), uplink };
  }
  if (hw['hostNetns'] !== undefined) throw new ConfigError('hw.hostNetns', 'applies to the emulated backend only');
  return { backend, uplink };
}
