/** The library entry points: optimize, inspect, verify. */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { passesByName, registeredPasses } from '../../passes';
import { selectBackend } from '../backend/select';
import { WriteOptions, writeModelFiles } from '../io/files';
import { artifactsFromIR, artifactsMetaOfIR, weightChunksOfIR } from '../io/ir';
import { ModelSource, loadChecked } from '../io/source';
import type { Pass } from '../pass';
import { ModelSummary, summarize } from '../report/summary';
import { LayersVerifyOptions, VerificationReport, verifyArtifacts } from '../verify/verify';
import { MeasureOptions, PolicyMode, PolicyReport, measureCandidates } from '../bench/policy';
import { RewriteRecord, SkipRecord, runPasses } from './driver';

export interface OptimizeOptions extends LayersVerifyOptions {
  /**
   * Passes to run, as objects or registered names (default: every registered pass, with
   * built-in policies). Passes named here are applied even where a policy says they do not pay.
   */
  passes?: (Pass | string)[];
  /** Compare the rewritten model with the original numerically (default true). */
  verify?: boolean;
  /**
   * 'always' (default) rewrites every match; 'measure' times each candidate alone on the backend
   * and keeps the original layer where the rewrite is not faster (see src/bench/policy.ts).
   */
  policy?: PolicyMode;
  /** With policy 'measure': the batch candidates are timed at (default 16). */
  policyBatch?: number;
  /** With policy 'measure': replaces the timer (tests inject timings). */
  policyTimer?: MeasureOptions['timer'];
}

export interface Report {
  rewritten: RewriteRecord[];
  skipped: SkipRecord[];
  verification: VerificationReport | null;
  before: ModelSummary;
  after: ModelSummary;
  notes: string[];
  /** With policy 'measure' only: matches left as they were, and every measured decision. */
  kept?: SkipRecord[];
  policy?: PolicyReport;
}

export interface OptimizeResult {
  report: Report;
  /** The rewritten model as ModelArtifacts (one weight buffer, packed on first access). */
  readonly artifacts: io.ModelArtifacts;
  /** Instantiates the rewritten model with stock tfjs. */
  load(): Promise<tf.LayersModel>;
  /** Writes model.json + shards atomically; returns the model.json path. */
  save(dir: string, options?: WriteOptions): string;
}

/** The pipeline to run and which of its passes the user asked for by hand. */
function pipeline(chosen?: (Pass | string)[]): { passes: Pass[]; forced: Set<string> } {
  if (!chosen) return { passes: registeredPasses(), forced: new Set() };
  const byName = passesByName(chosen.filter((p): p is string => typeof p === 'string'));
  const passes = chosen.map((p) => (typeof p === 'string' ? byName.find((pass) => pass.name === p)! : p));
  return { passes, forced: new Set(passes.map((pass) => pass.name)) };
}

async function rewrite(source: ModelSource, chosen?: (Pass | string)[], options: OptimizeOptions = {}) {
  const { passes, forced } = pipeline(chosen);
  const { artifacts: original, ir } = await loadChecked(source);
  // Policies judge a rewrite on the backend the model will be verified (and deployed) on.
  const target = await selectBackend(options.backend === 'all' || options.backend === undefined ? 'auto' : options.backend);
  const before = summarize(ir);
  const measured = options.policy === 'measure'
    ? await measureCandidates(ir, passes, { backend: options.backend === 'all' ? 'auto' : options.backend, batch: options.policyBatch, timer: options.policyTimer, forced })
    : undefined;
  // Files read for this run with nothing to verify against: kernels may be reordered in place.
  const reuseWeights = typeof source === 'string' && options.verify === false && !measured;
  const { rewritten, skipped, kept } = runPasses(ir, passes, { keep: measured?.keep, backend: target.name, forced, measuring: measured !== undefined, reuseWeights });
  return { original, ir, before, rewritten, skipped, policyFields: measured ? { kept: kept ?? [], policy: measured.report } : {} };
}

/** Rewrites every eligible layer and (by default) verifies the result against the original. */
export async function optimize(source: ModelSource, options: OptimizeOptions = {}): Promise<OptimizeResult> {
  const { original, ir, before, rewritten, skipped, policyFields } = await rewrite(source, options.passes, options);
  // The one-buffer artifacts are a copy of every weight: built only when something needs them
  // (verification, load, a caller); saving writes the IR's weight views directly.
  let packed: io.ModelArtifacts | undefined;
  const artifacts = () => (packed ??= artifactsFromIR(ir));
  const verification = options.verify === false ? null : await verifyArtifacts(original, artifacts(), { ...options, rewrittenLayers: rewritten });
  const report: Report = { rewritten, skipped, verification, before, after: summarize(ir), notes: ir.notes, ...policyFields };
  return {
    report,
    get artifacts() {
      return artifacts();
    },
    load: () => tf.loadLayersModel(tf.io.fromMemory(artifacts())),
    save: (dir, saveOptions) => writeModelFiles(artifactsMetaOfIR(ir), dir, saveOptions, weightChunksOfIR(ir)),
  };
}

/** What optimize would rewrite, and why each other candidate stays; touches no tensors. */
export async function inspect(source: ModelSource, options: Pick<OptimizeOptions, 'passes' | 'backend'> = {}): Promise<Report> {
  const { ir, before, rewritten, skipped } = await rewrite(source, options.passes, options);
  return { rewritten, skipped, verification: null, before, after: summarize(ir), notes: ir.notes };
}

/** Compares two models (paths, models or artifacts) on seeded inputs. */
export async function verify(original: ModelSource, rewritten: ModelSource, options: LayersVerifyOptions = {}): Promise<VerificationReport> {
  const a = (await loadChecked(original)).artifacts;
  const b = (await loadChecked(rewritten)).artifacts;
  return verifyArtifacts(a, b, options);
}
