/**
 * Keras 3 LayersModel JSON -> the Keras 2 form tfjs-layers 4.x loads. tensorflowjs_converter 4.22
 * copies the Keras 3 `model_config` of an .h5 unchanged (tfjs-converter keras_h5_conversion.py,
 * h5_merged_saved_model_to_tfjs_format), so the form is what keras 3.10 writes:
 * - layers `{class_name, config}` via legacy serialization (legacy/saving/serialization.py,
 *   serialize_keras_object), a Functional's entries plus `name` and `inbound_nodes`
 *   (models/functional.py, Functional.get_config); nested objects that were already dicts keep
 *   `module`/`registered_name` (saving/serialization_lib.py, serialize_keras_object): dtype
 *   policies, initializers, regularizers, constraints;
 * - an inbound node is `{args, kwargs}` with each tensor as `{"class_name": "__keras_tensor__",
 *   "config": {.., "keras_history": [layer, node, tensor]}}` (functional.py serialize_node);
 *   a merge layer's args are nested (`[[kt, kt]]`);
 * - `input_layers`/`output_layers` mirror the model's input/output structure;
 * - a Keras 3 model has no node of its own: `keras_history` counts a nested model's calls from 0,
 *   `input_layers`/`output_layers` count a nested Functional from 1 and a Sequential from 0
 *   (functional.py get_config's node_reindexing_map and functional_from_config's get_tensor).
 *   tfjs counts nested models from 1 everywhere;
 * - InputLayer config is `batch_shape, dtype, sparse, ragged, name` (layers/core/input_layer.py);
 * - weights are named by variable path (legacy_h5_format.py save_subset_weights_to_hdf5_group,
 *   `w.path`): a layer builds in the name scope of whatever builds it (layers/layer.py
 *   build_wrapper), so a Sequential's layers get `sequential/dense/kernel`. tfjs names a weight
 *   `<layer>/<weight>` whatever the nesting.
 * The .keras route (`--input_format keras_keras`, h5_v3_merged_saved_model_to_tfjs_format)
 * strips module/registered_name and keeps build_config/compile_config; its topology converts the
 * same way, its positional weight names (`layers/dense/vars/0`) are resolved by
 * kerasFileRouteWeightName.
 *
 * Whatever tfjs-layers cannot express is refused naming the layer and the option, before
 * anything is produced.
 */
import { describeValue as describe, isObject } from '../validate/describe';
import { Keras3Error } from './keras3-errors';
import { IDENTITY_AT_INFERENCE, MASK_OPS, removeMaskOps, rewireDropped, splitKeepdims } from './keras3-graph';
import { NormalizationPlan, normalizationConfig } from './keras3-normalization';
import { registry, toLayerArgs } from './shapes';
import { CONTAINER_CLASSES, Json, JsonObject } from './types';

export { Keras3Error };

export interface Keras3Conversion {
  /** `{class_name, config}` in the Keras 2 form. */
  topology: JsonObject;
  kerasVersion: string | null;
  /** One line per kind of change, with counts (for the report). */
  changes: string[];
  /** Names of every layer that is not itself a model, at any depth, with its Keras 3 class. */
  layerClasses: Map<string, string>;
  /** Layers removed as the identity at inference: weights stored under them are dropped. */
  dropped: Set<string>;
  /** Normalization layers now BatchNormalization: the weights to make for each, by layer name. */
  normalizations: Map<string, NormalizationPlan>;
}

/** Counts changes by kind, in first-seen order. */
class Changes {
  private counts = new Map<string, number>();
  add(kind: string, n = 1): void {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + n);
  }
  lines(): string[] {
    return [...this.counts].map(([kind, n]) => `${kind} (${n})`);
  }
}

/** Keys of a serialized object that only Keras 3's own loader reads. */
const OBJECT_KEYS = ['module', 'registered_name'];
/** Keys of a layer entry that only Keras 3's own loader reads (serialization_lib get_build_and_compile_config). */
const ENTRY_KEYS = ['build_config', 'compile_config'];

/**
 * Keras 3 layer options tfjs-layers does not read, with the values at which they change nothing
 * at inference (so dropping them is exact): mostly Keras's defaults. Any other value is refused.
 */
