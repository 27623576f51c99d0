/**
 * Graph models (format "graph-model", a GraphDef in model.json): optimize, inspect, verify,
 * with the same report, IO guarantees and verification as the layers entry points.
 */
import { graphPolicy } from '../policy/graph';
import type { PolicyMode } from '../policy/policy';
import { DecisionsOption, LoadedDecisions, planDecisions, withDecisions } from '../policy/decisions';
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { InputError } from '../errors';
import { WriteOptions, writeModelFiles } from '../io/files';
import { modelJsonPath } from '../io/source';
import { Report, UNCHANGED } from '../optimize';
import type { LayersVerifyOptions, VerificationReport } from '../verify/verify';
import { graphPassesByName, registeredGraphPasses, withoutLowering } from '../../passes';
import { selectBackend } from '../backend/select';
import { GraphCandidate, GraphRunOptions, runGraphPasses } from './driver';
import { learnUnknownShapes } from './learned-shapes';
import { GraphProbeTimer, measureGraphCandidates } from './policy';
import { isBrowserBackend } from '../browser/session';
import { readGraphModelFiles } from './files';
import { GraphModelIR, artifactsFromGraphIR, graphIRFromArtifacts, isGraphModelJson } from './ir';
import type { GraphPass } from './pass';
import { summarizeGraph } from './summary';
import { loadGraph, verifyGraphArtifacts } from './verify';

export { isGraphModelJson } from './ir';
export { isGraphModelFile, readGraphModelFiles } from './files';
export { benchmarkGraphArtifacts } from './bench';
export { BUILTIN_GRAPH_PASSES } from '../../passes';
export type { GraphBenchmark } from './bench';
export type { GraphCandidate } from './driver';
export type { GraphPass, GraphMatchContext, GraphReplacement } from './pass';

/** A model.json path (or its folder), or graph-model artifacts already in memory. */
export type GraphModelSource = string | io.ModelArtifacts;

export interface GraphOptimizeOptions extends LayersVerifyOptions {
  /**
   * Passes to run, as objects or registered names (the same names as for layers models; default:
   * every registered pass with a graph lowering). Passes named here ignore built-in policies.
   */
  passes?: (GraphPass | string)[];
  /** Consulted after each successful match: a reason keeps the node (default: src/policy/graph.ts). */
  keep?: GraphRunOptions['keep'];
  /**
   * 'auto' (default) and 'measure': time each candidate alone on the backend (src/graphdef/policy.ts)
   * and keep the op unless the rewrite is >= 1.1x faster; 'always': every correct match.
   */
  policy?: PolicyMode;
  /** The batch candidates are timed at (default 16). */
  policyBatch?: number;
  /** Replaces the timer (tests inject timings). */
  policyTimer?: GraphProbeTimer;
  /**
   * A decisions file to replay (nothing is timed) or, when the path does not exist, to record
   * after a successful run; or a file's object / a report's `policy` (src/policy/decisions.ts).
   */
  decisions?: DecisionsOption;
  /** Compare the rewritten model with the original numerically (default true). */
  verify?: boolean;
}

export interface GraphOptimizeResult {
  report: Report;
  /** The rewritten model, ready for tf.io.fromMemory or writeModelFiles. */
  artifacts: io.ModelArtifacts;
  /** Instantiates the rewritten model with stock tfjs. */
  load(): Promise<tf.GraphModel>;
  /** Writes model.json + shards atomically; returns the model.json path. */
  save(dir: string, options?: WriteOptions): string;
}

async function graphArtifactsOf(source: GraphModelSource): Promise<io.ModelArtifacts> {
  if (typeof source === 'string') return readGraphModelFiles(modelJsonPath(source));
  if (source && typeof source === 'object' && isGraphModelJson({ format: source.format, modelTopology: source.modelTopology })) return source;
  throw new InputError('expected a graph-model model.json path or graph-model ModelArtifacts');
}

/** The graph pipeline and the names the user asked for (the one registry resolves both formats). */
function pipeline(chosen?: (GraphPass | string)[]): { passes: GraphPass[]; forced: Set<string>; notes: string[] } {
  if (!chosen) return { passes: registeredGraphPasses(), forced: new Set(), notes: [] };
  const names = chosen.filter((p): p is string => typeof p === 'string');
  const byName = graphPassesByName(names);
  const passes = chosen.flatMap((p) => (typeof p === 'string' ? byName.filter((pass) => pass.name === p) : [p]));
  const missing = withoutLowering(names, 'graph');
  const notes = missing.length ? [`${missing.join(', ')}: no graph-model lowering; not applied`] : [];
  return { passes, forced: new Set(passes.map((pass) => pass.name)), notes };
}

type RewriteOptions = Pick<GraphOptimizeOptions, 'passes' | 'backend' | 'keep' | 'policy' | 'policyBatch' | 'policyTimer' | 'inputShapes'> & { dryRun?: boolean; replay?: LoadedDecisions };

