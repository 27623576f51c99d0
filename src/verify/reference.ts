/**
 * A float64 reference for a convolution layer, written directly from the definition (window
 * sums over strides, dilation, 'valid'/'same' padding, either data format, bias, activation)
 * rather than from the rewrite's patch identity, so it checks the rewrite instead of restating
 * it. Its own rounding error (~1e-16 relative) is nine orders below float32's, so it serves as
 * exact when measuring how far a float32 layer is from the true result.
 */
import type * as tf from '@tensorflow/tfjs';

export interface ConvSpec {
  /** Spatial rank (3 for Conv3D). */
  rank: number;
  kernelSize: number[];
  strides: number[];
  dilation: number[];
  padding: 'valid' | 'same';
  channelsFirst: boolean;
  channels: number;
  filters: number;
  /** [...kernelSize, channels, filters], C order. */
  kernel: Float64Array;
  bias: Float64Array | null;
  activation: (x: number) => number;
  activationName: string;
  /**
   * Conv2DTranspose/Conv3DTranspose: the kernel is [...kernelSize, filters, channels] and each
   * input position i writes the window starting at output i*stride - padBefore.
   */
  transposed?: boolean;
  /** A graph op's explicit sizes: TF's EXPLICIT padding [before, after] per spatial axis (forward convs). */
  explicitPadding?: [number, number][];
  /** A graph op's explicit sizes: a transposed conv's output size (input_sizes) and leading crop per axis. */
  transposedOutput?: { out: number[]; padBefore: number[] };
}

/** erf to ~1e-15: Taylor series near 0, Lentz continued fraction for erfc in the tails. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let term = ax;
    let sum = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 200; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * sum * 2 / Math.sqrt(Math.PI);
  }
  if (ax > 6) return Math.sign(x);
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))), evaluated bottom-up.
  let f = ax;
  for (let n = 60; n >= 1; n--) f = ax + (n / 2) / f;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const softplus = (x: number) => (x > 30 ? x : Math.log1p(Math.exp(x)));

/** The tfjs-layers activations, by serialized name, in float64. */
export const ACTIVATIONS: Record<string, (x: number) => number> = {
  linear: (x) => x,
  relu: (x) => Math.max(0, x),
  relu6: (x) => Math.min(6, Math.max(0, x)),
  elu: (x) => (x > 0 ? x : Math.expm1(x)),
  selu: (x) => 1.0507009873554805 * (x > 0 ? x : 1.6732632423543772 * Math.expm1(x)),
  sigmoid,
  hardSigmoid: (x) => Math.min(1, Math.max(0, 0.2 * x + 0.5)),
  tanh: Math.tanh,
  softplus,
  softsign: (x) => x / (1 + Math.abs(x)),
  swish: (x) => x * sigmoid(x),
  mish: (x) => x * Math.tanh(softplus(x)),
  gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  gelu_new: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x))),
};

function tuple(value: unknown, rank: number, fallback: number): number[] {
  if (value === undefined || value === null) return new Array(rank).fill(fallback);
  return typeof value === 'number' ? new Array(rank).fill(value) : (value as number[]);
}