const NEUTRAL: Record<string, { neutral: (value: Json) => boolean; why: string }> = {
  // base_conv.py: groups > 1 splits channels; tfjs convs have no groups
  groups: { neutral: (v) => v === 1 || v === null, why: 'grouped convolution' },
  // batch_normalization.py: cross-replica statistics, and renormalization, act while training only
  synchronized: { neutral: () => true, why: '' },
  renorm: { neutral: () => true, why: '' },
  renorm_clipping: { neutral: () => true, why: '' },
  renorm_momentum: { neutral: () => true, why: '' },
  // layer_normalization.py: RMS scaling is another normalization
  rms_scaling: { neutral: (v) => v === false || v === null, why: 'RMS normalization' },
  // dense.py / embedding.py / einsum_dense.py: written only when LoRA is on, and adds weights
  lora_rank: { neutral: (v) => v === null || v === 0, why: 'LoRA adapter weights' },
  lora_alpha: { neutral: (v) => v === null, why: 'LoRA adapter weights' },
  quantization_config: { neutral: (v) => v === null, why: 'quantized layer' },
  // input_layer.py
  sparse: { neutral: (v) => v === false || v === null, why: 'sparse input' },
  ragged: { neutral: (v) => v === false || v === null, why: 'ragged input' },
  optional: { neutral: (v) => v === false || v === null, why: 'optional input' },
  // layer.py: a training loss term, nothing at inference
  activity_regularizer: { neutral: () => true, why: '' },
  // lstm.py / gru.py: which kernel runs, same result
  use_cudnn: { neutral: () => true, why: '' },
  // activations/relu.py: f(x) = negative_slope * (x - threshold) below threshold (defaults 0, 0)
  negative_slope: { neutral: (v) => v === 0 || v === null, why: 'leaky slope with a max_value or threshold' },
  threshold: { neutral: (v) => v === 0 || v === null, why: 'thresholded ReLU' },
  // pooling/base_global_pooling.py: keepdims=true is converted to pooling + Reshape before this
  keepdims: { neutral: (v) => v === false || v === null, why: '' },
  // rnn.py: zeros instead of the last output at masked steps; checked against masks before this
  zero_output_for_mask: { neutral: () => true, why: '' },
  // random draws (dropout, noise) happen in training only
  seed: { neutral: () => true, why: '' },
  // tfjs 1D convs/pooling and CenterCrop compute channels_last only
  data_format: { neutral: (v) => v === 'channels_last' || v === null, why: 'channels_first' },
  // conv_transpose: tfjs Conv2DTranspose has no dilation
  dilation_rate: { neutral: (v) => (Array.isArray(v) ? v.every((d) => d === 1) : v === 1 || v === null), why: 'dilated transposed convolution' },
  // resizing.py: padding instead of stretching, and antialiasing, change the result
  pad_to_aspect_ratio: { neutral: (v) => v === false || v === null, why: 'padding to the aspect ratio' },
  antialias: { neutral: (v) => v === false || v === null, why: 'antialiased resizing' },
  // conv_transpose: tfjs infers the output size as Keras does without output_padding
  output_padding: { neutral: (v) => v === null, why: 'explicit output padding' },
  fill_mode: { neutral: () => true, why: '' },
  fill_value: { neutral: () => true, why: '' },
};

/** Options that act in training only: regularizers, constraints, initializers (the weights are stored). */
const TRAINING_ONLY = /_(regularizer|constraint|initializer)$/;

/** Options tfjs-layers reads but its getConfig does not write back (so they look unknown). */
const READ_NOT_WRITTEN: Record<string, string[]> = {
  SeparableConv1D: ['depth_multiplier'],
  SeparableConv2D: ['depth_multiplier'],
};

/**
 * Keras 3 activation names (activations/__init__.py ALL_OBJECTS) -> tfjs-layers activation
 * class names (activations.ts), where both compute the same function. Missing ones are refused;
 * hard_sigmoid is missing on purpose: Keras 3 computes relu6(x + 3) / 6, tfjs 0.2x + 0.5.
 */
const ACTIVATIONS: Record<string, string> = {
  linear: 'linear', relu: 'relu', relu6: 'relu6', sigmoid: 'sigmoid', tanh: 'tanh', softmax: 'softmax',
  softplus: 'softplus', softsign: 'softsign', elu: 'elu', selu: 'selu', mish: 'mish', gelu: 'gelu',
  log_softmax: 'log_softmax',
  // silu(x) = x * sigmoid(x) = tfjs swish with its default alpha 1
  silu: 'swish', swish: 'swish',
};

/**
 * Layer classes keras 3 exports (keras/src/layers/__init__.py), to tell a Keras layer tfjs-layers
 * lacks from a custom layer when the entry has no `module`.
 */
const KERAS_LAYER_CLASSES = new Set([
  'AdaptiveAveragePooling1D', 'AdaptiveAveragePooling2D', 'AdaptiveAveragePooling3D', 'AdaptiveMaxPooling1D',
  'AdaptiveMaxPooling2D', 'AdaptiveMaxPooling3D', 'AdditiveAttention', 'Attention', 'AugMix', 'AutoContrast',
  'CategoryEncoding', 'CenterCrop', 'ConvLSTM1D', 'ConvLSTM2D', 'ConvLSTM3D', 'Conv1DTranspose', 'CutMix',
  'DepthwiseConv1D', 'Discretization', 'EinsumDense', 'Equalization', 'GroupNormalization', 'GroupQueryAttention',
  'HashedCrossing', 'Hashing', 'IntegerLookup', 'Lambda', 'MaxNumBoundingBoxes', 'MelSpectrogram', 'MixUp',
  'MultiHeadAttention', 'Normalization', 'Pipeline', 'RandAugment', 'RandomCrop', 'RMSNormalization', 'Resizing',
  'ReversibleEmbedding', 'STFTSpectrogram', 'Solarization', 'SpectralNormalization', 'StringLookup',
  'TextVectorization', 'TorchModuleWrapper', 'JaxLayer', 'FlaxLayer', 'UnitNormalization', 'Wrapper',
  'ZeroPadding1D', 'ZeroPadding3D', 'Cropping3D', 'UpSampling1D', 'UpSampling3D', ...IDENTITY_AT_INFERENCE,
]);

