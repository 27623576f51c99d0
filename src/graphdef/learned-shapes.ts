/**
 * Where static shape inference (shapes.ts) cannot tell the input or output shape of a conv (a
 * TF2 while loop in front of it, NonMaxSuppression, an op without a rule), one execution of the
 * model on zeros tells: tfjs's own GraphModel.executeAsync(inputs, names) at the model's sizes
 * (or the --input-shape sizes), asked only for the tensors still unknown (and where their
 * unknown started, so the static rules carry on from there). Runs on the caller's engine and
 * backend, as they are, and disposes everything it makes.
 */
import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors';
import { parseShapeProto } from './attrs';
import type { InputShapes } from '../formats/input-shapes';
import { GraphModelIR, LearnedShapes, artifactsFromGraphIR, parseTensorName } from './ir';
import { GraphShapes, tensorName } from './shapes';
import type { Dims } from './shape-rules';
import { runGraph } from '../formats/load';

/** Ops whose inputs and outputs the conv rules read shapes of. */
export const CONV_OPS = new Set(['Conv2D', '_FusedConv2D', 'Conv3D', 'DepthwiseConv2dNative', 'FusedDepthwiseConv2dNative',
  'Conv2DBackpropInput', 'Conv3DBackpropInputV2']);

/** The batch the model runs at when its batch is dynamic and no --input-shape gives one. */
const RUN_BATCH = 1;

const partial = (dims: Dims, batchFree: boolean) => dims.includes(null) && !(batchFree && dims.indexOf(null) === 0 && !dims.slice(1).includes(null));

/**
 * The tensors around convs whose shape static inference leaves unknown (or with unknown sizes
 * besides a dynamic batch), and the tensors where each of those unknowns started.
 */
export function unknownConvTensors(ir: GraphModelIR, shapes = new GraphShapes(ir, null)): string[] {
  const wanted = new Set<string>();
  const nodes = new Map(ir.nodes.map((n) => [n.name, n]));
  const ask = (tensor: string) => {
    const shape = shapes.of(tensor);
    if ('unknown' in shape) {
      wanted.add(canonical(tensor));
      if (shape.origin && nodes.has(shape.origin)) wanted.add(shape.origin);
    } else if (partial(shape.dims, true)) wanted.add(canonical(tensor));
  };
  for (const node of ir.nodes) {
    if (!CONV_OPS.has(node.op)) continue;
    const data = node.input.filter((i) => !i.startsWith('^'));
    data.forEach(ask);
    ask(node.name);
    // The Conv1D form reads the shape in front of its ExpandDims.
    const expand = nodes.get(parseTensorName(data[0] ?? '').node);
    if (expand?.op === 'ExpandDims' && expand.input[0]) ask(expand.input[0]);
  }
  // Placeholders are fed, not fetched; a tensor inside a TF1 while loop has one value per
  // iteration, and asking tfjs for it would fail the whole run.
  const looped = loopBodies(ir);
  return [...wanted].filter((t) => {
    const node = parseTensorName(t).node;
    return nodes.get(node)?.op !== 'Placeholder' && !looped.has(node);
  });
}

/** Nodes inside TF1 while-loop frames: from each Enter forward, up to the loop's Exit nodes. */
function loopBodies(ir: GraphModelIR): Set<string> {
  const readers = new Map<string, string[]>();
  for (const node of ir.nodes) {
    for (const input of node.input) {
      const from = parseTensorName(input).node;
      if (!readers.has(from)) readers.set(from, []);
      readers.get(from)!.push(node.name);
    }
  }
  const ops = new Map(ir.nodes.map((n) => [n.name, n.op]));
  const inside = new Set<string>();
  const pending = ir.nodes.filter((n) => n.op === 'Enter').map((n) => n.name);
  while (pending.length) {
    const name = pending.pop()!;
    if (inside.has(name)) continue;
    inside.add(name);
    for (const next of readers.get(name) ?? []) if (ops.get(next) !== 'Exit') pending.push(next);
  }
  return inside;
}

