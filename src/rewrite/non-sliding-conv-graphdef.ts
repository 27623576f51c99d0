/**
 * The GraphDef lowering of the conv-to-dense rules: a conv op that does not slide becomes views
 * + one 2-D MatMul (or _FusedMatMul carrying the conv's bias and activation). The guards and the
 * layout are the shared analysis of conv-analysis.ts, so a graph model and a layers model with
 * the same conv get the same rewrite or the same refusal.
 *
 * Identity (rank 3 shown): for x [N, D, H, W, C] (NDHWC) and a Const filter K [kd, kh, kw, C, F]
 * with strides [1, kd, kh, kw, 1], no padding applied and dilations 1, every output row is one
 * non-overlapping patch of x times K reshaped [kd*kh*kw*C, F]; remainders that do not fill a
 * patch are ignored (VALID). So the conv is: crop, reorder into one row per patch, Reshape
 * [-1, P], MatMul with the (row-reordered) filter, Reshape back to [-1, d, h, w, F].
 * The MatMul stays 2-D and untransposed: the only form tfjs-wasm runs on XNNPACK's GEMM.
 *
 * Before:  x [N,9,34,33,3] -> Conv3D(filter [2,8,8,3,16], strides [1,2,8,8,1]) -> BiasAdd(b) -> y
 * After:   x -> Reshape [-1,1,9,3366] -> Slice to [-1,1,8,3168]     (crop D, H: rank-4 slices are
 *            -> Reshape [-1,256,99,1] -> Slice to [-1,256,96,1]      row copies on wasm)
 *            -> Reshape [-1,4,2,4,8,96] -> Transpose [0,1,3,5,2,4]   (rows ordered kw,C,kd,kh)
 *            -> Reshape [-1,384] -> _FusedMatMul(W' [384,16], b) -> Reshape [-1,4,4,4,16] named y
 * ViT patch embed:  x [N,224,224,3] -> _FusedConv2D(16x16/16, BiasAdd) -> y [N,14,14,768] becomes
 *            x -> Reshape [-1,14,16,14,48] -> Transpose -> Reshape [-1,768] -> _FusedMatMul -> Reshape.
 * Pointwise:  _FusedConv2D(1x1/1, BiasAdd+Relu) on [N,H,W,C] is Reshape [-1,C] -> _FusedMatMul
 *            (BiasAdd, Relu) -> Reshape [-1,H,W,F].
 *
 * Ops: rank 3 `Conv3D`; rank 2 `Conv2D` and `_FusedConv2D`; rank 1 the converter's Conv1D form,
 * ExpandDims(x, -3) -> Conv2D/_FusedConv2D (filter [1,k,C,F]) -> Squeeze([-3]), replaced whole.
 * GraphDef-only guards, before the shared ones: data_format NHWC/NDHWC (tfjs runs no other); T
 * DT_FLOAT; strides/dilations of the op's rank with batch and channel strides 1; padding
 * VALID/SAME; a float32 Const filter (through Identity) of the op's rank; fused_ops BiasAdd with
 * an activation tfjs's _FusedMatMul runs (relu, relu6, elu, leakyrelu, sigmoid, prelu).
 * A Conv2D/Conv3D whose only reader is a BiasAdd of a float32 Const [F] gets it folded in too.
 */
import type { MatchResult } from '../core/rule';
import { attr, readInts, readString, readStrings, readType } from '../graphdef/attrs';
import { GraphNode, GraphWeight, parseTensorName, transposedWeight } from '../graphdef/ir';
import type { GraphDefMatchContext, GraphDefPass, GraphDefReplacement } from '../graphdef/pass';
import { FLOAT_T, constBehind, filterOf, graphDefBuilder } from './graphdef-builder';
import { CallInput, ConvAnalysis, checkWindow, fmt, kernelAxes, planConv } from './conv-analysis';
import { patchCutOut } from './cut-out';

interface Fused {
  /** fused_ops as written (BiasAdd first), for the _FusedMatMul. */
  ops: string[];
  /** The extra inputs: bias, and the PReLU alpha. */
  args: string[];
  leakyreluAlpha?: GraphNode['attr'][string];
}

export interface GraphDefConvPlan extends ConvAnalysis {
  /** The tensor the patches are cut from (for rank 1: the input of the ExpandDims). */
  input: string;
  filter: GraphWeight;
  /** Input sizes without batch and channels. */
  spatial: number[];
  fused?: Fused;
  /** Nodes the replacement takes over, in graph order; the last one's name is kept. */
  remove: GraphNode[];
}