/** Whether a topology (model.json's modelTopology, possibly wrapping model_config) is Keras 3's. */
export function isKeras3Topology(topology: JsonObject): boolean {
  const version = topology.keras_version;
  if (typeof version === 'string' && /^3\./.test(version)) return true;
  const model = isObject(topology.model_config) ? topology.model_config : topology;
  return hasKeras3Marker(model, 0);
}

/**
 * A spelling only Keras 3 writes, in any one field: a DTypePolicy object, a `__keras_tensor__`
 * node argument, an InputLayer `batch_shape`, an `{args, kwargs}` node, a bare input/output
 * reference. (`module` keys alone are not one: tf.keras 2.13+ writes them too.)
 */
function hasKeras3Marker(value: Json, depth: number): boolean {
  if (depth > 64) return false;
  if (Array.isArray(value)) return value.some((item) => hasKeras3Marker(item, depth + 1));
  if (!isObject(value)) return false;
  if (value.class_name === 'DTypePolicy' || value.class_name === '__keras_tensor__') return true;
  if (value.class_name === 'InputLayer' && isObject(value.config) && 'batch_shape' in value.config) return true;
  // Half-converted files keep some fields in the Keras 3 form only: {args, kwargs} nodes, a bare
  // [name, node, tensor] for a single model input or output.
  if (Array.isArray(value.inbound_nodes) && value.inbound_nodes.some((node) => isObject(node) && 'args' in node)) return true;
  if ([value.input_layers, value.output_layers].some((refs) => Array.isArray(refs) && typeof refs[0] === 'string')) return true;
  return Object.values(value).some((item) => hasKeras3Marker(item, depth + 1));
}

function refuse(where: string, message: string): never {
  throw new Keras3Error(`${where}: ${message}`);
}

interface Context {
  changes: Changes;
  layerClasses: Map<string, string>;
  dropped: Set<string>;
  normalizations: Map<string, NormalizationPlan>;
  kerasVersion: string | null;
  /** Every layer name in the file, to make new names unique. */
  names: Set<string>;
  /** Whether the model makes masks (a Masking layer, an Embedding with mask_zero). */
  masks: boolean;
}

/** Converts a Keras 3 topology (model.json's modelTopology, possibly wrapping model_config). */
export function convertKeras3Topology(topology: JsonObject): Keras3Conversion {
  // The caller's artifacts are never modified. (Not structuredClone: under a vm context, as in
  // jest, it makes arrays of another realm, which tfjs's `instanceof Array` checks reject.)
  const model = JSON.parse(JSON.stringify(isObject(topology.model_config) ? topology.model_config : topology)) as JsonObject;
  const kerasVersion = typeof topology.keras_version === 'string' ? topology.keras_version : null;
  const context: Context = {
    changes: new Changes(), layerClasses: new Map(), dropped: new Set(), normalizations: new Map(), kerasVersion, names: allNames(model),
    masks: /"class_name":"Masking"|"mask_zero":true/.test(JSON.stringify(model)),
  };
  const converted = convertModel(model, '', context, 0);
  return {
    topology: converted,
    kerasVersion,
    changes: context.changes.lines(),
    layerClasses: context.layerClasses,
    dropped: context.dropped,
    normalizations: context.normalizations,
  };
}

function allNames(model: Json): Set<string> {
  const names = new Set<string>();
  const visit = (value: Json, depth: number): void => {
    if (depth > 200) return;
    if (Array.isArray(value)) value.forEach((item) => visit(item, depth + 1));
    else if (isObject(value)) {
      if (typeof value.name === 'string') names.add(value.name);
      Object.values(value).forEach((item) => visit(item, depth + 1));
    }
  };
  visit(model, 0);
  return names;
}

const MAX_NESTING = 32;

