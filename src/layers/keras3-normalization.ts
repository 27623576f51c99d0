/**
 * Keras 3 `Normalization` (layers/preprocessing/normalization.py) as a stock tfjs-layers
 * BatchNormalization. Keras computes, with the mean and variance broadcast along `axis`:
 *   invert=false: (x - mean) / max(sqrt(variance), epsilon)
 *   invert=true:  mean + x * max(sqrt(variance), epsilon)
 * with epsilon = keras.backend.epsilon() (1e-7 unless the user changed it). tfjs's inference
 * BatchNormalization computes (x - moving_mean) * rsqrt(moving_variance + epsilon) * gamma + beta;
 * with epsilon 0 and moving_variance 1 the rsqrt is exactly 1, so
 *   invert=false: moving_mean = mean, gamma = 1 / d, beta = 0
 *   invert=true:  moving_mean = 0, gamma = d, beta = mean        (d = max(sqrt(variance), 1e-7))
 * the same operations as Keras's up to one rounding of 1 / d.
 */
import { Keras3Error } from './keras3-errors';
import { isObject } from '../validate/describe';
import type { Json, JsonObject, Weight } from './types';

/** keras/src/backend/config.py: _EPSILON. */
export const KERAS_EPSILON = 1e-7;

export interface NormalizationPlan {
  label: string;
  invert: boolean;
  /** Statistics given in the config (flattened; one value = the same for every position), or null: stored as weights (adapt). */
  mean: number[] | null;
  variance: number[] | null;
  /** Size along the normalized axis, when the file says it. */
  size: number | null;
}

const flatten = (value: Json): number[] | null => {
  const out: number[] = [];
  const visit = (item: Json): boolean => (Array.isArray(item) ? item.every(visit) : typeof item === 'number' && Number.isFinite(item) ? (out.push(item), true) : false);
  return visit(value) ? out : null;
};

/** The BatchNormalization config that replaces a Normalization, and how to make its weights. */
export function normalizationConfig(config: JsonObject, entry: JsonObject, label: string): { config: JsonObject; plan: NormalizationPlan } {
  const axis = config.axis;
  const axes = axis === null || axis === undefined ? [] : typeof axis === 'number' ? [axis] : Array.isArray(axis) ? axis : null;
  if (!axes || !axes.every((a) => Number.isInteger(a))) throw new Keras3Error(`${label}: option axis=${JSON.stringify(axis)} is not an axis or a list of axes`);
  const given = config.mean !== null && config.mean !== undefined;
  const mean = given ? flatten(config.mean) : null;
  const variance = given ? flatten(config.variance ?? null) : null;
  if (given && (!mean || !variance || mean.length !== variance.length)) {
    throw new Keras3Error(`${label}: option mean/variance must be numbers or equal-length lists of numbers, got mean=${JSON.stringify(config.mean)}, variance=${JSON.stringify(config.variance)}`);
  }
  const uniform = mean !== null && variance !== null && mean.every((m) => m === mean[0]) && variance.every((v) => v === variance[0]);
  if (axes.length > 1 && !uniform) {
    throw new Keras3Error(`${label}: Normalization over axes ${JSON.stringify(axes)} with per-position statistics has no stock tfjs equivalent (BatchNormalization normalizes along one axis)`);
  }
  // One axis, or the same statistics everywhere (then any axis will do: the last).
  const bnAxis = axes.length === 1 && !uniform ? (axes[0] as number) : -1;
  const build = isObject(entry.build_config) ? entry.build_config.input_shape : undefined;
  const buildSize = Array.isArray(build) ? build[bnAxis < 0 ? build.length + bnAxis : bnAxis] : undefined;
  const size = mean && mean.length > 1 && !uniform ? mean.length : typeof buildSize === 'number' ? buildSize : null;
  const plan: NormalizationPlan = {
    label,
    invert: config.invert === true,
    mean: uniform && mean ? [mean[0]] : mean,
    variance: uniform && variance ? [variance[0]] : variance,
    size,
  };
  return {
    plan,
    config: { name: config.name, trainable: false, dtype: config.dtype ?? 'float32', axis: bnAxis, momentum: 0.99, epsilon: 0, center: true, scale: true },
  };
}

/**
 * The BatchNormalization weights (`<name>/gamma, beta, moving_mean, moving_variance`, tfjs's
 * order) of a converted Normalization, from its config or its stored `mean` / `variance`
 * weights (`count` is dropped: adapt's bookkeeping).
 */
export function normalizationWeights(name: string, plan: NormalizationPlan, stored: Map<string, Weight>): Weight[] {
  let mean = plan.mean;
  let variance = plan.variance;
  if (!mean || !variance) {
    const m = stored.get('mean');
    const v = stored.get('variance');
    if (!m || !v) throw new Keras3Error(`${plan.label}: has neither mean/variance in its config nor stored "mean" and "variance" weights`);
    for (const w of [m, v]) {
      if (w.quantization || w.dtype !== 'float32') throw new Keras3Error(`${plan.label}: weight "${w.name}" is stored ${w.quantization?.dtype ?? w.dtype}; Normalization is converted from float32 statistics only`);
    }
    mean = Array.from(m.values as Float32Array);
    variance = Array.from(v.values as Float32Array);
    if (mean.length !== variance.length) throw new Keras3Error(`${plan.label}: stored mean and variance have different sizes (${mean.length}, ${variance.length})`);
    if (m.shape.length > 1) throw new Keras3Error(`${plan.label}: stored statistics of shape [${m.shape}] (several axes) have no stock tfjs equivalent (BatchNormalization normalizes along one axis)`);
  }
  const size = mean.length > 1 ? mean.length : plan.size;
  if (size === null) throw new Keras3Error(`${plan.label}: one mean/variance for all channels, but the file does not say how many channels (no build_config input shape)`);
  if (plan.size !== null && mean.length > 1 && plan.size !== mean.length) throw new Keras3Error(`${plan.label}: ${mean.length} statistics for an axis of size ${plan.size}`);
  const at = (values: number[], i: number) => (values.length === 1 ? values[0] : values[i]);
  const gamma = new Float32Array(size);
  const beta = new Float32Array(size);
  const movingMean = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    // As Keras computes it in float32: sqrt of the float32 variance, then the maximum.
    const d = Math.max(Math.fround(Math.sqrt(Math.fround(at(variance, i)))), Math.fround(KERAS_EPSILON));
    gamma[i] = plan.invert ? d : 1 / d;
    beta[i] = plan.invert ? at(mean, i) : 0;
    movingMean[i] = plan.invert ? 0 : at(mean, i);
  }
  const weight = (suffix: string, values: Float32Array): Weight => ({ name: `${name}/${suffix}`, shape: [size], dtype: 'float32', values });
  return [weight('gamma', gamma), weight('beta', beta), weight('moving_mean', movingMean), weight('moving_variance', new Float32Array(size).fill(1))];
}
