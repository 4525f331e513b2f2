// `devlink -j port show` (iproute2) parsed into the same DevlinkPort the netlink
// codec decodes: the reference the lane test compares our dump against, and how the
// hand-made fixtures of a BlueField are written. Pure.
import { type DevlinkPort, parseHandle } from './codec.ts';

/** Parses `devlink -j port show`. iproute2 prints no ifindex, so none is set. */
export function parseDevlinkPortsJson(json: string): DevlinkPort[] {
  const doc = JSON.parse(json) as { port?: Record<string, Record<string, unknown>> };
  return Object.entries(doc.port ?? {}).map(([handle, p]) => {
    const fn = p['function'] as { hw_addr?: string } | undefined;
    const str = (k: string): string | undefined => (typeof p[k] === 'string' ? (p[k] as string) : undefined);
    const num = (k: string): number | undefined => (typeof p[k] === 'number' ? (p[k] as number) : undefined);
    const out: { -readonly [K in keyof DevlinkPort]?: DevlinkPort[K] } = { ...parseHandle(handle), handle };
    if (str('type') !== undefined) out.type = str('type');
    if (str('netdev') !== undefined) out.netdev = str('netdev');
    if (str('flavour') !== undefined) out.flavour = str('flavour');
    if (num('port') !== undefined) out.number = num('port');
    if (num('controller') !== undefined) out.controller = num('controller');
    if (num('pfnum') !== undefined) out.pfnum = num('pfnum');
    if (num('vfnum') !== undefined) out.vfnum = num('vfnum');
    if (num('sfnum') !== undefined) out.sfnum = num('sfnum');
    if (typeof p['external'] === 'boolean') out.external = p['external'];
    if (fn?.hw_addr) out.hwAddr = fn.hw_addr.toLowerCase();
    return out as DevlinkPort;
  });
}

/** A port without what `devlink -j port show` does not print (the ifindex), for comparisons. */
export function asIproute2Prints(p: DevlinkPort): DevlinkPort {
  const { ifindex: _ifindex, ...rest } = p;
  return rest;
}
