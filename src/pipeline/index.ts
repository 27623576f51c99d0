/**
 * The one pipeline over both model formats: optimize, inspect and verify (bench: ./bench.ts),
 * written once over a format adapter (./adapter.ts). Each takes either format (a model.json path
 * or folder, an in-memory tf.LayersModel or tf.GraphModel, or ModelArtifacts) and leaves the
 * caller's tfjs backend as it found it.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { asGuest } from '../backend/guest';
import { selectBackend } from '../backend/select';
import { isBrowserBackend } from '../browser/session';
import type { RewriteRecord, SkipRecord } from '../core/rule';
import { reportStage } from '../core/stage';
import { InputError } from '../errors';
import type { CutOut } from '../formats/cutout';
import type { ModelSummary } from '../formats/summary';
import { WriteOptions, writeModelFiles } from '../io/files';
import type { ModelSource } from '../io/source';
import { isGraphModelFile } from '../graphdef/files';
import { isGraphModelJson } from '../graphdef/ir';
import type { GraphDefPass } from '../graphdef/pass';
import type { Conversion } from '../layers/types';
import type { Pass } from '../pass';
import { DecisionsOption, LoadedDecisions, planDecisions, withDecisions } from '../policy/decisions';
import { PolicyCandidate, PolicyMode, PolicyReport, decidePolicy } from '../policy/policy';
import type { TimerChoice } from '../policy/timer';
import { rewrittenSubjects } from '../verify/exact';
import type { Finding } from '../verify/original-check';
import type { LayersVerifyOptions, VerificationReport } from '../verify/verify';
import type { AnyCandidate, SomeAdapter } from './adapter';
import { graphDefAdapter } from './formats/graphdef';
import { layersAdapter } from './formats/layers';

export interface OptimizeOptions extends LayersVerifyOptions {
  /**
   * Passes to run, as objects or registered names (default: every registered pass with a
   * lowering for the model's format). Passes named here are applied even where the policy says
   * they do not pay. Pass objects are layers (Pass) or GraphDef (GraphDefPass) lowerings.
   */
  passes?: (Pass | GraphDefPass | string)[];
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
  /** Correct matches the policy left as they were, with its reason. */
  kept?: SkipRecord[];
  /** Every decision of the policy and its evidence. */
  policy?: PolicyReport;
  /**
   * Conv-family layers the ORIGINAL computes wrong on the target backend (vs float64, on integer
   * probes; src/verify/original-check.ts). Set whenever optimize verifies (layers models).
   */
  findings?: Finding[];
}

export interface OptimizeResult<M = tf.LayersModel> {
  report: Report;
  /** The rewritten model as ModelArtifacts (built on first access). */
  readonly artifacts: io.ModelArtifacts;
  /** Instantiates the rewritten model with stock tfjs. */
  load(): Promise<M>;
  /** Writes model.json + shards atomically; returns the model.json path. */
  save(dir: string, options?: WriteOptions): string;
}

/** optimize's result for a graph model: load() gives a tf.GraphModel. */
export type GraphOptimizeResult = OptimizeResult<tf.GraphModel>;

/** Anything optimize/inspect/verify take: a layers or graph model, as files, in memory or artifacts. */
export type AnyModelSource = ModelSource | tf.GraphModel;

/** The report note when no pass changed anything. */
export const UNCHANGED = 'nothing was rewritten: the model is written through unchanged (same topology, byte-identical weights); no numerical check was needed';

/** The note when nothing was rewritten but the original is wrong on the target: never a silent "unchanged". */
const unchangedButWrong = (findings: Finding[]) =>
  `nothing was rewritten: the model is written through unchanged, and it COMPUTES WRONG on ${findings[0].backend} ` +
  `(${findings.length} finding${findings.length > 1 ? 's' : ''}: ${findings.map((f) => f.layer).join(', ')}; no rule rewrites ${findings.length > 1 ? 'them' : 'it'}, see findings)`;

/** A tf.GraphModel of this or another tfjs copy (duck-typed: `instanceof` fails across copies). */
function isGraphModelObject(source: unknown): source is tf.GraphModel {
  const model = source as tf.GraphModel;
  return source instanceof tf.GraphModel || (typeof model?.executeAsync === 'function' && Array.isArray(model.outputNodes) && typeof model.save === 'function');
}

/**
 * The format dispatch: the adapter of the source's format, and the source as that adapter reads
 * it (a tf.GraphModel is taken as its artifacts).
 */
export async function adapterFor(source: AnyModelSource): Promise<{ adapter: SomeAdapter; source: unknown }> {
  if (typeof source === 'string') return { adapter: isGraphModelFile(source) ? graphDefAdapter : layersAdapter, source };
  if (isGraphModelObject(source)) {
    let captured: io.ModelArtifacts | undefined;
    await source.save(tf.io.withSaveHandler(async (artifacts) => {
      captured = artifacts;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }));
    return { adapter: graphDefAdapter, source: captured! };
  }
  if (source && typeof source === 'object' && 'modelTopology' in source && isGraphModelJson(source)) return { adapter: graphDefAdapter, source };
  return { adapter: layersAdapter, source };
}

