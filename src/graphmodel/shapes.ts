/**
 * Static shapes of node outputs (output 0) for the ops that sit in front of patch embeds in
 * converted models: Placeholder, Const, elementwise ops, Reshape/Transpose with Const operands,
 * Conv3D. Anything else falls back to an `_output_shapes` attr, or is unknown with a reason, so
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
        return this.conv3d(node, input(0), input(1)) ?? fallback(`Conv3D "${node.name}" output shape cannot be computed`);
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

  private conv3d(node: GraphNode, x: ShapeResult, filter: ShapeResult): ShapeResult | undefined {
    const strides = readInts(node.attr, 'strides');
    const padding = readString(node.attr, 'padding');
    const format = readString(node.attr, 'data_format') ?? 'NDHWC';
    const dilations = readInts(node.attr, 'dilations') ?? [1, 1, 1, 1, 1];
    if ('unknown' in x || 'unknown' in filter || !strides || strides.length !== 5 || format !== 'NDHWC') return undefined;
    if (x.dims.length !== 5 || filter.dims.length !== 5) return undefined;
    const spatial = [1, 2, 3].map((a) => {
      const size = x.dims[a];
      const k = filter.dims[a - 1];
      if (size === null || k === null) return null;
      const extent = (k - 1) * dilations[a] + 1;
      return padding === 'SAME' ? Math.ceil(size / strides[a]) : Math.floor((size - extent) / strides[a]) + 1;
    });
    return { dims: [x.dims[0], ...spatial, filter.dims[4]] };
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
