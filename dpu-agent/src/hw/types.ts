// The hardware boundary: what the agent needs from the eSwitch, behind one
// interface that the BlueField backend (sysfs + devlink) and the lab's emulated
// backend (veth pairs in netns) both implement. The agent never talks to the
// host side: every operation here is done as the eSwitch manager, on the DPU.

/** A VF as the host sees it: PF number and VF index (`/sys/class/net/<pf>/device/virtfn<vf>`). */
export interface VfId {
  pf: number;
  vf: number;
}

/** A VF representor netdev on the DPU (`pf0vf3` ⇄ host VF 3 of PF 0). */
export interface Representor extends VfId {
  /** Netdev name on the DPU, e.g. `pf0vf3`. */
  name: string;
  ifindex: number;
  /** The representor's own MAC (not the VF's). */
  mac?: string;
  operUp: boolean;
  /** Administratively up (IFF_UP), when the backend knows it. */
  adminUp?: boolean;
}

export interface HwBackend {
  readonly kind: 'bluefield' | 'emulated';
  /**
   * VF representors present on this DPU, sorted by (pf, vf). On BlueField they are
   * found by `phys_port_name` (`pfNvfM`) under the eSwitch's `phys_switch_id`.
   */
  discoverRepresentors(): Promise<Representor[]>;
  /** VF → representor netdev name. Pure. */
  representorName(vf: VfId): string;
  /** Representor netdev name → VF, or undefined if the name is not a VF representor. Pure. */
  vfOf(representor: string): VfId | undefined;
  /**
   * Sets the MAC the host will see on the VF, as the eSwitch manager does it
   * (same as: `devlink port function set pci/…/N hw_addr MAC`). Must be called
   * before the VF is handed to the host.
   */
  setVfMac(vf: VfId, mac: string): Promise<void>;
  /** The VF's current MAC as the eSwitch manager sees it (devlink port function `hw_addr`). */
  getVfMac(vf: VfId): Promise<string | undefined>;
  /**
   * Optional batch of getVfMac for many VFs (the pool's start), keyed by representor
   * name; a VF missing from the map is read with getVfMac.
   */
  getVfMacs?(vfs: readonly VfId[]): Promise<Map<string, string>>;
}
