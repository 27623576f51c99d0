/**
 * Static shapes of node outputs (output 0) for the ops that sit in front of convs in converted
 * models: Placeholder, Const, elementwise ops, Reshape/Transpose/ExpandDims/Squeeze/Pad with
 * Const operands, convs, depthwise convs, pools, MatMul. Anything else falls back to an `_output_shapes` attr, or is unknown with a reason, so
 * a refusal can say which node stopped the inference. Pure: reads no tensors.
 */
import { parseShapeProto, readInts, readShape, readString } from './attrs';
import { GraphModelIR, GraphNode, GraphWeight, parseTensorName } from './ir';

/** null marks an unknown size (the batch, usually). */
export type Dims = (number | null)[];
export type ShapeResult = { dims: Dims } | { unknown: string };

const SAME_SHAPE = new Set(['Identity', 'Relu', 'Relu6', 'Elu', 'Selu', 'Sigmoid', 'Tanh', 'Sqrt', 'Rsqrt', 'Exp',
  'Log', 'Neg', 'Abs', 'Square', 'Softplus', 'Cast', 'StopGradient', 'Erf', 'LeakyRelu', 'Softmax', 'BiasAdd',
  'FusedBatchNorm', 'FusedBatchNormV3', 'Prelu', 'Snapshot']);
const BROADCAST = new Set(['Add', 'AddV2', 'Sub', 'Mul', 'RealDiv', 'Div', 'Maximum', 'Minimum', 'Pow', 'SquaredDifference']);

export class GraphShapes {
  private readonly memo = new Map<string, ShapeResult>();
  private readonly nodes: Map<string, GraphNode>;
  private readonly weights: Map<string, GraphWeight>;

  constructor(ir: GraphModelIR) {
    this.nodes = new Map(ir.nodes.map((n) => [n.name, n]));
    this.weights = new Map(ir.weights.map((w) => [w.spec.name, w]));
  }

  /** Shape of a tensor name ("node" or "node:0"); other outputs than 0 are unknown. */
  of(tensor: string): ShapeResult {
    const ref = parseTensorName(tensor);
    if (ref.index !== 0) return { unknown: `output ${ref.index} of "${ref.node}" is not modelled` };
    if (!this.memo.has(ref.node)) this.resolve(ref.node);
    return this.memo.get(ref.node)!;
  }

  /**
   * Infers `root` after its data inputs, with an explicit stack: a patch embed can sit behind
   * thousands of nodes, too deep for recursion. A node met again while its inputs are still
   * pending sits on a loop (NextIteration): it is inferred with those inputs unknown.
   */
  private resolve(root: string): void {
    const stack = [root];
    const entered = new Set<string>();
    while (stack.length) {
      const name = stack[stack.length - 1];
      if (this.memo.has(name)) {
        stack.pop();
        continue;
      }
      const node = this.nodes.get(name);
      if (!node) {
        this.memo.set(name, { unknown: `no node "${name}"` });
        stack.pop();
        continue;
      }
      const pending = node.input.slice(0, 2).filter((i) => !i.startsWith('^')).map((i) => parseTensorName(i).node)
        .filter((input) => !this.memo.has(input) && !entered.has(input));
      if (pending.length && !entered.has(name)) {
        entered.add(name);
        stack.push(...pending);
        continue;
      }
      stack.pop();
      this.memo.set(name, this.infer(node));
    }
  }

  /** The int32 values of a Const (shapes, perms), if it is one. */
  constInts(tensor: string): number[] | undefined {
    const node = this.nodes.get(parseTensorName(tensor).node);
    const weight = node?.op === 'Const' ? this.weights.get(node.name) : undefined;
    if (!weight || weight.spec.dtype !== 'int32' || weight.spec.quantization) return undefined;
    return Array.from(new Int32Array(weight.bytes.slice().buffer));
  }

