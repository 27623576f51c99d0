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
import { InputError } from '../errors';
import { describeValue as describe, isObject } from '../validate/describe';
import { registry, toLayerArgs } from './shapes';
import { CONTAINER_CLASSES, Json, JsonObject } from './types';

/** A Keras 3 feature tfjs-layers cannot express. */
export class Keras3Error extends InputError {
  override name = 'Keras3Error';
}

export interface Keras3Conversion {
  /** `{class_name, config}` in the Keras 2 form. */
  topology: JsonObject;
  kerasVersion: string | null;
  /** One line per kind of change, with counts (for the report). */
  changes: string[];
  /** Names of every layer that is not itself a model, at any depth, with its class. */
  layerClasses: Map<string, string>;
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
 * at inference (so dropping them is exact). Any other value is refused.
 */
const NEUTRAL: Record<string, { neutral: (value: Json) => boolean; why: string }> = {
  // base_conv.py: groups > 1 splits channels; tfjs convs have no groups
  groups: { neutral: (v) => v === 1 || v === null, why: 'grouped convolution' },
  // batch_normalization.py: cross-replica statistics while training only
  synchronized: { neutral: () => true, why: '' },
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

/** Whether a topology (model.json's modelTopology, possibly wrapping model_config) is Keras 3's. */
export function isKeras3Topology(topology: JsonObject): boolean {
  const version = topology.keras_version;
  if (typeof version === 'string' && /^3\./.test(version)) return true;
  const model = isObject(topology.model_config) ? topology.model_config : topology;
  return hasKeras3Marker(model, 0);
}

/**
 * A spelling only Keras 3 writes: a DTypePolicy object, a `__keras_tensor__` node argument, an
 * InputLayer `batch_shape`. (`module` keys alone are not one: tf.keras 2.13+ writes them too.)
 */
function hasKeras3Marker(value: Json, depth: number): boolean {
  if (depth > 64) return false;
  if (Array.isArray(value)) return value.some((item) => hasKeras3Marker(item, depth + 1));
  if (!isObject(value)) return false;
  if (value.class_name === 'DTypePolicy' || value.class_name === '__keras_tensor__') return true;
  if (value.class_name === 'InputLayer' && isObject(value.config) && 'batch_shape' in value.config) return true;
  return Object.values(value).some((item) => hasKeras3Marker(item, depth + 1));
}

function refuse(where: string, message: string): never {
  throw new Keras3Error(`${where}: ${message}`);
}

interface Context {
  changes: Changes;
  layerClasses: Map<string, string>;
}

/** Converts a Keras 3 topology (model.json's modelTopology, possibly wrapping model_config). */
export function convertKeras3Topology(topology: JsonObject): Keras3Conversion {
  // The caller's artifacts are never modified. (Not structuredClone: under a vm context, as in
  // jest, it makes arrays of another realm, which tfjs's `instanceof Array` checks reject.)
  const model = JSON.parse(JSON.stringify(isObject(topology.model_config) ? topology.model_config : topology)) as JsonObject;
  const context: Context = { changes: new Changes(), layerClasses: new Map() };
  const converted = convertModel(model, '', context, 0);
  return {
    topology: converted,
    kerasVersion: typeof topology.keras_version === 'string' ? topology.keras_version : null,
    changes: context.changes.lines(),
    layerClasses: context.layerClasses,
  };
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
    out.layers = layers.map((layer) => (isObject(layer) ? convertLayer(layer, where, null, context, depth) : layer));
    dropModelKeys(config, ['name', 'layers'], context);
    return { class_name: className, config: out };
  }
  if (!isObject(config) || !Array.isArray(config.layers)) return entry;
  const classes = new Map<string, string>();
  for (const layer of config.layers) {
    if (isObject(layer) && typeof layer.name === 'string' && typeof layer.class_name === 'string') classes.set(layer.name, layer.class_name);
  }
  const out: JsonObject = {
    name,
    layers: config.layers.map((layer) => (isObject(layer) ? convertLayer(layer, where, classes, context, depth) : layer)),
    input_layers: ioRefs(config.input_layers, `${where} input_layers`, classes, context),
    output_layers: ioRefs(config.output_layers, `${where} output_layers`, classes, context),
  };
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

function convertLayer(entry: JsonObject, where: string, classes: Map<string, string> | null, context: Context, depth: number): JsonObject {
  const className = entry.class_name;
  if (typeof className !== 'string') return entry;
  const out: JsonObject = { ...entry };
  dropKeys(out, [...OBJECT_KEYS, ...ENTRY_KEYS], context, 'entry keys module/registered_name/build_config/compile_config dropped');
  if (CONTAINER_CLASSES.has(className)) {
    const model = convertModel({ class_name: className, config: out.config ?? null }, where, context, depth + 1);
    out.config = model.config;
  } else {
    const config = isObject(out.config) ? out.config : {};
    const name = typeof out.name === 'string' ? out.name : typeof config.name === 'string' ? config.name : '?';
    const label = `${where}/${name} (${className})`;
    if (!(className in registry())) refuse(label, `layer class ${className} has no tfjs-layers equivalent`);
    context.layerClasses.set(name, className);
    if (isObject(out.config)) out.config = convertLayerConfig(className, out.config, label, context);
  }
  if (classes && Array.isArray(out.inbound_nodes)) {
    const label = `${where}/${typeof out.name === 'string' ? out.name : '?'}`;
    out.inbound_nodes = out.inbound_nodes.map((node) => (isObject(node) ? convertNode(node, label, classes, context) : node));
  }
  return out;
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

/** A layer config in Keras 3 spelling -> what tfjs reads, refusing what it cannot express. */
function convertLayerConfig(className: string, config: JsonObject, label: string, context: Context): JsonObject {
  const out = cleanValue(config, label, context, 0) as JsonObject;
  if (className === 'InputLayer' && 'batch_shape' in out) {
    out.batch_input_shape = out.batch_shape;
    delete out.batch_shape;
    context.changes.add('InputLayer batch_shape -> batch_input_shape');
  }
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
  const known = tfjsConfigKeys(className, out, label);
  for (const [key, value] of Object.entries(out)) {
    const rule = NEUTRAL[key];
    if (known.has(key) && (!rule || rule.neutral(value))) continue;
    if (!rule || !rule.neutral(value)) {
      const why = rule?.why ? ` (${rule.why})` : '';
      refuse(label, `option ${key}=${JSON.stringify(value)} has no tfjs-layers equivalent${why}`);
    }
    delete out[key];
    context.changes.add(`Keras 3-only option "${key}" at its no-op value dropped`);
  }
  return out;
}

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
  const snake = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
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
