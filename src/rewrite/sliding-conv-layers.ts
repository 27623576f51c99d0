/**
 * The layers lowering of conv3d-to-conv2d-slices (the math: sliding-conv.ts). Keras has no
 * layer that merges depth into the batch, so depth is folded into rows: each depth slice
 * becomes a block of rows of one tall image, the blocks separated by the conv's own H padding
 * (zero rows), and ONE Conv2D with the kd kernel depths side by side as kd*F filters runs over
 * all blocks at once (valid in H, so no window crosses a block). Output block j, filter group i
 * is then conv2d(x[j], K[i]); term i of output depth d is block d*sd + i*dd, group i: a
 * Cropping2D per term picks it, an Add sums them. Stock layers only, every tensor rank <= 5,
 * padding on rank 4 (WebGL cannot compile a rank-5 pad), the bias inside the Conv2D (rank 4:
 * WebGPU's rank-5 BiasAdd is wrong), carried by group 0 only so each output gets it once.
 *
 * Measured on wasm (docs/benchmarks.md): one XNNPACK Conv2D over the tall image; the
 * alternative, TimeDistributed(Conv2D), runs an rnn loop, one depth slice per step.
 *
 * Before:  x [B,8,8,8,4] -> Conv3D(3x3x3 'same', dilation 2, 5 filters, relu) -> y [B,8,8,8,5]
 * After:   x -> Reshape [8,8,32] -> ZeroPadding2D [[2,2],[2,2]] -> Reshape [144,8,4]
 *            -> ZeroPadding2D [[2,0],[2,2]] -> Conv2D(3x3, dilation 2, 15 filters, valid)
 *            -> Reshape [1728,3,5] -> Cropping2D x3 (block shift 2i, group i) -> Add
 *            -> Reshape [8,12,40] -> Cropping2D (separator rows) -> Reshape [8,8,8,5]
 *            -> Activation relu, named y
 */
import type { MatchContext, MatchResult, Pass, Replacement } from '../pass';
import { REPLACED_INPUT } from '../pass';
import { isUnknown } from '../layers/shapes';
import type { Json, JsonObject, LayerNode, TensorRef, Weight } from '../layers/types';
import { fmt } from './conv-analysis';
import { DepthTerm, SlidingGeometry, cutOutSpatial, depthTerms, planSliding } from './sliding-conv';
import { findWeight, renameWeight } from './weights';

export interface SlidingLayersPlan {
  /** One geometry per distinct input shape, with the calls that see it. */
  groups: { calls: number[]; geometry: SlidingGeometry }[];
  channelsFirst: boolean;
  kernel: Weight;
  bias?: Weight;
}

function triple(value: Json | undefined, fallback: number): number[] | undefined {
  if (value === undefined || value === null) return [fallback, fallback, fallback];
  if (typeof value === 'number') return [value, value, value];
  if (Array.isArray(value) && value.length === 3 && value.every((v) => typeof v === 'number')) return value as number[];
  return undefined;
}

