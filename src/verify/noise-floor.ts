/**
 * The end-to-end comparison's measured allowance for float32 rounding (withNoiseFloor): how far
 * the original's own outputs move when its input moves by one or two ulps (2^-23 relative).
 */
import * as tf from '@tensorflow/tfjs';
import type { OutputMetrics } from './compare';

/**
 * The relative move of each input element, 2^-23: x * (1 +/- 2^-23) moves x by one or two ulps
 * (1 + 2^-24 would round back to 1).
 */
export const ULP_STEP = 2 ** -23;

/**
 * A deep float32 network amplifies rounding: two correct implementations that sum in different
 * orders (the original and its rewrite) can differ by more than atol + rtol*|a| on a few
 * elements (measured on brainchop's 9-25 layer MeshNets: up to 75 of 1e5). How far rounding
 * moves this model's outputs is measured, not guessed: the original's own outputs on the first
 * rows, and on them with every input element (and, in Node, every weight: a rewrite rounds
 * differently in every layer) moved by 2^-23 relative, a seeded sign each. Elements outside the
 * tolerance then pass when the output's maxAbsDiff is within `factor` (accuracyFactor) times that
 * spread; a wrong rewrite misses by the size of the values, orders of magnitude beyond it.
 */
export function withNoiseFloor(outputs: OutputMetrics[], floors: (number | undefined)[], factor: number): { outputs: OutputMetrics[]; notes: string[] } {
  const notes: string[] = [];
  const judged = outputs.map((o, i) => {
    const floor = floors[i];
    if (o.passed || floor === undefined) return o;
    const within = o.maxAbsDiff <= factor * floor;
    notes.push(`${o.name}: ${o.outsideTolerance} element(s) outside atol + rtol*|a|; maxAbsDiff ${o.maxAbsDiff.toPrecision(3)} is ${within ? 'within' : 'beyond'} ` +
      `${factor} x ${floor.toPrecision(3)}, how far the original's own output moves when its input (and, in Node, its weights) moves by 2^-23, one or two ulps: ${within ? 'float32 rounding, passed' : 'FAILED'}`);
    return { ...o, noiseFloor: floor, passed: within };
  });
  return { outputs: judged, notes };
}

/** `xs` with every float element moved by 2^-23 relative (ULP_STEP), the sign drawn per element (seeded); int inputs stay. */
export function ulpPerturbed(xs: tf.Tensor[], seed: number): tf.Tensor[] {
  return xs.map((x, i) => tf.tidy(() => {
    if (x.dtype !== 'float32') return x.clone();
    const sign = tf.sub(tf.mul(tf.cast(tf.greater(tf.randomUniform(x.shape, 0, 1, 'float32', seed + i), 0.5), 'float32'), 2), 1);
    return tf.mul(x, tf.add(1, tf.mul(sign, ULP_STEP)));
  }));
}

/** max |a - b| over two equal-length arrays. */
export function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/**
 * Runs `fn` with every float weight of `model` moved as ulpPerturbed moves inputs, then puts the
 * weights back: a rewrite rounds differently in every layer, not only at the input, and moving
 * the weights moves every layer's products by that much.
 */
export async function ulpWeights<T>(model: tf.LayersModel, seed: number, fn: () => Promise<T>): Promise<T> {
  const saved = model.getWeights().map((w) => w.clone());
  const moved = ulpPerturbed(saved, seed);
  model.setWeights(moved);
  tf.dispose(moved);
  try {
    return await fn();
  } finally {
    model.setWeights(saved);
    tf.dispose(saved);
  }
}