  private infer(node: GraphNode): ShapeResult {
    const declared = node.attr._output_shapes?.list as { shape?: unknown[] } | undefined;
    const fallback = (why: string): ShapeResult => {
      const dims = declared?.shape?.length ? parseShapeProto(declared.shape[0]) : undefined;
      return dims ? { dims } : { unknown: why };
    };
    const input = (i: number): ShapeResult => {
      if (node.input[i] === undefined) return { unknown: `"${node.name}" has no input ${i}` };
      const ref = parseTensorName(node.input[i]);
      if (ref.index !== 0) return { unknown: `output ${ref.index} of "${ref.node}" is not modelled` };
      return this.memo.get(ref.node) ?? { unknown: `"${ref.node}" sits on a loop` };
    };
    switch (node.op) {
      case 'Placeholder': {
        const dims = readShape(node.attr, 'shape');
        return dims ? { dims } : fallback(`placeholder "${node.name}" has no static rank`);
      }
      case 'Const': {
        const weight = this.weights.get(node.name);
        if (weight) return { dims: [...weight.spec.shape] };
        const dims = parseShapeProto((node.attr.value?.tensor as { tensorShape?: unknown } | undefined)?.tensorShape);
        return dims ? { dims } : fallback(`Const "${node.name}" has no shape`);
      }
      case 'Reshape':
        return this.reshape(node, input(0)) ?? fallback(`Reshape "${node.name}" has no Const shape`);
      case 'Transpose': {
        const x = input(0);
        const perm = this.constInts(node.input[1] ?? '');
        if ('unknown' in x) return fallback(x.unknown);
        if (!perm || perm.length !== x.dims.length) return fallback(`Transpose "${node.name}" has no Const perm of rank ${x.dims.length}`);
        return { dims: perm.map((axis) => x.dims[axis]) };
      }
      case 'Conv3D':
      case 'Conv2D':
      case '_FusedConv2D':
      case 'DepthwiseConv2dNative':
      case 'FusedDepthwiseConv2dNative':
      case 'MaxPool':
      case 'AvgPool':
        return this.window(node, input(0), input(1)) ?? fallback(`${node.op} "${node.name}" output shape cannot be computed`);
      case 'ExpandDims': {
        const x = input(0);
        const axis = this.constInts(node.input[1] ?? '');
        if ('unknown' in x) return fallback(x.unknown);
        if (!axis || axis.length !== 1) return fallback(`ExpandDims "${node.name}" has no Const axis`);
        const at = axis[0] < 0 ? x.dims.length + 1 + axis[0] : axis[0];
        return { dims: [...x.dims.slice(0, at), 1, ...x.dims.slice(at)] };
      }
      case 'Squeeze': {
        const x = input(0);
        if ('unknown' in x) return fallback(x.unknown);
        const axes = (readInts(node.attr, 'squeeze_dims') ?? []).map((a) => (a < 0 ? x.dims.length + a : a));
        if (axes.length === 0) return x.dims.includes(null) ? fallback(`Squeeze "${node.name}" of unknown sizes`) : { dims: x.dims.filter((d) => d !== 1) };
        return { dims: x.dims.filter((_, i) => !axes.includes(i)) };
      }
      case 'Pad':
      case 'PadV2':
      case 'MirrorPad': {
        const x = input(0);
        const pads = this.constInts(node.input[1] ?? '');
        if ('unknown' in x) return fallback(x.unknown);
        if (!pads || pads.length !== 2 * x.dims.length) return fallback(`${node.op} "${node.name}" has no Const paddings of rank ${x.dims.length}`);
        return { dims: x.dims.map((d, i) => (d === null ? null : d + pads[2 * i] + pads[2 * i + 1])) };
      }
      case 'MatMul':
      case '_FusedMatMul': {
        const [a, b] = [input(0), input(1)];
        if ('unknown' in a) return fallback(a.unknown);
        if ('unknown' in b || a.dims.length !== 2 || b.dims.length !== 2) return fallback(`MatMul "${node.name}" operands are not two known matrices`);
        const ta = node.attr.transpose_a?.b === true;
        const tb = node.attr.transpose_b?.b === true;
        return { dims: [ta ? a.dims[1] : a.dims[0], tb ? b.dims[0] : b.dims[1]] };
      }
      default:
        if (SAME_SHAPE.has(node.op)) {
          const x = input(0);
          return 'unknown' in x ? fallback(x.unknown) : x;
        }
        if (BROADCAST.has(node.op)) return broadcast(input(0), input(1)) ?? fallback(`"${node.name}" (${node.op}) operands do not broadcast statically`);
        return fallback(`op ${node.op} of "${node.name}" is not modelled by shape inference`);
    }
  }

