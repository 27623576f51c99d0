/**
 * The one verification loop, for both formats: rows fed batch by batch to both models on a
 * target (Node backend or browser page), every output compared within atol + rtol*|a|, the
 * float64 per-layer checks fed from each batch's taps, the exact integer check, and the report.
 * A format opens its pair of models (layers: src/verify/verify.ts; GraphDef:
 * src/verify/graphdef.ts): the input rows, where its outputs and taps sit, and how to run a
 * batch on either side.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { reportStage } from '../core/stage';
import { InputError } from '../errors';
import { yieldToEventLoop } from '../yield';
import { poolSize } from '../workers/pool';
import { MetricsAccumulator, OutputMetrics } from './compare';
import { maxAbsDifference, ulpPerturbed, withNoiseFloor } from './noise-floor';
import { runExactChecks } from './exact';
import type { InputSet } from './inputs';
import { RowPacer, StepTimer } from './pacing';
import { SHARD_MIN_MS, ShardState, canShard, runShards } from './shards';
import type { LayerCheck, LayersVerifyOptions, Target, VerificationReport } from './verify';
import { DEFAULT_ACCURACY_FACTOR, runHeader, runSettings, targetTolerance, usesNoiseFloor } from './verify';

export type Values = { data: ArrayLike<number>; shape: number[] }[];

/** One batch of rows, as tensors and (in a browser) staged in the page. */
export interface RowBatch {
  xs: tf.Tensor[];
  staged?: string;
}

/** An output that does not keep the rows on axis 0, so batches cannot be stitched. */
export class BatchAxisError extends InputError {}

/** A format's two models, opened on one target. */
export interface OpenPair {
  rows: InputSet;
  /** Output names, in order. */
  outputNames: string[];
  /** Where each model output sits in the values of the original and of the rewritten side. */
  outputs: [number[], number[]];
  checks: LayerCheck[];
  notes: string[];
  /**
   * Values of the original for one batch (its outputs and taps). An error of the original
   * model itself comes out as the model's problem (OriginalModelError); BatchAxisError asks
   * for all rows in one pass.
   */
  original(batch: RowBatch, count: number): Promise<Values>;
  rewritten(batch: RowBatch, count: number): Promise<Values>;
  /** The original with its weights moved as the noise floor moves inputs (noise-floor.ts), where the format can. */
  originalMoved?(batch: RowBatch, count: number, seed: number): Promise<Values>;
  /** Frees the models (the loop closes `rows`). */
  close(): Promise<void>;
}

/**
 * Opens the pair on the target, runs every row through both, closes the pair. `artifacts` (the
 * two models) let a long run hand rows to other threads (src/verify/shards.ts).
 */
export async function verifyPair(
  target: Target, options: LayersVerifyOptions, open: () => Promise<OpenPair>, artifacts?: [io.ModelArtifacts, io.ModelArtifacts],
): Promise<VerificationReport> {
  reportStage(`verifying on ${target.info.name}: loading both models`);
  const pair = await open();
  try {
    return await runRows(target, options, pair, artifacts);
  } finally {
    pair.rows.close();
    await pair.close();
  }
}

