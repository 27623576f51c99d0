/**
 * Output shapes of GraphDef ops, with TF's shape semantics, from the shapes of their inputs and
 * the values of their small int inputs (shapes, axes, paddings, sizes: folded from Consts and
 * from Shape/StridedSlice/Pack/ConcatV2... chains, a size unknown inside them stays null).
 * A rule throws Unknown: with an input's own Unknown to pass it on, or with a new one
 * (`fail`) that says why this node cannot be known statically.
 */
import { readBool, readInts, readString, readType } from './attrs';
import type { GraphNode } from './ir';
import { Dims, StridedSliceSpec, stridedSliceDims, stridedSliceValues } from './strided-slice';

export type { Dims };
/** `origin`: the tensor whose shape could not be known (the root cause), for execution to learn. */
export type ShapeResult = { dims: Dims } | { unknown: string; origin?: string };
/** The values of a small int tensor, flat (row-major); null for an element not known. */
export type Values = (number | null)[];

export interface Known {
  dims: Dims;
  value?: Values;
}
export interface Input {
  shape: ShapeResult;
  value?: Values;
}

export class Unknown extends Error {
  constructor(readonly result: { unknown: string; origin?: string }) {
    super(result.unknown);
  }
}

/** Values are folded for vectors up to this length (shapes, perms, paddings are far smaller). */
export const MAX_FOLDED = 64;

const UNARY = ['Identity', 'Snapshot', 'StopGradient', 'PreventGradient', 'Relu', 'Relu6', 'Elu', 'Selu', 'Sigmoid',
  'Tanh', 'Sqrt', 'Rsqrt', 'Exp', 'Expm1', 'Log', 'Log1p', 'Neg', 'Abs', 'Square', 'Softplus', 'Softsign', 'Cast',
  'Erf', 'LeakyRelu', 'Softmax', 'LogSoftmax', 'Floor', 'Ceil', 'Round', 'Rint', 'Sign', 'Reciprocal', 'Inv', 'Sin',
  'Cos', 'Tan', 'Asin', 'Acos', 'Atan', 'Sinh', 'Cosh', 'Asinh', 'Acosh', 'Atanh', 'IsNan', 'IsInf', 'IsFinite',
  'LogicalNot', 'ZerosLike', 'OnesLike', 'ClipByValue', 'LRN', 'Cumsum', 'Cumprod', 'ReverseV2', 'Reverse',
  'FusedBatchNorm', 'FusedBatchNormV2', 'FusedBatchNormV3', 'Enter', 'Exit', 'Switch', 'LoopCond',
  'Relu1', 'Gelu', 'Swish', 'Mish', 'HardSigmoid', 'CheckNumerics', 'EnsureShape', 'PlaceholderWithDefault', 'Print',
  'Conj', 'Real', 'Imag', 'Complex', 'ComplexAbs', 'FakeQuantWithMinMaxVars', 'FakeQuantWithMinMaxArgs'];
export const SAME_SHAPE = new Set(UNARY);
/** Ops whose output 0 broadcasts all data inputs (TF's BroadcastBinaryOpShapeFn, extended to n). */
export const BROADCAST = new Set(['Add', 'AddV2', 'Sub', 'Mul', 'RealDiv', 'Div', 'DivNoNan', 'FloorDiv', 'FloorMod',
  'Mod', 'TruncateDiv', 'Maximum', 'Minimum', 'Pow', 'SquaredDifference', 'Equal', 'NotEqual', 'Less', 'LessEqual',
  'Greater', 'GreaterEqual', 'LogicalAnd', 'LogicalOr', 'Atan2', 'BiasAdd', 'Prelu', 'AddN', 'SelectV2', 'MulNoNan',
  'Xdivy', 'Xlogy', 'BitwiseAnd', 'BitwiseOr', 'BitwiseXor']);
const REDUCTIONS = new Set(['Mean', 'Max', 'Min', 'Sum', 'Prod', 'All', 'Any', 'EuclideanNorm']);
const WINDOW = new Set(['Conv2D', '_FusedConv2D', 'Conv3D', 'DepthwiseConv2dNative', 'FusedDepthwiseConv2dNative',
  'MaxPool', 'AvgPool', 'MaxPool3D', 'AvgPool3D', 'MaxPoolWithArgmax', 'Dilation2D']);

