/**
 * Graph-level parts of the Keras 3 -> Keras 2 conversion (keras3.ts does the per-layer ones):
 * - layers that are the identity at inference (augmentation, noise, SpatialDropout, Identity)
 *   are dropped and their consumers rewired to their input;
 * - the NotEqual/Any op layers Keras 3 writes for a Masking layer's mask (layers/core/masking.py
 *   compute_mask, traced into the functional graph by layer.py _set_mask_metadata) are dropped:
 *   tfjs propagates the same mask from the Masking layer itself;
 * - a layer converted to two tfjs layers (pooling with keepdims=true -> pooling + Reshape) keeps
 *   its name on the second, so every reference to it stays valid.
 * Functional topologies here are already in the Keras 2 form (refs `[layer, node, tensor, kwargs]`)
 * except for the mask ops, which are removed from the Keras 3 form first (their calls take
 * constants and tensor keyword arguments, which the Keras 2 form cannot hold).
 */
import { Keras3Error } from './keras3-errors';
import { describeValue as describe, isObject } from '../validate/describe';
import { CONTAINER_CLASSES, Json, JsonObject } from './types';

/**
 * Keras 3 layers that return their input at inference (training=False): every image
 * augmentation layer's transform_images / call is `if training: ... return images`
 * (layers/preprocessing/image_preprocessing/*.py); noise and SpatialDropout layers return
 * inputs unless training (layers/regularization/*.py); Identity always; ActivityRegularization
 * only adds a loss. RandomCrop is handled apart (it resized and center-cropped at inference
 * before keras 3.8).
 */
export const IDENTITY_AT_INFERENCE = new Set([
  'RandomFlip', 'RandomRotation', 'RandomZoom', 'RandomContrast', 'RandomTranslation', 'RandomBrightness',
  'RandomColorDegeneration', 'RandomColorJitter', 'RandomElasticTransform', 'RandomErasing', 'RandomGaussianBlur',
  'RandomGrayscale', 'RandomHue', 'RandomInvert', 'RandomPerspective', 'RandomPosterization', 'RandomSaturation',
  'RandomSharpness', 'RandomShear',
  'GaussianNoise', 'GaussianDropout', 'AlphaDropout', 'SpatialDropout1D', 'SpatialDropout2D', 'SpatialDropout3D',
  'Identity', 'ActivityRegularization',
]);

const isRef = (value: Json): value is Json[] => Array.isArray(value) && typeof value[0] === 'string' && typeof value[1] === 'number';

/**
 * Drops `dropped` layers (names) from a converted Functional config and points every reference
 * to their output at their input instead. A dropped model-as-layer counts its calls from 1.
 */
export function rewireDropped(config: JsonObject, dropped: Set<string>, where: string): void {
  if (dropped.size === 0) return;
  const layers = config.layers as JsonObject[];
  // (layer, node) -> the ref its single input was
  const through = new Map<string, Json[]>();
  for (const layer of layers) {
    const name = layer.name as string;
    if (!dropped.has(name)) continue;
    const first = CONTAINER_CLASSES.has(layer.class_name as string) ? 1 : 0;
    const nodes = Array.isArray(layer.inbound_nodes) ? layer.inbound_nodes : [];
    nodes.forEach((node, k) => {
      const refs = Array.isArray(node) ? node.filter(isRef) : [];
      if (refs.length !== 1) throw new Keras3Error(`${where}/${name} (${layer.class_name}): dropped as the identity at inference, but call ${k} has ${refs.length} inputs`);
      through.set(`${name}\u0000${k + first}`, refs[0]);
    });
  }
  const resolve = (ref: Json[], depth = 0): Json[] => {
    const next = through.get(`${ref[0]}\u0000${ref[1]}`);
    if (!next) return ref;
    if (depth > layers.length) throw new Keras3Error(`${where}: dropped layers reference each other in a cycle`);
    if (ref[2] !== 0) throw new Keras3Error(`${where}: output ${describe(ref[2])} of dropped layer ${ref[0]} does not exist`);
    // The consumer's call kwargs stay; the source's position replaces the dropped layer's.
    return resolve([next[0], next[1], next[2], ...ref.slice(3)], depth + 1);
  };
  config.layers = layers.filter((layer) => !dropped.has(layer.name as string));
  for (const layer of config.layers as JsonObject[]) {
    if (!Array.isArray(layer.inbound_nodes)) continue;
    layer.inbound_nodes = layer.inbound_nodes.map((node) => (Array.isArray(node) ? node.map((ref) => (isRef(ref) ? resolve(ref) : ref)) : node));
  }
  for (const key of ['input_layers', 'output_layers']) {
    const refs = config[key];
    if (Array.isArray(refs)) config[key] = refs.map((ref) => (isRef(ref) ? resolve(ref).slice(0, 3) : ref));
  }
  for (const ref of config.input_layers as Json[]) {
    if (isRef(ref) && dropped.has(ref[0] as string)) throw new Keras3Error(`${where}: model input ${ref[0]} is a dropped layer`);
  }
}

