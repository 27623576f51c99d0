/**
 * Shapes of node outputs in a GraphDef, static: Placeholders (their attr, else the signature),
 * Consts, and the op rules of shape-rules.ts, with small int tensors (shapes, axes, sizes)
 * folded as values so Reshapes fed by Shape/StridedSlice/Pack chains are known too. Where a rule
 * cannot tell (data-dependent ops, ops without a rule), the converter's `_output_shapes` attr,
 * then shapes learned by one execution of the model (learned-shapes.ts, kept on the IR) answer;
 * otherwise the shape is unknown with the reason and the tensor where it started. Pure.
 */
import { parseShapeProto, readShape } from './attrs';
import { GraphModelIR, GraphNode, GraphWeight, LearnedShapes, parseTensorName } from './ir';
import { Input, Known, MAX_FOLDED, ShapeResult, Unknown, Values, inferOutputs } from './shape-rules';

export type { Dims, ShapeResult } from './shape-rules';

interface Inferred {
  outputs: ShapeResult[];
  values: (Values | undefined)[];
}

/** The tensor name of output `index` of `node`, as tfjs and `execute` spell it. */
export const tensorName = (node: string, index: number) => (index === 0 ? node : `${node}:${index}`);

export class GraphShapes {
  private readonly memo = new Map<string, Inferred>();
  private readonly nodes: Map<string, GraphNode>;
  private readonly weights: Map<string, GraphWeight>;
  private readonly signature: Record<string, { name?: string; tensorShape?: unknown }>;
  private readonly learned: Map<string, (number | null)[]>;
  private readonly failure?: string;
  private readonly outputCounts = new Map<string, number>();

  /** `learned`: shapes from an execution (default: the IR's learnedShapes; null: none). */
  constructor(ir: GraphModelIR, learned: LearnedShapes | null | undefined = ir.learnedShapes) {
    this.nodes = new Map(ir.nodes.map((n) => [n.name, n]));
    this.weights = new Map(ir.weights.map((w) => [w.spec.name, w]));
    this.signature = ((ir.artifactExtra.signature as { inputs?: Record<string, { name?: string; tensorShape?: unknown }> } | undefined)?.inputs) ?? {};
    this.learned = learned?.shapes ?? new Map();
    this.failure = learned?.failure;
    // How many outputs of each node are read: Split/Unpack/FusedBatchNorm need at least that many.
    for (const node of ir.nodes) {
      for (const input of node.input) {
        const ref = parseTensorName(input);
        if (!ref.control) this.outputCounts.set(ref.node, Math.max(this.outputCounts.get(ref.node) ?? 1, ref.index + 1));
      }
    }
  }

  /** Shape of a tensor name ("node" or "node:1"). */
  of(tensor: string): ShapeResult {
    const ref = parseTensorName(tensor);
    const inferred = this.inferred(ref.node);
    return inferred.outputs[ref.index] ?? { unknown: `"${ref.node}" has no output ${ref.index}` };
  }

  /** The folded values of a small int tensor (rank 0 or 1), null where a size is unknown. */
  values(tensor: string): Values | undefined {
    const ref = parseTensorName(tensor);
    return this.inferred(ref.node).values[ref.index];
  }

  /** The int32 values of a Const (shapes, perms), if it is one. */
  constInts(tensor: string): number[] | undefined {
    const node = this.nodes.get(parseTensorName(tensor).node);
    const weight = node?.op === 'Const' ? this.weights.get(node.name) : undefined;
    return weight ? intsOf(weight) : undefined;
  }

  private inferred(node: string): Inferred {
    if (!this.memo.has(node)) this.resolve(node);
    return this.memo.get(node)!;
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
        this.memo.set(name, { outputs: [{ unknown: `no node "${name}"` }], values: [] });
        stack.pop();
        continue;
      }
      const pending = node.input.filter((i) => !i.startsWith('^')).map((i) => parseTensorName(i).node)
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