/** Activations tfjs's fused kernels apply (fused_util.ts); the converter lowercases them. */
const FUSABLE = new Set(['relu', 'relu6', 'elu', 'leakyrelu', 'sigmoid', 'prelu']);

const dataInputs = (node: GraphNode) => node.input.filter((i) => !i.startsWith('^'));

/** The only reader of `node`, when there is exactly one and the model does not return `node`. */
function soleReader(node: GraphNode, context: GraphDefMatchContext): GraphNode | undefined {
  const readers = context.consumers(node.name);
  return readers.length === 1 && !context.isOutput(node.name) ? readers[0] : undefined;
}

/** ExpandDims -> conv -> Squeeze as TF writes conv1d (axis -3, or 1 on a rank-3 input). */
export function conv1dForm(conv: GraphNode, context: GraphDefMatchContext): { expand: GraphNode; squeeze: GraphNode } | undefined {
  if (conv.op !== 'Conv2D' && conv.op !== '_FusedConv2D') return undefined;
  const expand = context.node(parseTensorName(conv.input[0] ?? '').node);
  if (expand?.op !== 'ExpandDims') return undefined;
  const axis = context.shapes.constInts(expand.input[1] ?? '');
  if (!axis || axis.length !== 1 || (axis[0] !== -3 && axis[0] !== 1)) return undefined;
  const squeeze = soleReader(conv, context);
  const dims = squeeze && readInts(squeeze.attr, 'squeeze_dims');
  if (squeeze?.op !== 'Squeeze' || !dims || dims.length !== 1 || (dims[0] !== -3 && dims[0] !== 1)) return undefined;
  return { expand, squeeze };
}

function ints(conv: GraphNode, name: string, length: number, fallback?: number[]): number[] | string {
  const values = readInts(conv.attr, name) ?? fallback;
  return values && values.length === length ? values : `${name} ${fmt(values ?? null)} is not ${length} integers`;
}

function fusedOf(conv: GraphNode, context: GraphDefMatchContext, filters: number): Fused | string | undefined {
  if (conv.op !== '_FusedConv2D') return undefined;
  const ops = readStrings(conv.attr, 'fused_ops') ?? [];
  const args = dataInputs(conv).slice(2);
  if (ops.length === 0) return undefined;
  const activation = ops[1]?.toLowerCase();
  // tfjs's fused kernels know BiasAdd + one activation; anything else would not run there either.
  if (ops[0] !== 'BiasAdd' || ops.length > 2 || (activation !== undefined && !FUSABLE.has(activation))) {
    return `fused_ops ${fmt(ops)} is not BiasAdd with one of ${[...FUSABLE].join(', ')}`;
  }
  if (args.length !== (activation === 'prelu' ? 2 : 1)) return `fused_ops ${fmt(ops)} with ${args.length} extra input(s)`;
  if (activation === 'prelu') {
    // The MatMul output is [rows, F]: alpha must broadcast along F alone.
    const alpha = context.shapes.of(args[1]);
    if ('unknown' in alpha || alpha.dims[alpha.dims.length - 1] !== filters || alpha.dims.slice(0, -1).some((d) => d !== 1)) {
      return `PReLU alpha ${'unknown' in alpha ? '(unknown shape)' : fmt(alpha.dims)} is not per filter`;
    }
  }
  return { ops, args, leakyreluAlpha: conv.attr.leakyrelu_alpha };
}

/** The following BiasAdd to fold into a plain conv: its only reader, adding a float32 Const [F]. */
export function foldableBias(last: GraphNode, filters: number, context: GraphDefMatchContext): GraphNode | undefined {
  const add = soleReader(last, context);
  if (!add || add.op !== 'BiasAdd') return undefined;
  const data = dataInputs(add);
  if (data.length !== 2 || parseTensorName(data[0]).node !== last.name) return undefined;
  if ((readString(add.attr, 'data_format') ?? 'NHWC') !== 'NHWC') return undefined;
  const bias = constBehind(data[1], context);
  const weight = bias && context.weight(bias.name);
  if (!weight || weight.spec.dtype !== 'float32' || fmt(weight.spec.shape) !== fmt([filters])) return undefined;
  return add;
}