function convertModel(entry: JsonObject, parent: string, context: Context, depth: number): JsonObject {
  if (depth > MAX_NESTING) refuse('modelTopology', `models nested more than ${MAX_NESTING} deep`);
  const className = entry.class_name;
  const config = entry.config;
  // Malformed structure is json.ts's to report, with key paths: pass it through as it is.
  if (typeof className !== 'string' || !isObject(config) && !Array.isArray(config)) return entry;
  dropKeys(entry, [...OBJECT_KEYS, ...ENTRY_KEYS], context, 'entry keys module/registered_name/build_config/compile_config dropped');
  const name = isObject(config) && typeof config.name === 'string' ? config.name : className.toLowerCase();
  const where = parent ? `${parent}/${name}` : name;
  if (className === 'Sequential') {
    const layers = Array.isArray(config) ? config : config.layers;
    if (!Array.isArray(layers)) return entry;
    const out: JsonObject = { name };
    const kept: Json[] = [];
    for (const layer of layers) {
      if (!isObject(layer)) {
        kept.push(layer);
        continue;
      }
      const { entries, drop } = convertLayer(layer, where, null, context, depth);
      if (!drop) {
        kept.push(...entries);
        continue;
      }
      // A first layer that declares the input shape hands it to the next one.
      const shape = isObject(entries[0].config) ? entries[0].config.batch_input_shape : undefined;
      const next = layers[layers.indexOf(layer) + 1];
      if (shape !== undefined && kept.length === 0 && isObject(next) && isObject(next.config) && !('batch_input_shape' in next.config) && !('batch_shape' in next.config)) {
        next.config.batch_input_shape = shape;
      }
    }
    out.layers = kept;
    dropModelKeys(config, ['name', 'layers'], context);
    return { class_name: className, config: out };
  }
  if (!isObject(config) || !Array.isArray(config.layers)) return entry;
  const removed = removeMaskOps(config, where);
  if (removed) context.changes.add('Masking mask op layers (NotEqual, Any) dropped: tfjs propagates the mask from the Masking layer', removed);
  const classes = new Map<string, string>();
  for (const layer of config.layers) {
    if (isObject(layer) && typeof layer.name === 'string' && typeof layer.class_name === 'string') classes.set(layer.name, layer.class_name);
  }
  const layers: Json[] = [];
  const dropped = new Set<string>();
  for (const layer of config.layers) {
    if (!isObject(layer)) {
      layers.push(layer);
      continue;
    }
    const { entries, drop } = convertLayer(layer, where, classes, context, depth);
    layers.push(...entries);
    if (drop) dropped.add(entries[0].name as string);
  }
  const out: JsonObject = {
    name,
    layers,
    input_layers: ioRefs(config.input_layers, `${where} input_layers`, classes, context),
    output_layers: ioRefs(config.output_layers, `${where} output_layers`, classes, context),
  };
  rewireDropped(out, dropped, where);
  dropModelKeys(config, ['name', 'layers', 'input_layers', 'output_layers'], context);
  return { class_name: className, config: out };
}

/** Model-level config keys tfjs does not read (trainable, dtype, build_input_shape): dropped. */
function dropModelKeys(config: Json, kept: string[], context: Context): void {
  if (!isObject(config)) return;
  for (const key of Object.keys(config)) if (!kept.includes(key)) context.changes.add(`model config "${key}" dropped`);
}

function dropKeys(object: JsonObject, keys: string[], context: Context, kind: string): void {
  for (const key of keys) {
    if (key in object) {
      delete object[key];
      context.changes.add(kind);
    }
  }
}

/**
 * input_layers / output_layers: a [name, node, tensor] leaf, or lists / dicts of them
 * (functional.py map_tensors), flattened the way keras's tree flattens (dict keys sorted).
 * A nested Sequential is counted from 0 here and must be counted from 1 for tfjs.
 */
function ioRefs(value: Json | undefined, where: string, classes: Map<string, string>, context: Context): Json {
  const out: Json[] = [];
  if (Array.isArray(value) && typeof value[0] === 'string') context.changes.add('a single [layer, node, tensor] input/output reference -> a list of one');
  const visit = (item: Json | undefined, depth: number): void => {
    if (depth > 8) refuse(where, 'nested more than 8 deep');
    if (Array.isArray(item) && item.length === 3 && typeof item[0] === 'string') {
      const [layer, node, tensor] = item;
      let index = node;
      if (classes.get(layer) === 'Sequential' && typeof node === 'number') {
        index = node + 1;
        context.changes.add('nested-model node indices counted from 1');
      }
      out.push([layer, index, tensor]);
    } else if (Array.isArray(item)) {
      item.forEach((part) => visit(part, depth + 1));
    } else if (isObject(item)) {
      context.changes.add('input/output structure dict flattened in key order');
      for (const key of Object.keys(item).sort()) visit(item[key], depth + 1);
    } else {
      refuse(where, `expected [layer, node, tensor] references, got ${describe(item)}`);
    }
  };
  visit(value, 0);
  return out;
}

/** keras_version as [major, minor], or null. */
function versionOf(context: Context): [number, number] | null {
  const match = /^(\d+)\.(\d+)/.exec(context.kerasVersion ?? '');
  return match ? [Number(match[1]), Number(match[2])] : null;
}

/**
 * Whether a layer is the identity at inference. RandomCrop is, from keras 3.8 (#20677: "Add
 * training status condition"); before, it resized and center-cropped at inference.
 */
function isIdentityAtInference(className: string, label: string, context: Context): boolean {
  if (IDENTITY_AT_INFERENCE.has(className)) return true;
  if (className !== 'RandomCrop') return false;
  const version = versionOf(context);
  if (version && (version[0] > 3 || (version[0] === 3 && version[1] >= 8))) return true;
  refuse(label, `RandomCrop resizes and center-crops at inference in keras ${context.kerasVersion ?? '(version not given)'} before 3.8 (random_crop.py), which tfjs-layers has no layer for`);
}

