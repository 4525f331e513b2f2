// `lab policy deny|allow`: a deny is a drop ACL on a port group holding the
// target pod's LSP (optionally only from one source pod's IP).
import { pgName, podKey, type PodRef } from './plan.ts';
import { controlPlane } from './pods.ts';
import type { LabRun } from './run.ts';

function lookup(run: LabRun, ref: PodRef) {
  const p = run.state.pods[podKey(ref)];
  if (!p) throw new Error(`no pod ${podKey(ref)} in lab ${run.prefix}`);
  return p;
}

const policyId = (target: PodRef, from?: PodRef): string => `${podKey(target)}<-${from ? podKey(from) : '*'}`;

/** Applies the deny and returns once every chassis has it (ovn-nbctl --wait=hv). */
export async function denyPolicy(run: LabRun, target: PodRef, from?: PodRef): Promise<void> {
  const t = lookup(run, target);
  const f = from ? lookup(run, from) : undefined;
  const id = policyId(target, from);
  const pg = pgName('deny', id);
  await controlPlane(run).deny(pg, t.lsp, f?.ip);
  run.state.policies = run.state.policies.filter((p) => p.id !== id);
  run.state.policies.push({ id, pg, target: podKey(target), ...(from ? { from: podKey(from) } : {}) });
  run.save();
}

/** Removes the matching deny; idempotent. */
export async function allowPolicy(run: LabRun, target: PodRef, from?: PodRef): Promise<void> {
  const id = policyId(target, from);
  await controlPlane(run).allow(pgName('deny', id));
  run.state.policies = run.state.policies.filter((p) => p.id !== id);
  run.save();
}