/** The spec of a loaded Conv1D/2D/3D layer, or why no float64 reference can be made for it. */
export function convSpecOf(layer: tf.layers.Layer): ConvSpec | { unavailable: string } {
  const config = layer.getConfig() as Record<string, unknown>;
  const transposed = /Transpose$/.test(layer.getClassName());
  const rank = { Conv1D: 1, Conv2D: 2, Conv3D: 3, Conv2DTranspose: 2, Conv3DTranspose: 3 }[layer.getClassName()];
  if (rank === undefined) return { unavailable: `${layer.getClassName()} has no float64 reference` };
  const activationName = String(config.activation ?? 'linear');
  const activation = ACTIVATIONS[activationName];
  if (!activation) return { unavailable: `activation "${activationName}" has no float64 reference` };
  const padding = config.padding as string;
  if (padding !== 'valid' && padding !== 'same') return { unavailable: `padding "${padding}"` };
  if (config.groups !== undefined && config.groups !== 1) return { unavailable: `groups ${String(config.groups)}` };
  const kernelVar = layer.weights.find((w) => /kernel$/.test(w.originalName));
  const biasVar = layer.weights.find((w) => /bias$/.test(w.originalName));
  if (!kernelVar) return { unavailable: 'no kernel weight' };
  // read() is the variable itself (not a copy): read its values, never dispose it.
  // tfjs's conv2dTranspose/conv3dTranspose take no dilation: the config's is ignored, so is this one.
  if (transposed && tuple(config.dilationRate, rank, 1).some((d) => d !== 1)) return { unavailable: 'dilation_rate on a transposed conv (tfjs ignores it)' };
  const shape = kernelVar.shape as number[];
  // tfjs-core pads 3D 'same' convs by floor((k - s) / 2) even when negative (TensorFlow clamps at 0).
  if (transposed && rank === 3 && padding === 'same' && shape.slice(0, 3).some((k, a) => k < tuple(config.strides, rank, 1)[a])) return { unavailable: "kernel < strides with 'same' on a Conv3DTranspose (tfjs and TensorFlow pad it differently)" };
  const kernel = Float64Array.from(kernelVar.read().dataSync() as Float32Array);
  return {
    ...(transposed ? { transposed } : {}),
    rank,
    kernelSize: shape.slice(0, rank),
    strides: tuple(config.strides, rank, 1),
    dilation: transposed ? new Array(rank).fill(1) : tuple(config.dilationRate, rank, 1),
    padding,
    channelsFirst: config.dataFormat === 'channelsFirst',
    channels: shape[transposed ? rank + 1 : rank],
    filters: shape[transposed ? rank : rank + 1],
    kernel,
    bias: config.useBias !== false && biasVar ? Float64Array.from(biasVar.read().dataSync() as Float32Array) : null,
    activation,
    activationName,
  };
}

/** Output spatial size and leading pad per axis, as TensorFlow defines them. */
function geometry(spec: ConvSpec, spatial: number[]): { out: number[]; padBefore: number[] } {
  const out: number[] = [];
  const padBefore: number[] = [];
  spatial.forEach((size, a) => {
    const extent = (spec.kernelSize[a] - 1) * spec.dilation[a] + 1;
    if (spec.explicitPadding) {
      const [before, after] = spec.explicitPadding[a];
      out.push(Math.max(0, Math.floor((size + before + after - extent) / spec.strides[a]) + 1));
      padBefore.push(before);
    } else if (spec.padding === 'valid') {
      out.push(Math.max(0, Math.floor((size - extent) / spec.strides[a]) + 1));
      padBefore.push(0);
    } else {
      const n = Math.ceil(size / spec.strides[a]);
      out.push(n);
      padBefore.push(Math.floor(Math.max((n - 1) * spec.strides[a] + extent - size, 0) / 2));
    }
  });
  return { out, padBefore };
}

/**
 * The layer's output for `rows` inputs of shape `rowShape` (no batch axis), in float64, in the
 * layer's own output layout. Loop order: each input value scales one contiguous kernel row,
 * which keeps the inner loop over filters.
 */