/** Why a class tfjs-layers lacks is missing: a Keras layer tfjs lacks, or the user's own class. */
function missingClass(entry: JsonObject, className: string, label: string): never {
  const module = typeof entry.module === 'string' ? entry.module : null;
  const registered = typeof entry.registered_name === 'string' ? entry.registered_name : null;
  const custom = (module !== null && !/^keras(\.|$)/.test(module)) || (registered !== null && registered.includes('>') && !registered.startsWith('keras'));
  if (custom || (module === null && !KERAS_LAYER_CLASSES.has(className) && !MASK_OPS.has(className))) {
    const from = module ? ` (module "${module}")` : registered ? ` (registered as "${registered}")` : '';
    refuse(label, `class ${className} is a custom layer${from}, not part of Keras: tfjs-layers needs its implementation registered (tf.serialization.registerClass) before loading`);
  }
  if (module !== null && /^keras(\.src)?\.ops/.test(module)) refuse(label, `Keras op ${className} (${module}) has no tfjs-layers layer`);
  refuse(label, `Keras layer class ${className} has no tfjs-layers equivalent`);
}

/**
 * One layer entry -> its Keras 2 form: usually one entry; two when one Keras option becomes two
 * tfjs layers; `drop` when the layer is the identity at inference (the caller rewires around it).
 */
function convertLayer(entry: JsonObject, where: string, classes: Map<string, string> | null, context: Context, depth: number): { entries: JsonObject[]; drop: boolean } {
  const className = entry.class_name;
  if (typeof className !== 'string') return { entries: [entry], drop: false };
  let out: JsonObject = { ...entry };
  dropKeys(out, [...OBJECT_KEYS, ...ENTRY_KEYS], context, 'entry keys module/registered_name/build_config/compile_config dropped');
  const config = isObject(out.config) ? out.config : {};
  const name = typeof out.name === 'string' ? out.name : typeof config.name === 'string' ? config.name : '?';
  const label = `${where}/${name} (${className})`;
  let drop = false;
  let extra: JsonObject[] = [];
  if (CONTAINER_CLASSES.has(className)) {
    const model = convertModel({ class_name: className, config: out.config ?? null }, where, context, depth + 1);
    out.config = model.config;
    if (isIdentityModel(model)) {
      drop = true;
      context.changes.add('nested models left empty (only identity layers) dropped');
    }
  } else if (isIdentityAtInference(className, label, context)) {
    drop = true;
    context.layerClasses.set(name, className);
    context.dropped.add(name);
    context.changes.add(`${className} dropped: the identity at inference`);
  } else {
    // Keras ops share names with layers (ops.numpy.Add vs layers.Add) but not their calls.
    if (typeof entry.module === 'string' && /^keras(\.src)?\.ops/.test(entry.module)) missingClass(entry, className, label);
    if (!(className in registry()) && className !== 'Normalization') missingClass(entry, className, label);
    context.layerClasses.set(name, className);
    const converted = convertLayerConfig(className, config, label, context, entry);
    out.class_name = converted.className;
    out.config = converted.config;
    if (converted.keepdims) {
      const functional = classes !== null;
      const [pool, reshape] = splitKeepdims(out, converted.keepdims, (n) => context.names.has(n), functional);
      context.names.add(pool.name as string ?? (pool.config as JsonObject).name as string);
      context.layerClasses.set((pool.config as JsonObject).name as string, className);
      context.changes.add('keepdims=true -> pooling + Reshape keeping the size-1 axes');
      out = pool;
      extra = [reshape];
    }
  }
  if (classes && Array.isArray(out.inbound_nodes)) {
    const nodeLabel = `${where}/${name}`;
    out.inbound_nodes = out.inbound_nodes.map((node) => (isObject(node) ? convertNode(node, nodeLabel, classes, context) : node));
  }
  return { entries: [out, ...extra], drop };
}

/** A converted model that only hands its single input to its single output. */
function isIdentityModel(model: JsonObject): boolean {
  const config = model.config;
  if (!isObject(config) || !Array.isArray(config.layers)) return false;
  const layers = config.layers.filter(isObject);
  if (!layers.every((layer) => layer.class_name === 'InputLayer') || layers.length > 1) return false;
  if (model.class_name === 'Sequential') return true;
  const ins = JSON.stringify(config.input_layers);
  return Array.isArray(config.input_layers) && config.input_layers.length === 1 && ins === JSON.stringify(config.output_layers);
}

/** {args, kwargs} -> [[layer, node, tensor, kwargs], ...] (the legacy form functional.py deserialize_node still reads). */
function convertNode(node: JsonObject, label: string, classes: Map<string, string>, context: Context): Json {
  context.changes.add('inbound nodes {args, kwargs} -> [layer, node, tensor] lists');
  const kwargs = isObject(node.kwargs) ? stripNullKwargs(node.kwargs, label) : {};
  const refs: Json[] = [];
  const visit = (item: Json, depth: number): void => {
    if (depth > 8) refuse(label, 'inbound node args nested more than 8 deep');
    if (Array.isArray(item)) item.forEach((part) => visit(part, depth + 1));
    else if (isObject(item) && item.class_name === '__keras_tensor__') refs.push(tensorRef(item, label, classes, context, kwargs));
    else if (isObject(item) && !('class_name' in item)) refuse(label, 'called on a dict of tensors, which tfjs-layers cannot express');
    else refuse(label, `call argument ${describe(item)} is not a tensor; tfjs-layers calls take tensors only`);
  };
  visit(node.args ?? [], 0);
  return refs;
}

