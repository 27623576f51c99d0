/**
 * The one module that knows how a layers topology is spelled in model.json (tfjs-layers and
 * Keras 2 "class_name/config/inbound_nodes" form). Parsing checks structure and names the key
 * path of anything malformed; reference checks live in lint.ts. Keras 3 topologies are first
 * converted to the Keras 2 form by keras3.ts (readTopology).
 */
import { describeValue as describe, isObject } from '../validate/describe';
import { Keras3Conversion, convertKeras3Topology, isKeras3Topology } from './keras3';
import {
  CONTAINER_CLASSES,
  Graph,
  GraphError,
  Json,
  JsonObject,
  LayerNode,
  TensorRef,
} from './types';

function fail(path: string, message: string): never {
  throw new GraphError(`${path}: ${message}`);
}

function expectObject(value: unknown, path: string): JsonObject {
  if (!isObject(value)) fail(path, `expected an object, got ${describe(value)}`);
  return value;
}

function expectString(value: unknown, path: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    fail(path, `expected a non-empty string, got ${describe(value)}`);
  }
  return value;
}

function expectArray(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) fail(path, `expected an array, got ${describe(value)}`);
  return value;
}

function expectIndex(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    fail(path, `expected a non-negative integer, got ${describe(value)}`);
  }
  return value;
}

function omit(object: JsonObject, keys: string[]): JsonObject {
  const rest: JsonObject = {};
  for (const [key, value] of Object.entries(object)) if (!keys.includes(key)) rest[key] = value;
  return rest;
}

/** [name, node, tensor] or [name, node, tensor, kwargs]. */
function parseRef(value: unknown, path: string): TensorRef {
  const parts = expectArray(value, path);
  if (parts.length < 3 || parts.length > 4) {
    fail(path, `expected [layer, node, tensor(, kwargs)], got ${describe(value)}`);
  }
  const kwargs = parts.length === 4 && parts[3] !== null ? expectObject(parts[3], `${path}[3]`) : {};
  return {
    layer: expectString(parts[0], `${path}[0]`),
    node: expectIndex(parts[1], `${path}[1]`),
    tensor: expectIndex(parts[2], `${path}[2]`),
    kwargs,
  };
}

/** Models nested deeper than this are hostile, not real: the recursion would exhaust the stack. */
const MAX_NESTING = 32;

// Reached only by topologies that mix forms (Keras 3 ones are converted by readTopology first).
const KERAS3 = 'Keras 3 spelling in a topology that is otherwise not Keras 3 (no keras_version 3.x, InputLayer batch_shape, dtype policy or __keras_tensor__)';

function parseLayer(entry: unknown, path: string, inFunctional: boolean, depth: number): LayerNode {
  const object = expectObject(entry, path);
  const className = expectString(object.class_name, `${path}.class_name`);
  const graph = CONTAINER_CLASSES.has(className)
    ? parseGraph({ class_name: className, config: object.config ?? null }, path, depth + 1)
    : undefined;
  // tfjs refuses a layer without a config object ("Improper config format"), naming no layer.
  const config = graph ? {} : expectObject(object.config, `${path}.config`);
  // (A dtype policy object makes the file Keras 3 and converted; one is only read here when the
  // conversion refused a file stock tfjs loads as it is: it tolerates them.)
  const name = inFunctional
    ? expectString(object.name, `${path}.name`)
    : graph?.name ?? expectString(config.name, `${path}.config.name`);
  // tfjs names the layer (and so its weights) after config.name, references use the entry's name.
  if (inFunctional && !graph && config.name !== undefined && config.name !== name) {
    fail(`${path}.config.name`, `expected ${describe(name)} (the layer's "name"), got ${describe(config.name)}`);
  }
  const calls = [];
  if (inFunctional) {
    // Required even when empty: tfjs's loader reads it unconditionally.
    const inbound = expectArray(object.inbound_nodes, `${path}.inbound_nodes`);
    for (let i = 0; i < inbound.length; i++) {
      const nodePath = `${path}.inbound_nodes[${i}]`;
      if (isObject(inbound[i])) {
        fail(nodePath, `${KERAS3} (inbound node objects with "args")`);
      }
      const refs = expectArray(inbound[i], nodePath);
      calls.push({ inputs: refs.map((ref, j) => parseRef(ref, `${nodePath}[${j}]`)) });
    }
  }
  const layer: LayerNode = {
    name,
    className,
    config,
    calls,
    extra: omit(object, ['name', 'class_name', 'config', 'inbound_nodes']),
  };
  if (graph) layer.graph = graph;
  return layer;
}