/** Integer arithmetic on folded values (shape computations), null-propagating. */
const ARITHMETIC: Record<string, (a: number, b: number) => number> = {
  Add: (a, b) => a + b, AddV2: (a, b) => a + b, Sub: (a, b) => a - b, Mul: (a, b) => a * b,
  FloorDiv: (a, b) => Math.floor(a / b), Div: (a, b) => Math.trunc(a / b), RealDiv: (a, b) => a / b,
  Maximum: Math.max, Minimum: Math.min, FloorMod: (a, b) => ((a % b) + b) % b,
};

export const product = (dims: Dims): number | null => (dims.every((d) => d !== null) ? (dims as number[]).reduce((a, b) => a * b, 1) : null);

/** NumPy/TF broadcasting; a null size broadcasts as "whatever the other side needs". */
export function broadcastDims(a: Dims, b: Dims): Dims | undefined {
  const rank = Math.max(a.length, b.length);
  const pad = (d: Dims) => [...new Array<number>(rank - d.length).fill(1), ...d];
  const [x, y] = [pad(a), pad(b)];
  const dims: Dims = [];
  for (let i = 0; i < rank; i++) {
    if (x[i] === 1) dims.push(y[i]);
    else if (y[i] === 1 || y[i] === x[i]) dims.push(x[i]);
    else if (x[i] === null || y[i] === null) dims.push(x[i] ?? y[i]);
    else return undefined;
  }
  return dims;
}