function stripNullKwargs(kwargs: JsonObject, label: string): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(kwargs)) {
    if (value === null) continue;
    if (JSON.stringify(value).includes('"__keras_tensor__"')) refuse(label, `call keyword argument "${key}" is a tensor, which tfjs-layers cannot express`);
    out[key] = value;
  }
  return out;
}

function tensorRef(tensor: JsonObject, label: string, classes: Map<string, string>, context: Context, kwargs: JsonObject): Json {
  const history = isObject(tensor.config) ? tensor.config.keras_history : undefined;
  if (!Array.isArray(history) || history.length !== 3 || typeof history[0] !== 'string' || typeof history[1] !== 'number') {
    refuse(label, `inbound tensor without a [layer, node, tensor] keras_history (got ${describe(history)})`);
  }
  const [layer, node, index] = history;
  let nodeIndex = node;
  // Keras 3 models have no node of their own: their first call is node 0; tfjs's is node 1.
  if (CONTAINER_CLASSES.has(classes.get(layer) ?? '')) {
    nodeIndex = node + 1;
    context.changes.add('nested-model node indices counted from 1');
  }
  return [layer, nodeIndex, index, kwargs];
}

const GLOBAL_POOLING = /^Global(Average|Max)Pooling([123])D$/;

interface ConvertedConfig {
  className: string;
  config: JsonObject;
  /** keepdims=true on a global pooling: the caller adds the Reshape. */
  keepdims?: { rank: number; channelsFirst: boolean; channels: number | null };
}

/** A layer config in Keras 3 spelling -> what tfjs reads, refusing what it cannot express. */
function convertLayerConfig(className: string, config: JsonObject, label: string, context: Context, entry: JsonObject): ConvertedConfig {
  let out = cleanValue(config, label, context, 0) as JsonObject;
  let outClass = className;
  let keepdims: ConvertedConfig['keepdims'];
  if (className === 'InputLayer' && 'batch_shape' in out) {
    out.batch_input_shape = out.batch_shape;
    delete out.batch_shape;
    context.changes.add('InputLayer batch_shape -> batch_input_shape');
  }
  const pooling = GLOBAL_POOLING.exec(className);
  if (pooling && out.keepdims === true) {
    // The Reshape needs the channel count to give its consumers a known shape: build_config says it.
    const channelsFirst = out.data_format === 'channels_first';
    const built = isObject(entry.build_config) ? entry.build_config.input_shape : undefined;
    const channels = Array.isArray(built) ? built[channelsFirst ? 1 : built.length - 1] : null;
    keepdims = { rank: Number(pooling[2]), channelsFirst, channels: typeof channels === 'number' ? channels : null };
    delete out.keepdims;
  }
  // activations/relu.py with a slope and nothing else is LeakyReLU (advanced_activations.ts).
  if (className === 'ReLU' && typeof out.negative_slope === 'number' && out.negative_slope !== 0 && (out.threshold ?? 0) === 0 && out.max_value == null) {
    outClass = 'LeakyReLU';
    out = { name: out.name, trainable: out.trainable, dtype: out.dtype, alpha: out.negative_slope };
    context.changes.add('ReLU with negative_slope -> LeakyReLU');
  }
  // Keras 3's LeakyReLU names its slope negative_slope (leaky_relu.py), tfjs (and Keras 2) alpha.
  if (className === 'LeakyReLU' && 'negative_slope' in out) {
    out.alpha = out.negative_slope;
    delete out.negative_slope;
    context.changes.add('LeakyReLU negative_slope -> alpha');
  }
  if (className === 'Normalization') {
    const normalization = normalizationConfig(out, entry, label);
    context.normalizations.set(out.name as string, normalization.plan);
    context.changes.add('Normalization -> BatchNormalization computing the same (x - mean) / max(sqrt(variance), epsilon)');
    return { className: 'BatchNormalization', config: normalization.config };
  }
  checkZeroOutputForMask(out, label, context);
  for (const key of ['activation', 'recurrent_activation']) {
    const value = out[key];
    if (typeof value !== 'string') continue;
    const mapped = ACTIVATIONS[value];
    if (!mapped) refuse(label, `option ${key}="${value}" has no tfjs-layers equivalent`);
    if (mapped !== value) {
      out[key] = mapped;
      context.changes.add(`activation "${value}" -> "${mapped}"`);
    }
  }
  const known = tfjsConfigKeys(outClass, out, label);
  for (const key of READ_NOT_WRITTEN[outClass] ?? []) known.add(key);
  for (const [key, value] of Object.entries(out)) {
    if (!known.has(snake(key)) && TRAINING_ONLY.test(snake(key))) {
      delete out[key];
      context.changes.add('training-only options (regularizers, constraints, initializers) tfjs-layers has no field for dropped');
      continue;
    }
    const rule = NEUTRAL[snake(key)];
    // Half-converted files spell some keys the tfjs way (batchInputShape): tfjs reads both.
    if (known.has(snake(key)) && (!rule || rule.neutral(value))) continue;
    if (!rule || !rule.neutral(value)) {
      const why = rule?.why ? ` (${rule.why})` : '';
      refuse(label, `option ${key}=${JSON.stringify(value)} has no tfjs-layers equivalent${why}`);
    }
    delete out[key];
    context.changes.add(`Keras 3-only option "${key}" at its no-op value dropped`);
  }
  return { className: outClass, config: out, keepdims };
}