  private reshape(node: GraphNode, x: ShapeResult): ShapeResult | undefined {
    const target = this.constInts(node.input[1] ?? '');
    if (!target) return undefined;
    const known = target.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    const inferred = target.filter((d) => d === -1).length;
    if (inferred === 0) return { dims: target };
    if (inferred > 1) return undefined;
    const size = 'dims' in x && x.dims.every((d) => d !== null) ? (x.dims as number[]).reduce((a, b) => a * b, 1) : null;
    // With a dynamic batch the -1 usually is the batch: it stays unknown.
    return { dims: target.map((d) => (d === -1 ? (size === null || known === 0 ? null : size / known) : d)) };
  }

  /**
   * Sliding-window ops (convs, depthwise convs, pools), channels last: output spatial sizes from
   * strides, padding and dilations; channels from the filter (depthwise: C * multiplier).
   */
  private window(node: GraphNode, x: ShapeResult, filter: ShapeResult): ShapeResult | undefined {
    const pool = node.op === 'MaxPool' || node.op === 'AvgPool';
    const rank = node.op === 'Conv3D' ? 3 : 2;
    const strides = readInts(node.attr, 'strides');
    const padding = readString(node.attr, 'padding');
    const format = readString(node.attr, 'data_format') ?? (rank === 3 ? 'NDHWC' : 'NHWC');
    const dilations = readInts(node.attr, 'dilations') ?? new Array(rank + 2).fill(1);
    const window = pool ? readInts(node.attr, 'ksize')?.slice(1, rank + 1) : ('dims' in filter ? filter.dims.slice(0, rank) : undefined);
    if ('unknown' in x || !window || !strides || strides.length !== rank + 2 || !format.endsWith('C')) return undefined;
    if (x.dims.length !== rank + 2 || (padding !== 'SAME' && padding !== 'VALID')) return undefined;
    const spatial = window.map((k, i) => {
      const size = x.dims[i + 1];
      if (size === null || k === null) return null;
      const extent = (k - 1) * (dilations[i + 1] ?? 1) + 1;
      return padding === 'SAME' ? Math.ceil(size / strides[i + 1]) : Math.floor((size - extent) / strides[i + 1]) + 1;
    });
    const channels = x.dims[rank + 1];
    if (pool) return { dims: [x.dims[0], ...spatial, channels] };
    if ('unknown' in filter || filter.dims.length !== rank + 2) return undefined;
    const depthwise = node.op.includes('Depthwise');
    const out = depthwise ? (channels === null || filter.dims[rank + 1] === null ? null : channels * filter.dims[rank + 1]!) : filter.dims[rank + 1];
    return { dims: [x.dims[0], ...spatial, out] };
  }
}

function broadcast(a: ShapeResult, b: ShapeResult): ShapeResult | undefined {
  if ('unknown' in a || 'unknown' in b) return undefined;
  const rank = Math.max(a.dims.length, b.dims.length);
  const pad = (d: Dims) => [...new Array<number>(rank - d.length).fill(1), ...d];
  const [x, y] = [pad(a.dims), pad(b.dims)];
  const dims: Dims = [];
  for (let i = 0; i < rank; i++) {
    if (x[i] === 1) dims.push(y[i]);
    else if (y[i] === 1 || y[i] === x[i]) dims.push(x[i]);
    else if (x[i] === null || y[i] === null) dims.push(x[i] ?? y[i]);
    else return undefined;
  }
  return { dims };
}
