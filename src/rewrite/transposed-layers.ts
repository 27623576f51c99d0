/**
 * The layers lowerings of the transposed-conv rules (analysis: transposed-conv.ts). Every new
 * tensor stays within what every backend runs: rank <= 5 with the batch (WebGL/WebGPU transposes
 * stop at 6), no rank-5 pad (WebGL cannot compile it; pads here are ZeroPadding2D on rank 4),
 * and biases are added on rank-3 tensors (Dense's biasAdd throws above rank 5, and WebGPU adds a
 * rank-5 bias wrong).
 */
import { MatchContext, MatchResult, Pass, REPLACED_INPUT, Replacement } from '../pass';
import { isUnknown } from '../layers/shapes';
import { Json, JsonObject, LayerNode, TensorRef, Weight, WeightValues } from '../layers/types';
import { CallInput, fmt } from './conv-analysis';
import { TransposedGeometry, perElement, planTransposed } from './transposed-conv';
import { transposeValues } from './transpose';
import { findWeight, keptEncodingNotes, renameWeight } from './weights';

export interface TransposedPlan {
  geometry: TransposedGeometry;
  kernel: Weight;
  bias?: Weight;
}

function asTuple(value: Json | undefined, rank: number, fallback: number): number[] | undefined {
  if (value === undefined || value === null) return new Array(rank).fill(fallback);
  if (typeof value === 'number') return new Array(rank).fill(value);
  if (Array.isArray(value) && value.length === rank && value.every((v) => typeof v === 'number')) return value as number[];
  return undefined;
}

/** The shared match of both transposed rules on a Conv2DTranspose/Conv3DTranspose layer. */
function matchTransposed(layer: LayerNode, context: MatchContext, rank: number, nonOverlapping: boolean): MatchResult<TransposedPlan> {
  const refuse = (refusal: string) => ({ refusal });
  const c = layer.config;
  const kernelSize = asTuple(c.kernel_size, rank, NaN);
  const strides = asTuple(c.strides, rank, 1);
  const dilation = asTuple(c.dilation_rate, rank, 1);
  if (!kernelSize || kernelSize.some((k) => !Number.isInteger(k) || k < 1)) return refuse(`kernel_size ${fmt(c.kernel_size)} is not ${rank} positive integers`);
  if (!strides || !dilation) return refuse(`strides ${fmt(c.strides)} or dilation_rate ${fmt(c.dilation_rate)} is malformed`);
  const dataFormat = c.data_format ?? 'channels_last';
  if (dataFormat !== 'channels_last' && dataFormat !== 'channels_first') return refuse(`data_format '${dataFormat}' is not supported`);
  // Constraints project weights during training with axis semantics tied to the conv layout.
  if (c.kernel_constraint != null || c.bias_constraint != null) return refuse('kernel_constraint/bias_constraint set (no equivalent of their axes)');
  if (typeof c.filters !== 'number') return refuse(`filters ${fmt(c.filters)} is not a number`);
  const calls: CallInput[] = [];
  for (const shapes of context.shapes.callInputs.get(layer.name) ?? []) {
    if (isUnknown(shapes)) calls.push({ unknown: shapes.unknown });
    else if (shapes.length !== 1) return refuse(`${shapes.length} inputs, a conv takes one`);
    else calls.push({ shape: shapes[0] });
  }
  const kernel = findWeight(context.ir.weights, layer.name, 'kernel');
  const useBias = c.use_bias !== false;
  const bias = useBias ? findWeight(context.ir.weights, layer.name, 'bias') : undefined;
  const geometry = planTransposed({
    kernel: kernelSize, strides, dilation, padding: String(c.padding ?? 'valid'), outputPadding: c.output_padding,
    channelsFirst: dataFormat === 'channels_first', filters: c.filters, calls,
    kernelWeight: kernel, bias: useBias ? bias ?? 'missing' : null, owner: layer.name,
  }, nonOverlapping);
  if ('refusal' in geometry) return geometry;
  return { plan: { geometry, kernel: kernel!, bias } };
}

interface Step {
  className: string;
  config: JsonObject;
  /** Weights of this layer, by suffix ("kernel" -> "<layer>/kernel"). */
  weights?: { suffix: string; like: Weight; shape: number[]; values: WeightValues; dtype?: Weight['dtype']; quantization?: Weight['quantization'] | undefined }[];
  /** The branches of an Add: each a list of steps from the same input. */
  branches?: Step[][];
}