const canonical = (tensor: string) => {
  const ref = parseTensorName(tensor);
  return tensorName(ref.node, ref.index);
};

/**
 * Learns the shapes static inference leaves unknown around convs, by one run of the model on
 * zeros, and keeps them on the IR (GraphShapes reads them). Returns notes for the report.
 */
export async function learnUnknownShapes(ir: GraphModelIR, options: { inputShapes?: InputShapes } = {}): Promise<string[]> {
  // A typo in --input-shape would otherwise go unnoticed (verification refuses it the same way).
  const inputs = ir.nodes.filter((n) => n.op === 'Placeholder').map((n) => n.name);
  for (const name of Object.keys(options.inputShapes ?? {})) {
    if (!inputs.includes(name.replace(/:0$/, ''))) throw new InputError(`--input-shape names "${name}", which is not a model input (inputs: ${inputs.join(', ')})`);
  }
  const wanted = unknownConvTensors(ir);
  if (wanted.length === 0) return [];
  const learned: LearnedShapes = { shapes: new Map() };
  ir.learnedShapes = learned;
  let model: tf.GraphModel | undefined;
  const made: tf.Tensor[] = [];
  try {
    model = await tf.loadGraphModel(tf.io.fromMemory(artifactsFromGraphIR(ir)));
    const feed: tf.NamedTensorMap = {};
    /** The batch sizes the run feeds inputs of dynamic batch with: a learned leading size equal to one stays null. */
    const batches = new Set<number>();
    const signature = (ir.artifactExtra.signature as { inputs?: Record<string, { name?: string; tensorShape?: unknown }> } | undefined)?.inputs ?? {};
    // Sizes the user gave are known whether or not the run can be made.
    for (const input of model.inputs) {
      const given = givenShape(options.inputShapes, input.name);
      if (given) learned.shapes.set(canonical(input.name), given.map((d, i) => (i === 0 && (input.shape?.[0] ?? -1) < 0 ? null : d)));
    }
    for (const input of model.inputs) {
      const given = givenShape(options.inputShapes, input.name);
      // The signature can know sizes the Placeholder leaves open (TF2 exports with a fixed size).
      const entry = Object.values(signature).find((e) => e?.name === `${input.name}:0` || e?.name === input.name);
      const signed = parseShapeProto(entry?.tensorShape);
      const declared = input.shape && signed?.length === input.shape.length ? input.shape.map((d, i) => (d < 0 ? signed[i] ?? -1 : d)) : input.shape;
      if (!given && (!declared || declared.slice(1).some((d) => d < 0))) {
        learned.failure = `the model cannot be run to learn it: input "${input.name}" has ${declared ? `sizes ${JSON.stringify(declared)}` : 'no static rank'} (give its shape with --input-shape)`;
        return [];
      }
      const shape = given ?? declared!.map((d) => (d < 0 ? RUN_BATCH : d));
      if ((input.shape?.[0] ?? -1) < 0 && shape.length) batches.add(shape[0]);
      feed[input.name] = tf.zeros(shape, input.dtype);
      made.push(feed[input.name]);
    }
    // Control flow (TF2 while loops) and dynamic ops need the async executor: runGraph picks it.
    const tensors = await runGraph(model, feed, wanted);
    made.push(...tensors);
    tensors.forEach((t, i) => learned.shapes.set(wanted[i], t.shape.map((d, axis) => (axis === 0 && batches.has(d) ? null : d))));
    return [`shapes of ${wanted.length} tensor(s) static inference could not tell were learned by running the model once on zeros`];
  } catch (error) {
    learned.failure = `running the model on zeros to learn it failed: ${String((error as Error).message ?? error).split('\n')[0]}`;
    return [];
  } finally {
    tf.dispose(made);
    model?.dispose();
  }
}

/** `shapes[name]`, also under "name:0" (as --input-shape is matched for verification). */
function givenShape(shapes: InputShapes | undefined, name: string): number[] | undefined {
  if (!shapes) return undefined;
  const bare = name.replace(/:0$/, '');
  return shapes[name] ?? shapes[bare] ?? shapes[`${bare}:0`];
}