  private infer(node: GraphNode): Inferred {
    const count = this.outputCounts.get(node.name) ?? 1;
    const inputs: Input[] = node.input.filter((i) => !i.startsWith('^')).map((i) => {
      const ref = parseTensorName(i);
      const inferred = this.memo.get(ref.node);
      if (!inferred) return { shape: { unknown: `"${ref.node}" sits on a loop`, origin: ref.node } };
      return { shape: inferred.outputs[ref.index] ?? { unknown: `"${ref.node}" has no output ${ref.index}` }, value: inferred.values[ref.index] };
    });
    let known: Known[] | undefined;
    let cause: { unknown: string; origin?: string } | undefined;
    try {
      known = node.op === 'Placeholder' ? this.placeholder(node) : node.op === 'Const' ? this.constant(node) : undefined;
      known ??= inferOutputs(node, inputs, count);
    } catch (error) {
      if (!(error instanceof Unknown)) throw error;
      cause = error.result;
      // Said once, where the unknown starts; readers downstream get the same object.
      if (this.failure && cause.origin === node.name) cause = { ...cause, unknown: `${cause.unknown}, and ${this.failure}` };
    }
    const outputs: ShapeResult[] = [];
    const values: (Values | undefined)[] = [];
    for (let i = 0; i < Math.max(count, known?.length ?? 0); i++) {
      const k = known?.[i];
      // A rule's answer with unknown sizes, the converter's attr or the learned shape may know more.
      const other = this.declared(node, i);
      if (k && !(k.dims.includes(null) && other && other.length === k.dims.length)) {
        outputs.push({ dims: k.dims });
        values.push(k.value && k.value.length <= MAX_FOLDED ? k.value : undefined);
      } else if (other) {
        outputs.push({ dims: k ? k.dims.map((d, a) => d ?? other[a]) : other });
        values.push(k?.value);
      } else {
        outputs.push(k ? { dims: k.dims } : cause ?? { unknown: `${node.op} "${node.name}" has no output ${i}` });
        values.push(k?.value);
      }
    }
    return { outputs, values };
  }

  /** The shape `_output_shapes` declares, else the one an execution learned (batch-free sizes only). */
  private declared(node: GraphNode, index: number): (number | null)[] | undefined {
    const list = node.attr._output_shapes?.list as { shape?: unknown[] } | undefined;
    const dims = list?.shape?.[index] !== undefined ? parseShapeProto(list.shape[index]) : undefined;
    return dims ?? this.learned.get(tensorName(node.name, index));
  }

  private placeholder(node: GraphNode): Known[] {
    const signed = parseShapeProto(Object.values(this.signature).find((e) => e?.name === `${node.name}:0` || e?.name === node.name)?.tensorShape);
    const attr = readShape(node.attr, 'shape');
    // The signature can know sizes the Placeholder leaves open (TF2 exports with a fixed size).
    const dims = attr && signed?.length === attr.length ? attr.map((d, i) => d ?? signed[i]) : attr ?? signed;
    if (!dims) {
      const learned = this.learned.get(node.name);
      if (learned) return [{ dims: learned }];
      throw new Unknown({ unknown: `the model input "${node.name}" has no static rank (give its shape with --input-shape)`, origin: node.name });
    }
    return [{ dims }];
  }

  private constant(node: GraphNode): Known[] {
    const weight = this.weights.get(node.name);
    if (weight) {
      const ints = weight.spec.shape.reduce((a, b) => a * b, 1) <= MAX_FOLDED ? intsOf(weight) : undefined;
      return [{ dims: [...weight.spec.shape], value: ints && ints.length <= MAX_FOLDED ? ints : undefined }];
    }
    const dims = parseShapeProto((node.attr.value?.tensor as { tensorShape?: unknown } | undefined)?.tensorShape);
    if (!dims) throw new Unknown({ unknown: `Const "${node.name}" has no shape`, origin: node.name });
    return [{ dims }];
  }
}

function intsOf(weight: GraphWeight): number[] | undefined {
  if (weight.spec.dtype !== 'int32' || weight.spec.quantization) return undefined;
  return Array.from(new Int32Array(weight.bytes.slice().buffer));
}
