import { readlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { CNI_ERR } from '../../contract/cni.ts';
import { CniError } from './errors.ts';

// VFIO / userspace mode: the pod (DPDK, KubeVirt) gets the VF as a PCI device
// bound to vfio-pci instead of a netdev. Only the host side changes; the DPU
// plugs the representor exactly as for a netdev. Same sysfs dance as
// `driverctl set-override <addr> vfio-pci` and sriov-cni's DPDK mode:
// driver_override, unbind from the current driver, drivers_probe.

/** The sysfs operations we need; the real one touches files, tests give a fake kernel. */
export interface SysfsIo {
  readlink(path: string): Promise<string | undefined>;
  write(path: string, value: string): Promise<void>;
}

export const realSysfs: SysfsIo = {
  async readlink(path) {
    try {
      return await readlink(path);
    } catch {
      return undefined;
    }
  },
  async write(path, value) {
    await writeFile(path, value);
  },
};

const PCI_RE = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;

export class Vfio {
  constructor(
    private readonly sysfsRoot: string,
    private readonly io: SysfsIo = realSysfs,
  ) {}

  /** PCI address of VF `vf` of `pf`: the target of `class/net/<pf>/device/virtfn<vf>`. */
  async pciAddress(pf: string, vf: number): Promise<string> {
    const link = await this.io.readlink(join(this.sysfsRoot, 'class/net', pf, 'device', `virtfn${vf}`));
    const addr = link ? basename(link) : '';
    if (!PCI_RE.test(addr)) {
      throw new CniError(CNI_ERR.VF_NETDEV_NOT_FOUND, `no PCI device for VF ${vf} of ${pf}`, `${this.sysfsRoot}/class/net/${pf}/device/virtfn${vf} is missing or not a PCI address`);
    }
    return addr;
  }

  async driver(addr: string): Promise<string | undefined> {
    const link = await this.io.readlink(this.dev(addr, 'driver'));
    return link ? basename(link) : undefined;
  }

  /** Bind to vfio-pci; returns the driver it had before (to give it back on DEL). Idempotent. */
  async bind(addr: string): Promise<string | undefined> {
    const before = await this.driver(addr);
    if (before === 'vfio-pci') return undefined;
    await this.io.write(this.dev(addr, 'driver_override'), 'vfio-pci');
    if (before) await this.io.write(this.dev(addr, 'driver/unbind'), addr);
    await this.io.write(join(this.sysfsRoot, 'bus/pci/drivers_probe'), addr);
    if ((await this.driver(addr)) !== 'vfio-pci') {
      throw new CniError(CNI_ERR.NETDEV_CONFIG_FAILED, `${addr} did not bind to vfio-pci`, 'is the vfio-pci module loaded and the IOMMU enabled?');
    }
    return before;
  }

  /** Give the device back to the host driver. Tolerates a device that is already unbound or gone. */
  async unbind(addr: string): Promise<void> {
    if ((await this.driver(addr)) === 'vfio-pci') await this.io.write(this.dev(addr, 'driver/unbind'), addr);
    // An empty override lets the normal driver match again on the next probe.
    await this.io.write(this.dev(addr, 'driver_override'), '\n').catch(() => undefined);
    await this.io.write(join(this.sysfsRoot, 'bus/pci/drivers_probe'), addr).catch(() => undefined);
  }

  private dev(addr: string, leaf: string): string {
    return join(this.sysfsRoot, 'bus/pci/devices', addr, leaf);
  }
}
