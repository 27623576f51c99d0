/**
 * The library entry points: optimize, inspect, verify. Each takes either model format (a
 * model.json path or folder, an in-memory tf.LayersModel or tf.GraphModel, or ModelArtifacts)
 * and leaves the caller's tfjs backend as it found it.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { passesByName, registeredPasses } from '../../passes';
import { asGuest } from '../backend/guest';
import { selectBackend } from '../backend/select';
import { InputError } from '../errors';
import {
  GraphOptimizeResult, inspectGraphModel, isGraphModelFile, isGraphModelJson, optimizeGraphModel, verifyGraphModels,
} from '../graphdef';
import { isBrowserBackend } from '../browser/session';
import { WriteOptions, writeModelFiles } from '../io/files';
import { artifactsFromIR, artifactsMetaOfIR, weightChunksOfIR } from '../io/ir';
import { ModelSource, loadChecked } from '../io/source';
import type { Conversion, ModelIR } from '../layers/types';
import type { Pass } from '../pass';
import { ModelSummary, summarize } from '../report/summary';
import { LayersVerifyOptions, VerificationReport, verifyArtifacts } from '../verify/verify';
import { disposeModel, instantiate } from '../verify/models';
import { PolicyMode, PolicyReport, decidePolicy } from '../policy/policy';
import type { TimerChoice } from '../policy/timer';
import { DecisionsOption, LoadedDecisions, planDecisions, withDecisions } from '../policy/decisions';
import { RewriteRecord, SkipRecord, runPasses } from '../layers/driver';
import { exactSubjects, rewrittenSubjects } from '../verify/exact';
import { Finding, originalFindings } from '../verify/original-check';

export interface OptimizeOptions extends LayersVerifyOptions {
  /**
   * Passes to run, as objects or registered names (default: every registered pass, with
   * built-in policies). Passes named here are applied even where a policy says they do not pay.
   */
  passes?: (Pass | string)[];
  /** Compare the rewritten model with the original numerically (default true). */
  verify?: boolean;
  /**
   * Which correct rewrites are worth it on the target backend (src/policy/policy.ts): 'auto'
   * (default) rewrites what the table vouches for and times the rest; 'measure' times every
   * candidate; 'always' rewrites every correct match. Passes named in `passes` bypass it.
   */
  policy?: PolicyMode;
  /** The batch candidates are timed at (default 16). */
  policyBatch?: number;
  /** Replaces the in-process timer, for every backend or per backend name (see src/policy/timer.ts). */
  policyTimer?: TimerChoice;
  /** Progress lines of the policy, one per candidate (the CLI sends them to stderr). */
  policyLog?: (line: string) => void;
  /**
   * A decisions file to replay (nothing is timed) or, when the path does not exist, to record
   * after a successful run; or a file's object / a report's `policy` (src/policy/decisions.ts).
   * Passes named in `passes` and policy 'always' still win over it.
   */
  decisions?: DecisionsOption;
}