async function runRows(target: Target, options: LayersVerifyOptions, pair: OpenPair, artifacts?: [io.ModelArtifacts, io.ModelArtifacts]): Promise<VerificationReport> {
  const backend = target.info;
  const { session } = target;
  const settings = runSettings(options);
  const { batchSize } = settings;
  const { atol, rtol, note: toleranceNote } = targetTolerance(target, settings);
  const factor = options.accuracyFactor ?? DEFAULT_ACCURACY_FACTOR;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InputError(`batchSize must be a positive integer, got ${batchSize}`);
  const { rows, checks, outputNames } = pair;
  const [outA, outB] = pair.outputs;
  const accumulators: MetricsAccumulator[] = [];
  /** Outputs of the original with a nonzero value somewhere (a backend bug can zero one). */
  const nonZero = new Set<number>();
  const pacer = new RowPacer(batchSize);
  let whole = false;
  const [first, end] = options.rowRange ?? [0, rows.rows];
  if (!(first >= 0 && first < end && end <= rows.rows)) throw new InputError(`row range [${first}, ${end}) is outside the ${rows.rows} rows`);
  const shardable = artifacts !== undefined && canShard(options, session !== undefined);
  const began = Date.now();
  const span = (start: number, count: number) => `rows ${start + 1}-${start + count} of ${rows.rows}`;
  for (let start = first, count = 0; start < end; start += count) {
    count = whole ? end - start : pacer.next(end - start);
    // Between forward passes, signals (Ctrl-C) and aborts get their turn (see src/yield.ts);
    // the pacer keeps each synchronous step short enough for that to be within a second.
    await yieldToEventLoop(options.signal);
    const timer = new StepTimer();
    const batch: RowBatch = { xs: rows.batch(start, count) };
    try {
      if (session) batch.staged = await session.stage(batch.xs);
      reportStage(`verifying on ${backend.name}: ${span(start, count)}, the original model`);
      let va: Values;
      try {
        va = await pair.original(batch, count);
      } catch (error) {
        // An output without the batch axis first cannot be split into passes: all rows in one
        // pass, when --batch-size allows it.
        if (!(error instanceof BatchAxisError) || start !== 0 || whole || batchSize < rows.rows || options.rowRange) throw error;
        whole = true;
        count = 0;
        continue;
      }
      timer.lap();
      await yieldToEventLoop(options.signal);
      timer.restart();
      reportStage(`verifying on ${backend.name}: ${span(start, count)}, the rewritten model`);
      const vb = await pair.rewritten(batch, count);
      for (let o = 0; o < outputNames.length; o++) {
        const [expected, actual] = [va[outA[o]], vb[outB[o]]];
        if (expected.shape.join() !== actual.shape.join()) {
          throw new InputError(`output ${outputNames[o]}: shape ${JSON.stringify(expected.shape)} vs ${JSON.stringify(actual.shape)}`);
        }
        accumulators[o] ??= new MetricsAccumulator(outputNames[o], expected.shape.slice(1), { atol, rtol });
        accumulators[o].add(expected.data, actual.data);
        if (!nonZero.has(o) && Array.prototype.some.call(expected.data, (v: number) => v !== 0)) nonZero.add(o);
      }
      for (const check of checks) {
        reportStage(`verifying on ${backend.name}: ${span(start, count)}, float64 reference of ${check.probe.layer}`);
        timer.lap();
        await yieldToEventLoop(options.signal);
        timer.restart();
        check.add(va, vb); // a float64 conv per rewritten layer: as long as a forward pass
      }
      timer.lap();
    } finally {
      tf.dispose(batch.xs);
      if (batch.staged) await session!.dispose(batch.staged);
    }
    pacer.record(count, timer.slowest);
    options.onProgress?.({ backend: backend.name, done: start + count, total: rows.rows });
    // The rest would take a while in this thread: every core takes a contiguous share of it.
    const next = start + count;
    if (shardable && next < end && ((Date.now() - began) / (next - first)) * (end - next) > SHARD_MIN_MS) {
      reportStage(`verifying on ${backend.name}: rows ${next + 1}-${end} on ${poolSize()} threads`);
      const states = await runShards(artifacts![0], artifacts![1], options, backend.name, next, end, (done) => {
        options.onProgress?.({ backend: backend.name, done: next + done, total: rows.rows });
      });
      for (const state of states) {
        state.outputs.forEach((shard, o) => accumulators[o].append(Object.assign(Object.create(MetricsAccumulator.prototype), shard)));
        state.layers.forEach((shard, l) => checks[l].merge(shard));
        state.nonZero.forEach((o) => nonZero.add(o));
      }
      break;
    }
  }
  if (options.rowRange) {
    const shard: ShardState = { outputs: accumulators, layers: checks.map((check) => check.state()), nonZero: [...nonZero] };
    return { shard } as unknown as VerificationReport;
  }
  let outputs: OutputMetrics[] = accumulators.map((accumulator) => accumulator.result());
  const floorNotes: string[] = [];
  // Zeroed outputs are the original's bug (noted below), not rounding.
  if (usesNoiseFloor(options) && outputs.some((o, i) => !o.passed && nonZero.has(i))) {
    const floors = (await noiseFloors(pair, target, settings.seed)).map((floor, i) => (nonZero.has(i) ? floor : undefined));
    const judged = withNoiseFloor(outputs, floors, factor);
    outputs = judged.outputs;
    floorNotes.push(...judged.notes);
  }
  const layers = checks.map((check) => check.result(factor));
  if (options.exactSubjects?.length) reportStage(`verifying on ${backend.name}: exact integer check of ${options.exactSubjects.length} rewritten conv(s)`);
  const exact = options.exactSubjects ? await runExactChecks(options.exactSubjects, { float16: session?.float16 ?? false, session }) : undefined;
  const zeroed = outputs.filter((o, i) => !o.passed && !nonZero.has(i)).map((o) => o.name);
  const notes = [
    ...(toleranceNote ? [toleranceNote] : []),
    // Seen with tfjs 4.22's WebGPU backend: BiasAdd on a rank-5 tensor (a converted Conv3D) fails
    // to compile its shader (WGSL has no vec5) and returns zeros; the rewrite's 2-D ops do not.
    ...(zeroed.length ? [`the original model returns only zeros for ${zeroed.join(', ')} on ${backend.name}: the original, not the rewrite, is wrong there${backend.name === 'webgpu' ? ' (tfjs 4.22 WebGPU: BiasAdd on rank-5 tensors, WGSL vec5)' : ''}`] : []),
    ...pair.notes,
    ...floorNotes,
    ...(!exact && checks.length ? ['exact integer check not run: it re-applies the passes to each conv, which optimize does (verify compares two given models)'] : []),
  ];
  return {
    passed: outputs.every((o) => o.passed) && layers.every((l) => l.passed) && (exact ?? []).every((e) => e.exact !== false),
    ...runHeader(target, settings, rows),
    accuracyFactor: factor,
    outputs,
    layers,
    ...(exact ? { exact } : {}),
    notes,
  };
}

