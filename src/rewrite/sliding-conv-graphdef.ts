/**
 * The GraphDef lowering of conv3d-to-conv2d-slices (the math: sliding-conv.ts). A graph can
 * merge depth into the batch, so every depth slice goes through ONE Conv2D with the kd kernel
 * depths side by side as kd*F filters and the conv's own H/W padding; term i of output depth d
 * is slice d*sd + i*dd - pad, filter group i: one StridedSlice per kernel depth (over the
 * output depths whose slice is real), a Pad back to every output depth, AddN; the BiasAdd that
 * followed the conv after the sum, on rank 4 (WebGPU computes a rank-5 BiasAdd wrong).
 *
 * Before:  x [N,16,48,48,16] -> Conv3D(filter [3,3,3,16,16], SAME) -> BiasAdd(b) -> y
 * After:   x -> Reshape [-1,48,48,16] -> Conv2D(filter [3,3,16,48], SAME)
 *            -> Reshape [-1,16,2304,48] -> StridedSlice x3 (depths, filter group) -> Pad x2
 *            -> AddN -> BiasAdd(b) -> Reshape [-1,16,48,48,16] named y
 *
 * GraphDef-only guards before the shared ones: data_format NDHWC (tfjs runs no other); T
 * DT_FLOAT; strides/dilations of rank 5 with batch and channel 1; padding VALID/SAME; a
 * float32 Const filter (through Identity). A quantized filter keeps its encoding (its stored
 * elements reordered).
 */
import type { MatchResult } from '../core/rule';
import { attr, readInts, readString, readType } from '../graphdef/attrs';
import { GraphNode, GraphWeight, parseTensorName, transposedWeight } from '../graphdef/ir';
import type { GraphDefMatchContext, GraphDefPass, GraphDefReplacement } from '../graphdef/pass';
import { FLOAT_T, filterOf, graphDefBuilder } from './graphdef-builder';
import { fmt } from './conv-analysis';
import { foldableBias } from './non-sliding-conv-graphdef';
import { cutOutSpatial } from './cut-out';
import { DepthTerm, STACKED_KERNEL_PERM, SlidingGeometry, depthTerms, planSliding } from './sliding-conv';

export interface SlidingGraphPlan {
  input: string;
  filter: GraphWeight;
  geometry: SlidingGeometry;
  terms: DepthTerm[];
  /** The BiasAdd folded in after the sum: its bias tensor. */
  bias?: string;
  /** Nodes the replacement takes over, in graph order; the last one's name is kept. */
  remove: GraphNode[];
  padding: 'VALID' | 'SAME';
}

const dataInputs = (node: GraphNode) => node.input.filter((i) => !i.startsWith('^'));

function matchConv(conv: GraphNode, context: GraphDefMatchContext): MatchResult<SlidingGraphPlan> {
  const refuse = (refusal: string) => ({ refusal });
  const format = readString(conv.attr, 'data_format') ?? 'NDHWC';
  if (format !== 'NDHWC') return refuse(`data_format ${format} is not NDHWC`);
  const dtype = readType(conv.attr, 'T') ?? 'DT_FLOAT';
  if (dtype !== 'DT_FLOAT') return refuse(`T ${dtype} is not DT_FLOAT`);
  const strides = readInts(conv.attr, 'strides');
  const dilations = readInts(conv.attr, 'dilations') ?? [1, 1, 1, 1, 1];
  if (!strides || strides.length !== 5 || dilations.length !== 5) return refuse(`strides ${fmt(strides ?? null)} or dilations ${fmt(dilations)} is not 5 integers`);
  if (strides[0] !== 1 || strides[4] !== 1 || dilations[0] !== 1 || dilations[4] !== 1) return refuse(`strides ${fmt(strides)} or dilations ${fmt(dilations)} step over batch or channels`);
  const padding = readString(conv.attr, 'padding') ?? '';
  if (padding !== 'VALID' && padding !== 'SAME') return refuse(`padding ${padding || '(none)'} is not VALID or SAME`);
  const data = dataInputs(conv);
  if (data.length !== 2) return refuse(`expected inputs (x, filter), got ${fmt(conv.input)}`);
  const found = filterOf(data[1], 5, context);
  if ('refusal' in found) return found;
  const { filter, shape } = found;
  const inShape = context.shapes.of(data[0]);
  if ('unknown' in inShape) return refuse(`input shape is unknown: ${inShape.unknown}`);
  if (inShape.dims.length !== 5) return refuse(`input shape ${fmt(inShape.dims)} is not rank 5`);
  const filters = shape[4];
  const geometry = planSliding({
    kernel: shape.slice(0, 3), strides: strides.slice(1, 4), dilation: dilations.slice(1, 4), padding: padding.toLowerCase(), groups: 1,
    filters, spatial: inShape.dims.slice(1, 4), channels: inShape.dims[4],
    kernelWeight: { shape, dtype: filter.spec.dtype }, bias: null, owner: conv.name,
  });
  if ('refusal' in geometry) return geometry;
  const terms = depthTerms(geometry);
  // Every output's window lies in the depth padding: the conv is its bias alone (a Const would do).
  if (terms.length === 0) return refuse('every kernel depth reads only depth padding: the output is constant');
  const add = foldableBias(conv, filters, context);
  return {
    plan: {
      input: data[0], filter, geometry, terms, padding, bias: add ? dataInputs(add)[1] : undefined,
      remove: add ? [conv, add] : [conv],
    },
  };
}

