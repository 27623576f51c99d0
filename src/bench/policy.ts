/**
 * `--policy measure`: every candidate rewrite is timed in isolation on the target backend
 * (the matched layer alone vs its replacement alone, see probe.ts), and the original layer is
 * kept where the rewrite is not faster. The decision rule is the pure `decide`; the timer is
 * injectable so the rule and its wiring are testable without timing anything.
 */
import * as tf from '@tensorflow/tfjs';
import { BackendRequest, selectBackend } from '../backend/select';
import type { ModelIR } from '../graph/types';
import { Candidate, KeepHook, runPasses } from '../optimize/driver';
import type { Pass } from '../pass';
import { Probe, probesFor } from './probe';
import { InterleaveOptions, interleave } from './stats';
import { predictRunner } from './timing';
import { pageProbeTimer } from './page';
import { isBrowserBackend, withBrowser } from '../browser/session';
import { makeInputs } from '../verify/inputs';
import { disposeModel, instantiate } from '../verify/models';

export type PolicyMode = 'always' | 'measure';
export const POLICY_MODES: PolicyMode[] = ['always', 'measure'];

/**
 * Batch the candidates are timed at. Which side wins depends on it (a patch embed's batch is its
 * patch count), so users should pass their real one; 16 is a middle ground, not a truth.
 */
export const DEFAULT_POLICY_BATCH = 16;

/** Medians in ms, summed over the calls of the layer. */
export interface CandidateTiming {
  originalMs: number;
  rewrittenMs: number;
}

export interface PolicyDecision {
  layer: string;
  graph: string;
  pass: string;
  decision: 'rewrite' | 'keep';
  /** Absent when the candidate could not be measured (then it is rewritten, as with `always`). */
  originalMs?: number;
  rewrittenMs?: number;
  /** originalMs / rewrittenMs: above 1 the rewrite is faster. */
  speedup?: number;
  reason: string;
}

export interface PolicyReport {
  mode: PolicyMode;
  backend: string;
  device: string;
  batch: number;
  decisions: PolicyDecision[];
}

/** The rule: rewrite only when strictly faster. A tie keeps the conv: a change that does not pay is churn. */
export function decide(timing: CandidateTiming): 'rewrite' | 'keep' {
  return timing.rewrittenMs < timing.originalMs ? 'rewrite' : 'keep';
}

export type ProbeTimer = (probe: Probe, batch: number) => Promise<CandidateTiming>;

const PROBE_TIMING: InterleaveOptions = { warmup: 1, minReps: 3, maxReps: 9, budgetMs: 1500 };

/** Times a probe's two models on the current backend, interleaved, medians. */
export async function timeProbe(probe: Probe, batch: number, options = PROBE_TIMING): Promise<CandidateTiming> {
  const models: tf.LayersModel[] = [];
  let inputs: tf.Tensor[] = [];
  try {
    models.push(await instantiate(probe.original, 'original probe'));
    models.push(await instantiate(probe.rewritten, 'rewritten probe'));
    inputs = makeInputs(models[0], batch);
    const samples = await interleave([predictRunner('original', models[0], inputs), predictRunner('rewritten', models[1], inputs)], options);
    return { originalMs: samples.get('original')!.median, rewrittenMs: samples.get('rewritten')!.median };
  } finally {
    tf.dispose(inputs);
    models.forEach(disposeModel);
  }
}

export interface MeasureOptions {
  backend?: BackendRequest;
  batch?: number;
  /** Replaces the real timer (tests inject timings). */
  timer?: ProbeTimer;
  /** Progress lines (stderr in the CLI). */
  log?: (line: string) => void;
  /** Passes the user named (--passes): not held back by the policy, as in the driver. */
  forced?: Set<string>;
}

