/**
 * Rows of a long verification spread over every core. Rows are independent, so a run whose
 * first paced pass says the rest will take a while hands the remaining rows, in contiguous
 * shards, to pool workers (src/workers/pool.ts; each loads both models in its own tfjs on the
 * same backend) and merges what they accumulated: output metrics in row order (maxima, counts
 * and the worst element exact; float64 sums re-associated) and each layer's float64 errors.
 * tfjs's wasm backend is single-threaded in Node: this is how a 24k-row check uses 2 cores.
 */
import type { io } from '@tensorflow/tfjs';
import { InputError } from '../errors';
import { TaskReply, poolSize, runTask } from '../workers/pool';
import type { MetricsAccumulator } from './compare';
import type { LayerCheckState, LayersVerifyOptions } from './verify';

/** Shard the rest when it would take longer than this in one thread (a worker starts in ~1 s). */
export const SHARD_MIN_MS = 5000;

/** What one shard hands back: its accumulators, as structured clones. */
export interface ShardState {
  outputs: MetricsAccumulator[];
  layers: LayerCheckState[];
  /** Outputs whose original had a nonzero value in the shard's rows. */
  nonZero: number[];
}

/** The options a shard's rows depend on (everything else is the caller's: callbacks, exact subjects, passes). */
const SHARD_FIELDS = ['atol', 'rtol', 'inputs', 'batch', 'inputShapes', 'seed', 'batchSize', 'accuracyFactor', 'rewrittenLayers', 'originalFindings'] as const;

/** The options as data a worker can take (callbacks, the exact check and passes stay with the caller). */
export function threadData(options: LayersVerifyOptions): Record<string, unknown> {
  return Object.fromEntries(SHARD_FIELDS.filter((key) => options[key] !== undefined).map((key) => [key, options[key]]));
}

/** Whether a run can move to another worker: a Node target, inputs that cross (files or arrays, not tensors), no injected module loader. */
export function canRunApart(options: LayersVerifyOptions, browser: boolean): boolean {
  if (browser || options.moduleLoader) return false;
  return (options.inputs ?? []).every((input) => typeof input === 'string' || (typeof input === 'object' && input !== null && 'data' in input && !('dataSync' in input)));
}

/** [start, end) split into `n` contiguous ranges of near-equal size (none empty). */
export function shardRanges(start: number, end: number, n: number): [number, number][] {
  const rows = end - start;
  const parts = Math.max(1, Math.min(n, rows));
  return Array.from({ length: parts }, (_, i) => [start + Math.floor((rows * i) / parts), start + Math.floor((rows * (i + 1)) / parts)]);
}

/**
 * Whether a run may shard its rows: a Node backend, more than one thread, inputs that can cross
 * to a worker (files or arrays, not tensors), no injected module loader.
 */
export function canShard(options: LayersVerifyOptions, browser: boolean): boolean {
  return !options.rowRange && options.shards !== false && poolSize() >= 2 && canRunApart(options, browser);
}

/**
 * Runs rows [start, end) as one shard per thread on `backend`; `onRows` gets the rows done so
 * far across shards. Aborting `options.signal` terminates the shards' workers.
 */
export async function runShards(
  original: io.ModelArtifacts, rewritten: io.ModelArtifacts, options: LayersVerifyOptions, backend: string,
  start: number, end: number, onRows: (done: number) => void,
): Promise<ShardState[]> {
  const ranges = shardRanges(start, end, poolSize());
  const done = ranges.map(() => 0);
  // Data only (the fields a row needs): callbacks and the exact check stay here; rows are reported back as events.
  const data = threadData(options);
  const replies: TaskReply[] = await Promise.all(ranges.map((range, i) => runTask('verifyShard', [original, rewritten, {
    ...data, backend, rowRange: range, local: false, offThreadEvents: ['onProgress'],
  }], {
    signal: options.signal,
    onEvent: (event) => {
      const { data: progress } = event as { data: { done: number } };
      done[i] = progress.done - range[0];
      onRows(done.reduce((a, b) => a + b, 0));
    },
  })));
  return replies.map((reply) => {
    if ('error' in reply) throw reply.error.kind === 'other' ? new Error(reply.error.message) : new InputError(reply.error.message);
    return reply.value as ShardState;
  });
}