const reshape = (target: number[]): Step => ({ className: 'Reshape', config: { target_shape: target } });
const permute = (dims: number[]): Step => ({ className: 'Permute', config: { dims } });
const crop2d = (cropping: number[][]): Step => ({ className: 'Cropping2D', config: { cropping, data_format: 'channels_last' } });
const pad2d = (padding: number[][]): Step => ({ className: 'ZeroPadding2D', config: { padding, data_format: 'channels_last' } });
const nonZero = (pairs: number[][]) => pairs.some((pair) => pair.some((v) => v !== 0));

/** Lays the steps out as layers after the replaced input; the last one takes the conv's name. */
function build(layer: LayerNode, steps: Step[], context: MatchContext, plan: TransposedPlan): Replacement {
  const layers: LayerNode[] = [];
  const addWeights: Weight[] = [];
  const passThrough: JsonObject = {};
  for (const key of ['trainable', 'dtype']) if (key in layer.config) passThrough[key] = layer.config[key];
  const ref = (name: string): TensorRef => ({ layer: name, node: 0, tensor: 0, kwargs: {} });
  const emit = (step: Step, input: TensorRef[], name: string): TensorRef => {
    layers.push({ name, className: step.className, config: { name, ...passThrough, ...step.config }, calls: [{ inputs: input }], extra: {} });
    for (const w of step.weights ?? []) {
      const { like, suffix, ...rest } = w;
      addWeights.push({ ...like, ...rest, dtype: rest.dtype ?? like.dtype, quantization: 'quantization' in rest ? rest.quantization : like.quantization, name: renameWeight({ ...like, name: like.name.replace(/[^/]+$/, suffix) }, layer.name, name) });
    }
    return ref(name);
  };
  const label = (step: Step) => step.className.toLowerCase().replace(/\dd$/, '');
  const run = (list: Step[], input: TensorRef, last: boolean): TensorRef => {
    let current = input;
    list.forEach((step, i) => {
      const name = last && i === list.length - 1 ? layer.name : context.freshName(`${layer.name}_${label(step)}`);
      if (step.branches) {
        const ends = step.branches.map((branch) => run(branch, current, false));
        current = emit(step, ends, name);
      } else {
        current = emit(step, [current], name);
      }
    });
    return current;
  };
  run(steps, { layer: REPLACED_INPUT, node: 0, tensor: 0, kwargs: {} }, true);
  for (const w of addWeights) if (w.quantization === undefined) delete w.quantization;
  return {
    layers,
    outputs: [{ layer: layer.name, call: 0 }],
    removeWeights: [plan.kernel.name, ...(plan.bias ? [plan.bias.name] : [])],
    addWeights,
    notes: keptEncodingNotes(layer.name, plan.kernel),
  };
}

/** Repeats `values` `times` times (a bias per kernel tap), in the stored encoding. */
function tile(values: WeightValues, times: number): WeightValues {
  const out = new (values.constructor as new (n: number) => WeightValues)(values.length * times);
  for (let t = 0; t < times; t++) out.set(values, t * values.length);
  return out;
}

const channelsLastIn = (g: TransposedGeometry, rank: number): Step[] => (g.channelsFirst ? [permute([...Array.from({ length: rank }, (_, i) => i + 2), 1])] : []);
const channelsFirstOut = (g: TransposedGeometry, rank: number): Step[] => (g.channelsFirst ? [permute([rank + 1, ...Array.from({ length: rank }, (_, i) => i + 1)])] : []);

/**
 * kernel == strides: every input voxel writes one output block of its own, so
 *   out[b, i*kd + a, j*kh + p, l*kw + q, f] = sum_c x[b, i, j, l, c] * K[a, p, q, f, c] + bias[f]
 * is a Dense from C to kd*kh*kw*F (kernel K transposed to [C, kd, kh, kw, F], bias tiled) on
 * the rows of x, followed by depth-to-space:
 *   x [B,D,H,W,C] -> Reshape [D*H*W, C] -> Dense -> Reshape [D, H*W, kd, kh*kw*F] -> Permute
 *   -> Reshape [D*kd*H, W, kh, kw*F] -> Permute -> Reshape [D*kd, H*kh, W*kw, F]
 * ('same' pads nothing when kernel == strides: max(k - s, 0) = 0, the same conv as 'valid').
 */