export function convReference(spec: ConvSpec, input: ArrayLike<number>, rowShape: number[], rows: number): { data: Float64Array; rowShape: number[] } {
  if (spec.transposed) return convTransposeReference(spec, input, rowShape, rows);
  const { rank, channels: C, filters: F } = spec;
  if (rowShape.length !== rank + 1) throw new Error(`conv reference: input row shape ${JSON.stringify(rowShape)} is not rank ${rank + 1}`);
  const spatial = spec.channelsFirst ? rowShape.slice(1) : rowShape.slice(0, rank);
  const { out, padBefore } = geometry(spec, spatial);
  const inSize = rowShape.reduce((a, b) => a * b, 1);
  const positions = out.reduce((a, b) => a * b, 1);
  const taps = spec.kernelSize.reduce((a, b) => a * b, 1);
  const result = new Float64Array(rows * positions * F);
  const acc = new Float64Array(F);
  // Element strides of the input row for each spatial axis and for the channel axis.
  const inStride = new Array<number>(rank);
  let channelStride: number;
  if (spec.channelsFirst) {
    let s = 1;
    for (let a = rank - 1; a >= 0; a--) { inStride[a] = s; s *= spatial[a]; }
    channelStride = s;
  } else {
    let s = C;
    for (let a = rank - 1; a >= 0; a--) { inStride[a] = s; s *= spatial[a]; }
    channelStride = 1;
  }
  const position = new Array<number>(rank);
  const tap = new Array<number>(rank);
  for (let r = 0; r < rows; r++) {
    const base = r * inSize;
    for (let p = 0; p < positions; p++) {
      for (let a = rank - 1, rest = p; a >= 0; a--) { position[a] = rest % out[a]; rest = Math.floor(rest / out[a]); }
      if (spec.bias) acc.set(spec.bias); else acc.fill(0);
      for (let t = 0; t < taps; t++) {
        for (let a = rank - 1, rest = t; a >= 0; a--) { tap[a] = rest % spec.kernelSize[a]; rest = Math.floor(rest / spec.kernelSize[a]); }
        let offset = base;
        let inside = true;
        for (let a = 0; a < rank; a++) {
          const at = position[a] * spec.strides[a] + tap[a] * spec.dilation[a] - padBefore[a];
          if (at < 0 || at >= spatial[a]) { inside = false; break; }
          offset += at * inStride[a];
        }
        if (!inside) continue; // zero padding contributes nothing
        for (let c = 0; c < C; c++) {
          const x = input[offset + c * channelStride];
          if (x === 0) continue;
          const k = (t * C + c) * F;
          for (let f = 0; f < F; f++) acc[f] += x * spec.kernel[k + f];
        }
      }
      const outBase = r * positions * F;
      for (let f = 0; f < F; f++) {
        const value = spec.activation(acc[f]);
        // channelsLast: [...positions, F]; channelsFirst: [F, ...positions].
        result[spec.channelsFirst ? outBase + f * positions + p : outBase + p * F + f] = value;
      }
    }
  }
  return { data: result, rowShape: spec.channelsFirst ? [F, ...out] : [...out, F] };
}

/**
 * Output size and leading crop per axis of a transposed conv, as tfjs-layers sizes it
 * (deconvLength: valid n*s + max(k - s, 0), same n*s) and TensorFlow pads its backprop
 * (same: floor(max(k - s, 0) / 2) before).
 */
export function transposedGeometry(kernel: number[], strides: number[], padding: 'valid' | 'same', spatial: number[]): { out: number[]; padBefore: number[] } {
  return {
    out: spatial.map((n, a) => n * strides[a] + (padding === 'valid' ? Math.max(kernel[a] - strides[a], 0) : 0)),
    padBefore: spatial.map((_, a) => (padding === 'same' ? Math.floor(Math.max(kernel[a] - strides[a], 0) / 2) : 0)),
  };
}