/** Infers the outputs of `node` (index = output index). Throws Unknown. */
export function inferOutputs(node: GraphNode, inputs: Input[], outputCount: number): Known[] {
  const fail = (why: string): never => {
    throw new Unknown({ unknown: `${node.op} "${node.name}" ${why}`, origin: node.name });
  };
  const input = (i: number): Input => inputs[i] ?? fail(`has no input ${i}`);
  const dims = (i: number): Dims => {
    const shape = input(i).shape;
    if ('unknown' in shape) throw new Unknown(shape);
    return shape.dims;
  };
  /** A folded int input; `partial`: elements may be null. */
  const ints = (i: number, what: string, partial = false): Values => {
    const value = input(i).value;
    if (!value) {
      const shape = input(i).shape;
      // The operand's own shape is unknown: pass that cause on rather than blaming this node.
      if ('unknown' in shape) throw new Unknown(shape);
      return fail(`has a ${what} computed from data (not a constant)`);
    }
    if (!partial && value.some((v) => v === null)) return fail(`has a ${what} that depends on unknown sizes`);
    return value;
  };
  const known = (i: number, what: string) => ints(i, what) as number[];
  const axisOf = (a: number, rank: number) => {
    const axis = a < 0 ? a + rank : a;
    if (axis < 0 || axis >= rank) fail(`has axis ${a} out of range for rank ${rank}`);
    return axis;
  };
  const one = (d: Dims, value?: Values): Known[] => [{ dims: d, value }];
  /** An int input's values, all null when only its size is known (a size read from data). */
  const partialValue = (i: number): Values | undefined => {
    const { shape, value } = input(i);
    if (value) return value;
    const type = readType(node.attr, 'T') ?? readType(node.attr, 'dtype');
    const n = 'dims' in shape ? product(shape.dims) : null;
    return (type === 'DT_INT32' || type === 'DT_INT64') && n !== null && n <= MAX_FOLDED ? new Array<null>(n).fill(null) : undefined;
  };
  const data = inputs.length;
  const op = node.op;

  if (SAME_SHAPE.has(op)) {
    const d = dims(0);
    // FusedBatchNorm's other outputs are per-channel statistics.
    if (op.startsWith('FusedBatchNorm')) {
      const format = readString(node.attr, 'data_format') ?? 'NHWC';
      const channels = format.startsWith('NC') ? d[1] : d[d.length - 1];
      return [{ dims: d }, ...new Array(Math.max(outputCount - 1, 0)).fill(0).map(() => ({ dims: [channels ?? null] }))];
    }
    const value = input(0).value;
    const passes = value && (op === 'Identity' || op === 'Snapshot' || op === 'StopGradient' || op === 'Cast' || op === 'Enter' || op === 'Exit' || op === 'Switch');
    const folded = passes ? value : value && op === 'Neg' ? value.map((v) => (v === null ? null : -v)) : undefined;
    return new Array(Math.max(outputCount, 1)).fill(0).map(() => ({ dims: d, value: folded }));
  }
  if (BROADCAST.has(op)) {
    const shapes = inputs.map((_, i) => dims(i));
    // BiasAdd and Prelu take the data's shape (the second operand is per-channel).
    let out: Dims | undefined = op === 'BiasAdd' || op === 'Prelu' ? shapes[0] : shapes[0];
    if (op !== 'BiasAdd' && op !== 'Prelu') for (const s of shapes.slice(1)) out = out && broadcastDims(out, s);
    if (!out) return fail(`operands ${shapes.map((s) => JSON.stringify(s)).join(' and ')} do not broadcast (the model is inconsistent)`);
    const f = ARITHMETIC[op];
    const [a, b] = [inputs[0]?.value, inputs[1]?.value];
    if (f && a && b && data === 2 && out.length <= 1) {
      const n = out.length === 0 ? 1 : out[0];
      if (n !== null) {
        const at = (v: Values, i: number) => (v.length === 1 ? v[0] : v[i]);
        return one(out, new Array(n).fill(0).map((_, i) => {
          const [x, y] = [at(a, i), at(b, i)];
          return x === null || y === null ? null : f(x, y);
        }));
      }
    }
    return one(out);
  }
  if (op === 'Select') return one(dims(1));
  if (REDUCTIONS.has(op) || op === 'ArgMax' || op === 'ArgMin') {
    const d = dims(0);
    const keep = readBool(node.attr, 'keep_dims') ?? readBool(node.attr, 'keepdims') ?? false;
    const axes = new Set(known(1, 'reduction axis').map((a) => axisOf(a, d.length)));
    if (op === 'ArgMax' || op === 'ArgMin') return one(d.filter((_, i) => !axes.has(i)));
    return one(keep ? d.map((s, i) => (axes.has(i) ? 1 : s)) : d.filter((_, i) => !axes.has(i)));
  }
  if (WINDOW.has(op)) return windowOp(node, dims(0), op.includes('Pool') || op === 'Dilation2D' ? undefined : dims(1), fail, outputCount);

  switch (op) {
    case 'Placeholder':
      return fail('has no static shape');
    case 'Reshape': {
      const x = dims(0);
      const target = ints(1, 'target shape', true);
      const size = product(x);
      const fixed = target.filter((d) => d !== -1);
      const rest = fixed.every((d) => d !== null) ? (fixed as number[]).reduce((a, b) => a * b, 1) : null;
      if (target.filter((d) => d === -1).length > 1) return fail('has more than one -1 in its target shape');
      // With a dynamic batch the -1 usually is the batch: it stays unknown.
      // Values are flat, so a Reshape keeps them as they are.
      return one(target.map((d) => (d === -1 ? (size === null || rest === null || rest === 0 ? null : size / rest) : d)), input(0).value);
    }
    case 'Squeeze': {
      const x = dims(0);
      const listed = readInts(node.attr, 'squeeze_dims') ?? readInts(node.attr, 'axis') ?? [];
      const axes = new Set(listed.map((a) => axisOf(a, x.length)));
      if (axes.size === 0) {
        if (x.includes(null)) return fail('squeezes every size-1 axis of an input with unknown sizes');
        return one(x.filter((d) => d !== 1));
      }
      return one(x.filter((_, i) => !axes.has(i)), input(0).value);
    }
    case 'ExpandDims': {
      const x = dims(0);
      const [a] = known(1, 'axis');
      const at = a < 0 ? x.length + 1 + a : a;
      if (at < 0 || at > x.length) return fail(`has axis ${a} out of range for rank ${x.length}`);
      return one([...x.slice(0, at), 1, ...x.slice(at)], input(0).value);
    }
    case 'Transpose': {
      const x = dims(0);
      const perm = known(1, 'perm');
      if (perm.length !== x.length) return fail(`has a perm of length ${perm.length} for rank ${x.length}`);
      return one(perm.map((p) => x[axisOf(p, x.length)]));
    }
    case 'Pad':
    case 'PadV2':
    case 'MirrorPad': {
      const x = dims(0);
      const pads = ints(1, 'paddings', true);
      if (pads.length !== 2 * x.length) return fail(`has ${pads.length / 2} padding pairs for rank ${x.length}`);
      return one(x.map((d, i) => (d === null || pads[2 * i] === null || pads[2 * i + 1] === null ? null : d + pads[2 * i]! + pads[2 * i + 1]!)));
    }
    case 'ConcatV2':
    case 'Concat': {
      const axisInput = op === 'ConcatV2' ? data - 1 : 0;
      const parts = inputs.map((_, i) => i).filter((i) => i !== axisInput);
      const shapes = parts.map(dims);
      const rank = shapes[0].length;
      const axis = axisOf(known(axisInput, 'axis')[0], rank);
      const out = [...shapes[0]];
      for (const s of shapes.slice(1)) {
        if (s.length !== rank) return fail('joins tensors of different ranks (the model is inconsistent)');
        for (let i = 0; i < rank; i++) {
          if (i === axis) out[i] = out[i] === null || s[i] === null ? null : out[i]! + s[i]!;
          else out[i] = out[i] ?? s[i];
        }
      }
      // Joined along the first axis, flat values just follow each other.
      const values = parts.map(partialValue);
      return one(out, axis === 0 && values.every((v) => v) ? values.flatMap((v) => v!) : undefined);
    }
    case 'Pack': {
      const shapes = inputs.map((_, i) => dims(i));
      const rank = shapes[0].length + 1;
      const a = readInts(node.attr, 'axis')?.[0] ?? Number(node.attr.axis?.i ?? 0);
      const axis = a < 0 ? a + rank : a;
      const merged = shapes[0].map((d, i) => shapes.reduce<number | null>((m, s) => m ?? s[i], d));
      const values = inputs.map((_, i) => partialValue(i));
      const folded = axis === 0 && values.every((v) => v) ? values.flatMap((v) => v!) : undefined;
      return one([...merged.slice(0, axis), shapes.length, ...merged.slice(axis)], folded);
    }
    case 'Unpack': {
      const x = dims(0);
      const axis = axisOf(Number(node.attr.axis?.i ?? 0), x.length);
      const out = x.filter((_, i) => i !== axis);
      const value = input(0).value;
      return new Array(x[axis] ?? outputCount).fill(0).map((_, i) => ({ dims: out, value: x.length === 1 && value ? [value[i]] : undefined }));
    }
    case 'Split': {
      const x = dims(1);
      const axis = axisOf(known(0, 'axis')[0], x.length);
      const n = Number(node.attr.num_split?.i ?? 1);
      const size = x[axis] === null ? null : x[axis]! / n;
      return new Array(n).fill(0).map(() => ({ dims: x.map((d, i) => (i === axis ? size : d)) }));
    }
    case 'SplitV': {
      const x = dims(0);
      const sizes = ints(1, 'size_splits', true);
      const axis = axisOf(known(2, 'axis')[0], x.length);
      const given = sizes.filter((s) => s !== -1);
      const rest = x[axis] === null || given.includes(null) ? null : x[axis]! - (given as number[]).reduce((a, b) => a + b, 0);
      return sizes.map((s) => ({ dims: x.map((d, i) => (i === axis ? (s === -1 ? rest : s) : d)) }));
    }
    case 'Slice': {
      const x = dims(0);
      const begin = ints(1, 'begin', true);
      const size = ints(2, 'size', true);
      if (begin.length !== x.length || size.length !== x.length) return fail(`has begin/size of length ${begin.length}/${size.length} for rank ${x.length}`);
      const out = size.map((s, i) => (s !== -1 ? s : x[i] === null || begin[i] === null ? null : x[i]! - begin[i]!));
      const value = input(0).value;
      const sliced = x.length === 1 && value && begin[0] !== null && out[0] !== null ? value.slice(begin[0]!, begin[0]! + out[0]!) : undefined;
      return one(out, sliced);
    }
    case 'StridedSlice': {
      const x = dims(0);
      const mask = (name: string) => Number(node.attr[name]?.i ?? 0);
      const spec: StridedSliceSpec = {
        begin: ints(1, 'begin', true), end: ints(2, 'end', true), strides: ints(3, 'strides', true),
        beginMask: mask('begin_mask'), endMask: mask('end_mask'), ellipsisMask: mask('ellipsis_mask'),
        newAxisMask: mask('new_axis_mask'), shrinkAxisMask: mask('shrink_axis_mask'),
      };
      const out = stridedSliceDims(x, spec);
      if (typeof out === 'string') return fail(`cannot slice: ${out}`);
      const value = input(0).value;
      return one(out, x.length === 1 && value ? stridedSliceValues(value, spec) : undefined);
    }
    case 'Shape':
    case 'ShapeN':
      return inputs.map((_, i) => {
        const d = dims(i);
        return { dims: [d.length], value: d };
      });
    case 'Size': {
      const d = dims(0);
      return one([], [product(d)]);
    }
    case 'Rank':
      return one([], [dims(0).length]);
    case 'Fill':
      return one(ints(0, 'shape', true));
    case 'Tile': {
      const x = dims(0);
      const multiples = ints(1, 'multiples', true);
      if (multiples.length !== x.length) return fail(`has ${multiples.length} multiples for rank ${x.length}`);
      return one(x.map((d, i) => (d === null || multiples[i] === null ? null : d * multiples[i]!)));
    }
    case 'BroadcastTo': {
      const out = broadcastDims(dims(0), ints(1, 'shape', true));
      return out ? one(out) : fail('broadcasts to a shape its input does not broadcast to');
    }
    case 'GatherV2':
    case 'Gather': {
      const params = dims(0);
      const indices = dims(1);
      const axis = axisOf(op === 'GatherV2' ? known(2, 'axis')[0] : 0, params.length);
      const batchDims = Number(node.attr.batch_dims?.i ?? 0);
      const b = batchDims < 0 ? batchDims + indices.length : batchDims;
      const out = [...params.slice(0, axis), ...indices.slice(b), ...params.slice(axis + 1)];
      const [values, at] = [input(0).value, input(1).value];
      const folded = params.length === 1 && values && at && indices.length <= 1 ? at.map((i) => (i === null ? null : values[i < 0 ? i + values.length : i] ?? null)) : undefined;
      return one(out, folded);
    }
    case 'GatherNd': {
      const params = dims(0);
      const indices = dims(1);
      const k = indices[indices.length - 1];
      if (k === null) return fail('has indices of unknown depth');
      return one([...indices.slice(0, -1), ...params.slice(k)]);
    }
    case 'MatMul':
    case '_FusedMatMul': {
      const [a, b] = [dims(0), dims(1)];
      if (a.length !== 2 || b.length !== 2) return fail(`multiplies ranks ${a.length} and ${b.length}, not two matrices`);
      const ta = readBool(node.attr, 'transpose_a') ?? false;
      const tb = readBool(node.attr, 'transpose_b') ?? false;
      return one([ta ? a[1] : a[0], tb ? b[0] : b[1]]);
    }
    case 'BatchMatMul':
    case 'BatchMatMulV2':
    case 'BatchMatMulV3': {
      const [a, b] = [dims(0), dims(1)];
      if (a.length < 2 || b.length < 2) return fail(`multiplies ranks ${a.length} and ${b.length}`);
      const ta = readBool(node.attr, 'adj_x') ?? readBool(node.attr, 'transpose_a') ?? false;
      const tb = readBool(node.attr, 'adj_y') ?? readBool(node.attr, 'transpose_b') ?? false;
      const batch = broadcastDims(a.slice(0, -2), b.slice(0, -2));
      if (!batch) return fail('has batch sizes that do not broadcast (the model is inconsistent)');
      return one([...batch, ta ? a[a.length - 1] : a[a.length - 2], tb ? b[b.length - 2] : b[b.length - 1]]);
    }
    case 'Conv2DBackpropInput':
    case 'Conv3DBackpropInputV2':
      return one(ints(0, 'output shape', true));
    case 'ResizeBilinear':
    case 'ResizeNearestNeighbor':
    case 'ResizeBicubic': {
      const x = dims(0);
      // A size computed from an input's value (a downsample ratio) leaves only the sizes unknown.
      const size = input(1).value ?? [null, null];
      if (x.length !== 4 || size.length !== 2) return fail(`resizes rank ${x.length} to ${size.length} sizes`);
      return one([x[0], size[0], size[1], x[3]]);
    }
    case 'CropAndResize': {
      const [x, boxes] = [dims(0), dims(1)];
      const size = ints(3, 'crop size', true);
      return one([boxes[0], size[0], size[1], x[3]]);
    }
    case 'DepthToSpace':
    case 'SpaceToDepth': {
      const x = dims(0);
      const b = Number(node.attr.block_size?.i ?? 1);
      if (x.length !== 4 || (readString(node.attr, 'data_format') ?? 'NHWC') !== 'NHWC') return fail('is not NHWC rank 4');
      const [n, h, w, c] = x;
      const mul = (d: number | null, f: number) => (d === null ? null : d * f);
      return op === 'DepthToSpace' ? one([n, mul(h, b), mul(w, b), c === null ? null : c / (b * b)]) : one([n, h === null ? null : h / b, w === null ? null : w / b, mul(c, b * b)]);
    }
    case 'SpaceToBatchND':
    case 'BatchToSpaceND': {
      const x = dims(0);
      const block = known(1, 'block shape');
      const pads = ints(2, op === 'SpaceToBatchND' ? 'paddings' : 'crops', true);
      const m = block.length;
      const blocks = block.reduce((a, b) => a * b, 1);
      const out = [...x];
      out[0] = x[0] === null ? null : op === 'SpaceToBatchND' ? x[0] * blocks : x[0] / blocks;
      for (let i = 0; i < m; i++) {
        const [d, lo, hi] = [x[i + 1], pads[2 * i], pads[2 * i + 1]];
        out[i + 1] = d === null || lo === null || hi === null ? null : op === 'SpaceToBatchND' ? (d + lo + hi) / block[i] : d * block[i] - lo - hi;
      }
      return one(out);
    }
    case 'OneHot': {
      const indices = dims(0);
      const [depth] = ints(1, 'depth', true);
      const a = Number(node.attr.axis?.i ?? -1);
      const at = a === -1 ? indices.length : a;
      return one([...indices.slice(0, at), depth, ...indices.slice(at)]);
    }
    case 'Range': {
      const [start, limit, delta] = [ints(0, 'start', true)[0], ints(1, 'limit', true)[0], ints(2, 'delta', true)[0]];
      if (start === null || limit === null || delta === null) return one([null]);
      const n = Math.max(0, Math.ceil((limit - start) / delta));
      return one([n], n <= MAX_FOLDED ? new Array(n).fill(0).map((_, i) => start + i * delta) : undefined);
    }
    case 'TopKV2': {
      const x = dims(0);
      const [k] = ints(1, 'k', true);
      const out = [...x.slice(0, -1), k];
      return [{ dims: out }, { dims: out }];
    }
    case 'Einsum':
      return einsum(node, inputs.map((_, i) => dims(i)), fail);
    case 'Merge': {
      // Either branch of a cond, or a loop's entry and back edge (whose shape can change from one
      // iteration to the next): a size is known where every input agrees (TF's Merge shape fn).
      const shapes = inputs.map((_, i) => dims(i));
      if (shapes.some((d) => d.length !== shapes[0].length)) return fail('merges inputs of different ranks');
      return [{ dims: shapes[0].map((d, a) => (shapes.every((s) => s[a] === d) ? d : null)) }, { dims: [] }];
    }
    case 'NoOp':
      return [];
    default:
      return fail('has an output shape that only running the model tells');
  }
}

