/**
 * Graph models (format "graph-model", a GraphDef in model.json): optimize, inspect, verify,
 * with the same report, IO guarantees and verification as the layers entry points.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { InputError } from '../errors';
import { WriteOptions, writeModelFiles } from '../io/files';
import { modelJsonPath } from '../io/source';
import type { Report } from '../optimize';
import type { VerificationReport, VerifyOptions } from '../verify/verify';
import { runGraphPasses } from './driver';
import { readGraphModelFiles } from './files';
import { GraphModelIR, artifactsFromGraphIR, graphIRFromArtifacts, isGraphModelJson } from './ir';
import type { GraphPass } from './pass';
import { BUILTIN_GRAPH_PASSES } from './passes';
import { summarizeGraph } from './summary';
import { verifyGraphArtifacts } from './verify';

export { isGraphModelJson } from './ir';
export { isGraphModelFile, readGraphModelFiles } from './files';
export { benchmarkGraphArtifacts } from './bench';
export { BUILTIN_GRAPH_PASSES } from './passes';
export type { GraphBenchmark } from './bench';
export type { GraphPass, GraphMatchContext, GraphReplacement } from './pass';

/** A model.json path (or its folder), or graph-model artifacts already in memory. */
export type GraphModelSource = string | io.ModelArtifacts;

export interface GraphOptimizeOptions extends VerifyOptions {
  /** Passes to run (default: all built-in graph passes). */
  passes?: GraphPass[];
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

async function rewrite(source: GraphModelSource, passes: GraphPass[] = BUILTIN_GRAPH_PASSES) {
  const original = await graphArtifactsOf(source);
  // The IR copies the weight bytes: passes edit it in place, `original` stays as read.
  const ir: GraphModelIR = graphIRFromArtifacts(original);
  const before = summarizeGraph(ir);
  const { rewritten, skipped } = runGraphPasses(ir, passes);
  return { original, ir, before, rewritten, skipped };
}

/** Rewrites every eligible node and (by default) verifies the result against the original. */
export async function optimizeGraphModel(source: GraphModelSource, options: GraphOptimizeOptions = {}): Promise<GraphOptimizeResult> {
  const { original, ir, before, rewritten, skipped } = await rewrite(source, options.passes);
  const artifacts = artifactsFromGraphIR(ir);
  const verification = options.verify === false ? null : await verifyGraphArtifacts(original, artifacts, options);
  const report: Report = { rewritten, skipped, verification, before, after: summarizeGraph(ir), notes: ir.notes };
  return {
    report,
    artifacts,
    load: () => tf.loadGraphModel(tf.io.fromMemory(artifacts)),
    save: (dir, saveOptions) => writeModelFiles(artifacts, dir, saveOptions),
  };
}

/** What optimizeGraphModel would rewrite, and why each other Conv3D stays; touches no tensors. */
export async function inspectGraphModel(source: GraphModelSource, options: { passes?: GraphPass[] } = {}): Promise<Report> {
  const { ir, before, rewritten, skipped } = await rewrite(source, options.passes);
  return { rewritten, skipped, verification: null, before, after: summarizeGraph(ir), notes: ir.notes };
}

/** Compares two graph models on seeded inputs. */
export async function verifyGraphModels(a: GraphModelSource, b: GraphModelSource, options: VerifyOptions = {}): Promise<VerificationReport> {
  const [first, second] = [await graphArtifactsOf(a), await graphArtifactsOf(b)];
  graphIRFromArtifacts(first);
  graphIRFromArtifacts(second);
  return verifyGraphArtifacts(first, second, options);
}