/** The transposed conv from its definition: input position i, tap t write output i*s + t - padBefore. */
function convTransposeReference(spec: ConvSpec, input: ArrayLike<number>, rowShape: number[], rows: number): { data: Float64Array; rowShape: number[] } {
  const { rank, channels: C, filters: F } = spec;
  if (rowShape.length !== rank + 1) throw new Error(`conv reference: input row shape ${JSON.stringify(rowShape)} is not rank ${rank + 1}`);
  const spatial = spec.channelsFirst ? rowShape.slice(1) : rowShape.slice(0, rank);
  const { out, padBefore } = spec.transposedOutput ?? transposedGeometry(spec.kernelSize, spec.strides, spec.padding, spatial);
  const inPositions = spatial.reduce((a, b) => a * b, 1);
  const positions = out.reduce((a, b) => a * b, 1);
  const taps = spec.kernelSize.reduce((a, b) => a * b, 1);
  const result = new Float64Array(rows * positions * F);
  const acc = new Float64Array(positions * F); // channels last while accumulating
  const position = new Array<number>(rank);
  const tap = new Array<number>(rank);
  const x = new Float64Array(C);
  for (let r = 0; r < rows; r++) {
    acc.fill(0);
    for (let p = 0; p < inPositions; p++) {
      for (let a = rank - 1, rest = p; a >= 0; a--) { position[a] = rest % spatial[a]; rest = Math.floor(rest / spatial[a]); }
      for (let c = 0; c < C; c++) x[c] = input[r * inPositions * C + (spec.channelsFirst ? c * inPositions + p : p * C + c)];
      for (let t = 0; t < taps; t++) {
        for (let a = rank - 1, rest = t; a >= 0; a--) { tap[a] = rest % spec.kernelSize[a]; rest = Math.floor(rest / spec.kernelSize[a]); }
        let o = 0;
        let inside = true;
        for (let a = 0; a < rank; a++) {
          const at = position[a] * spec.strides[a] + tap[a] - padBefore[a];
          if (at < 0 || at >= out[a]) { inside = false; break; }
          o = o * out[a] + at;
        }
        if (!inside) continue;
        for (let f = 0; f < F; f++) {
          const k = (t * F + f) * C; // kernel [...taps, F, C]
          let sum = 0;
          for (let c = 0; c < C; c++) sum += x[c] * spec.kernel[k + c];
          acc[o * F + f] += sum;
        }
      }
    }
    const outBase = r * positions * F;
    for (let o = 0; o < positions; o++) {
      for (let f = 0; f < F; f++) {
        const value = spec.activation(acc[o * F + f] + (spec.bias ? spec.bias[f] : 0));
        result[spec.channelsFirst ? outBase + f * positions + o : outBase + o * F + f] = value;
      }
    }
  }
  return { data: result, rowShape: spec.channelsFirst ? [F, ...out] : [...out, F] };
}

/** Error statistics of a float32 result against the float64 reference, streamed over batches. */
export interface ErrorStats {
  maxAbsError: number;
  /** Over elements with |reference| > 1e-6 (smaller ones only make noise). */
  maxRelError: number;
  meanAbsError: number;
  /** Mean and largest |reference|: set the float32 rounding floor of the comparison. */
  meanAbsReference: number;
  maxAbsReference: number;
}

export class ErrorAccumulator {
  private count = 0;
  private sumAbs = 0;
  private maxAbs = 0;
  private maxRel = 0;
  private maxRef = 0;
  private sumRef = 0;

  add(reference: ArrayLike<number>, actual: ArrayLike<number>): void {
    if (reference.length !== actual.length) throw new Error(`reference has ${reference.length} elements, result ${actual.length}`);
    for (let i = 0; i < reference.length; i++) {
      const ref = reference[i];
      const err = Math.abs(actual[i] - ref);
      const mag = Math.abs(ref);
      if (Number.isNaN(err)) this.maxAbs = NaN;
      else if (err > this.maxAbs) this.maxAbs = err;
      if (mag > 1e-6 && err / mag > this.maxRel) this.maxRel = err / mag;
      if (mag > this.maxRef) this.maxRef = mag;
      this.sumRef += mag;
      this.sumAbs += err;
    }
    this.count += reference.length;
  }

  /** Adds the state of another accumulator (a row shard's, as its structured clone). */
  merge(other: ErrorAccumulator): void {
    this.maxAbs = Number.isNaN(this.maxAbs) || Number.isNaN(other.maxAbs) ? NaN : Math.max(this.maxAbs, other.maxAbs);
    this.maxRel = Math.max(this.maxRel, other.maxRel);
    this.maxRef = Math.max(this.maxRef, other.maxRef);
    this.sumRef += other.sumRef;
    this.sumAbs += other.sumAbs;
    this.count += other.count;
  }

  result(): ErrorStats {
    return {
      maxAbsError: this.maxAbs,
      maxRelError: this.maxRel,
      meanAbsError: this.count ? this.sumAbs / this.count : 0,
      meanAbsReference: this.count ? this.sumRef / this.count : 0,
      maxAbsReference: this.maxRef,
    };
  }
}