async function rewrite(source: GraphModelSource, options: RewriteOptions = {}) {
  const { passes, forced, notes } = pipeline(options.passes);
  const original = await graphArtifactsOf(source);
  // The IR copies the weight bytes: passes edit it in place, `original` stays as read.
  const ir: GraphModelIR = graphIRFromArtifacts(original);
  ir.notes.push(...notes);
  // Before any backend switch: the one run that learns shapes uses the caller's backend.
  ir.notes.push(...await learnUnknownShapes(ir, { inputShapes: options.inputShapes }));
  // Policies judge a rewrite on the backend the model will be verified (and deployed) on.
  // A browser backend is only named here (policies read its name); verification opens the browser.
  const request = options.backend === 'all' || options.backend === undefined ? 'auto' : options.backend;
  const target = isBrowserBackend(request) ? { name: request } : await selectBackend(request);
  const before = summarizeGraph(ir);
  // The policy: timed (auto, measure) unless inspecting, where only the table decides.
  const mode = options.policy ?? 'auto';
  const timed = (mode !== 'always' && !options.dryRun) || options.replay
    ? await measureGraphCandidates(ir, passes, { backend: target.name, batch: options.policyBatch, timer: options.policyTimer, forced, mode, decisions: options.replay })
    : undefined;
  const untimed = timed ? undefined : graphPolicy(mode, { name: target.name, device: 'device' in target ? target.device : target.name });
  const policyKeep = timed ? timed.keep : untimed!.keep!;
  const keep = options.keep ? (candidate: GraphCandidate) => options.keep!(candidate) ?? policyKeep(candidate) : policyKeep;
  const { rewritten, skipped, kept } = runGraphPasses(ir, passes, { forced, backend: target.name, keep });
  return { original, ir, before, rewritten, skipped, kept: kept ?? [], policy: (timed ?? untimed)!.report };
}

/** Rewrites every eligible node and (by default) verifies the result against the original. */
export function optimizeGraphModel(source: GraphModelSource, options: GraphOptimizeOptions = {}): Promise<GraphOptimizeResult> {
  return withDecisions(options.decisions, 'graph-model', (replay) => optimizeGraph(source, { ...options, replay }));
}

async function optimizeGraph(source: GraphModelSource, options: GraphOptimizeOptions & { replay?: LoadedDecisions }): Promise<GraphOptimizeResult> {
  const { original, ir, before, rewritten, skipped, kept, policy } = await rewrite(source, options);
  if (rewritten.length === 0) {
    // Nothing to compare: the model goes out as it came in, with no inputs to generate.
    // Loading it once still proves stock tfjs accepts it.
    if (options.verify !== false) (await loadGraph(original, 'original')).dispose();
    return {
      report: { rewritten, skipped, verification: null, before, after: before, notes: [...ir.notes, UNCHANGED], kept, policy },
      artifacts: original,
      load: () => tf.loadGraphModel(tf.io.fromMemory(original)),
      save: (dir, saveOptions) => writeModelFiles(original, dir, saveOptions),
    };
  }
  const artifacts = artifactsFromGraphIR(ir);
  const verification = options.verify === false ? null : await verifyGraphArtifacts(original, artifacts, { ...options, rewrittenLayers: rewritten });
  const report: Report = { rewritten, skipped, verification, before, after: summarizeGraph(ir), notes: ir.notes, kept, policy };
  return {
    report,
    artifacts,
    load: () => tf.loadGraphModel(tf.io.fromMemory(artifacts)),
    save: (dir, saveOptions) => writeModelFiles(artifacts, dir, saveOptions),
  };
}

/** What optimizeGraphModel would rewrite, and why each other conv stays; runs the model once only if shapes need it (learned-shapes.ts). */
export async function inspectGraphModel(source: GraphModelSource, options: Pick<GraphOptimizeOptions, 'passes' | 'backend' | 'keep' | 'policy' | 'policyBatch' | 'decisions' | 'inputShapes'> = {}): Promise<Report> {
  const { replay } = planDecisions(options.decisions, 'graph-model', false);
  const { ir, before, rewritten, skipped, kept, policy } = await rewrite(source, { ...options, dryRun: true, replay });
  return { rewritten, skipped, verification: null, before, after: summarizeGraph(ir), notes: ir.notes, kept, policy };
}

/** Compares two graph models on seeded inputs. */
export async function verifyGraphModels(a: GraphModelSource, b: GraphModelSource, options: LayersVerifyOptions = {}): Promise<VerificationReport> {
  const [first, second] = [await graphArtifactsOf(a), await graphArtifactsOf(b)];
  graphIRFromArtifacts(first);
  graphIRFromArtifacts(second);
  return verifyGraphArtifacts(first, second, options);
}