/**
 * rnn.py zero_output_for_mask (Bidirectional forces it to return_sequences): Keras outputs zeros
 * at masked steps, tfjs (recurrent.ts rnn) repeats the last output. The same only when no mask
 * reaches the layer: refused when the model makes masks (Masking, Embedding mask_zero).
 */
function checkZeroOutputForMask(config: JsonObject, label: string, context: Context): void {
  const inner = isObject(config.layer) && isObject(config.layer.config) ? config.layer.config : null;
  for (const c of [config, inner]) {
    if (c && c.zero_output_for_mask === true && c.return_sequences === true && context.masks) {
      refuse(label, 'option zero_output_for_mask=true with return_sequences has no tfjs-layers equivalent (Keras outputs zeros at masked steps, tfjs repeats the last output)');
    }
  }
}

const snake = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/**
 * Config keys tfjs-layers knows for this class: those its own getConfig writes for a layer built
 * from this config, plus the base keys every layer reads. A layer tfjs cannot build from the
 * config is refused with tfjs's reason.
 */
function tfjsConfigKeys(className: string, config: JsonObject, label: string): Set<string> {
  const [cls, fromConfig] = registry()[className] as unknown as [unknown, (cls: unknown, config: unknown) => { getConfig(): Record<string, unknown> }];
  let written: Record<string, unknown>;
  try {
    written = fromConfig(cls, toLayerArgs(config)).getConfig();
  } catch (error) {
    refuse(label, `tfjs-layers cannot build this layer from its converted config: ${(error as Error).message}`);
  }
  return new Set([...Object.keys(written).map(snake), 'name', 'trainable', 'dtype', 'batch_input_shape', 'input_shape', 'batch_size', 'input_dtype']);
}

/**
 * Drops `module`/`registered_name` from nested serialized objects, turns DTypePolicy objects into
 * dtype strings, and refuses policies tfjs cannot run (mixed precision, quantized).
 */
function cleanValue(value: Json, label: string, context: Context, depth: number, key = ''): Json {
  if (depth > 64) refuse(label, 'config nested more than 64 deep');
  if (Array.isArray(value)) return value.map((item) => cleanValue(item, label, context, depth + 1, key));
  if (!isObject(value)) return value;
  if (key === 'dtype' && typeof value.class_name === 'string') return dtypeOf(value, label, context);
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(value)) {
    if (OBJECT_KEYS.includes(k) && 'class_name' in value) {
      context.changes.add('module/registered_name dropped from config objects (initializers, ...)');
      continue;
    }
    out[k] = cleanValue(v, label, context, depth + 1, k);
  }
  return out;
}

function dtypeOf(policy: JsonObject, label: string, context: Context): Json {
  const name = isObject(policy.config) ? policy.config.name : undefined;
  if (policy.class_name !== 'DTypePolicy' || (name !== 'float32' && name !== 'int32')) {
    refuse(label, `option dtype=${policy.class_name}(${describe(name)}) has no tfjs-layers equivalent (tfjs-layers computes in float32)`);
  }
  context.changes.add('dtype policy objects -> dtype strings');
  return name;
}

/**
 * The tfjs name of a weight stored under its Keras 3 variable path: the path from the first
 * segment that names a layer (the scopes before it are model names), e.g.
 * `sequential/dense/kernel` -> `dense/kernel`. Deeper parts (RNN cells) are kept as Keras 2 wrote
 * them; tfjs's loader resolves those. Returns null when no segment names a layer.
 */
export function keras3WeightName(path: string, conversion: Pick<Keras3Conversion, 'layerClasses'>): string | null {
  const parts = path.split('/');
  for (let i = 0; i < parts.length - 1; i++) {
    const className = conversion.layerClasses.get(parts[i]);
    if (className === undefined) continue;
    const rest = parts.slice(i);
    // base_depthwise_conv.py names the kernel "kernel"; tfjs's DepthwiseConv2D "depthwise_kernel".
    if (className === 'DepthwiseConv2D' && rest.length === 2 && rest[1] === 'kernel') rest[1] = 'depthwise_kernel';
    return rest.join('/');
  }
  return null;
}

/** Weight names of the .keras route (h5_v3 conversion): positions in a layer, not variable names. */
export function isKerasFileRouteWeightName(name: string): boolean {
  return /(^|\/)vars\/\d+$/.test(name);
}

/** keras utils/naming.py to_snake_case: how saving_lib names a layer's weights group. */
function toSnakeCase(name: string): string {
  return name.replace(/\W+/g, '').replace(/(.)([A-Z][a-z]+)/g, '$1_$2').replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
}