/** Rows the noise floor runs on (the first ones): the default 2 rows are compared on both. */
const FLOOR_ROWS = 8;

/**
 * Per output, how far the original's outputs move on the first rows when every input element
 * (and, where the format can, every weight) moves by 2^-23 relative (withNoiseFloor); undefined
 * where that cannot be run.
 */
async function noiseFloors(pair: OpenPair, target: Target, seed: number): Promise<(number | undefined)[]> {
  const { session } = target;
  reportStage(`verifying on ${target.info.name}: the original on the first rows with its input and weights moved by one or two ulps (the float32 noise floor)`);
  const count = Math.min(pair.rows.rows, FLOOR_ROWS);
  const run = async (xs: tf.Tensor[], moved: boolean) => {
    const batch: RowBatch = { xs };
    try {
      if (session) batch.staged = await session.stage(xs);
      return await (moved && pair.originalMoved ? pair.originalMoved(batch, count, seed + 1) : pair.original(batch, count));
    } finally {
      if (batch.staged) await session!.dispose(batch.staged);
    }
  };
  const xs = pair.rows.batch(0, count);
  const moved = ulpPerturbed(xs, seed);
  try {
    const [a, b] = [await run(xs, false), await run(moved, true)];
    return pair.outputs[0].map((o) => maxAbsDifference(a[o].data, b[o].data));
  } catch (error) {
    // An output without the batch axis first cannot run as one row: no floor, the tolerance stands.
    if (error instanceof BatchAxisError) return pair.outputs[0].map(() => undefined);
    throw error;
  } finally {
    tf.dispose([...xs, ...moved]);
  }
}
