/**
 * Seeded random conv models for the whole-pipeline property test: a Conv1D/2D/3D drawn across
 * every dimension the rewrite depends on, followed by a random consumer, built with stock tfjs.
 * Pure data first (`drawCase`), so the distribution can be printed and a failing case replayed
 * from its seed; `buildCase` turns one into a tf.LayersModel.
 */
import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../../fixtures/models';

export const ACTIVATIONS = ['linear', 'relu', 'relu6', 'sigmoid', 'tanh', 'elu', 'selu', 'softplus', 'softsign', 'hard_sigmoid', 'swish', 'softmax'] as const;
export const CONSUMERS = ['none', 'flatten', 'flatten-dense', 'reshape', 'dense', 'conv'] as const;
/**
 * What must stay, and the refusal that says why: a sliding stride, 'same' that really pads,
 * softmax over a channels_first output (it would normalize over W), a channels_first Conv1D
 * (tfjs computes it channels last).
 */
export const MUST_STAY = { slides: 'strides', pads: "padding 'same' pads", 'softmax-first': "activation 'softmax'", 'conv1d-first': "data_format 'channels_first'" } as const;

export type Consumer = (typeof CONSUMERS)[number];
export type StayKind = keyof typeof MUST_STAY;

export interface ConvCase {
  id: number;
  seed: number;
  rank: 1 | 2 | 3;
  channelsFirst: boolean;
  channels: number;
  filters: number;
  kernel: number[];
  strides: number[];
  /** Input sizes per spatial axis (kernel * patches + remainder). */
  spatial: number[];
  padding: 'valid' | 'same';
  useBias: boolean;
  activation: (typeof ACTIVATIONS)[number];
  consumer: Consumer;
  /** Units of the Dense in 'flatten-dense' / 'dense', filters of the second conv in 'conv'. */
  units: number;
  functional: boolean;
  batch: number;
  /** Set when the conv must not be rewritten; the refusal must contain MUST_STAY[stay]. */
  stay?: StayKind;
}

export const CONV_PASSES = ['conv3d-to-dense', 'conv2d-to-dense', 'conv1d-to-dense', 'fold-views-into-dense', 'collapse-reshapes', 'drop-identity-views'];

export function drawCase(id: number, seed: number): ConvCase {
  const rand = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)];
  const rank = int(1, 3) as 1 | 2 | 3;
  // A channels_first Conv1D always stays (see MUST_STAY): fewer of them, more that rewrite.
  const channelsFirst = rand() < (rank === 1 ? 0.3 : 0.5);
  // Small sizes keep 300+ cases fast; ranges still cover 1 and > 1 on every axis.
  const kernel = Array.from({ length: rank }, () => int(1, rank === 3 ? 2 : 3));
  const patches = Array.from({ length: rank }, () => int(1, 3));
  const remainders = kernel.map((k) => (k > 1 && rand() < 0.4 ? int(1, k - 1) : 0));
  let padding: ConvCase['padding'] = rand() < 0.25 ? 'same' : 'valid';
  let stay: StayKind | undefined;
  const roll = rand();
  const slidable = kernel.findIndex((k) => k > 1);
  if (rank === 1 && channelsFirst) stay = 'conv1d-first';
  else if (roll < 0.06 && slidable >= 0) stay = 'slides';
  else if (roll < 0.12 && remainders.some((r) => r > 0)) stay = 'pads';
  let activation = pick(ACTIVATIONS);
  if (stay === undefined && activation === 'softmax' && channelsFirst) stay = 'softmax-first';
  if (stay === 'pads') padding = 'same';
  // 'same' that pads nothing: every size a multiple of the kernel.
  else if (padding === 'same') remainders.fill(0);
  const strides = [...kernel];
  if (stay === 'slides') strides[slidable] = kernel[slidable] - 1;
  if (stay !== undefined && stay !== 'softmax-first' && activation === 'softmax' && channelsFirst) activation = 'linear';
  const spatial = kernel.map((k, i) => k * patches[i] + remainders[i]);
  // A channels_first Conv1D has only the consumers whose shape tfjs's quirk cannot break.
  const consumers = stay === 'conv1d-first' ? (['none', 'flatten'] as const) : CONSUMERS;
  return {
    id, seed, rank, channelsFirst, kernel, strides, spatial, padding, activation, stay,
    channels: pick([1, 2, 2, 3, 3, 4]),
    filters: pick([1, 2, 3, 3, 4, 5]),
    useBias: rand() < 0.7,
    consumer: pick(consumers),
    units: int(1, 4),
    functional: rand() < 0.5,
    batch: int(1, 3),
  };
}

export function drawCases(count: number, seed = 20261130): ConvCase[] {
  const seeds = mulberry32(seed);
  return Array.from({ length: count }, (_, id) => drawCase(id, Math.floor(seeds() * 2 ** 32)));
}

