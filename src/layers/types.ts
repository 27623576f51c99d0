/**
 * The model IR: a Keras/tfjs layers topology as a graph of layer calls, plus the weights as
 * typed arrays. Passes read and edit this; only src/layers/json.ts knows the JSON spelling.
 */
import { InputError } from '../errors';

export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

/** One output tensor of one call of a layer, as Keras writes it: [layer, node, tensor, kwargs]. */
export interface TensorRef {
  layer: string;
  /** Index into the layer's runtime node list (see `ownNodeCount`). */
  node: number;
  tensor: number;
  kwargs: JsonObject;
}

/** One call of a layer: the tensors it consumes, in order. */
export interface Call {
  inputs: TensorRef[];
}

export interface LayerNode {
  name: string;
  className: string;
  /** The layer's config in the JSON spelling (snake_case). For nested models, see `graph`. */
  config: JsonObject;
  /** Functional graphs only; a Sequential's layers are an implicit chain. */
  calls: Call[];
  /** Set when the layer is itself a model (Sequential / Model / Functional). */
  graph?: Graph;
  /** Keys of the layer entry we do not interpret, kept so untouched layers round-trip. */
  extra: JsonObject;
}

export interface Graph {
  kind: 'functional' | 'sequential';
  /** 'Model', 'Functional' or 'Sequential', kept as read. */
  className: string;
  name: string;
  layers: LayerNode[];
  /** Functional only. */
  inputs: TensorRef[];
  outputs: TensorRef[];
  /** Config keys we do not interpret (kept for round-trip). */
  extraConfig: JsonObject;
  /** True when the Sequential config was a bare list of layers (old Keras format). */
  sequentialAsList?: boolean;
}

export type WeightValues = Float32Array | Int32Array | Uint8Array | Uint16Array;
export type WeightDtype = 'float32' | 'int32' | 'bool';

/**
 * How a weight is stored, as in the manifest: per-tensor affine uint8/uint16 (value =
 * q * scale + min) or float16. Both are elementwise, so reordering the stored elements is the
 * same as reordering the values: rewrites that permute a weight keep its encoding, exactly.
 */
export interface WeightQuantization {
  dtype: 'uint8' | 'uint16' | 'float16';
  scale?: number;
  min?: number;
}

export interface Weight {
  /** Manifest name, e.g. "patch_embed/kernel" or "outer/patch_embed/kernel". */
  name: string;
  shape: number[];
  /** The dtype tfjs decodes the weight to. */
  dtype: WeightDtype;
  /**
   * The stored elements, one per entry of `shape`: the values themselves, or with
   * `quantization` the quantized elements (Uint8Array for uint8, Uint16Array for uint16 and
   * float16 bits). Passes may reorder them but never read them as numbers.
   */
  values: WeightValues;
  quantization?: WeightQuantization;
}

/** Everything a layers model is: topology, weights, and the artifact fields we pass through. */
export interface ModelIR {
  graph: Graph;
  /** Top-level keys of modelTopology besides class_name/config (keras_version, backend, ...). */
  topologyExtra: JsonObject;
  weights: Weight[];
  /** format, generatedBy, convertedBy, trainingConfig, userDefinedMetadata, ... */
  artifactExtra: JsonObject;
  /** Facts collected while reading and rewriting (e.g. quantized weights kept in their encoding). */
  notes: string[];
  /** Set when the model was read in another form and converted (Keras 3 -> Keras 2 form). */
  converted?: Conversion;
}

export interface Conversion {
  from: 'keras3';
  /** keras_version of the topology, when it says. */
  kerasVersion: string | null;
  /** What changed, one line per kind with counts. */
  changes: string[];
}

/** Layer classes that are themselves models: their node 0 is their own construction node. */
export const CONTAINER_CLASSES = new Set(['Sequential', 'Model', 'Functional']);

/**
 * How many nodes a layer has before its first call in this graph. tfjs and Keras number the
 * nodes of a model-as-layer from 1 (node 0 links its own inputs to outputs) and an InputLayer's
 * only node is 0; plain layers start at 0. References must be read with this offset.
 */
export function ownNodeCount(layer: LayerNode): number {
  return layer.className === 'InputLayer' || CONTAINER_CLASSES.has(layer.className) ? 1 : 0;
}

/** A malformed or inconsistent topology: bad input, reported with the offending key path. */
export class GraphError extends InputError {
  override name = 'GraphError';
}