function rewriteConv(conv: GraphNode, plan: SlidingGraphPlan, context: GraphDefMatchContext): GraphDefReplacement {
  const { nodes, addWeights, node, intConst, reshape } = graphDefBuilder(conv.name, context);
  const T = FLOAT_T;

  const [ad, ah, aw] = plan.geometry.axes;
  const { channels: C, filters: F } = plan.geometry;
  const [kd, kh, kw] = [ad.kernel, ah.kernel, aw.kernel];
  const [D, Do, Ho, Wo] = [ad.size, ad.out, ah.out, aw.out];
  const slices = reshape(plan.input, 'slices', [-1, ah.size, aw.size, C]);
  const kernelName = context.freshName(`${conv.name}/conv2d_filter`);
  // Kernel depths side by side as filter groups: a reordering of the stored elements, so a
  // quantized filter keeps its encoding, exactly.
  addWeights.push(transposedWeight(plan.filter, kernelName, [kh, kw, C, kd * F], STACKED_KERNEL_PERM));
  node(kernelName, 'Const', [], { value: attr.tensor('DT_FLOAT', [kh, kw, C, kd * F]), dtype: attr.type('DT_FLOAT') });
  const conv2d = node(context.freshName(`${conv.name}/conv2d`), 'Conv2D', [slices, kernelName], {
    ...T, strides: attr.ints([1, ah.stride, aw.stride, 1]), dilations: attr.ints([1, ah.dilation, aw.dilation, 1]),
    padding: attr.str(plan.padding), data_format: attr.str('NHWC'), use_cudnn_on_gpu: attr.bool(true),
  });
  const grouped = reshape(conv2d, 'groups', [-1, D, Ho * Wo, kd * F]);
  const terms = plan.terms.map((t) => {
    const n = t.hi - t.lo;
    const sliced = node(context.freshName(`${conv.name}/term_${t.i}`), 'StridedSlice', [
      grouped,
      intConst(`term_${t.i}_begin`, [0, t.first, 0, t.i * F]),
      intConst(`term_${t.i}_end`, [0, t.first + (n - 1) * ad.stride + 1, Ho * Wo, (t.i + 1) * F]),
      intConst(`term_${t.i}_strides`, [1, ad.stride, 1, 1]),
    ], {
      ...T, Index: attr.type('DT_INT32'), begin_mask: attr.int(1), end_mask: attr.int(1),
      ellipsis_mask: attr.int(0), new_axis_mask: attr.int(0), shrink_axis_mask: attr.int(0),
    });
    if (t.lo === 0 && t.hi === Do) return sliced;
    // Output depths whose input slice is padding get zeros (rank 4: WebGL's rank-5 pad fails).
    return node(context.freshName(`${conv.name}/term_${t.i}_pad`), 'Pad', [sliced, intConst(`term_${t.i}_paddings`, [0, 0, t.lo, Do - t.hi, 0, 0, 0, 0], [4, 2])], {
      ...T, Tpaddings: attr.type('DT_INT32'),
    });
  });
  let sum = terms.length === 1 ? terms[0] : node(context.freshName(`${conv.name}/sum`), 'AddN', terms, { ...T, N: attr.int(terms.length) });
  if (plan.bias) sum = node(context.freshName(`${conv.name}/bias_add`), 'BiasAdd', [sum, plan.bias], { ...T, data_format: attr.str('NHWC') });
  reshape(sum, 'output', [-1, Do, Ho, Wo, F], plan.remove[plan.remove.length - 1].name);
  // Control dependencies of the replaced nodes must still run first: the chain's first op waits.
  const controls = plan.remove.flatMap((n) => n.input.filter((i) => i.startsWith('^')))
    .filter((i) => !plan.remove.some((n) => n.name === parseTensorName(i).node));
  nodes.find((n) => n.op !== 'Const')!.input.push(...new Set(controls));
  const notes = plan.filter.spec.quantization
    ? [`${conv.name}: the ${plan.filter.spec.quantization.dtype}-quantized filter keeps its encoding in the Conv2D filter (stored elements reordered: exact, same size)`]
    : [];
  return { remove: plan.remove.map((n) => n.name), nodes, addWeights, maybeUnused: [parseTensorName(conv.input[1]).node], notes };
}

export function graphDefSlidingConvPass(name: string): GraphDefPass<SlidingGraphPlan> {
  return {
    name,
    appliesTo: (node) => node.op === 'Conv3D',
    // Correctness only: whether it pays is the policy's call.
    match: matchConv,
    rewrite: rewriteConv,
    // [D, H, W, C] cut to what times the rewrite faithfully (cutOutSpatial): a 256^3 volume is not timed whole.
    timingInput: (_node, dims, plan) => [...cutOutSpatial(dims.slice(0, 3), plan.geometry.axes.map((a) => a.kernel), plan.geometry.axes.map((a) => a.dilation)), ...dims.slice(3)],
  };
}
