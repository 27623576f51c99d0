/**
 * conv3d-to-dense, GraphDef lowering: a Conv3D op that does not slide becomes views + one 2-D MatMul.
 *
 * Identity: for x [N, D, H, W, C] (NDHWC) and a Const filter K [kd, kh, kw, C, F] with strides
 * [1, kd, kh, kw, 1], no padding applied and dilations 1, every output row is one
 * non-overlapping patch of x times K reshaped [kd*kh*kw*C, F]; remainders of D/H/W that do not
 * fill a patch are ignored (VALID). So the conv is: crop, reorder into one row per patch,
 * Reshape [-1, P], MatMul with the (row-reordered) filter, Reshape back to [-1, d, h, w, F].
 * The MatMul stays 2-D and untransposed: the only form tfjs-wasm runs on XNNPACK's GEMM.
 *
 * Before:  x [N,9,34,33,3] -> Conv3D(filter [2,8,8,3,16], strides [1,2,8,8,1]) -> BiasAdd(b) -> y
 * After:   x -> Reshape [-1,1,9,3366] -> Slice to [-1,1,8,3168]     (crop D, H: rank-4 slices are
 *            -> Reshape [-1,256,99,1] -> Slice to [-1,256,96,1]      row copies on wasm)
 *            -> Reshape [-1,4,2,4,8,96] -> Transpose [0,1,3,5,2,4]   (rows ordered kw,C,kd,kh)
 *            -> Reshape [-1,384] -> _FusedMatMul(W' [384,16], b) -> Reshape [-1,4,4,4,16] named y
 * Patch embed (the conv covers its whole input, Qwen2/3-VL): Reshape [-1,P] -> MatMul -> Reshape,
 * with the filter's own bytes. The layout steps come from src/rewrite/patch-plan.ts.
 *
 * Guards, in order (each refusal names the failing value): data_format NDHWC (tfjs and TF-CPU
 * run no other); T DT_FLOAT; strides/dilations of rank 5 with batch and channel strides 1;
 * padding VALID, or SAME that pads nothing (every size a multiple of the kernel); filter a
 * float32 Const of rank 5 (through Identity); strides == filter spatial dims (else it slides);
 * dilations 1 where the kernel is > 1; input shape static but for the batch, rank 5, channels
 * matching the filter, each size >= kernel; a layout plan within rank 6 (WebGL's transpose limit).
 * A following BiasAdd (the conv's only reader, bias a float32 Const [F]) is folded into the
 * MatMul as the converter's own _FusedMatMul(BiasAdd); otherwise the conv is replaced alone.
 */
import type { MatchResult } from '../src/pass';
import { attr, readInts, readString, readType } from '../src/graphmodel/attrs';
import { GraphNode, GraphWeight, decodeFloatWeight, float32Weight, int32Weight, parseTensorName } from '../src/graphmodel/ir';
import type { GraphMatchContext, GraphPass, GraphReplacement } from '../src/graphmodel/pass';
import { RowOrder, Step, chooseRowOrder } from '../src/rewrite/patch-plan';
import { transposeValues } from '../src/rewrite/transpose';

export interface Conv3dMatMulPlan {
  input: string;
  filter: GraphWeight;
  channels: number;
  filters: number;
  /** Patches per axis (d, h, w). */
  counts: number[];
  spatial: number[];
  order: RowOrder;
  steps: Step[];
  bias?: { add: GraphNode; constTensor: string };
}

const fmt = (value: unknown) => JSON.stringify(value).replace(/,/g, ', ');
const AXES = ['D', 'H', 'W'];

/** The Const behind `tensor`, looking through Identity nodes (the converter leaves some). */
function constBehind(tensor: string, context: GraphMatchContext): GraphNode | undefined {
  let node = context.node(parseTensorName(tensor).node);
  for (let hops = 0; node && node.op === 'Identity' && node.input.length >= 1 && hops < 8; hops++) {
    node = context.node(parseTensorName(node.input[0]).node);
  }
  return node?.op === 'Const' ? node : undefined;
}