export function matchSlidingLayer(layer: LayerNode, context: MatchContext): MatchResult<SlidingLayersPlan> {
  const refuse = (refusal: string) => ({ refusal });
  const c = layer.config;
  const kernel = triple(c.kernel_size, NaN);
  const strides = triple(c.strides, 1);
  const dilation = triple(c.dilation_rate, 1);
  if (!kernel || !strides || !dilation) return refuse(`kernel_size ${fmt(c.kernel_size)}, strides ${fmt(c.strides)} or dilation_rate ${fmt(c.dilation_rate)} is not 3 integers`);
  const dataFormat = c.data_format ?? 'channels_last';
  if (dataFormat !== 'channels_last' && dataFormat !== 'channels_first') return refuse(`data_format '${dataFormat}' is not supported`);
  const channelsFirst = dataFormat === 'channels_first';
  // Constraints project weights during training along the Conv3D kernel's axes.
  if (c.kernel_constraint != null || c.bias_constraint != null) return refuse('kernel_constraint/bias_constraint set (no Conv2D equivalent of their axes)');
  // It would see the Conv2D's partial sums, not the conv's output.
  if (c.activity_regularizer != null) return refuse('activity_regularizer set (it would see partial sums)');
  if (typeof c.filters !== 'number') return refuse(`filters ${fmt(c.filters)} is not a number`);
  const filters = c.filters;
  const useBias = c.use_bias !== false;
  const kernelWeight = findWeight(context.ir.weights, layer.name, 'kernel');
  const biasWeight = useBias ? findWeight(context.ir.weights, layer.name, 'bias') : undefined;

  const perCall = context.shapes.callInputs.get(layer.name) ?? [];
  if (perCall.length === 0) return refuse('the layer is never called, so its input shape is unknown');
  const byShape = new Map<string, { calls: number[]; geometry: SlidingGeometry }>();
  for (const [i, shapes] of perCall.entries()) {
    const where = perCall.length > 1 ? ` in call ${i}` : '';
    if (isUnknown(shapes)) return refuse(`input shape${where} is unknown: ${shapes.unknown}`);
    if (shapes.length !== 1) return refuse(`${shapes.length} inputs${where}, a conv takes one`);
    const shape = shapes[0];
    if (shape.length !== 5) return refuse(`input shape ${fmt(shape)}${where} is not rank 5`);
    const dims = shape.slice(1);
    const geometry = planSliding({
      kernel, strides, dilation, padding: typeof c.padding === 'string' ? c.padding : 'valid', groups: typeof c.groups === 'number' ? c.groups : 1,
      filters, spatial: channelsFirst ? dims.slice(1) : dims.slice(0, 3), channels: channelsFirst ? dims[0] : dims[3],
      kernelWeight, bias: useBias ? biasWeight ?? 'missing' : null, owner: layer.name,
    });
    if ('refusal' in geometry) return refuse(geometry.refusal + where);
    const key = fmt(dims);
    const entry = byShape.get(key) ?? { calls: [], geometry };
    entry.calls.push(i);
    byShape.set(key, entry);
  }
  const groups = [...byShape.values()];
  if (groups.some((g) => g.geometry.channels !== groups[0].geometry.channels)) return refuse('calls disagree on the channel count');
  // In a Sequential, the Add of the depth terms makes the graph functional (src/layers/functional.ts).
  return { plan: { groups, channelsFirst, kernel: kernelWeight!, bias: biasWeight } };
}

/** One layer of the chain: class and config (the name is added by the caller). */
type Step = [className: string, config: JsonObject];

/** The layers around one Conv2D: kernel depth i, on the input slices of its output depths. */
export interface TermChain {
  i: number;
  /** This term's Conv2D adds the bias: its range covers every output depth. */
  bias: boolean;
  before: Step[];
  after: Step[];
}

export interface SlidingChain {
  base: Step[];
  terms: TermChain[];
  post: Step[];
}

/**
 * The kernel depth whose Conv2D carries the bias, its range extended (with zero slices) to
 * every output depth: the widest term; without a bias, one only when every term reads padding
 * alone (the output is then zeros, still of the right shape).
 */
export function anchorDepth(g: SlidingGeometry, withBias: boolean): number | undefined {
  const terms = depthTerms(g);
  if (!withBias && terms.length) return undefined;
  return terms.reduce<DepthTerm | undefined>((best, t) => (!best || t.hi - t.lo > best.hi - best.lo ? t : best), undefined)?.i ?? 0;
}

