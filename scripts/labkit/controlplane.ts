// The lab's stand-in for ovn-kubernetes: writes the OVN northbound DB through
// ovn-nbctl (the external control plane's job, not the agent's). One shared
// logical switch for all pods, a router port as their gateway, one LSP per pod
// named NS_NAME, and deny policies as ACLs on port groups.
import { POD_CIDR_BITS, POD_GATEWAY, POD_PREFIX, POD_ROUTER_MAC, POD_UID_KEY } from './plan.ts';
import { sh } from './sh.ts';

export const POD_SWITCH = 'pods';
export const ROUTER = 'lab-router';
const ROUTER_PORT = 'rtr-pods';
const SWITCH_ROUTER_PORT = 'pods-rtr';

export interface LspSpec {
  lsp: string;
  mac: string;
  ip: string;
  /** OVN chassis (system-id) the port may be bound on. */
  chassis: string;
  /**
   * Pod UID, recorded in external_ids (the agent's ovn.podUidKey) and checked by the agent, and
   * set as options:iface-id-ver as ovn-kubernetes does (ovn-controller then binds the LSP only to
   * an interface with that external_ids:iface-id-ver, which the agent copies from the LSP).
   */
  uid?: string;
}

export class ControlPlane {
  /** @param nbDb ovn-nbctl --db value, e.g. `unix:/run/dpu-lab/x/central/nb.sock`. */
  constructor(readonly nbDb: string) {}

  nbctl(args: readonly string[], opts: { waitHv?: boolean; timeoutS?: number } = {}): Promise<string> {
    const t = opts.timeoutS ?? 10;
    const wait = opts.waitHv ? ['--wait=hv'] : [];
    return sh(['ovn-nbctl', `--db=${this.nbDb}`, `--timeout=${t}`, ...wait, ...args], { timeoutMs: (t + 5) * 1000 });
  }

  /** Pod switch and gateway router; idempotent. */
  async init(): Promise<void> {
    // same as: ovn-nbctl ls-add pods -- lr-add lab-router -- lrp-add … -- lsp-add pods pods-rtr …
    await this.nbctl([
      '--may-exist', 'ls-add', POD_SWITCH,
      '--', 'set', 'Logical_Switch', POD_SWITCH, `other_config:subnet=${POD_PREFIX}.0.0/${POD_CIDR_BITS}`,
      '--', '--may-exist', 'lr-add', ROUTER,
      '--', '--may-exist', 'lrp-add', ROUTER, ROUTER_PORT, POD_ROUTER_MAC, `${POD_GATEWAY}/${POD_CIDR_BITS}`,
      '--', '--may-exist', 'lsp-add', POD_SWITCH, SWITCH_ROUTER_PORT,
      '--', 'lsp-set-type', SWITCH_ROUTER_PORT, 'router',
      '--', 'lsp-set-addresses', SWITCH_ROUTER_PORT, 'router',
      '--', 'lsp-set-options', SWITCH_ROUTER_PORT, `router-port=${ROUTER_PORT}`,
    ]);
  }

  /**
   * The pod's LSP with addresses, port security and requested-chassis, as
   * ovn-kubernetes writes it. same as:
   *   ovn-nbctl lsp-add pods NS_NAME -- lsp-set-addresses NS_NAME "MAC IP"
   *     -- lsp-set-port-security NS_NAME "MAC IP" -- lsp-set-options NS_NAME requested-chassis=dpuK iface-id-ver=UID
   *     -- set Logical_Switch_Port NS_NAME external_ids:pod-uid=UID
   */
  async addLsp(s: LspSpec): Promise<void> {
    const addr = `${s.mac} ${s.ip}`;
    await this.nbctl([
      '--may-exist', 'lsp-add', POD_SWITCH, s.lsp,
      '--', 'lsp-set-addresses', s.lsp, addr,
      '--', 'lsp-set-port-security', s.lsp, addr,
      '--', 'lsp-set-options', s.lsp, `requested-chassis=${s.chassis}`, ...(s.uid ? [`iface-id-ver=${s.uid}`] : []),
      ...(s.uid ? ['--', 'set', 'Logical_Switch_Port', s.lsp, `external_ids:${POD_UID_KEY}=${s.uid}`] : []),
    ]);
  }

  async delLsp(lsp: string): Promise<void> {
    await this.nbctl(['--if-exists', 'lsp-del', lsp]);
  }

  async lspExists(lsp: string): Promise<boolean> {
    return (await this.nbctl(['--bare', '--columns=name', 'find', 'Logical_Switch_Port', `name=${lsp}`])) !== '';
  }

  /**
   * Drops IPv4 to `targetLsp` (optionally only from `fromIp`) with a to-lport ACL on a
   * port group holding the target, and waits until every chassis has applied it.
   * same as: ovn-nbctl pg-add PG LSP -- acl-add PG to-lport 1000 'outport == @PG && ip4…' drop
   */
  async deny(pg: string, targetLsp: string, fromIp?: string): Promise<void> {
    const match = `outport == @${pg} && ip4${fromIp ? ` && ip4.src == ${fromIp}` : ''}`;
    await this.nbctl(
      ['--if-exists', 'destroy', 'Port_Group', pg, '--', 'pg-add', pg, targetLsp, '--', '--type=port-group', 'acl-add', pg, 'to-lport', '1000', match, 'drop'],
      { waitHv: true },
    );
  }

  /** Removes a deny (the port group and its ACLs); idempotent. */
  async allow(pg: string): Promise<void> {
    // ACL rows are not root rows: deleting the group garbage-collects its ACLs.
    await this.nbctl(['--if-exists', 'destroy', 'Port_Group', pg], { waitHv: true });
  }
}
