/**
 * Static shape inference over the IR without building any weights: each layer is constructed
 * from its config through tfjs's own class registry and asked for `computeOutputShape`, so the
 * shapes are exactly tfjs's, for built-in and registered custom layers alike. A layer whose
 * shape cannot be computed makes everything downstream "unknown", with the reason kept.
 */
import * as tf from '@tensorflow/tfjs';
import { Graph, JsonObject, Json, LayerNode, TensorRef, ownNodeCount } from './types';

export type Shape = (number | null)[];
export interface Unknown {
  unknown: string;
}
export type Shapes = Shape[] | Unknown;

export interface LayersShapes {
  /** Input shapes of every call of every layer, by layer name, in call order. */
  callInputs: Map<string, Shapes[]>;
  /** Shapes of nested models, by layer name (inputs merged over all calls). */
  nested: Map<string, LayersShapes>;
  outputs: Shapes;
}

export function isUnknown(shapes: Shapes): shapes is Unknown {
  return !Array.isArray(shapes);
}

type LayerClass = [unknown, (cls: unknown, config: unknown) => { computeOutputShape(s: unknown): unknown }];

export function registry(): Record<string, LayerClass> {
  return tf.serialization.SerializationMap.getMap().classNameMap as unknown as Record<string, LayerClass>;
}

export function isKnownLayerClass(className: string): boolean {
  return className in registry();
}

/**
 * The Python-style config as tfjs constructor args (snake_case keys and values to camelCase,
 * names untouched), mirroring tfjs-layers' convertPythonicToTs, which tfjs does not export.
 * Initializers, regularizers and constraints are dropped: they never change a shape.
 */
export function toLayerArgs(value: Json, key = ''): unknown {
  const camel = (text: string) => text.replace(/_(.)/g, (_, c: string) => c.toUpperCase());
  if (typeof value === 'string') return key === 'name' ? value : camel(value);
  if (Array.isArray(value)) return value.map((item) => toLayerArgs(item, key));
  if (value === null || typeof value !== 'object') return value;
  const args: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (/_(initializer|regularizer|constraint)$/.test(k)) continue;
    args[camel(k)] = toLayerArgs(v, k);
  }
  return args;
}

type ShapeComputer = { computeOutputShape(shape: unknown): unknown };

/** Layer objects are built once per layer (not per call) and never built with weights. */
const instances = new WeakMap<LayerNode, ShapeComputer>();

export function layerOutputShape(layer: LayerNode, inputs: Shape[]): Shape[] {
  let instance = instances.get(layer);
  if (!instance) {
    const entry = registry()[layer.className];
    if (!entry) throw new Error(`unknown layer class ${layer.className}`);
    instance = entry[1](entry[0], toLayerArgs(layer.config as JsonObject));
    instances.set(layer, instance);
  }
  const out = instance.computeOutputShape(inputs.length === 1 ? inputs[0] : inputs) as Shape | Shape[];
  return Array.isArray(out[0]) || out.length === 0 ? (out as Shape[]) : [out as Shape];
}

function declaredInputShape(layer: LayerNode): Shape | undefined {
  const shape = layer.config.batch_input_shape ?? layer.config.batch_shape;
  return Array.isArray(shape) ? (shape as Shape) : undefined;
}

/** Declared dims win; a null dim is filled from the caller when every call agrees on it. */
function mergeShapes(declared: Shape | undefined, fromCalls: Shape[]): Shape | undefined {
  const base = declared ?? fromCalls[0];
  if (!base) return undefined;
  return base.map((dim, i) => {
    if (dim !== null) return dim;
    const seen = new Set(fromCalls.map((shape) => shape[i]));
    return seen.size === 1 ? [...seen][0] : null;
  });
}

/** Infers shapes; `callerInputs` holds, per model input, the shapes it receives at each call. */
export function inferShapes(graph: Graph, callerInputs: Shape[][] = []): LayersShapes {
  return graph.kind === 'sequential' ? inferSequential(graph, callerInputs) : inferFunctional(graph, callerInputs);
}