function matchConv(conv: GraphNode, context: GraphDefMatchContext, rank: number): MatchResult<GraphDefConvPlan> {
  const refuse = (refusal: string) => ({ refusal });
  const opRank = rank === 1 ? 2 : rank;
  const form = rank === 1 ? conv1dForm(conv, context) : undefined;
  const expected = opRank === 3 ? 'NDHWC' : 'NHWC';
  const format = readString(conv.attr, 'data_format') ?? expected;
  // NCHW would need a transpose in and out; TF-CPU and tfjs's converter never produce it.
  if (format !== expected) return refuse(`data_format ${format} is not ${expected}`);
  const dtype = readType(conv.attr, 'T') ?? 'DT_FLOAT';
  if (dtype !== 'DT_FLOAT') return refuse(`T ${dtype} is not DT_FLOAT`);
  const strides = ints(conv, 'strides', opRank + 2);
  const dilations = ints(conv, 'dilations', opRank + 2, new Array(opRank + 2).fill(1));
  if (typeof strides === 'string') return refuse(strides);
  if (typeof dilations === 'string') return refuse(dilations);
  if (strides[0] !== 1 || strides[opRank + 1] !== 1) return refuse(`strides ${fmt(strides)} step over batch or channels`);
  if (dilations[0] !== 1 || dilations[opRank + 1] !== 1) return refuse(`dilations ${fmt(dilations)} step over batch or channels`);
  const padding = (readString(conv.attr, 'padding') ?? '').toLowerCase() || '(none)';
  const data = dataInputs(conv);
  if (data.length < 2) return refuse(`expected inputs (x, filter), got ${fmt(conv.input)}`);

  const found = filterOf(data[1], opRank + 2, context);
  if ('refusal' in found) return found;
  const { filter, shape } = found;
  // In the Conv1D form the conv runs over [N, 1, L, C] with a [1, k, C, F] filter: the H axis is a
  // dummy (size 1, kernel 1), so its stride and dilation change nothing.
  if (form && shape[0] !== 1) return refuse(`filter shape ${fmt(shape)} of the Conv1D form has kernel height ${shape[0]}`);
  const skip = form ? 2 : 1;
  const kernel = shape.slice(skip - 1, opRank);
  const filters = shape[opRank + 1];
  const window = checkWindow({
    kernel, strides: strides.slice(skip, opRank + 1), dilation: dilations.slice(skip, opRank + 1), padding, groups: 1,
  });
  if (window) return refuse(window);

  const fused = fusedOf(conv, context, filters);
  if (typeof fused === 'string') return refuse(fused);
  const input = form ? dataInputs(form.expand)[0] : data[0];
  const inShape = context.shapes.of(input);
  const call: CallInput = 'unknown' in inShape ? { unknown: inShape.unknown } : { shape: inShape.dims };
  const biasShape = fused && context.shapes.of(fused.args[0]);
  const analysis = planConv({
    kernel, strides: kernel, dilation: kernel.map(() => 1), padding, groups: 1, channelsFirst: false, filters,
    calls: [call],
    kernelWeight: { shape: [...kernel, shape[opRank], filters], dtype: filter.spec.dtype },
    bias: biasShape === undefined ? null : 'unknown' in biasShape ? 'missing' : { shape: biasShape.dims as number[] },
    owner: conv.name,
  });
  if ('refusal' in analysis) return analysis;
  // Channels last, the steps after the Dense only reshape: the final Reshape to [-1, counts, F] does that.
  if (analysis.groups[0].plan.after.some((step) => step.kind !== 'reshape')) return refuse('the layout plan needs a transpose after the MatMul');

  const remove = [...(form && soleReader(form.expand, context) === conv ? [form.expand] : []), conv, ...(form ? [form.squeeze] : [])];
  const add = fused ? undefined : foldableBias(remove[remove.length - 1], filters, context);
  if (add) remove.push(add);
  const spatial = (inShape as { dims: number[] }).dims.slice(1, rank + 1);
  return {
    plan: {
      ...analysis, input, filter, spatial, remove,
      fused: fused ?? (add ? { ops: ['BiasAdd'], args: [dataInputs(add)[1]] } : undefined),
    },
  };
}