function match(conv: GraphNode, context: GraphMatchContext): MatchResult<Conv3dMatMulPlan> {
  const refuse = (refusal: string) => ({ refusal });
  const format = readString(conv.attr, 'data_format') ?? 'NDHWC';
  // NCDHW would need a transpose in and out; TF-CPU and tfjs never produce or run it.
  if (format !== 'NDHWC') return refuse(`data_format ${format} is not NDHWC`);
  const dtype = readType(conv.attr, 'T') ?? 'DT_FLOAT';
  if (dtype !== 'DT_FLOAT') return refuse(`T ${dtype} is not DT_FLOAT`);
  const strides = readInts(conv.attr, 'strides');
  const dilations = readInts(conv.attr, 'dilations') ?? [1, 1, 1, 1, 1];
  if (!strides || strides.length !== 5 || dilations.length !== 5) return refuse(`strides ${fmt(strides ?? null)} or dilations ${fmt(dilations)} is not 5 integers`);
  if (strides[0] !== 1 || strides[4] !== 1) return refuse(`strides ${fmt(strides)} step over batch or channels`);
  const padding = readString(conv.attr, 'padding') ?? '';
  if (padding !== 'VALID' && padding !== 'SAME') return refuse(`padding ${padding || '(none)'} is not VALID or SAME`);
  if (conv.input.length < 2 || conv.input.slice(0, 2).some((i) => i.startsWith('^'))) return refuse(`expected inputs (x, filter), got ${fmt(conv.input)}`);

  const filterConst = constBehind(conv.input[1], context);
  if (!filterConst) return refuse(`filter "${conv.input[1]}" is not a Const`);
  const weight = context.weight(filterConst.name);
  if (!weight) return refuse(`filter Const "${filterConst.name}" has no weight`);
  const shape = weight.spec.shape;
  if (weight.spec.dtype !== 'float32') return refuse(`filter dtype ${weight.spec.dtype} is not float32`);
  if (shape.length !== 5) return refuse(`filter shape ${fmt(shape)} is not rank 5`);
  const kernel = shape.slice(0, 3);
  const [channels, filters] = [shape[3], shape[4]];
  // Strides other than the kernel make windows overlap (or skip input): the conv slides.
  if (strides.slice(1, 4).some((s, i) => s !== kernel[i])) return refuse(`strides ${fmt(strides.slice(1, 4))} != filter spatial dims ${fmt(kernel)}`);
  // Dilation spreads a patch over the input; it only matters where the kernel is > 1.
  if (dilations[0] !== 1 || dilations[4] !== 1 || dilations.slice(1, 4).some((d, i) => d !== 1 && kernel[i] !== 1)) {
    return refuse(`dilations ${fmt(dilations)} != 1`);
  }

  const inShape = context.shapes.of(conv.input[0]);
  if ('unknown' in inShape) return refuse(`input shape unknown: ${inShape.unknown}`);
  const dims = inShape.dims;
  if (dims.length !== 5) return refuse(`input shape ${fmt(dims)} is not rank 5`);
  // Reshape needs static sizes; only the batch may be dynamic (it becomes -1).
  if (dims.slice(1).some((d) => d === null)) return refuse(`input shape ${fmt(dims.map((d) => d ?? -1))} is not static beyond the batch`);
  const spatial = dims.slice(1, 4) as number[];
  if (dims[4] !== channels) return refuse(`input channels ${dims[4]} != filter channels ${channels}`);
  for (let a = 0; a < 3; a++) {
    if (spatial[a] < kernel[a]) return refuse(`input ${AXES[a]}=${spatial[a]} is smaller than kernel ${kernel[a]}`);
    // SAME pads (kernel - size % kernel) when the size is not a multiple: a different conv then.
    if (padding === 'SAME' && spatial[a] % kernel[a] !== 0) return refuse(`padding SAME pads ${AXES[a]} (${spatial[a]} % ${kernel[a]} != 0)`);
  }
  const chosen = chooseRowOrder([{ spatial, channels, kernel, channelsFirst: false }]);
  if (!chosen) return refuse('no layout plan within rank 6 was found');

  return {
    plan: {
      input: conv.input[0],
      filter: weight,
      channels,
      filters,
      counts: spatial.map((s, a) => Math.floor(s / kernel[a])),
      spatial,
      order: chosen.order,
      steps: chosen.plans[0].before,
      bias: foldableBias(conv, filters, context),
    },
  };
}