/** The chain for one input geometry (see the module comment); `anchor` from anchorDepth. */
export function slidingChain(g: SlidingGeometry, channelsFirst: boolean, anchor: number | undefined, withBias: boolean): SlidingChain {
  const [ad, ah, aw] = g.axes;
  const { channels: C, filters: F } = g;
  const [D, H, W] = [ad.size, ah.size, aw.size];
  const [sd, Do, Ho, Wo] = [ad.stride, ad.out, ah.out, aw.out];
  // Rows per block: the H padding doubles as the zero separator; rounded up to the H stride so
  // every block starts on an output row (Hb output rows per block, the first Ho of them real).
  let bottom = ah.pad[1];
  bottom += (ah.stride - ((H + ah.pad[0] + bottom) % ah.stride)) % ah.stride;
  const rows = H + ah.pad[0] + bottom;
  const Hb = rows / ah.stride;
  // A valid conv over n*rows rows gives n*Hb output rows only with these extra zero rows.
  const extraRows = Math.max(0, ah.extent - ah.stride);

  const base: Step[] = [];
  if (channelsFirst) base.push(['Permute', { dims: [2, 3, 4, 1] }]);
  base.push(['Reshape', { target_shape: [D, H, W * C] }]);
  if (ah.pad[0] || bottom) base.push(['ZeroPadding2D', { padding: [[0, 0], [ah.pad[0], bottom]], data_format: 'channels_last' }]);

  const chosen: (DepthTerm & { bias: boolean })[] = depthTerms(g).filter((t) => t.i !== anchor).map((t) => ({ ...t, bias: false }));
  if (anchor !== undefined) chosen.push({ i: anchor, lo: 0, hi: Do, first: anchor * ad.dilation - ad.pad[0], bias: withBias });
  chosen.sort((a, b) => a.i - b.i);
  const terms = chosen.map((t): TermChain => {
    const n = t.hi - t.lo;
    const end = t.first + (sd === 1 ? n : n * sd);
    const before: Step[] = [];
    const crop = [[Math.max(0, t.first), Math.max(0, D - end)], [0, 0]];
    const zeros = [[Math.max(0, -t.first), Math.max(0, end - D)], [0, 0]];
    if (crop[0].some((v) => v)) before.push(['Cropping2D', { cropping: crop, data_format: 'channels_last' }]);
    if (zeros[0].some((v) => v)) before.push(['ZeroPadding2D', { padding: zeros, data_format: 'channels_last' }]);
    if (sd > 1) {
      // Every sd-th slice: [n*sd, ...] -> [n, sd, ...], keep index 0 of the sd axis.
      before.push(['Reshape', { target_shape: [n, sd, rows * W * C] }]);
      before.push(['Cropping2D', { cropping: [[0, 0], [0, sd - 1]], data_format: 'channels_last' }]);
    }
    before.push(['Reshape', { target_shape: [n * rows, W, C] }]);
    if (extraRows || aw.pad[0] || aw.pad[1]) before.push(['ZeroPadding2D', { padding: [[0, extraRows], [aw.pad[0], aw.pad[1]]], data_format: 'channels_last' }]);
    // No ZeroPadding1D in tfjs: the depth zeros are padded on a rank-4 view.
    const after: Step[] = [['Reshape', { target_shape: [n, Hb * Wo, F] }]];
    if (t.lo || Do - t.hi) after.push(['ZeroPadding2D', { padding: [[t.lo, Do - t.hi], [0, 0]], data_format: 'channels_last' }]);
    return { i: t.i, bias: t.bias, before, after };
  });
  const post: Step[] = [['Reshape', { target_shape: [Do, Hb, Wo * F] }]];
  if (Hb > Ho) post.push(['Cropping2D', { cropping: [[0, 0], [0, Hb - Ho]], data_format: 'channels_last' }]);
  post.push(['Reshape', { target_shape: [Do, Ho, Wo, F] }]);
  if (channelsFirst) post.push(['Permute', { dims: [4, 1, 2, 3] }]);
  return { base, terms, post };
}