function rewriteConv(conv: GraphNode, plan: GraphDefConvPlan, context: GraphDefMatchContext): GraphDefReplacement {
  const { nodes, addWeights, node, intConst, reshape } = graphDefBuilder(conv.name, context);
  const T = FLOAT_T;

  const rank = plan.geometry.kernel.length;
  const { channels } = plan.geometry;
  const rowLength = plan.geometry.kernel.reduce((a, b) => a * b, channels);
  // The planner's last step reshapes to [..counts, P]; the MatMul wants [-1, P] instead.
  const planned = plan.groups[0].plan.before;
  const steps = planned[planned.length - 1]?.kind === 'reshape' ? planned.slice(0, -1) : planned;
  let x = plan.input;
  let current = [...plan.spatial, channels];
  steps.forEach((step, i) => {
    const label = `patches_${i}`;
    if (step.kind === 'reshape') {
      x = reshape(x, `${label}_reshape`, [-1, ...step.targetShape]);
      current = step.targetShape;
    } else if (step.kind === 'permute') {
      const name = context.freshName(`${conv.name}/${label}_transpose`);
      x = node(name, 'Transpose', [x, intConst(`${label}_perm`, [0, ...step.dims])], { ...T, Tperm: attr.type('DT_INT32') });
      current = step.dims.map((d) => current[d - 1]);
    } else {
      // Cropping2D channels_first on [outer, R, C'] keeps the leading rows and columns.
      const [[, rows], [, cols]] = step.cropping;
      const size = [-1, current[0], current[1] - rows, current[2] - cols];
      const name = context.freshName(`${conv.name}/${label}_crop`);
      x = node(name, 'Slice', [x, intConst(`${label}_begin`, [0, 0, 0, 0]), intConst(`${label}_size`, size)], { ...T, Index: attr.type('DT_INT32') });
      current = size.slice(1);
    }
  });
  x = reshape(x, 'rows', [-1, rowLength]);

  // Filter rows follow the plan's row order; with the kernel's own order the bytes are unchanged.
  // (The Conv1D form's filter [1, k, C, F] is the rank-1 kernel [k, C, F] with a leading 1.)
  const kernelShape = [...plan.geometry.kernel, channels, plan.filters];
  const kernelName = context.freshName(`${conv.name}/matmul_kernel`);
  // Reordered in its stored encoding: a quantized filter stays quantized, exactly.
  addWeights.push(transposedWeight(plan.filter, kernelName, [rowLength, plan.filters], [...kernelAxes(plan.order, rank), rank + 1], kernelShape));
  node(kernelName, 'Const', [], { value: attr.tensor('DT_FLOAT', [rowLength, plan.filters]), dtype: attr.type('DT_FLOAT') });
  const noTranspose = { transpose_a: attr.bool(false), transpose_b: attr.bool(false) };
  const matmul = plan.fused
    ? node(context.freshName(`${conv.name}/matmul_fused`), '_FusedMatMul', [x, kernelName, ...plan.fused.args], {
      ...T, ...noTranspose, num_args: attr.int(plan.fused.args.length), fused_ops: attr.strs(plan.fused.ops), epsilon: attr.float(0),
      leakyrelu_alpha: plan.fused.leakyreluAlpha ?? attr.float(0.2),
    })
    : node(context.freshName(`${conv.name}/matmul`), 'MatMul', [x, kernelName], { ...T, ...noTranspose });
  const counts = plan.spatial.map((s, a) => Math.floor(s / plan.geometry.kernel[a]));
  reshape(matmul, 'output', [-1, ...counts, plan.filters], plan.remove[plan.remove.length - 1].name);
  // Control dependencies of the replaced nodes must still run first: the chain's first op waits.
  const controls = plan.remove.flatMap((n) => n.input.filter((i) => i.startsWith('^')))
    .filter((i) => !plan.remove.some((n) => n.name === parseTensorName(i).node));
  nodes.find((n) => n.op !== 'Const')!.input.push(...new Set(controls));

  const notes = plan.filter.spec.quantization
    ? [`${conv.name}: the ${plan.filter.spec.quantization.dtype}-quantized filter keeps its encoding in the MatMul kernel (stored elements reordered: exact, same size)`]
    : [];
  return {
    remove: plan.remove.map((n) => n.name),
    nodes,
    addWeights,
    maybeUnused: [parseTensorName(conv.input[1]).node],
    notes,
  };
}

const OPS: Record<number, string[]> = { 1: ['Conv2D', '_FusedConv2D'], 2: ['Conv2D', '_FusedConv2D'], 3: ['Conv3D'] };

/** The GraphDef lowering of the conv-to-dense rule `name` for one spatial rank. */
export function graphDefNonSlidingConvPass(options: { name: string; spatialRank: number }): GraphDefPass<GraphDefConvPlan> {
  const rank = options.spatialRank;
  return {
    name: options.name,
    // Conv2D ops in the Conv1D form belong to the rank-1 rule, all others to the rank-2 one.
    appliesTo: (node, context) => OPS[rank].includes(node.op) && (rank === 3 || (conv1dForm(node, context) !== undefined) === (rank === 1)),
    // Correctness only: whether it pays is the policy's call (src/policy/graph.ts).
    match: (node, context) => matchConv(node, context, rank),
    rewrite: rewriteConv,
    // [..spatial, C] (converted models are channels last): a huge input is timed and probed on whole patches of it.
    timingInput: (_node, dims, plan) => (dims.length - 1 === plan.geometry.kernel.length
      ? [...patchCutOut(dims.slice(0, -1), plan.geometry.kernel, dims[dims.length - 1]), dims[dims.length - 1]]
      : dims),
  };
}