/** The BiasAdd to fold, when it is the conv's only reader and adds a float32 Const [F]. */
function foldableBias(conv: GraphNode, filters: number, context: GraphMatchContext): Conv3dMatMulPlan['bias'] {
  const readers = context.consumers(conv.name);
  if (readers.length !== 1 || context.isOutput(conv.name)) return undefined;
  const add = readers[0];
  const data = add.input.filter((i) => !i.startsWith('^'));
  if (add.op !== 'BiasAdd' || data.length !== 2 || parseTensorName(data[0]).node !== conv.name) return undefined;
  if ((readString(add.attr, 'data_format') ?? 'NHWC') !== 'NHWC') return undefined;
  const bias = constBehind(data[1], context);
  const weight = bias && context.weight(bias.name);
  if (!weight || weight.spec.dtype !== 'float32' || fmt(weight.spec.shape) !== fmt([filters])) return undefined;
  return { add, constTensor: data[1] };
}

function rewrite(conv: GraphNode, plan: Conv3dMatMulPlan, context: GraphMatchContext): GraphReplacement {
  const nodes: GraphNode[] = [];
  const addWeights: GraphWeight[] = [];
  const T = { T: attr.type('DT_FLOAT') };
  const node = (name: string, op: string, input: string[], attrs: GraphNode['attr']): string => {
    nodes.push({ name, op, input, attr: attrs, extra: {} });
    return name;
  };
  const intConst = (label: string, values: number[]) => {
    const name = context.freshName(`${conv.name}/${label}`);
    addWeights.push(int32Weight(name, values));
    return node(name, 'Const', [], { value: attr.tensor('DT_INT32', [values.length]), dtype: attr.type('DT_INT32') });
  };
  const reshape = (x: string, label: string, target: number[], name = context.freshName(`${conv.name}/${label}`)) =>
    node(name, 'Reshape', [x, intConst(`${label}_shape`, target)], { ...T, Tshape: attr.type('DT_INT32') });

  // The planner's last step reshapes to [d, h, w, P]; the MatMul wants [-1, P] instead.
  const rowLength = plan.filter.spec.shape.slice(0, 4).reduce((a, b) => a * b, 1);
  const steps = plan.steps[plan.steps.length - 1]?.kind === 'reshape' ? plan.steps.slice(0, -1) : plan.steps;
  let x = plan.input;
  let current = [...plan.spatial, plan.channels];
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
  const axes = plan.order.map((name) => (name === 'c' ? 3 : Number(name.slice(1))));
  const values = transposeValues(decodeFloatWeight(plan.filter), plan.filter.spec.shape, [...axes, 4]);
  const kernelName = context.freshName(`${conv.name}/matmul_kernel`);
  addWeights.push(float32Weight(kernelName, [rowLength, plan.filters], values));
  node(kernelName, 'Const', [], { value: attr.tensor('DT_FLOAT', [rowLength, plan.filters]), dtype: attr.type('DT_FLOAT') });
  const noTranspose = { transpose_a: attr.bool(false), transpose_b: attr.bool(false) };
  const matmul = plan.bias
    ? node(context.freshName(`${conv.name}/matmul_bias`), '_FusedMatMul', [x, kernelName, plan.bias.constTensor], {
      ...T, ...noTranspose, num_args: attr.int(1), fused_ops: attr.strs(['BiasAdd']), epsilon: attr.float(0), leakyrelu_alpha: attr.float(0.2),
    })
    : node(context.freshName(`${conv.name}/matmul`), 'MatMul', [x, kernelName], { ...T, ...noTranspose });
  const last = plan.bias ? plan.bias.add : conv;
  reshape(matmul, 'output', [-1, ...plan.counts, plan.filters], last.name);
  // Control dependencies of the replaced nodes must still run first: the chain's first op waits.
  const removed = [conv, ...(plan.bias ? [plan.bias.add] : [])];
  const controls = removed.flatMap((n) => n.input.filter((i) => i.startsWith('^')))
    .filter((i) => !removed.some((n) => n.name === parseTensorName(i).node));
  nodes.find((n) => n.op !== 'Const')!.input.push(...new Set(controls));

  const notes = plan.filter.spec.quantization
    ? [`${conv.name}: filter was ${plan.filter.spec.quantization.dtype}-quantized; its MatMul kernel is float32`]
    : [];
  return {
    remove: removed.map((n) => n.name),
    nodes,
    addWeights,
    maybeUnused: [parseTensorName(conv.input[1]).node],
    notes,
  };
}

export const graphConv3dToMatMul: GraphPass<Conv3dMatMulPlan> = {
  name: 'conv3d-to-dense',
  appliesTo: (node) => node.op === 'Conv3D',
  match,
  rewrite,
};
