// An in-memory eSwitch for VfPool tests: the HwBackend interface of the BlueField and
// emulated backends, with VF MACs in a map, hot-removable VFs and read counters.
import type { HwBackend, Representor, VfId } from '../../dpu-agent/src/hw/types.ts';
import { parseRepresentorName, representorName } from '../../dpu-agent/src/hw/representor.ts';

/** Same interface as the BlueField/emulated backends; keeps VF MACs in memory. */
export class FakeHw implements HwBackend {
  readonly kind = 'emulated' as const;
  readonly macs = new Map<string, string>();
  /** VFs whose representor is absent (hot-removed). */
  readonly missing = new Set<number>();
  constructor(public n: number) {}
  async discoverRepresentors(): Promise<Representor[]> {
    return Array.from({ length: this.n }, (_, vf) => ({ pf: 0, vf, name: representorName({ pf: 0, vf }), ifindex: 100 + vf, operUp: false })).filter(
      (r) => !this.missing.has(r.vf),
    );
  }
  representorName(v: VfId): string {
    return representorName(v);
  }
  vfOf(r: string): VfId | undefined {
    return parseRepresentorName(r);
  }
  async setVfMac(v: VfId, mac: string): Promise<void> {
    this.macs.set(representorName(v), mac);
  }
  async getVfMac(v: VfId): Promise<string | undefined> {
    this.singleReads++;
    return this.macs.get(representorName(v));
  }
  singleReads = 0;
  batchReads = 0;
  /** Set to offer the optional batch read (as EmulatedHw does). */
  batch = false;
  getVfMacs?: (vfs: readonly VfId[]) => Promise<Map<string, string>> = async (vfs) => {
    if (!this.batch) throw new Error('no batch read in this fake');
    this.batchReads++;
    const out = new Map<string, string>();
    for (const v of vfs) {
      const mac = this.macs.get(representorName(v));
      if (mac) out.set(representorName(v), mac);
    }
    return out;
  };
}