/** Layers through which tfjs-layers passes a mask on unchanged (their computeMask returns it). */
const MASK_PASSING = new Set(['Masking', 'Dropout', 'Activation', 'ReLU', 'PReLU', 'BatchNormalization', 'TimeDistributed', ...IDENTITY_AT_INFERENCE]);
const RECURRENT = new Set(['LSTM', 'GRU', 'SimpleRNN', 'RNN', 'Bidirectional']);

interface Keras3Tensor {
  layer: string;
  node: number;
  tensor: number;
}

function historyOf(value: Json): Keras3Tensor | null {
  if (!isObject(value) || value.class_name !== '__keras_tensor__' || !isObject(value.config)) return null;
  const history = value.config.keras_history;
  if (!Array.isArray(history) || typeof history[0] !== 'string' || typeof history[1] !== 'number' || typeof history[2] !== 'number') return null;
  return { layer: history[0], node: history[1], tensor: history[2] };
}

const sameTensor = (a: Keras3Tensor | null, b: Keras3Tensor | null) => !!a && !!b && a.layer === b.layer && a.node === b.node && a.tensor === b.tensor;

/** Every __keras_tensor__ in a value, at any depth. */
function tensorsIn(value: Json, out: Keras3Tensor[] = [], depth = 0): Keras3Tensor[] {
  if (depth > 16) return out;
  const own = historyOf(value);
  if (own) out.push(own);
  else if (Array.isArray(value)) value.forEach((item) => tensorsIn(item, out, depth + 1));
  else if (isObject(value)) Object.values(value).forEach((item) => tensorsIn(item, out, depth + 1));
  return out;
}

const nodesOf = (entry: JsonObject): JsonObject[] => (Array.isArray(entry.inbound_nodes) ? entry.inbound_nodes.filter(isObject) : []);
const firstArg = (node: JsonObject): Keras3Tensor | null => (Array.isArray(node.args) ? historyOf(node.args[0]) : null);
const entryName = (entry: JsonObject) => (typeof entry.name === 'string' ? entry.name : isObject(entry.config) && typeof entry.config.name === 'string' ? entry.config.name : '?');

/** Op classes Keras 3 writes for a Masking layer's mask: `any(not_equal(x, mask_value), axis=-1)`. */
export const MASK_OPS = new Set(['NotEqual', 'Any']);

/**
 * Removes the mask computation Keras 3 traced into a Functional (Keras 3 form) when it is exactly
 * a Masking layer's compute_mask and reaches each layer it is passed to (as the `mask` call
 * keyword) through layers that pass masks on in tfjs: tfjs then computes the same mask itself.
 * Anything else is refused naming why. Returns how many op layers were removed.
 */
export function removeMaskOps(config: JsonObject, where: string): number {
  const layers = Array.isArray(config.layers) ? config.layers.filter(isObject) : [];
  const ops = layers.filter((entry) => MASK_OPS.has(entry.class_name as string) && !isKerasLayerModule(entry));
  if (ops.length === 0) return 0;
  const byName = new Map(layers.map((entry) => [entryName(entry), entry]));
  // any-op name -> the Masking output tensors whose mask it is
  const masks = new Map<string, Keras3Tensor[]>();
  for (const op of ops.filter((entry) => entry.class_name === 'Any')) {
    const label = `${where}/${entryName(op)} (Any)`;
    const cfg = isObject(op.config) ? op.config : {};
    const axis = Array.isArray(cfg.axis) && cfg.axis.length === 1 ? cfg.axis[0] : cfg.axis;
    if (axis !== -1 || cfg.keepdims === true) throw new Keras3Error(`${label}: an op layer tfjs-layers has no layer for (only the mask of a Masking layer, any(not_equal(x, v), axis=-1), is converted; got axis=${JSON.stringify(cfg.axis)}, keepdims=${JSON.stringify(cfg.keepdims)})`);
    const [node] = nodesOf(op);
    const input = node && firstArg(node);
    const notEqual = input && byName.get(input.layer);
    if (!notEqual || notEqual.class_name !== 'NotEqual') throw new Keras3Error(`${label}: an op layer tfjs-layers has no layer for (not the mask of a Masking layer: its input is not a NotEqual)`);
    const [neNode] = nodesOf(notEqual);
    const args = neNode && Array.isArray(neNode.args) ? neNode.args : [];
    const x = historyOf(args[0]);
    const value = args[1];
    const maskings = layers.filter((entry) => entry.class_name === 'Masking');
    const outputs: Keras3Tensor[] = [];
    for (const masking of maskings) {
      const maskValue = isObject(masking.config) ? masking.config.mask_value ?? 0 : 0;
      nodesOf(masking).forEach((mnode, k) => {
        if (sameTensor(firstArg(mnode), x) && maskValue === value) outputs.push({ layer: entryName(masking), node: k, tensor: 0 });
      });
    }
    if (outputs.length === 0) {
      throw new Keras3Error(`${label}: an op layer tfjs-layers has no layer for (not the mask of a Masking layer: no Masking with mask_value=${describe(value)} is called on the input of ${entryName(notEqual)})`);
    }
    masks.set(entryName(op), outputs);
  }
  const removed = new Set(ops.map(entryName));
  for (const op of ops) {
    if (op.class_name !== 'NotEqual') continue;
    const users = layers.filter((entry) => !removed.has(entryName(entry)) && tensorsIn(entry.inbound_nodes ?? []).some((t) => t.layer === entryName(op)));
    if (users.length) throw new Keras3Error(`${where}/${entryName(op)} (NotEqual): an op layer tfjs-layers has no layer for (its result is used by ${entryName(users[0])}, not only as a Masking mask)`);
  }
  // Each use of a mask must be the `mask` keyword of a layer whose input carries that mask in tfjs.
  for (const entry of layers) {
    if (removed.has(entryName(entry))) continue;
    for (const node of nodesOf(entry)) {
      const kwargs = isObject(node.kwargs) ? node.kwargs : {};
      for (const t of tensorsIn(node.args ?? [])) {
        if (removed.has(t.layer)) throw new Keras3Error(`${where}/${entryName(entry)}: takes the Masking mask op ${t.layer} as an input, which tfjs-layers cannot express`);
      }
      for (const [key, value] of Object.entries(kwargs)) {
        const used = tensorsIn(value).filter((t) => removed.has(t.layer));
        if (used.length === 0) continue;
        const label = `${where}/${entryName(entry)} (${entry.class_name})`;
        if (key !== 'mask' || used.length !== 1 || !masks.has(used[0].layer)) throw new Keras3Error(`${label}: call keyword argument "${key}" is a tensor, which tfjs-layers cannot express`);
        const from = maskSource(firstArg(node), masks.get(used[0].layer)!, byName);
        if (from) throw new Keras3Error(`${label}: receives the mask of a Masking layer through ${from}, which tfjs-layers does not pass masks through the same way`);
        delete kwargs[key];
      }
    }
  }
  config.layers = (config.layers as Json[]).filter((entry) => !(isObject(entry) && removed.has(entryName(entry))));
  return ops.length;
}