/** Every match the passes make now, without rewriting anything (the hook keeps each one). */
export function findCandidates(ir: ModelIR, passes: Pass[], backend?: string, forced?: Set<string>): Candidate[] {
  const candidates: Candidate[] = [];
  runPasses(ir, passes, { backend, forced, measuring: true, keep: (candidate) => (candidates.push(candidate), 'dry run') });
  return candidates;
}

const fmt = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));

/**
 * Finds the candidates (a dry run of the passes: the hook sees every match and keeps it, so the
 * IR is not touched), times each, and returns the hook for the real run plus the report.
 */
export async function measureCandidates(ir: ModelIR, passes: Pass[], options: MeasureOptions = {}): Promise<{ keep: KeepHook; report: PolicyReport }> {
  const request = options.backend ?? 'auto';
  // webgl/webgpu: the candidates are timed in a headless browser page (unless a timer is injected).
  if (isBrowserBackend(request) && !options.timer) {
    return withBrowser(request, {}, (session) => measureWith(ir, passes, { name: request, device: session.device }, { ...options, timer: pageProbeTimer(session) }));
  }
  const backend = isBrowserBackend(request) ? { name: request, device: 'injected timer' } : await selectBackend(request);
  return measureWith(ir, passes, backend, options);
}

async function measureWith(ir: ModelIR, passes: Pass[], backend: { name: string; device: string }, options: MeasureOptions): Promise<{ keep: KeepHook; report: PolicyReport }> {
  const batch = options.batch ?? DEFAULT_POLICY_BATCH;
  const timer = options.timer ?? timeProbe;
  const candidates = findCandidates(ir, passes, backend.name, options.forced);

  const decisions: PolicyDecision[] = [];
  for (const candidate of candidates) {
    // Clean-up passes (quiet about refusals) only remove view layers: they always pay.
    if (candidate.pass.reportRefusals === false) continue;
    const where = { layer: candidate.layer.name, graph: candidate.graph, pass: candidate.pass.name };
    if (candidate.context.forced) {
      decisions.push({ ...where, decision: 'rewrite', reason: 'not measured: the pass was asked for by name' });
      continue;
    }
    const probes = await probesFor(candidate, passes);
    if (typeof probes === 'string') {
      decisions.push({ ...where, decision: 'rewrite', reason: `not measured: ${probes}` });
      continue;
    }
    const total: CandidateTiming = { originalMs: 0, rewrittenMs: 0 };
    for (const probe of probes) {
      const timing = await timer(probe, batch);
      total.originalMs += probe.calls * timing.originalMs;
      total.rewrittenMs += probe.calls * timing.rewrittenMs;
    }
    const decision = decide(total);
    const speedup = total.originalMs / total.rewrittenMs;
    const verdict = decision === 'rewrite' ? 'rewrite is faster' : 'rewrite is not faster';
    const reason = `${verdict} on ${backend.name} at batch ${batch}: ${fmt(total.rewrittenMs)} ms vs ${fmt(total.originalMs)} ms (${speedup.toFixed(2)}x)`;
    decisions.push({ ...where, decision, ...total, speedup, reason });
    options.log?.(`policy: ${candidate.graph}/${candidate.layer.name}: ${reason}`);
  }
  const kept = new Map(decisions.filter((d) => d.decision === 'keep').map((d) => [`${d.graph}/${d.layer}/${d.pass}`, d.reason]));
  return {
    keep: (candidate) => (candidate.context.forced ? null : kept.get(`${candidate.graph}/${candidate.layer.name}/${candidate.pass.name}`) ?? null),
    report: { mode: 'measure', backend: backend.name, device: backend.device, batch, decisions },
  };
}

/** Human lines for the optimize report: one per measured candidate. */
export function formatPolicy(report: PolicyReport): string {
  const lines = [`policy measure on ${report.backend}, ${report.device}, batch ${report.batch}:`];
  for (const d of report.decisions) lines.push(`  ${d.graph}/${d.layer} [${d.pass}]: ${d.decision === 'keep' ? 'KEPT' : 'rewritten'}: ${d.reason}`);
  return lines.join('\n');
}