export function transposedDensePass(name: string, className: string, rank: 2 | 3): Pass<TransposedPlan> {
  return {
    name,
    appliesTo: (layer) => layer.className === className,
    match: (layer, context) => matchTransposed(layer, context, rank, true),
    rewrite(layer, plan, context) {
      const g = plan.geometry;
      const [F, C] = [g.filters, g.channels];
      const taps = g.kernel.reduce((a, b) => a * b, 1);
      const positions = g.spatial.reduce((a, b) => a * b, 1);
      const activation = layer.config.activation ?? 'linear';
      const inDense = perElement(activation);
      // Dense kernel [C, ...k, F] from the stored [...k, F, C]: a reordering, so encodings are kept.
      const perm = [rank + 1, ...Array.from({ length: rank }, (_, i) => i), rank];
      const dense: Step = {
        className: 'Dense',
        config: { units: taps * F, activation: inDense ? activation : 'linear', use_bias: plan.bias !== undefined },
        weights: [
          { suffix: 'kernel', like: plan.kernel, shape: [C, taps * F], values: transposeValues(plan.kernel.values, plan.kernel.shape, perm) },
          ...(plan.bias ? [{ suffix: 'bias', like: plan.bias, shape: [taps * F], values: tile(plan.bias.values, taps) }] : []),
        ],
      };
      const space: Step[] = rank === 3
        ? (() => {
          const [D, H, W] = g.spatial;
          const [kd, kh, kw] = g.kernel;
          return [reshape([D, H * W, kd, kh * kw * F]), permute([1, 3, 2, 4]), reshape([D * kd * H, W, kh, kw * F]), permute([1, 3, 2, 4]), reshape([D * kd, H * kh, W * kw, F])];
        })()
        : (() => {
          const [H, W] = g.spatial;
          const [kh, kw] = g.kernel;
          return [reshape([H, W, kh, kw * F]), permute([1, 3, 2, 4]), reshape([H * kh, W * kw, F])];
        })();
      const steps: Step[] = [
        ...channelsLastIn(g, rank), reshape([positions, C]), dense, ...space,
        ...channelsFirstOut(g, rank), ...(inDense ? [] : [{ className: 'Activation', config: { activation } }]),
      ];
      return build(layer, steps, context, plan);
    },
  };
}

/**
 * Conv3DTranspose with any kernel and strides, as Conv2DTransposes over depth plus an overlap-add
 * along depth: with a = u*sd + v (kernel depth padded with zero taps to U*sd, U = ceil(kd/sd)),
 *   full[(i + u)*sd + v] = sum_u conv2dTranspose(x[:, i], K[u*sd + v])
 * and the output is full cropped to [padD, padD + outD) (tfjs's 'same' or 'valid' window).
 * - one Conv2DTranspose with U*sd*F filters runs every kernel depth on every depth slice at once:
 *   the slices are stacked along rows with g = ceil(max(kh - sh, 0) / sh) zero rows between
 *   them, so their outputs do not overlap (layers have no batch merge);
 * - the overlap-add is U Cropping2D + ZeroPadding2D pairs (shifts along depth) and one Add;
 * - the bias is added once after the sum, on a rank-3 view (BatchNormalization with mean 0,
 *   variance + epsilon = 1 and no scale: exactly x + beta); when kd == sd every output depth
 *   gets exactly one kernel depth and the bias and activation stay in the Conv2DTranspose.
 * Worth it where conv2dTranspose beats conv3dTranspose (wasm computes the latter wrong for any
 * stride > 1); a policy decision per backend.
 */