/**
 * Follows a layer's first input back to one of the Masking outputs through layers that pass the
 * mask on in tfjs; returns null when it gets there, else the layer where the path leaves that set.
 */
function maskSource(start: Keras3Tensor | null, maskings: Keras3Tensor[], byName: Map<string, JsonObject>): string | null {
  let tensor = start;
  for (let step = 0; tensor && step <= byName.size; step++) {
    if (maskings.some((m) => sameTensor(m, tensor))) return null;
    const entry = byName.get(tensor.layer);
    if (!entry) return tensor.layer;
    const cls = entry.class_name as string;
    const cfg = isObject(entry.config) ? entry.config : {};
    const passes = MASK_PASSING.has(cls) || (RECURRENT.has(cls) && (cfg.return_sequences === true || (isObject(cfg.layer) && isObject(cfg.layer.config) && cfg.layer.config.return_sequences === true)));
    if (!passes) return `${tensor.layer} (${cls})`;
    const node = nodesOf(entry)[tensor.node];
    tensor = node ? firstArg(node) : null;
  }
  return 'an input that is not the Masking layer';
}

/** Whether a layer entry says it is a Keras layer (module keras.layers / keras.src.layers...). */
function isKerasLayerModule(entry: JsonObject): boolean {
  return typeof entry.module === 'string' && /^keras(\.src)?\.layers/.test(entry.module);
}

/**
 * A converted pooling entry with keepdims=true -> [pooling renamed `<name>_pool`, Reshape named
 * `<name>`] (the Reshape restores the kept size-1 axes, channels_last: [1, .., channels]).
 */
export function splitKeepdims(entry: JsonObject, shape: { rank: number; channelsFirst: boolean; channels: number | null }, taken: (name: string) => boolean, functional: boolean): JsonObject[] {
  const { rank, channelsFirst } = shape;
  // -1 when the file does not say the channel count (tfjs then leaves that size unknown).
  const channels = shape.channels ?? -1;
  const config = entry.config as JsonObject;
  const name = config.name as string;
  let poolName = `${name}_pool`;
  for (let i = 1; taken(poolName); i++) poolName = `${name}_pool_${i}`;
  const ones = new Array(rank).fill(1);
  const target = channelsFirst ? [channels, ...ones] : [...ones, channels];
  const pool: JsonObject = { ...entry, config: { ...config, name: poolName } };
  const reshape: JsonObject = { class_name: 'Reshape', config: { name, trainable: true, dtype: config.dtype ?? 'float32', target_shape: target } };
  if (functional) {
    pool.name = poolName;
    reshape.name = name;
    const calls = Array.isArray(entry.inbound_nodes) ? entry.inbound_nodes.length : 0;
    reshape.inbound_nodes = Array.from({ length: calls }, (_, k) => [[poolName, k, 0, {}]]);
  }
  return [pool, reshape];
}