/** The nested model's own shapes, with its inputs merged over all its calls. */
function inferNested(layer: LayerNode, callInputs: Shape[][], result: LayersShapes): void {
  const perInput = (callInputs[0] ?? []).map((_, i) => callInputs.map((call) => call[i]));
  result.nested.set(layer.name, inferShapes(layer.graph!, perInput));
}

function inferSequential(graph: Graph, callerInputs: Shape[][]): LayersShapes {
  const result: LayersShapes = { callInputs: new Map(), nested: new Map(), outputs: [] };
  const first = graph.layers[0];
  const start = mergeShapes(declaredInputShape(first), callerInputs[0] ?? []);
  let current: Shapes = start ? [start] : { unknown: `no input shape declared for ${graph.name}` };
  for (const layer of graph.layers) {
    if (layer.className === 'InputLayer') continue;
    result.callInputs.set(layer.name, [current]);
    if (isUnknown(current)) continue;
    if (layer.graph) inferNested(layer, [current], result);
    current = computeCall(layer, current);
  }
  result.outputs = current;
  return result;
}

function computeCall(layer: LayerNode, inputs: Shape[]): Shapes {
  if (layer.graph) return inferShapes(layer.graph, inputs.map((shape) => [shape])).outputs;
  try {
    return layerOutputShape(layer, inputs);
  } catch (error) {
    return { unknown: `shape of layer "${layer.name}" could not be computed (${(error as Error).message})` };
  }
}

function inferFunctional(graph: Graph, callerInputs: Shape[][]): LayersShapes {
  const result: LayersShapes = { callInputs: new Map(), nested: new Map(), outputs: [] };
  const byName = new Map(graph.layers.map((layer) => [layer.name, layer]));
  const nodeOutputs = new Map<string, Shapes>();

  const inputIndex = new Map(graph.inputs.map((ref, i) => [ref.layer, i]));
  const inputsOf = (call: { inputs: TensorRef[] }): Shapes => {
    const shapes: Shape[] = [];
    for (const ref of call.inputs) {
      const produced = outputsOf(byName.get(ref.layer)!, ref.node);
      if (isUnknown(produced)) return produced;
      const shape = produced[ref.tensor];
      if (!shape) return { unknown: `layer "${ref.layer}" has no output tensor ${ref.tensor}` };
      shapes.push(shape);
    }
    return shapes;
  };
  const outputsOf = (layer: LayerNode, node: number): Shapes => {
    if (layer.className === 'InputLayer') {
      const i = inputIndex.get(layer.name);
      const shape = mergeShapes(declaredInputShape(layer), i === undefined ? [] : callerInputs[i] ?? []);
      return shape ? [shape] : { unknown: `input "${layer.name}" declares no shape` };
    }
    const key = `${layer.name}#${node}`;
    let shapes = nodeOutputs.get(key);
    if (!shapes) {
      const callIndex = node - ownNodeCount(layer);
      const inputs = inputsOf(layer.calls[callIndex]);
      result.callInputs.get(layer.name)![callIndex] = inputs;
      shapes = isUnknown(inputs) ? inputs : computeCall(layer, inputs);
      nodeOutputs.set(key, shapes);
    }
    return shapes;
  };

  for (const layer of graph.layers) result.callInputs.set(layer.name, []);
  for (const layer of graph.layers) {
    layer.calls.forEach((_, i) => outputsOf(layer, i + ownNodeCount(layer)));
    const known = result.callInputs.get(layer.name)!.filter((shapes): shapes is Shape[] => !isUnknown(shapes));
    if (layer.graph && known.length) inferNested(layer, known, result);
  }
  const outputs: Shape[] = [];
  for (const ref of graph.outputs) {
    const produced = outputsOf(byName.get(ref.layer)!, ref.node);
    if (isUnknown(produced)) {
      result.outputs = produced;
      return result;
    }
    outputs.push(produced[ref.tensor]);
  }
  result.outputs = outputs;
  return result;
}
