/** The library entry points: optimize, inspect, verify. */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { BUILTIN_PASSES } from '../../passes';
import { writeModelFiles } from '../io/files';
import { artifactsFromIR } from '../io/ir';
import { ModelSource, artifactsOf, checkedIR } from '../io/source';
import type { Pass } from '../pass';
import { ModelSummary, summarize } from '../report/summary';
import { VerificationReport, VerifyOptions, verifyArtifacts } from '../verify/verify';
import { RewriteRecord, SkipRecord, runPasses } from './driver';

export interface OptimizeOptions extends VerifyOptions {
  /** Passes to run (default: all built-in passes). */
  passes?: Pass[];
  /** Compare the rewritten model with the original numerically (default true). */
  verify?: boolean;
}

export interface Report {
  rewritten: RewriteRecord[];
  skipped: SkipRecord[];
  verification: VerificationReport | null;
  before: ModelSummary;
  after: ModelSummary;
  notes: string[];
}

export interface OptimizeResult {
  report: Report;
  /** The rewritten model, ready for tf.io.fromMemory or writeModelFiles. */
  artifacts: io.ModelArtifacts;
  /** Instantiates the rewritten model with stock tfjs. */
  load(): Promise<tf.LayersModel>;
  /** Writes model.json + shards atomically; returns the model.json path. */
  save(dir: string, options?: { force?: boolean }): string;
}

async function rewrite(source: ModelSource, passes: Pass[] = BUILTIN_PASSES) {
  const original = await artifactsOf(source);
  const ir = checkedIR(original);
  const before = summarize(ir);
  const { rewritten, skipped } = runPasses(ir, passes);
  return { original, ir, before, rewritten, skipped };
}

/** Rewrites every eligible layer and (by default) verifies the result against the original. */
export async function optimize(source: ModelSource, options: OptimizeOptions = {}): Promise<OptimizeResult> {
  const { original, ir, before, rewritten, skipped } = await rewrite(source, options.passes);
  const artifacts = await artifactsFromIR(ir);
  const verification = options.verify === false ? null : await verifyArtifacts(original, artifacts, options);
  const report: Report = { rewritten, skipped, verification, before, after: summarize(ir), notes: ir.notes };
  return {
    report,
    artifacts,
    load: () => tf.loadLayersModel(tf.io.fromMemory(artifacts)),
    save: (dir, saveOptions) => writeModelFiles(artifacts, dir, saveOptions),
  };
}

/** What optimize would rewrite, and why each other candidate stays; touches no tensors. */
export async function inspect(source: ModelSource, options: { passes?: Pass[] } = {}): Promise<Report> {
  const { ir, before, rewritten, skipped } = await rewrite(source, options.passes);
  return { rewritten, skipped, verification: null, before, after: summarize(ir), notes: ir.notes };
}

/** Compares two models (paths, models or artifacts) on seeded inputs. */
export async function verify(original: ModelSource, rewritten: ModelSource, options: VerifyOptions = {}): Promise<VerificationReport> {
  const [a, b] = [await artifactsOf(original), await artifactsOf(rewritten)];
  checkedIR(a);
  checkedIR(b);
  return verifyArtifacts(a, b, options);
}