export interface Report {
  rewritten: RewriteRecord[];
  skipped: SkipRecord[];
  verification: VerificationReport | null;
  before: ModelSummary;
  after: ModelSummary;
  notes: string[];
  /** Set when the input was converted from another form (a Keras 3 topology); the notes say so too. */
  converted?: Conversion;
  /** Correct matches the policy left as they were, with its reason (layers models). */
  kept?: SkipRecord[];
  /** Every decision of the policy and its evidence (layers models; graph passes have no policy yet). */
  policy?: PolicyReport;
  /**
   * Conv-family layers the ORIGINAL computes wrong on the target backend (vs float64, on integer
   * probes; src/verify/original-check.ts). Set whenever optimize verifies (layers models).
   */
  findings?: Finding[];
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

const converted = (ir: ModelIR) => (ir.converted ? { converted: ir.converted } : {});

/** The pipeline to run and which of its passes the user asked for by hand. */
function pipeline(chosen?: (Pass | string)[]): { passes: Pass[]; forced: Set<string> } {
  if (!chosen) return { passes: registeredPasses(), forced: new Set() };
  const byName = passesByName(chosen.filter((p): p is string => typeof p === 'string'));
  const passes = chosen.map((p) => (typeof p === 'string' ? byName.find((pass) => pass.name === p)! : p));
  return { passes, forced: new Set(passes.map((pass) => pass.name)) };
}

type PolicyFields = Pick<OptimizeOptions, 'policy' | 'policyBatch' | 'decisions'>;

async function rewrite(source: ModelSource, chosen: (Pass | string)[] | undefined, options: OptimizeOptions & { dryRun?: boolean; replay?: LoadedDecisions } = {}) {
  const { passes, forced } = pipeline(chosen);
  const { artifacts: original, ir } = await loadChecked(source);
  // The policy judges a rewrite on the backend the model will be verified (and deployed) on.
  // A browser backend is only named here (the policy's timer opens the browser, as verification does).
  const request = options.backend === 'all' || options.backend === undefined ? 'auto' : options.backend;
  const target = isBrowserBackend(request) ? { name: request, device: request, fallbacks: [] } : await selectBackend(request);
  const before = summarize(ir);
  // Correctness beats speed: a layer the original computes wrong on the target is rewritten whatever its timing.
  const findings = options.verify === false || options.dryRun ? undefined : await originalFindings(ir, target, options.browser);
  const policy = await decidePolicy(ir, passes, forced, {
    findings,
    mode: options.policy, backend: target, batch: options.policyBatch, timer: options.policyTimer, dryRun: options.dryRun, log: options.policyLog, decisions: options.replay,
  });
  // Files read for this run with nothing to verify against: kernels may be reordered in place.
  const reuseWeights = typeof source === 'string' && options.verify === false;
  // Captured before the IR is rewritten: the exact check re-applies the passes to each conv alone.
  const subjects = options.verify === false || options.dryRun ? [] : exactSubjects(ir, passes, target.name, forced);
  const { rewritten, skipped, kept } = runPasses(ir, passes, { keep: policy.keep, backend: target.name, forced, reuseWeights });
  return { original, ir, before, rewritten, skipped, subjects: rewrittenSubjects(subjects, rewritten), kept: kept ?? [], policy: policy.report, findings };
}

/** The report note when no pass changed anything. */
export const UNCHANGED = 'nothing was rewritten: the model is written through unchanged (same topology, byte-identical weights); no numerical check was needed';

/** The note when nothing was rewritten but the original is wrong on the target: never a silent "unchanged". */
const unchangedButWrong = (findings: Finding[]) =>
  `nothing was rewritten: the model is written through unchanged, and it COMPUTES WRONG on ${findings[0].backend} ` +
  `(${findings.length} finding${findings.length > 1 ? 's' : ''}: ${findings.map((f) => f.layer).join(', ')}; no rule rewrites ${findings.length > 1 ? 'them' : 'it'}, see findings)`;

/** Anything optimize/inspect/verify take: a layers or graph model, as files, in memory or artifacts. */
export type AnyModelSource = ModelSource | tf.GraphModel;

/** A tf.GraphModel of this or another tfjs copy (duck-typed: `instanceof` fails across copies). */
function isGraphModelObject(source: unknown): source is tf.GraphModel {
  const model = source as tf.GraphModel;
  return source instanceof tf.GraphModel || (typeof model?.executeAsync === 'function' && Array.isArray(model.outputNodes) && typeof model.save === 'function');
}

/**
 * The format dispatch: graph models (tensorflowjs_converter's "graph-model") go to src/graphdef,
 * given as their artifacts; everything else stays as it was given for the layers path.
 */
async function graphSource(source: AnyModelSource): Promise<io.ModelArtifacts | string | null> {
  if (typeof source === 'string') return isGraphModelFile(source) ? source : null;
  if (isGraphModelObject(source)) {
    let captured: io.ModelArtifacts | undefined;
    await source.save(tf.io.withSaveHandler(async (artifacts) => {
      captured = artifacts;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }));
    return captured!;
  }
  if (source && typeof source === 'object' && 'modelTopology' in source && isGraphModelJson(source)) return source;
  return null;
}

/** Layers-path options mapped onto the graph path; what it cannot do is an InputError, not ignored. */
function graphOptions<T extends Pick<OptimizeOptions, 'passes' | 'backend' | 'policy' | 'accuracyFactor' | 'rewrittenLayers'>>(options: T) {
  const { passes, backend, policyTimer, rewrittenLayers: _r, ...rest } = options as T & OptimizeOptions;
  // A layers ProbeTimer times layers probes; graph probes take optimizeGraphModel's policyTimer.
  if (policyTimer) throw new InputError('policyTimer times layers-model probes; for a graph model pass it to optimizeGraphModel');
  // Names resolve for both formats in the one registry; a layers Pass object has no graph lowering.
  const objects = (passes ?? []).filter((pass) => typeof pass !== 'string');
  if (objects.length) throw new InputError(`pass objects (${objects.map((p) => (p as Pass).name).join(', ')}) apply to layers models only; name registered passes for a graph model`);
  return { ...rest, backend, passes: passes as string[] | undefined };
}

/**
 * Rewrites every eligible layer (or graph op) and (by default) verifies the result against the
 * original. A tf.GraphModel or a graph-model path/artifacts gives a result whose load() is a
 * tf.GraphModel.
 */
export function optimize(source: tf.GraphModel, options?: OptimizeOptions): Promise<GraphOptimizeResult>;
export function optimize(source: tf.LayersModel, options?: OptimizeOptions): Promise<OptimizeResult>;
export function optimize(source: AnyModelSource, options?: OptimizeOptions): Promise<OptimizeResult | GraphOptimizeResult>;
export function optimize(source: AnyModelSource, options: OptimizeOptions = {}): Promise<OptimizeResult | GraphOptimizeResult> {
  return guestOptimize(source, options);
}

const guestOptimize = asGuest(async (source: AnyModelSource, options: OptimizeOptions): Promise<OptimizeResult | GraphOptimizeResult> => {
  const graph = await graphSource(source);
  if (graph !== null) return optimizeGraphModel(graph, graphOptions(options));
  return withDecisions(options.decisions, 'layers-model', (replay) => optimizeLayers(source as ModelSource, { ...options, replay }));
});

async function optimizeLayers(source: ModelSource, options: OptimizeOptions & { replay?: LoadedDecisions } = {}): Promise<OptimizeResult> {
  const { original, ir, before, rewritten, skipped, subjects, kept, policy, findings } = await rewrite(source, options.passes, options);
  const found = findings ? { findings } : {};
  // A Keras 3 topology read as Keras 2 must be written in the new form, rewritten or not.
  if (rewritten.length === 0 && !ir.converted) {
    // Nothing to compare: the model goes out as it came in (topology, weight bytes, encodings).
    // Loading it once still proves stock tfjs accepts it; no inputs are needed for that.
    if (options.verify !== false) disposeModel(await instantiate(original, 'original'));
    const notes = [...ir.notes, findings?.length ? unchangedButWrong(findings) : UNCHANGED];
    return {
      report: { rewritten, skipped, verification: null, before, after: before, notes, kept, policy, ...found },
      artifacts: original,
      load: () => tf.loadLayersModel(tf.io.fromMemory(original)),
      save: (dir, saveOptions) => writeModelFiles(original, dir, saveOptions),
    };
  }
  // The one-buffer artifacts are a copy of every weight: built only when something needs them
  // (verification, load, a caller); saving writes the IR's weight views directly.
  let packed: io.ModelArtifacts | undefined;
  const artifacts = () => (packed ??= artifactsFromIR(ir));
  const verification = options.verify === false ? null : await verifyArtifacts(original, artifacts(), { ...options, rewrittenLayers: rewritten, exactSubjects: subjects, originalFindings: findings });
  const report: Report = { rewritten, skipped, verification, before, after: summarize(ir), notes: ir.notes, ...converted(ir), kept, policy, ...found };
  return {
    report,
    get artifacts() {
      return artifacts();
    },
    load: () => tf.loadLayersModel(tf.io.fromMemory(artifacts())),
    save: (dir, saveOptions) => writeModelFiles(artifactsMetaOfIR(ir), dir, saveOptions, weightChunksOfIR(ir)),
  };
}

/**
 * What optimize would rewrite, and why each other candidate stays; touches no tensors. Candidates
 * the policy would time are listed as kept, their decision 'pending' saying what would be timed.
 */
export const inspect = asGuest(async (source: AnyModelSource, options: Pick<OptimizeOptions, 'passes' | 'backend'> & PolicyFields = {}): Promise<Report> => {
  const graph = await graphSource(source);
  if (graph !== null) {
    const { passes, backend, policy, policyBatch, decisions } = graphOptions(options);
    return inspectGraphModel(graph, { passes, backend, policy, policyBatch, decisions });
  }
  const { replay } = planDecisions(options.decisions, 'layers-model', false);
  const { ir, before, rewritten, skipped, kept, policy } = await rewrite(source as ModelSource, options.passes, { ...options, dryRun: true, replay });
  return { rewritten, skipped, verification: null, before, after: summarize(ir), notes: ir.notes, ...converted(ir), kept, policy };
});

/** Compares two models of one format (paths, models or artifacts) on the same inputs. */
export const verify = asGuest(async (original: AnyModelSource, rewritten: AnyModelSource, options: LayersVerifyOptions = {}): Promise<VerificationReport> => {
  const [a, b] = [await graphSource(original), await graphSource(rewritten)];
  if ((a === null) !== (b === null)) throw new InputError('cannot compare a graph model with a layers model');
  if (a !== null && b !== null) return verifyGraphModels(a, b, graphOptions(options));
  const first = (await loadChecked(original as ModelSource)).artifacts;
  const second = (await loadChecked(rewritten as ModelSource)).artifacts;
  return verifyArtifacts(first, second, options);
});