export function transposedDepthPass(name: string): Pass<TransposedPlan> {
  return {
    name,
    appliesTo: (layer) => layer.className === 'Conv3DTranspose',
    match(layer, context) {
      const matched = matchTransposed(layer, context, 3, false);
      if ('refusal' in matched) return matched;
      const { geometry: g, kernel } = matched.plan;
      const A = Math.ceil(g.kernel[0] / g.strides[0]) * g.strides[0];
      // Zero taps cannot be stored in an arbitrary affine encoding.
      if (kernel.quantization && A !== g.kernel[0]) return { refusal: `the ${kernel.quantization.dtype}-quantized kernel would need zero taps (kernel depth ${g.kernel[0]} is not a multiple of stride ${g.strides[0]})` };
      return matched;
    },
    rewrite(layer, plan, context) {
      const g = plan.geometry;
      const [D, H, W] = g.spatial;
      const [kd, kh, kw] = g.kernel;
      const [sd, sh, sw] = g.strides;
      const [outD, outH, outW] = g.out;
      const [padD, padH, padW] = g.padBefore;
      const { filters: F, channels: C } = g;
      const U = Math.ceil(kd / sd);
      const A = U * sd;
      const activation = layer.config.activation ?? 'linear';
      const biasInConv = kd === sd;
      const actInConv = biasInConv && perElement(activation);
      const gap = Math.ceil(Math.max(kh - sh, 0) / sh);
      const Hg = H + gap;
      const extraH = Math.max(kh - sh, 0);
      const fullW = W * sw + Math.max(kw - sw, 0);

      // Conv2DTranspose kernel [kh, kw, A*F, C]: filter a*F + f is K[a, :, :, f, :] (zero for a >= kd).
      const k = plan.kernel;
      const Typed = k.values.constructor as new (n: number) => WeightValues;
      const values = new Typed(kh * kw * A * F * C);
      for (let a = 0; a < kd; a++) {
        for (let p = 0; p < kh * kw; p++) {
          const from = ((a * kh * kw + p) * F) * C;
          values.set(k.values.subarray(from, from + F * C), (p * A + a) * F * C);
        }
      }
      const conv: Step = {
        className: 'Conv2DTranspose',
        config: {
          filters: A * F, kernel_size: [kh, kw], strides: [sh, sw], padding: 'valid', data_format: 'channels_last',
          activation: actInConv ? activation : 'linear', use_bias: biasInConv && plan.bias !== undefined,
        },
        weights: [
          { suffix: 'kernel', like: k, shape: [kh, kw, A * F, C], values },
          ...(biasInConv && plan.bias ? [{ suffix: 'bias', like: plan.bias, shape: [A * F], values: tile(plan.bias.values, A) }] : []),
        ],
      };
      const rowCrop = [[0, extraH], [padW, fullW - padW - outW]];
      const sliceCrop = [[0, 0], [padH, Hg * sh - padH - outH]];
      const M = outH * outW * F;
      const steps: Step[] = [
        ...channelsLastIn(g, 3),
        ...(gap > 0 ? [reshape([D, H, W * C]), pad2d([[0, 0], [0, gap]])] : []),
        reshape([D * Hg, W, C]),
        conv,
        ...(nonZero(rowCrop) ? [crop2d(rowCrop)] : []),
        reshape([D, Hg * sh, outW * A * F]),
        ...(nonZero(sliceCrop) ? [crop2d(sliceCrop)] : []),
        ...(A > 1 ? [reshape([D, outH * outW, A, F]), permute([1, 3, 2, 4])] : []),
        reshape([D, U, sd * M]),
      ];
      if (U > 1) {
        const branches = Array.from({ length: U }, (_, u) => [crop2d([[0, 0], [u, U - 1 - u]]), pad2d([[u, U - 1 - u], [0, 0]])]);
        steps.push({ className: 'Add', config: {}, branches });
      }
      const depthCrop = [[padD, (D + U - 1) * sd - padD - outD], [0, 0]];
      steps.push(reshape([(D + U - 1) * sd, 1, M]), ...(nonZero(depthCrop) ? [crop2d(depthCrop)] : []));
      if (plan.bias && !biasInConv) {
        const b = plan.bias;
        const filled = (value: number) => Float32Array.from({ length: F }, () => value);
        steps.push(reshape([outD * outH * outW, F]), {
          className: 'BatchNormalization',
          // mean 0 and variance + epsilon = 1 (both exact in float32), no scale: x + beta exactly.
          config: { axis: -1, momentum: 0.99, epsilon: 0.5, center: true, scale: false },
          weights: [
            { suffix: 'beta', like: b, shape: [F], values: b.values },
            { suffix: 'moving_mean', like: b, shape: [F], values: filled(0), dtype: 'float32', quantization: undefined },
            { suffix: 'moving_variance', like: b, shape: [F], values: filled(0.5), dtype: 'float32', quantization: undefined },
          ],
        });
      }
      steps.push(reshape([outD, outH, outW, F]));
      steps.push(...channelsFirstOut(g, 3));
      if (activation !== 'linear' && !actInConv) steps.push({ className: 'Activation', config: { activation } });
      return build(layer, steps, context, plan);
    },
  };
}
