/**
 * The untimed policy for graph models: `inspect` (touches no tensors: the table decides what it
 * can, the rest is 'pending', said as what optimize would time) and `always` (every correct
 * match). optimize times graph candidates in src/graphdef/policy.ts. Named passes are never
 * held back.
 */
import type { BackendInfo } from '../backend/select';
import type { KeepHookOf } from '../core/driver';
import type { GraphCandidate } from '../graphdef/driver';
import type { Step } from '../rewrite/patch-plan';
import type { ConvAnalysis } from '../rewrite/conv-analysis';
import { graphCandidateFingerprint } from './fingerprint';
import { DEFAULT_POLICY_BATCH, MIN_SPEEDUP, PolicyDecision, PolicyMode, PolicyReport, TableFacts, tableEntryFor } from './policy';

const CONV_CLASS: Record<number, string> = { 1: 'Conv1D', 2: 'Conv2D', 3: 'Conv3D' };
const STEP_CLASS: Record<Step['kind'], string> = { reshape: 'Reshape', permute: 'Permute', crop: 'Cropping2D' };

/** The table's facts from a conv plan (layers or graph): its class, work and view steps. */
export function planFacts(plan: ConvAnalysis & { spatial?: number[] }): TableFacts | undefined {
  const kernel = plan.geometry.kernel;
  if (!plan.spatial || !plan.groups) return undefined;
  const positions = plan.spatial.reduce((n, size, a) => n * Math.floor(size / kernel[a]), 1);
  const macsPerItem = positions * kernel.reduce((a, b) => a * b, 1) * plan.geometry.channels * plan.filters;
  const steps = plan.groups.flatMap((group) => [...group.plan.before, ...group.plan.after]);
  return { className: CONV_CLASS[kernel.length], macsPerItem, replacement: ['Dense', ...steps.map((step) => STEP_CLASS[step.kind])] };
}

export function graphPolicy(mode: PolicyMode | undefined, backend: Pick<BackendInfo, 'name' | 'device'>): { keep?: KeepHookOf<GraphCandidate>; report: PolicyReport } {
  const decisions = new Map<string, PolicyDecision>();
  const report: PolicyReport = { mode: mode ?? 'auto', backend: backend.name, device: backend.device, batch: DEFAULT_POLICY_BATCH, minSpeedup: MIN_SPEEDUP, decisions: [] };
  const keep: KeepHookOf<GraphCandidate> = (candidate) => {
    if (candidate.pass.reportRefusals === false) return null;
    const key = `${candidate.graph}/${candidate.layer.name}/${candidate.pass.name}`;
    const where = { layer: candidate.layer.name, graph: candidate.graph, pass: candidate.pass.name, fingerprint: graphCandidateFingerprint(candidate) };
    let decision: PolicyDecision;
    if (candidate.context.forced) decision = { ...where, decision: 'rewrite', evidence: 'forced', reason: 'asked for by name (--passes): the policy does not judge it' };
    else if (mode === 'always') decision = { ...where, decision: 'rewrite', evidence: 'always', reason: '--policy always: every correct match is rewritten' };
    else {
      const facts = planFacts(candidate.plan as ConvAnalysis & { spatial?: number[] });
      const entry = mode !== 'measure' && facts ? tableEntryFor([facts], backend.name) : undefined;
      decision = entry
        ? { ...where, decision: 'rewrite', evidence: 'table', reason: `table: ${entry.source}` }
        : { ...where, decision: 'pending', evidence: 'unmeasured', reason: `optimize would time it on ${backend.name} at batch ${DEFAULT_POLICY_BATCH} (the op alone vs its replacement alone) and rewrite it only if >= ${MIN_SPEEDUP}x faster; inspect touches no tensors` };
    }
    if (!decisions.has(key)) report.decisions.push(decision);
    decisions.set(key, decision);
    return decision.decision === 'rewrite' ? null : decision.reason;
  };
  return { keep, report };
}