/**
 * A layer's variables in the order Layer.save_own_variables stores them
 * (`_trainable_variables + _non_trainable_variables`, each in build order: dense.py, base_conv.py,
 * base_depthwise_conv.py, base_separable_conv.py, batch_normalization.py, layer_normalization.py,
 * embedding.py, prelu.py), under their tfjs names. Classes not listed are refused.
 */
const VARIABLES: Record<string, (c: JsonObject) => string[]> = {
  Dense: (c) => ['kernel', ...(c.use_bias === false ? [] : ['bias'])],
  ...Object.fromEntries(['Conv1D', 'Conv2D', 'Conv3D', 'Conv2DTranspose', 'Conv3DTranspose'].map((cls) => [cls, (c: JsonObject) => ['kernel', ...(c.use_bias === false ? [] : ['bias'])]])),
  DepthwiseConv2D: (c) => ['depthwise_kernel', ...(c.use_bias === false ? [] : ['bias'])],
  SeparableConv1D: (c) => ['depthwise_kernel', 'pointwise_kernel', ...(c.use_bias === false ? [] : ['bias'])],
  SeparableConv2D: (c) => ['depthwise_kernel', 'pointwise_kernel', ...(c.use_bias === false ? [] : ['bias'])],
  BatchNormalization: (c) => [...(c.scale === false ? [] : ['gamma']), ...(c.center === false ? [] : ['beta']), 'moving_mean', 'moving_variance'],
  LayerNormalization: (c) => [...(c.scale === false ? [] : ['gamma']), ...(c.center === false ? [] : ['beta'])],
  Embedding: () => ['embeddings'],
  PReLU: () => ['alpha'],
  // normalization.py build: adapt's variables, only when mean/variance are not in the config
  Normalization: () => ['mean', 'variance', 'count'],
};

/**
 * The .keras route's weight names -> tfjs names. saving_lib.py (_save_state, _walk_saveable,
 * _save_container_state, H5IOStore.make) stores a model's layers under
 * `layers/<snake_case(class name)>[_<k>]/vars/<i>` (numbered per class in `model.layers`
 * order, names deliberately not used), nested models as `layers/<class>/layers/...`; the
 * converter (h5_v3_merged_saved_model_to_tfjs_format) names each dataset by its h5 path. Other
 * top-level groups (optimizer/..., metrics) are not model weights: mapped to null (dropped).
 * Throws naming the weight where the path cannot be resolved.
 */
export function kerasFileRouteWeightName(path: string, topology: JsonObject): string | null {
  const parts = path.split('/');
  if (parts[0] !== 'layers') {
    if (parts[0] === 'vars') refuse(`weight "${path}"`, 'variables of the model itself have no tfjs-layers equivalent');
    // optimizer/vars/<i>, metrics: state saved beside the model, not model weights
    if (isKerasFileRouteWeightName(path)) return null;
    refuse(`weight "${path}"`, 'not a layers/<layer>/vars/<i> path of the .keras route');
  }
  let model: Json = topology;
  let i = 0;
  for (;;) {
    const group = parts[i + 1];
    const layers = isObject(model) && isObject(model.config) ? model.config.layers : isObject(model) && Array.isArray(model.config) ? model.config : undefined;
    if (parts[i] !== 'layers' || group === undefined || !Array.isArray(layers)) {
      refuse(`weight "${path}"`, 'not a layers/<layer>/vars/<i> path of the .keras route');
    }
    const layer = layerOfGroup(layers, group);
    if (!layer) refuse(`weight "${path}"`, `no layer of the model is stored as "${group}"`);
    const className = layer.class_name as string;
    // seed generator state of augmentation layers: dropped with the layer
    if (IDENTITY_AT_INFERENCE.has(className) || className === 'RandomCrop') return null;
    if (CONTAINER_CLASSES.has(className)) {
      model = layer;
      i += 2;
      continue;
    }
    const config = isObject(layer.config) ? layer.config : {};
    const name = typeof layer.name === 'string' ? layer.name : String(config.name);
    const index = parts[i + 2] === 'vars' && parts.length === i + 4 ? Number(parts[i + 3]) : NaN;
    const variables = VARIABLES[className];
    if (!variables) refuse(`weight "${path}"`, `positional weights of ${name} (${className}) are not mapped (.keras route)`);
    const names = variables(config);
    if (!Number.isInteger(index) || index >= names.length) {
      refuse(`weight "${path}"`, `${name} (${className}) has ${names.length} variable(s): ${names.join(', ')}`);
    }
    return `${name}/${names[index]}`;
  }
}

/** The layer saving_lib stores as `group` (class snake name, `_k` for the k-th repeat). */
function layerOfGroup(layers: Json[], group: string): JsonObject | undefined {
  const used = new Map<string, number>();
  for (const layer of layers) {
    if (!isObject(layer) || typeof layer.class_name !== 'string') continue;
    const base = toSnakeCase(layer.class_name);
    const seen = used.get(base);
    const name = seen === undefined ? base : `${base}_${seen + 1}`;
    used.set(base, seen === undefined ? 0 : seen + 1);
    if (name === group) return layer;
  }
  return undefined;
}