/**
 * Sliding-window ops (convs, depthwise convs, pools, Dilation2D), NHWC/NDHWC or NCHW: output
 * sizes from strides, padding (SAME, VALID, EXPLICIT) and dilations; channels from the filter
 * (depthwise: C * multiplier).
 */
function windowOp(node: GraphNode, x: Dims, filter: Dims | undefined, fail: (why: string) => never, outputCount: number): Known[] {
  const rank = node.op.endsWith('3D') ? 3 : 2;
  if (x.length !== rank + 2) return fail(`takes a rank-${x.length} input, not rank ${rank + 2}`);
  const format = readString(node.attr, 'data_format') ?? (rank === 3 ? 'NDHWC' : 'NHWC');
  const first = format.startsWith('NC');
  const spatialAxes = [...Array(rank).keys()].map((i) => (first ? i + 2 : i + 1));
  const channelAxis = first ? 1 : rank + 1;
  const strides = readInts(node.attr, 'strides') ?? fail('has no strides');
  const dilations = readInts(node.attr, node.op === 'Dilation2D' ? 'rates' : 'dilations') ?? new Array(rank + 2).fill(1);
  const padding = readString(node.attr, 'padding') ?? fail('has no padding');
  const explicit = readInts(node.attr, 'explicit_paddings') ?? [];
  const pool = filter === undefined && node.op !== 'Dilation2D';
  const window = pool ? (readInts(node.attr, 'ksize') ?? fail('has no ksize')).filter((_, i) => spatialAxes.includes(i)) : (filter ?? fail('has no filter')).slice(0, rank);
  if (strides.length !== rank + 2) return fail(`has ${strides.length} strides for rank ${rank + 2}`);
  if (!pool && filter && filter.length !== rank + (node.op === 'Dilation2D' ? 1 : 2)) return fail(`has a rank-${filter.length} filter`);
  const out = [...x];
  spatialAxes.forEach((axis, i) => {
    const [size, k] = [x[axis], window[i]];
    const stride = strides[axis];
    if (size === null || k === null) {
      out[axis] = padding === 'SAME' && size !== null ? Math.ceil(size / stride) : null;
      return;
    }
    const extent = (k - 1) * (dilations[axis] ?? 1) + 1;
    if (padding === 'SAME') out[axis] = Math.ceil(size / stride);
    else if (padding === 'VALID') out[axis] = Math.floor((size - extent) / stride) + 1;
    else if (padding === 'EXPLICIT') out[axis] = Math.floor((size + (explicit[2 * axis] ?? 0) + (explicit[2 * axis + 1] ?? 0) - extent) / stride) + 1;
    else fail(`has padding ${padding}`);
  });
  if (!pool && filter && node.op !== 'Dilation2D') {
    const depthwise = node.op.includes('Depthwise');
    const channels = x[channelAxis] ?? filter[rank];
    out[channelAxis] = depthwise ? (channels === null || filter[rank + 1] === null ? null : channels * filter[rank + 1]!) : filter[rank + 1];
  }
  return new Array(Math.max(outputCount, 1)).fill(0).map(() => ({ dims: out }));
}

/** Einsum with explicit output ("ab,bc->ac"); no ellipsis. */
function einsum(node: GraphNode, shapes: Dims[], fail: (why: string) => never): Known[] {
  const equation = readString(node.attr, 'equation') ?? fail('has no equation');
  const [lhs, rhs] = equation.replace(/\s/g, '').split('->');
  if (rhs === undefined || equation.includes('.')) return fail(`has equation "${equation}" (implicit output or ellipsis)`);
  const sizes = new Map<string, number | null>();
  lhs.split(',').forEach((term, t) => [...term].forEach((c, i) => sizes.set(c, sizes.get(c) ?? shapes[t]?.[i] ?? null)));
  return [{ dims: [...rhs].map((c) => sizes.get(c) ?? null) }];
}