export function rewriteSlidingLayer(layer: LayerNode, plan: SlidingLayersPlan, context: MatchContext): Replacement {
  const layers: LayerNode[] = [];
  const callCount = plan.groups.reduce((n, group) => n + group.calls.length, 0);
  const outputs: Replacement['outputs'] = new Array(callCount);
  const passThrough = pick(layer.config, ['trainable', 'dtype']);
  const ref = (name: string, node: number): TensorRef => ({ layer: name, node, tensor: 0, kwargs: {} });
  const geometry = plan.groups[0].geometry;
  const [kh, kw] = geometry.axes.slice(1).map((a) => a.kernel);
  const { channels: C, filters: F } = geometry;
  const activation = typeof layer.config.activation === 'string' ? layer.config.activation : 'linear';
  const add = (className: string, config: JsonObject, inputs: TensorRef[][], name?: string): TensorRef[][] => {
    const layerName = name ?? context.freshName(`${layer.name}_${className.toLowerCase()}`);
    layers.push({ name: layerName, className, config: { name: layerName, ...passThrough, ...config }, calls: inputs.map((i) => ({ inputs: i })), extra: {} });
    return inputs.map((_, i) => [ref(layerName, i)]);
  };
  const steps = (list: Step[], inputs: TensorRef[][], lastName?: string) =>
    list.reduce((x, [cls, config], s) => add(cls, config, x, s === list.length - 1 ? lastName : undefined), inputs);

  // Every group's views, then one Conv2D per kernel depth (a call per term that uses it, shared
  // by every call of the layer), then every group's sums: the layer list stays topological.
  // One anchor for every call: the Conv2Ds (and so the bias) are shared across calls.
  const anchor = anchorDepth(geometry, plan.bias !== undefined || plan.groups.some((group) => depthTerms(group.geometry).length === 0));
  const chains = plan.groups.map((group) => ({ group, chain: slidingChain(group.geometry, plan.channelsFirst, anchor, plan.bias !== undefined) }));
  const convs = new Map<number, LayerNode>();
  const convInputs = chains.map(({ group, chain }) => {
    const base = steps(chain.base, group.calls.map((call) => [ref(REPLACED_INPUT, call)]));
    return chain.terms.map((term) => {
      const ends = steps(term.before, base);
      let conv = convs.get(term.i);
      if (!conv) {
        const name = context.freshName(`${layer.name}_conv2d_${term.i}`);
        conv = {
          name, className: 'Conv2D', calls: [], extra: {},
          config: {
            name, ...passThrough, filters: F, kernel_size: [kh, kw],
            strides: geometry.axes.slice(1).map((a) => a.stride), dilation_rate: geometry.axes.slice(1).map((a) => a.dilation),
            padding: 'valid', data_format: 'channels_last', activation: 'linear', use_bias: term.bias,
            ...pick(layer.config, ['kernel_initializer', 'kernel_regularizer', ...(term.bias ? ['bias_initializer', 'bias_regularizer'] : [])]),
          },
        };
        convs.set(term.i, conv);
      }
      const node = conv;
      return ends.map((inputs) => {
        node.calls.push({ inputs });
        return [ref(node.name, node.calls.length - 1)];
      });
    });
  });
  layers.push(...[...convs.values()].sort((a, b) => a.name.localeCompare(b.name)));
  chains.forEach(({ group, chain }, g) => {
    const sole = plan.groups.length === 1;
    const terms = chain.terms.map((term, t) => steps(term.after, convInputs[g][t]));
    const post = [...chain.post, ...(activation !== 'linear' ? [['Activation', { activation }] as Step] : [])];
    const summed = terms.length === 1 ? terms[0] : add('Add', {}, group.calls.map((_, c) => terms.map((term) => term[c][0])));
    const end = steps(post, summed, sole ? layer.name : undefined);
    group.calls.forEach((call, c) => (outputs[call] = { layer: end[c][0].layer, call: c }));
  });

  // Kernel depth i is a contiguous run of the stored elements: a quantized kernel keeps its
  // encoding, exactly. Depths no term uses (they read only padding) are dropped.
  const slice = kh * kw * C * F;
  const addWeights: Weight[] = [...convs.entries()].sort((a, b) => a[0] - b[0]).map(([i, conv]) => ({
    ...plan.kernel,
    name: renameWeight(plan.kernel, layer.name, conv.name),
    shape: [kh, kw, C, F],
    values: plan.kernel.values.slice(i * slice, (i + 1) * slice),
  }));
  const biasConv = [...convs.values()].find((conv) => conv.config.use_bias === true);
  if (plan.bias && !biasConv) throw new Error(`internal: no Conv2D carries the bias of ${layer.name}`);
  if (plan.bias) addWeights.push({ ...plan.bias, name: renameWeight(plan.bias, layer.name, biasConv!.name) });
  const notes = plan.kernel.quantization
    ? [`${layer.name}: the ${plan.kernel.quantization.dtype}-quantized kernel keeps its encoding in the Conv2D kernels (stored elements split by kernel depth: exact, same size)`]
    : [];
  return { layers, outputs, removeWeights: [plan.kernel.name, ...(plan.bias ? [plan.bias.name] : [])], addWeights, notes };
}

function pick(config: JsonObject, keys: string[]): JsonObject {
  const out: JsonObject = {};
  for (const key of keys) if (key in config) out[key] = config[key];
  return out;
}

/** A sliding Conv3D's input cut down to what times it faithfully (cutOutSpatial). */
function timingInputOf(layer: LayerNode, dims: number[]): number[] {
  const c = layer.config;
  const triple = (v: unknown) => (typeof v === 'number' ? [v, v, v] : Array.isArray(v) ? (v as number[]) : [1, 1, 1]);
  const first = c.data_format === 'channels_first';
  const spatial = first ? dims.slice(1) : dims.slice(0, 3);
  const cut = cutOutSpatial(spatial, triple(c.kernel_size), triple(c.dilation_rate));
  return first ? [dims[0], ...cut] : [...cut, dims[3]];
}

export function slidingLayersPass(name: string): Pass<SlidingLayersPlan> {
  return {
    name,
    appliesTo: (layer) => layer.className === 'Conv3D',
    match: matchSlidingLayer,
    rewrite: rewriteSlidingLayer,
    timingInput: timingInputOf,
  };
}
