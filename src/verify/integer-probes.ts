/**
 * What the two integer checks share (the exact check of each rewrite, src/verify/exact.ts, and
 * the check of the original's convs, src/verify/original-check.ts): small-integer draws whose
 * every partial sum stays exact in float32 (or float16), a one-op model run on the target
 * (Node backend or browser page), and an element-by-element comparison.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import type { BrowserSession } from '../browser/session';
import { FormatName, loadRunnable } from '../formats/load';

export const mulberry32 = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

/** Integers uniform in [-m, m]. */
export const integers = (count: number, m: number, rand: () => number) => Float32Array.from({ length: count }, () => Math.floor(rand() * (2 * m + 1)) - m);

/** Magnitudes a (input), b (kernel), c (bias) with P*a*b + c <= limit, as large as 16 allows. */
export function magnitudesFor(patch: number, limit: number): { input: number; kernel: number; bias: number } | null {
  if (patch > limit) return null;
  const bias = Math.min(16, limit - patch);
  const side = Math.max(1, Math.min(16, Math.floor(Math.sqrt((limit - bias) / patch))));
  return { input: side, kernel: side, bias };
}

export interface RunResult {
  data: ArrayLike<number>;
  shape: number[];
}

/** Runs a one-input model (its first output) on the current Node backend. */
export async function runInNode(format: FormatName, artifacts: io.ModelArtifacts, x: tf.Tensor, label: string): Promise<RunResult> {
  const model = await loadRunnable(format, artifacts, label);
  try {
    const [y, ...rest] = await model.predict([x]);
    tf.dispose(rest);
    try {
      return { data: await y.data(), shape: y.shape };
    } finally {
      y.dispose();
    }
  } finally {
    model.dispose();
  }
}

/** Runs a one-input model on rows already staged in a browser page. */
export async function runInPage(session: BrowserSession, format: FormatName, artifacts: io.ModelArtifacts, staged: string, label: string): Promise<RunResult> {
  const id = await session.load(format === 'graphdef' ? 'graph' : 'layers', artifacts, label);
  try {
    return (await session.run(id, staged))[0];
  } finally {
    await session.dispose(id);
  }
}

/** How many elements differ (NaN always does; +0 and -0 do not) and by how much at most. */
export function differences(actual: ArrayLike<number>, expected: ArrayLike<number>): { mismatches: number; maxAbsDiff: number } {
  if (actual.length !== expected.length) return { mismatches: Math.max(actual.length, expected.length), maxAbsDiff: Infinity };
  let mismatches = 0;
  let maxAbsDiff = 0;
  for (let i = 0; i < actual.length; i++) {
    if (!(actual[i] === expected[i])) {
      mismatches++;
      maxAbsDiff = Math.max(maxAbsDiff, Math.abs(actual[i] - expected[i]) || Infinity);
    }
  }
  return { mismatches, maxAbsDiff };
}