/** Parses `modelTopology` (or a nested model's layer entry) into a Graph. */
export function parseGraph(topology: unknown, path = 'modelTopology', depth = 0): Graph {
  // The path itself would be kilobytes long: name the root.
  if (depth > MAX_NESTING) fail('modelTopology', `models nested more than ${MAX_NESTING} deep`);
  const object = expectObject(topology, path);
  const className = expectString(object.class_name, `${path}.class_name`);
  if (className === 'Sequential') {
    const asList = Array.isArray(object.config);
    const config = asList ? { layers: object.config as Json } : expectObject(object.config, `${path}.config`);
    const entries = expectArray(config.layers, `${path}.config.layers`);
    if (entries.length === 0) fail(`${path}.config.layers`, 'a Sequential model needs at least one layer');
    return {
      kind: 'sequential',
      className,
      name: typeof config.name === 'string' ? config.name : 'sequential',
      layers: entries.map((entry, i) => parseLayer(entry, `${path}.config.layers[${i}]`, false, depth)),
      inputs: [],
      outputs: [],
      // keeps `name` too: written back only if it was there
      extraConfig: omit(config, ['layers']),
      sequentialAsList: asList,
    };
  }
  if (className !== 'Model' && className !== 'Functional') {
    fail(`${path}.class_name`, `expected "Sequential", "Model" or "Functional", got ${describe(className)}`);
  }
  const config = expectObject(object.config, `${path}.config`);
  const entries = expectArray(config.layers, `${path}.config.layers`);
  const refList = (key: string) => {
    const refs = config[key];
    // Keras 3 writes one input as a bare [name, node, tensor] and several as a dict.
    if (isObject(refs) || (Array.isArray(refs) && typeof refs[0] === 'string')) {
      fail(`${path}.config.${key}`, `${KERAS3} (${describe(refs)})`);
    }
    return expectArray(refs, `${path}.config.${key}`).map((ref, i) => parseRef(ref, `${path}.config.${key}[${i}]`));
  };
  return {
    kind: 'functional',
    className,
    name: expectString(config.name ?? 'model', `${path}.config.name`),
    layers: entries.map((entry, i) => parseLayer(entry, `${path}.config.layers[${i}]`, true, depth)),
    inputs: refList('input_layers'),
    outputs: refList('output_layers'),
    extraConfig: omit(config, ['name', 'layers', 'input_layers', 'output_layers']),
  };
}

function refToJson(ref: TensorRef, withKwargs: boolean): Json {
  return withKwargs ? [ref.layer, ref.node, ref.tensor, ref.kwargs] : [ref.layer, ref.node, ref.tensor];
}

function layerToJson(layer: LayerNode, inFunctional: boolean): JsonObject {
  const config = layer.graph ? graphConfigToJson(layer.graph) : layer.config;
  if (!inFunctional) return { class_name: layer.className, config, ...layer.extra };
  return {
    name: layer.name,
    class_name: layer.className,
    config,
    inbound_nodes: layer.calls.map((call) => call.inputs.map((ref) => refToJson(ref, true))),
    ...layer.extra,
  };
}

function graphConfigToJson(graph: Graph): Json {
  if (graph.kind === 'sequential') {
    const layers = graph.layers.map((layer) => layerToJson(layer, false));
    return graph.sequentialAsList ? layers : { ...graph.extraConfig, layers };
  }
  return {
    name: graph.name,
    layers: graph.layers.map((layer) => layerToJson(layer, true)),
    input_layers: graph.inputs.map((ref) => refToJson(ref, false)),
    output_layers: graph.outputs.map((ref) => refToJson(ref, false)),
    ...graph.extraConfig,
  };
}

/** The inverse of parseGraph: `{class_name, config}` ready for modelTopology. */
export function graphToJson(graph: Graph): JsonObject {
  return { class_name: graph.className, config: graphConfigToJson(graph) };
}

export interface TopologyRead {
  graph: Graph;
  /** Top-level keys besides class_name/config (of model_config when the topology wraps one). */
  extra: JsonObject;
  /** Set when the topology was Keras 3's and was converted. */
  keras3: Keras3Conversion | null;
}

export interface ReadOptions {
  /** false: read the topology as it is, without the Keras 3 conversion (for files stock tfjs loads as they are). */
  keras3?: boolean;
}

/**
 * Reads modelTopology as a model.json holds it: Keras .h5 exports wrap the model in
 * `model_config`; Keras 3 topologies are converted to the Keras 2 form tfjs loads.
 */
export function readTopology(topology: JsonObject, options: ReadOptions = {}): TopologyRead {
  const keras3 = options.keras3 !== false && isKeras3Topology(topology) ? convertKeras3Topology(topology) : null;
  const model = keras3?.topology ?? (isObject(topology.model_config) ? topology.model_config : topology);
  const { class_name: _c, config: _cfg, ...extra } = model;
  return { graph: parseGraph(model), extra, keras3 };
}
