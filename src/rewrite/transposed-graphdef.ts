/**
 * The GraphDef lowering of conv3d-transpose-to-dense / conv2d-transpose-to-dense: a transposed
 * conv op (Conv3DBackpropInputV2 / Conv2DBackpropInput, inputs (input_sizes, filter, x)) whose
 * kernel equals its strides becomes one 2-D MatMul and depth-to-space, with the guards of the
 * shared analysis (transposed-conv.ts), so both formats refuse the same convs with the same text.
 *
 *   x [N,D,H,W,C] -> Reshape [-1, C] -> MatMul(W [C, kd*kh*kw*F]) -> Reshape [-1, H, W, kd, kh, kw*F]
 *     -> Transpose [0,3,1,4,2,5] -> Reshape [-1, D*kd, H*kh, W*kw, F]   (named as the conv)
 * The batch and depth merge into the rows (graphs can), so one rank-6 transpose suffices; the
 * 2-D form is Reshape [-1, W, kh, kw*F] -> Transpose [0,2,1,3] -> Reshape [-1, H*kh, W*kw, F].
 * Only the 2-D rule is registered (passes/conv3d-transpose-to-dense.ts says why); the 3-D
 * arithmetic is the same and kept beside it. A following BiasAdd reads the conv's name and stays. The filter [...k, F, C] becomes
 * W by a transpose of its stored elements: a quantized filter keeps its encoding.
 */
import type { MatchResult } from '../core/rule';
import { attr, readInts, readString, readType } from '../graphdef/attrs';
import { GraphNode, GraphWeight, parseTensorName, transposedWeight } from '../graphdef/ir';
import type { GraphDefMatchContext, GraphDefPass, GraphDefReplacement } from '../graphdef/pass';
import { FLOAT_T, filterOf, graphDefBuilder } from './graphdef-builder';
import { fmt } from './conv-analysis';
import { TransposedGeometry, planTransposed } from './transposed-conv';

export interface GraphTransposedPlan {
  geometry: TransposedGeometry;
  input: string;
  filter: GraphWeight;
}

const OP: Record<number, string> = { 2: 'Conv2DBackpropInput', 3: 'Conv3DBackpropInputV2' };

function matchGraph(conv: GraphNode, context: GraphDefMatchContext, rank: number): MatchResult<GraphTransposedPlan> {
  const refuse = (refusal: string) => ({ refusal });
  const expected = rank === 3 ? 'NDHWC' : 'NHWC';
  const format = readString(conv.attr, 'data_format') ?? expected;
  if (format !== expected) return refuse(`data_format ${format} is not ${expected}`);
  const dtype = readType(conv.attr, 'T') ?? 'DT_FLOAT';
  if (dtype !== 'DT_FLOAT') return refuse(`T ${dtype} is not DT_FLOAT`);
  const strides = readInts(conv.attr, 'strides') ?? [];
  const dilations = readInts(conv.attr, 'dilations') ?? new Array(rank + 2).fill(1);
  if (strides.length !== rank + 2 || strides[0] !== 1 || strides[rank + 1] !== 1) return refuse(`strides ${fmt(strides)} are not [1, ${rank} strides, 1]`);
  if (dilations.length !== rank + 2) return refuse(`dilations ${fmt(dilations)} are not ${rank + 2} integers`);
  const data = conv.input.filter((i) => !i.startsWith('^'));
  if (data.length !== 3) return refuse(`expected inputs (input_sizes, filter, x), got ${fmt(conv.input)}`);
  const found = filterOf(data[1], rank + 2, context);
  if ('refusal' in found) return found;
  const { filter, shape } = found;
  const inShape = context.shapes.of(data[2]);
  const geometry = planTransposed({
    kernel: shape.slice(0, rank), strides: strides.slice(1, rank + 1), dilation: dilations.slice(1, rank + 1),
    padding: (readString(conv.attr, 'padding') ?? '').toLowerCase() || '(none)', outputPadding: null, channelsFirst: false,
    filters: shape[rank], calls: ['unknown' in inShape ? { unknown: inShape.unknown } : { shape: inShape.dims }],
    kernelWeight: { shape, dtype: filter.spec.dtype }, bias: null, owner: conv.name,
  }, true);
  if ('refusal' in geometry) return geometry;
  // The op's output size is input_sizes, not derived: it must be the Dense form's (no extra zero rows).
  const sizes = context.shapes.constInts(data[0]);
  if (!sizes) return refuse(`input_sizes "${data[0]}" is not a Const (the output size must be known)`);
  const want = [...geometry.out, geometry.filters];
  if (fmt(sizes.slice(1)) !== fmt(want)) return refuse(`input_sizes ${fmt(sizes)} is not [N, ${want.join(', ')}]`);
  return { plan: { geometry, input: data[2], filter } };
}

function rewriteGraph(conv: GraphNode, plan: GraphTransposedPlan, context: GraphDefMatchContext, rank: number): GraphDefReplacement {
  const { nodes, addWeights, node, intConst, reshape } = graphDefBuilder(conv.name, context);
  const T = FLOAT_T;
  const g = plan.geometry;
  const F = g.filters;
  const taps = g.kernel.reduce((a, b) => a * b, 1);
  const rows = reshape(plan.input, 'rows', [-1, g.channels]);
  const kernelName = context.freshName(`${conv.name}/matmul_kernel`);
  addWeights.push(transposedWeight(plan.filter, kernelName, [g.channels, taps * F], [rank + 1, ...Array.from({ length: rank }, (_, i) => i), rank]));
  node(kernelName, 'Const', [], { value: attr.tensor('DT_FLOAT', [g.channels, taps * F]), dtype: attr.type('DT_FLOAT') });
  const matmul = node(context.freshName(`${conv.name}/matmul`), 'MatMul', [rows, kernelName], { ...T, transpose_a: attr.bool(false), transpose_b: attr.bool(false) });
  const [split, perm] = rank === 3
    ? [[-1, g.spatial[1], g.spatial[2], g.kernel[0], g.kernel[1], g.kernel[2] * F], [0, 3, 1, 4, 2, 5]]
    : [[-1, g.spatial[1], g.kernel[0], g.kernel[1] * F], [0, 2, 1, 3]];
  const blocks = reshape(matmul, 'blocks', split);
  const moved = node(context.freshName(`${conv.name}/depth_to_space`), 'Transpose', [blocks, intConst('perm', perm)], { ...T, Tperm: attr.type('DT_INT32') });
  reshape(moved, 'output', [-1, ...g.out, F], conv.name);
  // Control dependencies of the op must still run first.
  nodes.find((n) => n.op !== 'Const')!.input.push(...conv.input.filter((i) => i.startsWith('^')));
  return { remove: [conv.name], nodes, addWeights, maybeUnused: [parseTensorName(conv.input[1]).node, parseTensorName(conv.input[0]).node] };
}

/** The GraphDef lowering of the transposed Dense rule for one spatial rank. */
export function graphTransposedDensePass(name: string, rank: 2 | 3): GraphDefPass<GraphTransposedPlan> {
  return {
    name,
    appliesTo: (node) => node.op === OP[rank],
    match: (node, context) => matchGraph(node, context, rank),
    rewrite: (node, plan, context) => rewriteGraph(node, plan, context, rank),
  };
}