/** What the policy needs to know of a candidate: the same for every dialect. */
const describe = (c: AnyCandidate): PolicyCandidate => ({
  layer: c.layer.name, graph: c.graph, pass: c.pass.name, forced: c.context.forced === true, quiet: c.pass.reportRefusals === false,
});

type RewriteOptions = Pick<OptimizeOptions, 'passes' | 'backend' | 'policy' | 'policyBatch' | 'policyTimer' | 'policyLog' | 'verify' | 'browser' | 'inputShapes'> & {
  /** inspect: time nothing. */
  dryRun?: boolean;
  /** bench: cut out every judged candidate before the rewrite (rewrittenCutOuts reads them). */
  cutOuts?: boolean;
  /** Decisions to replay (src/policy/decisions.ts): nothing is timed. */
  replay?: LoadedDecisions;
}

/** Read, decide, rewrite: everything optimize, inspect and bench share. */
export async function rewrite(adapter: SomeAdapter, source: unknown, options: RewriteOptions) {
  const { passes, forced, notes } = adapter.rules(options.passes);
  reportStage('reading and checking the model');
  // Before any backend switch: a graph model whose shapes need one run learns them on the caller's backend.
  const { artifacts: original, ir } = await adapter.read(source, { inputShapes: options.inputShapes });
  ir.notes.push(...notes);
  // The policy judges a rewrite on the backend the model will be verified (and deployed) on.
  // A browser backend is only named here (the policy's timer opens the browser, as verification does).
  const request = options.backend === 'all' || options.backend === undefined ? 'auto' : options.backend;
  const target = isBrowserBackend(request) ? { name: request, device: request, fallbacks: [] } : await selectBackend(request);
  const before = adapter.summarize(ir);
  // One dry run (the keep hook holds every match back): the candidates the policy judges.
  const candidates: AnyCandidate[] = [];
  adapter.run(ir, passes, { backend: target.name, forced, keep: (candidate: AnyCandidate) => (candidates.push(candidate), 'dry run') });
  // Cut-outs are pure data (no tensors): each is built once, for the policy and for bench.
  const cutOuts = new Map<AnyCandidate, Promise<CutOut[] | string>>();
  const cutOutsOf = (candidate: AnyCandidate) => {
    if (!cutOuts.has(candidate)) cutOuts.set(candidate, adapter.cutOuts(candidate, passes));
    return cutOuts.get(candidate)!;
  };
  const subject = { candidates, describe, cutOuts: cutOutsOf, facts: adapter.facts, fingerprint: adapter.fingerprint, passes: passes.map((p: { name: string }) => p.name) };
  // Correctness beats speed: a layer the original computes wrong on the target is rewritten whatever its timing.
  if (options.verify !== false && !options.dryRun && adapter.originalFindings) reportStage(`checking the original's convs on ${target.name} (integer probes)`);
  const findings = options.verify === false || options.dryRun || !adapter.originalFindings ? undefined : await adapter.originalFindings(ir, target, options.browser);
  reportStage(`policy on ${target.name}: deciding which rewrites pay`);
  const policy = await decidePolicy(subject, {
    findings,
    mode: options.policy, backend: target, batch: options.policyBatch, timer: options.policyTimer, dryRun: options.dryRun, log: options.policyLog, decisions: options.replay,
  });
  // Captured before the IR is rewritten: the exact check re-applies the passes to each conv alone.
  const judged = candidates.filter((candidate) => !describe(candidate).quiet);
  const subjects = options.verify === false || options.dryRun ? [] : judged.map((candidate) => adapter.exactSubject(candidate, passes));
  // bench times the rewritten convs' cut-outs: built now, from the IR as it was matched.
  // Local verification (src/verify/local.ts) checks each rewritten layers conv on its cut-outs too.
  const verifying = options.verify !== false && !options.dryRun;
  if (options.cutOuts || (verifying && adapter.format === 'layers')) await Promise.all(judged.map(cutOutsOf));
  // Files read for this run with nothing to verify against and no original to time (bench):
  // kernels may be reordered in place.
  const reuseWeights = adapter.reusesWeights && typeof source === 'string' && options.verify === false && !options.cutOuts;
  reportStage('rewriting');
  const { rewritten, skipped, kept } = adapter.run(ir, passes, { keep: policy.keep, backend: target.name, forced, reuseWeights });
  const done = (c: AnyCandidate) => rewritten.some((r) => r.layer === c.layer.name && r.graph === c.graph && r.pass === c.pass.name);
  return {
    original, ir, before, rewritten, skipped, kept: kept ?? [], policy: policy.report, findings,
    subjects: rewrittenSubjects(subjects, rewritten),
    /** Cut-outs of the convs that were rewritten (bench's subgraph column; needs `cutOuts`). */
    rewrittenCutOuts: () => Promise.all(judged.filter(done).map(async (c) => ({ layer: c.layer.name, cutOuts: await cutOutsOf(c) }))),
  };
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

const guestOptimize = asGuest(async (given: AnyModelSource, options: OptimizeOptions) => {
  const { adapter, source } = await adapterFor(given);
  return optimizeWith(adapter, source, options) as Promise<OptimizeResult | GraphOptimizeResult>;
});

/** optimize, once the format is known; a decisions file is replayed, or recorded after a successful run. */
export function optimizeWith(adapter: SomeAdapter, source: unknown, options: OptimizeOptions): Promise<OptimizeResult<tf.LayersModel | tf.GraphModel>> {
  return withDecisions(options.decisions, adapter.decisionsFormat, (replay) => optimizeOnce(adapter, source, { ...options, replay }));
}

async function optimizeOnce(adapter: SomeAdapter, source: unknown, options: OptimizeOptions & { replay?: LoadedDecisions }): Promise<OptimizeResult<tf.LayersModel | tf.GraphModel>> {
  const { original, ir, before, rewritten, skipped, subjects, kept, policy, findings, rewrittenCutOuts } = await rewrite(adapter, source, options);
  const found = findings ? { findings } : {};
  if (rewritten.length === 0 && !adapter.mustWrite(ir)) {
    // Nothing to compare: the model goes out as it came in (topology, weight bytes, encodings).
    // Loading it once still proves stock tfjs accepts it; no inputs are needed for that.
    if (options.verify !== false) await adapter.checkLoads(original);
    const notes = [...ir.notes, findings?.length ? unchangedButWrong(findings) : UNCHANGED];
    return {
      report: { rewritten, skipped, verification: null, before, after: before, notes, kept, policy, ...found },
      artifacts: original,
      load: () => adapter.load(original),
      save: (dir, saveOptions) => writeModelFiles(original, dir, saveOptions),
    };
  }
  const writer = adapter.writer(ir);
  const localCutOuts = options.verify === false || adapter.format !== 'layers' ? []
    : (await rewrittenCutOuts()).flatMap(({ layer, cutOuts }) => (typeof cutOuts === 'string' ? [] : [{ layer, cutOuts }]));
  const verification = options.verify === false ? null : await adapter.verify(original, writer.artifacts(), {
    ...options, rewrittenLayers: rewritten, exactSubjects: subjects, originalFindings: findings, localCutOuts,
  });
  const report: Report = { rewritten, skipped, verification, before, after: adapter.summarize(ir), notes: ir.notes, ...adapter.reportExtra(ir), kept, policy, ...found };
  return {
    report,
    get artifacts() {
      return writer.artifacts();
    },
    load: () => adapter.load(writer.artifacts()),
    save: writer.save,
  };
}

/**
 * What optimize would rewrite, and why each other candidate stays; touches no tensors. Candidates
 * the policy would time are listed as kept, their decision 'pending' saying what would be timed.
 */
export const inspect = asGuest(async (given: AnyModelSource, options: InspectOptions = {}): Promise<Report> => {
  const { adapter, source } = await adapterFor(given);
  return inspectWith(adapter, source, options);
});

type InspectOptions = Pick<OptimizeOptions, 'passes' | 'backend' | 'policy' | 'policyBatch' | 'decisions' | 'inputShapes'>;

async function inspectWith(adapter: SomeAdapter, source: unknown, options: InspectOptions): Promise<Report> {
  // inspect reads a decisions file, never records one.
  const { replay } = planDecisions(options.decisions, adapter.decisionsFormat, false);
  const { ir, before, rewritten, skipped, kept, policy } = await rewrite(adapter, source, { ...options, dryRun: true, replay });
  return { rewritten, skipped, verification: null, before, after: adapter.summarize(ir), notes: ir.notes, ...adapter.reportExtra(ir), kept, policy };
}

/** Compares two models of one format (paths, models or artifacts) on the same inputs. */
export const verify = asGuest(async (original: AnyModelSource, rewritten: AnyModelSource, options: LayersVerifyOptions = {}): Promise<VerificationReport> => {
  const [a, b] = [await adapterFor(original), await adapterFor(rewritten)];
  if (a.adapter !== b.adapter) throw new InputError('cannot compare a graph model with a layers model');
  const first = (await a.adapter.read(a.source)).artifacts;
  const second = (await b.adapter.read(b.source)).artifacts;
  return a.adapter.verify(first, second, options);
});

/** optimize for a graph model only (a path, artifacts or tf.GraphModel). */
export const optimizeGraphModel = (source: string | io.ModelArtifacts | tf.GraphModel, options: OptimizeOptions = {}): Promise<GraphOptimizeResult> =>
  asGuest(async () => optimizeWith(graphDefAdapter, (await adapterFor(source)).source, options) as Promise<GraphOptimizeResult>)();

/** inspect for a graph model only. */
export const inspectGraphModel = (source: string | io.ModelArtifacts | tf.GraphModel, options: InspectOptions = {}): Promise<Report> =>
  asGuest(async () => inspectWith(graphDefAdapter, (await adapterFor(source)).source, options))();

/** verify for two graph models only. */
export const verifyGraphModels = (a: string | io.ModelArtifacts, b: string | io.ModelArtifacts, options: LayersVerifyOptions = {}): Promise<VerificationReport> =>
  asGuest(async () => graphDefAdapter.verify((await graphDefAdapter.read(a)).artifacts, (await graphDefAdapter.read(b)).artifacts, options))();
