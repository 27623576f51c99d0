/**
 * Config values of built-in layers that tfjs accepts at load time but fails on (or allocates
 * absurdly for) only when the model runs: zero strides, boolean input dims, 1e308-sized inputs.
 * Checked by key for the built-in classes that use each key; custom classes are left alone,
 * since their keys may mean anything.
 */
import { InputError } from '../errors';
import { isKnownLayerClass } from '../layers/shapes';
import type { Graph, Json, LayerNode } from '../layers/types';
import { describeValue, isObject } from './describe';

/** Larger inputs than this cannot be generated for verification (and are not real models). */
const MAX_INPUT_ELEMENTS = 2 ** 31;

const CONV = ['Conv1D', 'Conv2D', 'Conv3D', 'Conv2DTranspose', 'Conv3DTranspose', 'DepthwiseConv2D', 'SeparableConv1D', 'SeparableConv2D'];
const POOL = ['MaxPooling1D', 'MaxPooling2D', 'MaxPooling3D', 'AveragePooling1D', 'AveragePooling2D', 'AveragePooling3D'];
const BUILT_IN = new Set([...CONV, ...POOL, 'Dense', 'BatchNormalization', 'LayerNormalization', 'Embedding', 'SimpleRNN', 'GRU', 'LSTM']);

/** Spatial rank from the class name (Conv3D -> 3): the length of its tuple arguments. */
const rankOf = (className: string) => Number(/(\d)D/.exec(className)?.[1] ?? NaN);

/** Keys a built-in class cannot be constructed without. */
const REQUIRED: Record<string, string[]> = Object.fromEntries([
  ...CONV.map((c) => [c, c === 'DepthwiseConv2D' ? ['kernel_size'] : ['kernel_size', 'filters']]),
  ['Dense', ['units']],
]);

/** Keys that must hold positive integers (a number or a list of them), and the classes they apply to. */
const POSITIVE: [string, string[]][] = [
  ['kernel_size', CONV],
  ['strides', [...CONV, ...POOL]],
  ['dilation_rate', CONV],
  ['pool_size', POOL],
  ['filters', CONV.filter((c) => c !== 'DepthwiseConv2D')],
  ['depth_multiplier', ['DepthwiseConv2D', 'SeparableConv1D', 'SeparableConv2D']],
  ['units', ['Dense', 'SimpleRNN', 'GRU', 'LSTM']],
];

const positive = (value: Json) => typeof value === 'number' && Number.isInteger(value) && value >= 1;

function checkPositive(value: Json, where: string, allowList: boolean, rank: number): void {
  if (allowList && Array.isArray(value)) {
    if (value.length !== rank) throw new InputError(`${where}: expected ${rank} positive integers, got ${describeValue(value)}`);
    value.forEach((item, i) => {
      if (!positive(item)) throw new InputError(`${where}[${i}]: expected a positive integer, got ${describeValue(item)}`);
    });
  } else if (!positive(value)) {
    throw new InputError(`${where}: expected a positive integer${allowList ? ' or a list of them' : ''}, got ${describeValue(value)}`);
  }
}

/** batch_input_shape and friends: dims are positive integers or null (unknown), of bounded size. */
function checkInputShape(value: Json, where: string): void {
  if (!Array.isArray(value)) throw new InputError(`${where}: expected a list of dimensions, got ${describeValue(value)}`);
  let elements = 1;
  value.forEach((dim, i) => {
    if (dim === null) return;
    if (!positive(dim)) throw new InputError(`${where}[${i}]: expected a positive integer or null, got ${describeValue(dim)}`);
    elements *= dim as number;
  });
  if (elements > MAX_INPUT_ELEMENTS) throw new InputError(`${where}: ${describeValue(value)} has more than 2^31 elements per row`);
}

/**
 * Initializers, regularizers, constraints and activations are serialized objects tfjs looks up
 * by class name; a malformed one fails deep in its loader with no layer named.
 */
function checkSerialized(value: Json, where: string, allowString: boolean): void {
  if (value === null || (allowString && typeof value === 'string')) return;
  if (!isObject(value) || typeof value.class_name !== 'string' || !isObject(value.config)) {
    const expected = `{"class_name": ..., "config": {...}}${allowString ? ', a name' : ''} or null`;
    throw new InputError(`${where}: expected ${expected}, got ${describeValue(value)}`);
  }
  if (!isKnownLayerClass(value.class_name)) {
    throw new InputError(`${where}.class_name: unknown class "${value.class_name}" (not registered with tfjs)`);
  }
}

function checkLayer(layer: LayerNode, where: string): void {
  const config = layer.config;
  const at = (key: string) => `${where}/${layer.name} (${layer.className}) config.${key}`;
  for (const key of ['batch_input_shape', 'batch_shape', 'input_shape']) {
    if (config[key] !== undefined && config[key] !== null) checkInputShape(config[key], at(key));
  }
  if (!BUILT_IN.has(layer.className)) return;
  for (const key of REQUIRED[layer.className] ?? []) {
    if (config[key] === undefined || config[key] === null) throw new InputError(`${at(key)}: missing (required by ${layer.className})`);
  }
  for (const [key, classes] of POSITIVE) {
    const value = config[key];
    if (value === undefined || value === null || !classes.includes(layer.className)) continue;
    checkPositive(value, at(key), key !== 'filters' && key !== 'units' && key !== 'depth_multiplier', rankOf(layer.className));
  }
  for (const [key, value] of Object.entries(config)) {
    if (/_(initializer|regularizer|constraint)$/.test(key)) checkSerialized(value, at(key), false);
    else if (key === 'activation' || key === 'recurrent_activation') checkSerialized(value, at(key), true);
  }
}

/** Throws an InputError naming the layer and key of the first bad value, recursing into nested models. */
export function checkLayerConfigs(graph: Graph, where = graph.name): void {
  for (const layer of graph.layers) {
    if (layer.graph) checkLayerConfigs(layer.graph, `${where}/${layer.name}`);
    else checkLayer(layer, where);
  }
}
