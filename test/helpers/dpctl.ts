// Reading `ovs-appctl dpctl/dump-flows` text for the kernel tests: which port each
// datapath flow came in on and how many packets it counted. Pure.

/** `dpctl/show` port lines ("  port 2: pf0vf0" or "port 2: genev_sys_6081 (geneve: …)") → number → name. */
export function dpctlPorts(show: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of show.matchAll(/^\s*port (\d+): (\S+)/gm)) out.set(m[1]!, m[2]!);
  return out;
}

/** Per in_port device: the flows listed and the sum of their `packets:` counts. */
export function dpctlPerPort(dumpFlows: string, show: string): Map<string, { flows: number; packets: number }> {
  const ports = dpctlPorts(show);
  const out = new Map<string, { flows: number; packets: number }>();
  for (const line of dumpFlows.split('\n')) {
    const port = /[ ,(]in_port\(([^)]+)\)/.exec(line)?.[1];
    if (!port) continue;
    const name = ports.get(port) ?? port;
    const packets = Number(/packets:(\d+)/.exec(line)?.[1] ?? 0);
    const cur = out.get(name) ?? { flows: 0, packets: 0 };
    out.set(name, { flows: cur.flows + 1, packets: cur.packets + packets });
  }
  return out;
}

/**
 * Why each flow of a `dpctl/dump-flows type=ovs` text stayed out of TC, as far as its
 * text shows: conntrack/recirculation (OVS offloads those only when the kernel shares
 * recirc ids with TC, OVS_DP_F_TC_RECIRC_SHARING, i.e. CONFIG_NET_TC_SKB_EXT — off in
 * Debian's 6.1), or a slow-path `userspace(…)` action (ARP replies OVN builds, controller
 * actions) that TC cannot run. Anything else is listed in `other`.
 */
export function explainKernelOnly(dumpFlows: string): { conntrack: number; slowPath: number; other: string[] } {
  const out = { conntrack: 0, slowPath: 0, other: [] as string[] };
  for (const line of dumpFlows.split('\n')) {
    if (!/in_port\(/.test(line)) continue;
    const actions = line.slice(line.indexOf('actions:'));
    if (/userspace\(/.test(actions)) out.slowPath++;
    else if (/recirc_id\((?!0\))/.test(line) || /\bct\(|recirc\(/.test(actions)) out.conntrack++;
    else out.other.push(line.trim());
  }
  return out;
}
