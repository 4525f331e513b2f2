// Shared by the lab's security and fault tests: attachment keys for lab pods,
// LSP-only pods (the control plane created them, nobody attached them yet), a
// cheap "what leaked" count, and the tried/blocked/leaked tally each attack adds to.
import { randomUUID } from 'node:crypto';
import { EXT } from '../../dpu-agent/src/ports/lease.ts';
import { dpuLeaseView } from '../../scripts/labkit/consistency.ts';
import type { AttachmentKeyJson } from '../../scripts/labkit/hostclient.ts';
import { controlPlane } from '../../scripts/labkit/pods.ts';
import { dpuName, lspName, macForIp, type PodRef } from '../../scripts/labkit/plan.ts';
import type { LabRun } from '../../scripts/labkit/run.ts';
import type { PodState } from '../../scripts/labkit/state.ts';

export function keyOf(p: Pick<PodState, 'namespace' | 'name' | 'uid' | 'sandbox'>, over: Partial<AttachmentKeyJson> = {}): AttachmentKeyJson {
  return { pod: { namespace: p.namespace, name: p.name, uid: p.uid }, sandboxId: p.sandbox, ifname: 'eth0', ...over };
}

export interface LspPod {
  namespace: string;
  name: string;
  uid: string;
  sandbox: string;
  lsp: string;
  ip: string;
}

/** An LSP the control plane made (addresses, port security, requested-chassis, pod-uid) with no attachment. */
export async function lspOnlyPod(run: LabRun, ref: PodRef, ip: string, chassis: number): Promise<LspPod> {
  const p = { ...ref, uid: randomUUID(), sandbox: `sb-${randomUUID().slice(0, 8)}`, lsp: lspName(ref), ip };
  await controlPlane(run).addLsp({ lsp: p.lsp, mac: macForIp(ip), ip, chassis: dpuName(chassis), uid: p.uid });
  return p;
}

/** Leases on every DPU that belong to no lab pod, plus br-int ports nobody owns. */
export async function leakCount(run: LabRun, expectExtra = 0): Promise<number> {
  let n = 0;
  for (const d of run.state.dpus) {
    const v = await dpuLeaseView(d);
    n += v.foreign.length;
    for (const ext of v.leases.values()) {
      const owned = Object.values(run.state.pods).some((p) => p.node === d.k && p.lsp === ext.get(EXT.ifaceId) && p.sandbox === ext.get(EXT.sandbox));
      if (!owned) n++;
    }
  }
  return Math.max(0, n - expectExtra);
}

export interface TallyRow {
  attack: string;
  tried: number;
  blocked: number;
  leaked: number;
}

export class Tally {
  readonly rows: TallyRow[] = [];
  add(attack: string, tried: number, blocked: number, leaked: number): TallyRow {
    const r = { attack, tried, blocked, leaked };
    this.rows.push(r);
    return r;
  }
  get totals(): { tried: number; blocked: number; leaked: number } {
    return this.rows.reduce((a, r) => ({ tried: a.tried + r.tried, blocked: a.blocked + r.blocked, leaked: a.leaked + r.leaked }), { tried: 0, blocked: 0, leaked: 0 });
  }
  table(): string {
    const w = Math.max(6, ...this.rows.map((r) => r.attack.length));
    const lines = [`${'attack'.padEnd(w)}  tried  blocked  leaked`];
    for (const r of this.rows) lines.push(`${r.attack.padEnd(w)}  ${String(r.tried).padStart(5)}  ${String(r.blocked).padStart(7)}  ${String(r.leaked).padStart(6)}`);
    const t = this.totals;
    lines.push(`${'total'.padEnd(w)}  ${String(t.tried).padStart(5)}  ${String(t.blocked).padStart(7)}  ${String(t.leaked).padStart(6)}`);
    return lines.join('\n');
  }
}