export function inputShape(c: ConvCase): number[] {
  return c.channelsFirst ? [c.channels, ...c.spatial] : [...c.spatial, c.channels];
}

export const convName = (c: ConvCase) => `case${c.id}_conv`;

/** The conv and its consumer as stock tfjs layers, Sequential or Functional. */
export function buildCase(c: ConvCase): tf.LayersModel {
  const dataFormat = c.channelsFirst ? 'channelsFirst' : 'channelsLast';
  const convArgs = {
    name: convName(c), filters: c.filters, kernelSize: c.kernel, strides: c.strides, padding: c.padding, dataFormat,
    useBias: c.useBias, activation: tfjsActivation(c.activation),
    // Non-zero biases, or a wrong bias row would go unnoticed.
    biasInitializer: tf.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: c.seed % 1000 }),
    kernelInitializer: tf.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: (c.seed >>> 10) % 1000 }),
  } as const;
  const conv = c.rank === 1 ? tf.layers.conv1d(convArgs) : c.rank === 2 ? tf.layers.conv2d(convArgs) : tf.layers.conv3d(convArgs);
  const layers: tf.layers.Layer[] = [conv];
  const name = (suffix: string) => `case${c.id}_${suffix}`;
  switch (c.consumer) {
    case 'flatten':
      layers.push(tf.layers.flatten({ name: name('flatten') }));
      break;
    case 'flatten-dense':
      layers.push(tf.layers.flatten({ name: name('flatten') }), tf.layers.dense({ name: name('dense'), units: c.units, activation: 'tanh' }));
      break;
    case 'reshape':
      layers.push(tf.layers.reshape({ name: name('reshape'), targetShape: [-1, c.channelsFirst ? outputSpatial(c).at(-1)! : c.filters] }));
      break;
    case 'dense':
      layers.push(tf.layers.dense({ name: name('dense'), units: c.units }));
      break;
    case 'conv': {
      const args = { name: name('pointwise'), filters: c.units, kernelSize: 1, dataFormat } as const;
      layers.push(c.rank === 1 ? tf.layers.conv1d(args) : c.rank === 2 ? tf.layers.conv2d(args) : tf.layers.conv3d(args));
      break;
    }
    case 'none':
      break;
  }
  if (!c.functional) {
    const model = tf.sequential({ name: name('seq') });
    model.add(tf.layers.inputLayer({ inputShape: inputShape(c), name: name('input') }));
    layers.forEach((layer) => model.add(layer));
    return model;
  }
  const input = tf.input({ shape: inputShape(c), name: name('input') });
  const output = layers.reduce<tf.SymbolicTensor>((x, layer) => layer.apply(x) as tf.SymbolicTensor, input);
  return tf.model({ inputs: input, outputs: output, name: name('functional') });
}

function outputSpatial(c: ConvCase): number[] {
  return c.spatial.map((size, i) => (c.padding === 'same' ? Math.ceil(size / c.strides[i]) : Math.floor((size - c.kernel[i]) / c.strides[i]) + 1));
}

function tfjsActivation(name: ConvCase['activation']) {
  return (name === 'hard_sigmoid' ? 'hardSigmoid' : name) as 'linear';
}

/** How many cases have each value of each drawn dimension, one line per dimension. */
export function distribution(cases: ConvCase[]): string {
  const dims: Record<string, (c: ConvCase) => string | number | boolean> = {
    rank: (c) => `Conv${c.rank}D`,
    format: (c) => (c.channelsFirst ? 'channels_first' : 'channels_last'),
    channels: (c) => (c.channels > 1 ? '>1' : '1'),
    filters: (c) => (c.filters > 1 ? '>1' : '1'),
    kernel: (c) => (c.kernel.every((k) => k === 1) ? 'all 1 (pointwise)' : 'some >1'),
    patches: (c) => (c.spatial.every((s, i) => s < 2 * c.kernel[i]) ? 'one (covers input)' : 'many'),
    remainder: (c) => (c.spatial.some((s, i) => s % c.kernel[i] !== 0) ? 'yes' : 'no'),
    padding: (c) => c.padding,
    bias: (c) => c.useBias,
    activation: (c) => c.activation,
    consumer: (c) => c.consumer,
    api: (c) => (c.functional ? 'functional' : 'sequential'),
    batch: (c) => c.batch,
    expected: (c) => (c.stay ? `stays (${c.stay})` : 'rewritten'),
  };
  return Object.entries(dims).map(([dim, of]) => {
    const counts = new Map<string, number>();
    for (const c of cases) counts.set(String(of(c)), (counts.get(String(of(c))) ?? 0) + 1);
    return `  ${dim.padEnd(10)} ${[...counts].sort().map(([value, n]) => `${value}: ${n}`).join(', ')}`;
  }).join('\n');
}
