/**
 * What real Keras 3 exports hold beyond the format itself (issue 21), each to the letter of the
 * keras sources cited in src/layers/keras3*.ts: options at Keras defaults, inference-time
 * identity layers, the Masking mask ops, Normalization, half-converted files, custom layers; and
 * the `convert` command. Each positive case loads in stock tfjs and predicts what an
 * independently built tfjs model (or a float64 formula) computes; each refusal names the layer,
 * the option and why.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { convertKeras3, ALREADY_LOADABLE } from '../src';
import { Keras3Error, convertKeras3Topology } from '../src/layers/keras3';
import { irFromArtifacts, loadableArtifacts } from '../src/io/ir';
import { mulberry32 } from '../fixtures/models';
import { runCli } from './helpers/cli';
import { disposeModel, expectNoLeaks, snapshotDir, tempDir } from './helpers/tf';

type J = any;
const policy = () => ({ module: 'keras', class_name: 'DTypePolicy', config: { name: 'float32' }, registered_name: null });
const kt = (layer: string, node = 0, tensor = 0) => ({ class_name: '__keras_tensor__', config: { shape: null, dtype: 'float32', keras_history: [layer, node, tensor] } });
const input = (name: string, shape: (number | null)[]) => ({
  module: 'keras.layers', class_name: 'InputLayer', config: { batch_shape: shape, dtype: 'float32', sparse: false, ragged: false, name }, registered_name: null, name, inbound_nodes: [],
});
const layer = (className: string, name: string, config: J, args: J[] = [], kwargs: J = {}, extra: J = {}) => ({
  module: 'keras.layers', class_name: className, config: { name, trainable: true, dtype: policy(), ...config }, registered_name: null, name, inbound_nodes: [{ args, kwargs }], ...extra,
});
const functional = (name: string, layers: J[], inputs: J, outputs: J) => ({ class_name: 'Functional', config: { name, trainable: true, layers, input_layers: inputs, output_layers: outputs } });
const topology = (model: J, version = '3.10.0') => ({ keras_version: version, backend: 'tensorflow', model_config: model });
const artifacts = (model: J, weights: [string, number[], Float32Array][] = [], version = '3.10.0'): tf.io.ModelArtifacts => {
  const data = new Float32Array(weights.reduce((n, [, , v]) => n + v.length, 0));
  let at = 0;
  for (const [, , v] of weights) {
    data.set(v, at);
    at += v.length;
  }
  return {
    modelTopology: topology(model, version),
    weightSpecs: weights.map(([name, shape]) => ({ name, shape, dtype: 'float32' as const })),
    weightData: data.buffer,
  };
};

const seeded = (seed: number, n: number) => {
  const rand = mulberry32(seed);
  return Float32Array.from({ length: n }, () => rand() * 2 - 1);
};

function refusal(fn: () => unknown): string {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(Keras3Error);
  const message = (error as Error).message;
  expect(message).not.toMatch(/\n/);
  return message;
}

/** Converts like every entry point does, loads in stock tfjs, and runs `body` on the model. */
async function loaded<T>(input: tf.io.ModelArtifacts, body: (model: tf.LayersModel, changes: string[]) => Promise<T> | T): Promise<T> {
  const ir = irFromArtifacts(input);
  const model = await tf.loadLayersModel(tf.io.fromMemory(loadableArtifacts(input, ir)));
  try {
    return await body(model, ir.converted?.changes ?? []);
  } finally {
    disposeModel(model);
  }
}

async function expectSame(a: tf.Tensor, b: tf.Tensor, tolerance = 1e-5): Promise<void> {
  expect(a.shape).toEqual(b.shape);
  const [x, y] = [await a.data(), await b.data()];
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / (1 + Math.abs(y[i])));
  expect(worst).toBeLessThanOrEqual(tolerance);
  tf.dispose([a, b]);
}

describe('1. options: Keras defaults dropped with a note, exact equivalents converted, the rest refused', () => {
  const relu = (config: J) => functional('m', [input('x', [null, 6]), layer('ReLU', 'act', { max_value: null, negative_slope: 0, threshold: 0, ...config }, [kt('x')])], [['x', 0, 0]], [['act', 0, 0]]);
  test('ReLU negative_slope=0, threshold=0 (Keras defaults) -> ReLU; negative_slope=0.2 -> LeakyReLU(0.2)', async () => {
    const x = tf.tensor2d([[-2, -0.5, 0, 0.5, 2, -1]]);
    await loaded(artifacts(relu({})), async (model, changes) => {
      expect(changes).toContain('Keras 3-only option "negative_slope" at its no-op value dropped (1)');
      expect(changes).toContain('Keras 3-only option "threshold" at its no-op value dropped (1)');
      await expectSame(model.predict(x) as tf.Tensor, tf.relu(x), 0);
    });
    await loaded(artifacts(relu({ negative_slope: 0.2 })), async (model, changes) => {
      expect(model.getLayer('act').getClassName()).toBe('LeakyReLU');
      expect(changes).toContain('ReLU with negative_slope -> LeakyReLU (1)');
      await expectSame(model.predict(x) as tf.Tensor, tf.leakyRelu(x, 0.2), 0);
    });
    x.dispose();
  });
  test('ReLU with a threshold, or a slope with max_value, is refused naming layer, option and value', () => {
    expect(refusal(() => convertKeras3Topology(topology(relu({ threshold: 0.5 })))))
      .toBe('m/act (ReLU): option threshold=0.5 has no tfjs-layers equivalent (thresholded ReLU)');
    expect(refusal(() => convertKeras3Topology(topology(relu({ negative_slope: 0.1, max_value: 6 })))))
      .toBe('m/act (ReLU): option negative_slope=0.1 has no tfjs-layers equivalent (leaky slope with a max_value or threshold)');
  });

  // keepdims=true output [n, 1, 1, c] feeds a 1x1 conv by the pooling's name: the Reshape takes the name.
  const pooled = (keepdims: boolean) => functional('m', [
    input('img', [null, 4, 5, 3]),
    layer('GlobalAveragePooling2D', 'gap', { data_format: 'channels_last', keepdims }, [kt('img')], {}, { build_config: { input_shape: [null, 4, 5, 3] } }),
    layer('Dense', 'head', { units: 2, activation: 'linear', use_bias: true }, [kt('gap')]),
  ], [['img', 0, 0]], [['head', 0, 0], ['gap', 0, 0]]);
  const kernel = seeded(7, 6);
  const bias = Float32Array.from([0.5, -0.25]);
  test('keepdims=false (the default) is dropped; keepdims=true -> pooling + Reshape with the same name and output', async () => {
    const img = tf.tensor4d(seeded(3, 2 * 4 * 5 * 3), [2, 4, 5, 3]);
    const mean = tf.mean(img, [1, 2]);
    for (const keepdims of [false, true]) {
      await loaded(artifacts(pooled(keepdims), [['head/kernel', [3, 2], kernel], ['head/bias', [2], bias]]), async (model, changes) => {
        const [head, gap] = model.predict(img) as tf.Tensor[];
        expect(gap.shape).toEqual(keepdims ? [2, 1, 1, 3] : [2, 3]);
        expect(changes).toContain(keepdims ? 'keepdims=true -> pooling + Reshape keeping the size-1 axes (1)' : 'Keras 3-only option "keepdims" at its no-op value dropped (1)');
        const expected = tf.add(tf.matMul(mean, tf.tensor2d(kernel, [3, 2])), tf.tensor1d(bias));
        await expectSame(head, keepdims ? expected.reshape([2, 1, 1, 2]) : expected);
        await expectSame(gap, keepdims ? mean.reshape([2, 1, 1, 3]) : mean.clone());
      });
    }
    tf.dispose([img, mean]);
  });
});

describe('1b. each common layer config as keras 3.10 get_config writes it (layer.py, rnn/*.py, convolutional/*.py, ...) converts and stock tfjs builds it', () => {
  const init = (c: string, config: J = { seed: null }) => ({ module: 'keras.initializers', class_name: c, config, registered_name: null });
  const base = { trainable: true, dtype: policy() };
  const cases: [string, J, number[]][] = [
    ['LSTM', { units: 4, activation: 'tanh', recurrent_activation: 'sigmoid', use_bias: true, kernel_initializer: init('GlorotUniform'), recurrent_initializer: init('Orthogonal', { gain: 1.0, seed: null }), bias_initializer: init('Zeros', {}), unit_forget_bias: true, kernel_regularizer: null, recurrent_regularizer: null, bias_regularizer: null, activity_regularizer: null, kernel_constraint: null, recurrent_constraint: null, bias_constraint: null, dropout: 0.0, recurrent_dropout: 0.0, seed: null, return_sequences: false, return_state: false, go_backwards: false, stateful: false, unroll: false, zero_output_for_mask: false, use_cudnn: 'auto' }, [5, 3]],
    ['SimpleRNN', { units: 4, activation: 'tanh', use_bias: true, kernel_initializer: init('GlorotUniform'), recurrent_initializer: init('Orthogonal', { gain: 1.0, seed: null }), bias_initializer: init('Zeros', {}), kernel_regularizer: null, recurrent_regularizer: null, bias_regularizer: null, activity_regularizer: null, kernel_constraint: null, recurrent_constraint: null, bias_constraint: null, dropout: 0.0, recurrent_dropout: 0.0, seed: null, return_sequences: false, return_state: false, go_backwards: false, stateful: false, unroll: false, zero_output_for_mask: false }, [5, 3]],
    ['Embedding', { input_dim: 10, output_dim: 4, embeddings_initializer: init('RandomUniform', { minval: -0.05, maxval: 0.05, seed: null }), embeddings_regularizer: null, activity_regularizer: null, embeddings_constraint: null, mask_zero: false }, [5]],
    ['Dropout', { rate: 0.5, seed: null, noise_shape: null }, [5]],
    ['LayerNormalization', { axis: -1, epsilon: 0.001, center: true, scale: true, rms_scaling: false, beta_initializer: init('Zeros', {}), gamma_initializer: init('Ones', {}), beta_regularizer: null, gamma_regularizer: null, beta_constraint: null, gamma_constraint: null }, [5]],
    ['Conv1D', { filters: 4, kernel_size: [3], strides: [1], padding: 'same', data_format: 'channels_last', dilation_rate: [1], groups: 1, activation: 'relu', use_bias: true, kernel_initializer: init('GlorotUniform'), bias_initializer: init('Zeros', {}), kernel_regularizer: null, bias_regularizer: null, activity_regularizer: null, kernel_constraint: null, bias_constraint: null }, [6, 3]],
    ['MaxPooling1D', { pool_size: [2], padding: 'valid', strides: [2], data_format: 'channels_last' }, [6, 3]],
    ['GlobalMaxPooling1D', { data_format: 'channels_last', keepdims: false }, [6, 3]],
    ['DepthwiseConv2D', { kernel_size: [3, 3], strides: [1, 1], padding: 'same', data_format: 'channels_last', dilation_rate: [1, 1], groups: 1, activation: 'linear', use_bias: false, bias_initializer: init('Zeros', {}), bias_regularizer: null, activity_regularizer: null, bias_constraint: null, depth_multiplier: 1, depthwise_initializer: init('GlorotUniform'), depthwise_regularizer: null, depthwise_constraint: null }, [6, 6, 3]],
    ['SeparableConv2D', { filters: 4, kernel_size: [3, 3], strides: [1, 1], padding: 'same', data_format: 'channels_last', dilation_rate: [1, 1], depth_multiplier: 1, activation: 'relu', use_bias: true, depthwise_initializer: init('GlorotUniform'), pointwise_initializer: init('GlorotUniform'), bias_initializer: init('Zeros', {}), depthwise_regularizer: null, pointwise_regularizer: null, bias_regularizer: null, activity_regularizer: null, depthwise_constraint: null, pointwise_constraint: null, bias_constraint: null }, [6, 6, 3]],
    ['Conv2DTranspose', { filters: 4, kernel_size: [3, 3], strides: [2, 2], padding: 'same', data_format: 'channels_last', dilation_rate: [1, 1], groups: 1, activation: 'linear', use_bias: true, kernel_initializer: init('GlorotUniform'), bias_initializer: init('Zeros', {}), kernel_regularizer: null, bias_regularizer: null, activity_regularizer: null, kernel_constraint: null, bias_constraint: null, output_padding: null }, [6, 6, 3]],
    ['UpSampling2D', { size: [2, 2], data_format: 'channels_last', interpolation: 'nearest' }, [6, 6, 3]],
    ['Flatten', { data_format: 'channels_last' }, [6, 6, 3]],
    ['Reshape', { target_shape: [36, 3] }, [6, 6, 3]],
    ['Permute', { dims: [2, 1] }, [6, 3]],
    ['Activation', { activation: 'relu' }, [6]],
    ['Softmax', { axis: -1 }, [6]],
    ['LeakyReLU', { negative_slope: 0.3 }, [6]],
    ['ELU', { alpha: 1.0 }, [6]],
    ['PReLU', { alpha_initializer: init('Constant', { value: 0.25 }), alpha_regularizer: null, alpha_constraint: null, shared_axes: null }, [6]],
    ['MaxPooling2D', { pool_size: [2, 2], padding: 'valid', strides: [2, 2], data_format: 'channels_last' }, [6, 6, 3]],
    ['AveragePooling2D', { pool_size: [2, 2], padding: 'valid', strides: [2, 2], data_format: 'channels_last' }, [6, 6, 3]],
    ['Cropping2D', { cropping: [[1, 1], [1, 1]], data_format: 'channels_last' }, [6, 6, 3]],
    ['RepeatVector', { n: 3 }, [6]],
    ['TimeDistributed', { layer: { module: 'keras.layers', class_name: 'Dense', config: { name: 'td_d', ...base, units: 2, activation: 'linear', use_bias: true }, registered_name: null } }, [5, 3]],
    ['Masking', { mask_value: 0.0 }, [5, 3]],
    ['ZeroPadding2D', { padding: [[1, 1], [1, 1]], data_format: 'channels_last' }, [6, 6, 3]],
  ];
  const one = (cls: string, config: J, shape: number[]) => topology({ class_name: 'Sequential', config: { name: 's', layers: [
    { module: 'keras.layers', class_name: 'InputLayer', config: { batch_shape: [null, ...shape], dtype: 'float32', sparse: false, ragged: false, name: 'x' }, registered_name: null },
    { module: 'keras.layers', class_name: cls, config: { name: 'l', ...base, ...config }, registered_name: null },
  ] } });
  test.each(cases)('%s', async (cls, config, shape) => {
    const model = await tf.models.modelFromJSON({ modelTopology: convertKeras3Topology(one(cls, config, shape)).topology } as J);
    const x = tf.zeros([2, ...shape]);
    const y = model.predict(x) as tf.Tensor;
    expect(y.shape[0]).toBe(2);
    tf.dispose([x, y]);
    disposeModel(model);
  });
  test('GRU with reset_after=true (the Keras 3 default) is refused with tfjs\'s reason', () => {
    const gru = { units: 4, reset_after: true, return_sequences: false };
    expect(refusal(() => convertKeras3Topology(one('GRU', gru, [5, 3])))).toBe('s/l (GRU): tfjs-layers cannot build this layer from its converted config: GRUCell does not support reset_after parameter set to true.');
  });
});

describe('2. layers that are the identity at inference are dropped and their consumers rewired', () => {
  const dense = (name: string, from: J) => layer('Dense', name, { units: 3, activation: 'tanh', use_bias: true }, [from]);
  // nested Sequential of augmentations only (keras.Sequential([RandomFlip(), RandomRotation()])), called first after Input
  const augment = {
    module: 'keras', class_name: 'Sequential', registered_name: null, name: 'augment',
    config: { name: 'augment', trainable: true, dtype: policy(), layers: [
      { module: 'keras.layers', class_name: 'InputLayer', config: { batch_shape: [null, 4], dtype: 'float32', sparse: false, name: 'augment_in' }, registered_name: null },
      { module: 'keras.layers', class_name: 'RandomFlip', config: { name: 'flip', trainable: true, dtype: policy(), mode: 'horizontal', seed: null, data_format: 'channels_last' }, registered_name: null },
      { module: 'keras.layers', class_name: 'RandomRotation', config: { name: 'rot', trainable: true, dtype: policy(), factor: 0.1, seed: null }, registered_name: null },
    ] },
    inbound_nodes: [{ args: [kt('x')], kwargs: { training: false } }],
  };
  const model = functional('m', [
    input('x', [null, 4]),
    augment,
    layer('GaussianNoise', 'noise', { stddev: 0.1, seed: null }, [kt('augment', 0)]),
    dense('d1', kt('noise')),
    layer('SpatialDropout1D', 'sdrop', { rate: 0.5, seed: null, noise_shape: null }, [kt('d1')]),
    layer('AlphaDropout', 'adrop', { rate: 0.5, seed: null, noise_shape: null }, [kt('sdrop')]),
    layer('Concatenate', 'cat', { axis: -1 }, [[kt('adrop'), kt('noise')]]),
    dense('d2', kt('cat')),
    layer('RandomZoom', 'zoom', { height_factor: 0.1 }, [kt('d2')]),
  ], [['x', 0, 0]], [['zoom', 0, 0], ['d1', 0, 0]]);
  const w1 = seeded(1, 12);
  const w2 = seeded(2, 21);
  test('functional + nested Sequential: the output equals a tfjs model built without them; their stored state is dropped', async () => {
    const input = artifacts(model, [['d1/kernel', [4, 3], w1], ['d1/bias', [3], new Float32Array(3)], ['d2/kernel', [7, 3], w2], ['d2/bias', [3], new Float32Array(3)], ['zoom/seed_generator_state', [2], new Float32Array(2)]]);
    const x = tf.input({ shape: [4] });
    const d1 = tf.layers.dense({ units: 3, activation: 'tanh', weights: [tf.tensor2d(w1, [4, 3]), tf.zeros([3])] }).apply(x) as tf.SymbolicTensor;
    const cat = tf.layers.concatenate().apply([d1, x]) as tf.SymbolicTensor;
    const d2 = tf.layers.dense({ units: 3, activation: 'tanh', weights: [tf.tensor2d(w2, [7, 3]), tf.zeros([3])] }).apply(cat) as tf.SymbolicTensor;
    const reference = tf.model({ inputs: x, outputs: [d2, d1] });
    const rows = tf.tensor2d(seeded(9, 8), [2, 4]);
    await loaded(input, async (converted, changes) => {
      expect(converted.layers.map((l) => l.getClassName())).toEqual(['InputLayer', 'Dense', 'Concatenate', 'Dense']);
      for (const kind of ['GaussianNoise', 'SpatialDropout1D', 'AlphaDropout', 'RandomZoom']) expect(changes).toContain(`${kind} dropped: the identity at inference (1)`);
      expect(changes).toContain('nested models left empty (only identity layers) dropped (1)');
      expect(changes).toContain('weights of layers dropped as the identity at inference dropped (1)');
      const got = converted.predict(rows) as tf.Tensor[];
      const want = reference.predict(rows) as tf.Tensor[];
      await expectSame(got[0], want[0]);
      await expectSame(got[1], want[1]);
    });
    disposeModel(reference);
    rows.dispose();
  });
  test('in a Sequential, a dropped first layer hands over its input shape', async () => {
    const seq = { class_name: 'Sequential', config: { name: 's', layers: [
      { class_name: 'RandomContrast', config: { name: 'contrast', factor: 0.2, batch_input_shape: [null, 4] } },
      { class_name: 'Dense', config: { name: 'd', units: 2, activation: 'linear', use_bias: false, dtype: policy() } },
    ] } };
    await loaded(artifacts(seq, [['s/d/kernel', [4, 2], seeded(4, 8)]]), async (model) => {
      expect(model.layers.map((l) => l.getClassName())).toEqual(['Dense']);
      expect(model.inputs[0].shape).toEqual([null, 4]);
    });
  });
  test('RandomCrop: the identity at inference from keras 3.8; refused, saying why, before', () => {
    const crop = functional('m', [input('x', [null, 8, 8, 3]), layer('RandomCrop', 'crop', { height: 8, width: 8, seed: null }, [kt('x')])], [['x', 0, 0]], [['crop', 0, 0]]);
    expect(convertKeras3Topology(topology(crop, '3.8.0')).changes).toContain('RandomCrop dropped: the identity at inference (1)');
    expect(refusal(() => convertKeras3Topology(topology(crop, '3.5.0'))))
      .toBe('m/crop (RandomCrop): RandomCrop resizes and center-crops at inference in keras 3.5.0 before 3.8 (random_crop.py), which tfjs-layers has no layer for');
  });
});

describe('3. the NotEqual/Any op layers Keras 3 writes for a Masking mask become tfjs mask propagation', () => {
  // x -> Masking -> Bidirectional(LSTM) -> Dense; mask = any(not_equal(x, 0), axis=-1) passed as `mask`
  const units = 3;
  const features = 2;
  const masked = (extra: { anyConfig?: J; consumer?: J[] } = {}) => functional('m', [
    input('x', [null, null, features]),
    layer('Masking', 'masking', { mask_value: 0 }, [kt('x')]),
    { module: 'keras.src.ops.numpy', class_name: 'NotEqual', config: { name: 'not_equal' }, registered_name: 'NotEqual', name: 'not_equal', inbound_nodes: [{ args: [kt('x'), 0], kwargs: {} }] },
    { module: 'keras.src.ops.numpy', class_name: 'Any', config: extra.anyConfig ?? { axis: -1, keepdims: false }, registered_name: 'Any', name: 'any', inbound_nodes: [{ args: [kt('not_equal')], kwargs: {} }] },
    ...(extra.consumer ?? [layer('Bidirectional', 'bi', {
      merge_mode: 'concat',
      layer: { module: 'keras.layers', class_name: 'LSTM', registered_name: null, config: { name: 'lstm', trainable: true, dtype: policy(), units, activation: 'tanh', recurrent_activation: 'sigmoid', use_bias: true, return_sequences: false, return_state: false, go_backwards: false, stateful: false, unroll: false, zero_output_for_mask: false, unit_forget_bias: true, dropout: 0, recurrent_dropout: 0, seed: null, use_cudnn: 'auto' } },
    }, [kt('masking')], { mask: kt('any') })]),
  ], [['x', 0, 0]], [['bi', 0, 0]]);
  const lstmWeights = (direction: string, seed: number): [string, number[], Float32Array][] => [
    [`bi/${direction}_lstm/lstm_cell/kernel`, [features, 4 * units], seeded(seed, features * 4 * units)],
    [`bi/${direction}_lstm/lstm_cell/recurrent_kernel`, [units, 4 * units], seeded(seed + 1, units * 4 * units)],
    [`bi/${direction}_lstm/lstm_cell/bias`, [4 * units], seeded(seed + 2, 4 * units)],
  ];
  const weights = [...lstmWeights('forward', 10), ...lstmWeights('backward', 20)];
  test('masked steps leave the output unchanged: equal to the same sequence without them, and to a tfjs-built Masking model', async () => {
    await expectNoLeaks(() => loaded(artifacts(masked(), weights), async (model, changes) => {
      expect(model.layers.map((l) => l.getClassName())).toEqual(['InputLayer', 'Masking', 'Bidirectional']);
      expect(changes).toContain('Masking mask op layers (NotEqual, Any) dropped: tfjs propagates the mask from the Masking layer (2)');
      // steps 1 and 3 of 5 are all-zero: masked
      const kept = seeded(5, 3 * features);
      const full = new Float32Array(5 * features);
      [0, 2, 4].forEach((step, i) => full.set(kept.subarray(i * features, (i + 1) * features), step * features));
      const withMasked = tf.tensor3d(full, [1, 5, features]);
      const without = tf.tensor3d(kept, [1, 3, features]);
      const unmasked = tf.tensor3d(full.map((v, i) => (v === 0 ? 0.5 + (i % 3) : v)), [1, 5, features]);
      const a = model.predict(withMasked) as tf.Tensor;
      const b = model.predict(without) as tf.Tensor;
      const c = model.predict(unmasked) as tf.Tensor;
      // the check can fail: filling the masked steps changes the output
      expect(tf.tidy(() => tf.max(tf.abs(tf.sub(a, c))).dataSync()[0])).toBeGreaterThan(1e-3);
      c.dispose();
      await expectSame(a, b);
      // an independently built tfjs model with the same weights
      const x = tf.input({ shape: [null, features] });
      const lstm = tf.layers.lstm({ units, returnSequences: false, recurrentActivation: 'sigmoid' });
      const y = tf.layers.bidirectional({ layer: lstm as any, mergeMode: 'concat' }).apply(tf.layers.masking({ maskValue: 0 }).apply(x)) as tf.SymbolicTensor;
      const reference = tf.model({ inputs: x, outputs: y });
      reference.layers[2].setWeights(model.getLayer('bi').getWeights());
      await expectSame(model.predict(withMasked) as tf.Tensor, reference.predict(withMasked) as tf.Tensor);
      disposeModel(reference);
      tf.dispose([withMasked, without, unmasked]);
    }));
  });
  test('op layers that are not exactly a Masking mask, or a mask passed where tfjs would not carry it, are refused', () => {
    expect(refusal(() => convertKeras3Topology(topology(masked({ anyConfig: { axis: -1, keepdims: true } })))))
      .toBe('m/any (Any): an op layer tfjs-layers has no layer for (only the mask of a Masking layer, any(not_equal(x, v), axis=-1), is converted; got axis=-1, keepdims=true)');
    const throughDense = [
      layer('Dense', 'proj', { units: 2, activation: 'linear', use_bias: true }, [kt('masking')]),
      layer('LSTM', 'bi', { units, return_sequences: false }, [kt('proj')], { mask: kt('any') }),
    ];
    expect(refusal(() => convertKeras3Topology(topology(masked({ consumer: throughDense })))))
      .toBe('m/bi (LSTM): receives the mask of a Masking layer through proj (Dense), which tfjs-layers does not pass masks through the same way');
    // bidirectional.py forces zero_output_for_mask = return_sequences: zeros at masked steps, where tfjs repeats the last output
    const zeroing = [layer('Bidirectional', 'bi', { merge_mode: 'concat', layer: { class_name: 'LSTM', config: { name: 'lstm', units, return_sequences: true, zero_output_for_mask: true } } }, [kt('masking')], { mask: kt('any') })];
    expect(refusal(() => convertKeras3Topology(topology(masked({ consumer: zeroing })))))
      .toBe('m/bi (Bidirectional): option zero_output_for_mask=true with return_sequences has no tfjs-layers equivalent (Keras outputs zeros at masked steps, tfjs repeats the last output)');
    const unmasked = functional('m', [input('x', [null, 4, features]), layer('Bidirectional', 'bi', { merge_mode: 'concat', layer: { class_name: 'LSTM', config: { name: 'lstm', units, return_sequences: true, zero_output_for_mask: true } } }, [kt('x')])], [['x', 0, 0]], [['bi', 0, 0]]);
    expect(convertKeras3Topology(topology(unmasked)).topology).toBeDefined();
    const usesCompare = [layer('Dense', 'bi', { units: 2 }, [kt('not_equal')])];
    expect(refusal(() => convertKeras3Topology(topology(masked({ consumer: usesCompare })))))
      .toBe('m/not_equal (NotEqual): an op layer tfjs-layers has no layer for (its result is used by bi, not only as a Masking mask)');
  });
});

describe('4. Normalization -> BatchNormalization computing (x - mean) / max(sqrt(variance), 1e-7) exactly', () => {
  const mean = [0.485, -2, 3];
  const variance = [0.229, 0, 4]; // 0: the epsilon branch
  const norm = (config: J, build?: J) => functional('m', [
    input('x', [null, 5, 3]),
    layer('Normalization', 'norm', { axis: [-1], invert: false, mean: null, variance: null, ...config }, [kt('x')], {}, build ? { build_config: { input_shape: build } } : {}),
  ], [['x', 0, 0]], [['norm', 0, 0]]);
  const rows = seeded(8, 2 * 5 * 3).map((v) => v * 4);
  const formula = (invert: boolean, m: number[], v: number[]) => Float32Array.from(rows, (x, i) => {
    const d = Math.max(Math.sqrt(v[i % 3]), 1e-7);
    return invert ? m[i % 3] + x * d : (x - m[i % 3]) / d;
  });
  test('statistics in the config, invert false and true; stored (adapted) weights in a Sequential', async () => {
    const x = tf.tensor3d(rows, [2, 5, 3]);
    for (const invert of [false, true]) {
      await loaded(artifacts(norm({ mean, variance, invert })), async (model, changes) => {
        expect(model.getLayer('norm').getClassName()).toBe('BatchNormalization');
        expect(changes).toContain('Normalization statistics -> BatchNormalization weights gamma, beta, moving_mean, moving_variance (1)');
        await expectSame(model.predict(x) as tf.Tensor, tf.tensor3d(formula(invert, mean, variance), [2, 5, 3]), 1e-6);
      });
    }
    // EfficientNet's form: adapted, weights mean / variance / count under the Sequential's scope
    const seq = { class_name: 'Sequential', config: { name: 'seq', layers: [
      { class_name: 'InputLayer', config: { batch_shape: [null, 5, 3], dtype: 'float32', name: 'x' } },
      { class_name: 'Normalization', config: { name: 'norm', dtype: policy(), axis: [-1], invert: false, mean: null, variance: null } },
    ] } };
    const stored = artifacts(seq, [['seq/norm/count', [], Float32Array.of(0)], ['seq/norm/mean', [3], Float32Array.from(mean)], ['seq/norm/variance', [3], Float32Array.from(variance)]]);
    // count is int32 in keras; stored as such
    stored.weightSpecs![0].dtype = 'int32';
    const loadable = loadableArtifacts(stored, irFromArtifacts(stored));
    expect(loadable.weightSpecs!.map((s) => s.name)).toEqual(['norm/gamma', 'norm/beta', 'norm/moving_mean', 'norm/moving_variance']);
    await loaded(stored, async (model) => {
      await expectSame(model.predict(x) as tf.Tensor, tf.tensor3d(formula(false, mean, variance), [2, 5, 3]), 1e-6);
    });
    x.dispose();
  });
  test('one value for every channel uses the input shape from build_config; without one, or over several axes, refused saying why', async () => {
    await loaded(artifacts(norm({ axis: [], mean: 2, variance: 9 }, [null, 5, 3])), async (model) => {
      const x = tf.tensor3d(rows, [2, 5, 3]);
      await expectSame(model.predict(x) as tf.Tensor, tf.tensor3d(formula(false, [2, 2, 2], [9, 9, 9]), [2, 5, 3]), 1e-6);
      x.dispose();
    });
    expect(refusal(() => irFromArtifacts(artifacts(norm({ axis: [], mean: 2, variance: 9 })))))
      .toBe('m/norm (Normalization): one mean/variance for all channels, but the file does not say how many channels (no build_config input shape)');
    expect(refusal(() => convertKeras3Topology(topology(norm({ axis: [1, 2], mean: [[1, 2, 3]], variance: [[1, 1, 2]] })))))
      .toBe('m/norm (Normalization): Normalization over axes [1,2] with per-position statistics has no stock tfjs equivalent (BatchNormalization normalizes along one axis)');
  });
});

test('an EfficientNetB0-shaped classifier (keras applications efficientnet.py stem): augmentation, Rescaling, adapted Normalization, per-channel Rescaling, silu', async () => {
  const aug = (cls: string, name: string, config: J) => ({ module: 'keras.layers', class_name: cls, config: { name, trainable: true, dtype: policy(), seed: null, ...config }, registered_name: null });
  const augment = {
    module: 'keras', class_name: 'Sequential', registered_name: null, name: 'augmentation',
    config: { name: 'augmentation', trainable: true, dtype: policy(), layers: [
      { module: 'keras.layers', class_name: 'InputLayer', config: { batch_shape: [null, 8, 8, 3], dtype: 'float32', sparse: false, ragged: false, name: 'augmentation_in' }, registered_name: null },
      aug('RandomRotation', 'random_rotation', { factor: 0.15, fill_mode: 'reflect', interpolation: 'bilinear', fill_value: 0, data_format: 'channels_last' }),
      aug('RandomTranslation', 'random_translation', { height_factor: 0.1, width_factor: 0.1 }),
      aug('RandomFlip', 'random_flip', { mode: 'horizontal_and_vertical' }),
      aug('RandomContrast', 'random_contrast', { factor: 0.1, value_range: [0, 255] }),
      aug('RandomZoom', 'random_zoom', { height_factor: 0.1, width_factor: null }),
    ], build_input_shape: [null, 8, 8, 3] },
    inbound_nodes: [{ args: [kt('image')], kwargs: {} }],
  };
  const scale = [1 / Math.sqrt(0.229), 1 / Math.sqrt(0.224), 1 / Math.sqrt(0.225)];
  const effnet = functional('efficientnetb0', [
    input('input_layer', [null, 8, 8, 3]),
    layer('Rescaling', 'rescaling', { scale: 1 / 255, offset: 0 }, [kt('input_layer')]),
    layer('Normalization', 'normalization', { axis: -1, invert: false, mean: null, variance: null }, [kt('rescaling')], {}, { build_config: { input_shape: [null, 8, 8, 3] } }),
    layer('Rescaling', 'rescaling_1', { scale, offset: 0 }, [kt('normalization')]),
    layer('ZeroPadding2D', 'stem_conv_pad', { padding: [[0, 1], [0, 1]], data_format: 'channels_last' }, [kt('rescaling_1')]),
    layer('Conv2D', 'stem_conv', { filters: 4, kernel_size: [3, 3], strides: [2, 2], padding: 'valid', data_format: 'channels_last', dilation_rate: [1, 1], groups: 1, activation: 'linear', use_bias: false }, [kt('stem_conv_pad')]),
    layer('BatchNormalization', 'stem_bn', { axis: -1, momentum: 0.99, epsilon: 0.001, center: true, scale: true, synchronized: false }, [kt('stem_conv')]),
    layer('Activation', 'stem_activation', { activation: 'silu' }, [kt('stem_bn')]),
    layer('GlobalAveragePooling2D', 'avg_pool', { data_format: 'channels_last', keepdims: false }, [kt('stem_activation')]),
  ], [['input_layer', 0, 0]], [['avg_pool', 0, 0]]);
  const model = functional('classifier', [
    input('image', [null, 8, 8, 3]),
    augment,
    { ...effnet, module: 'keras.src.models.functional', registered_name: 'Functional', name: 'efficientnetb0', inbound_nodes: [{ args: [kt('augmentation', 0)], kwargs: {} }] },
    layer('Dropout', 'top_dropout', { rate: 0.2, seed: null, noise_shape: null }, [kt('efficientnetb0', 0)]),
    layer('Dense', 'predictions', { units: 3, activation: 'softmax', use_bias: true }, [kt('top_dropout')]),
  ], [['image', 0, 0]], [['predictions', 0, 0]]);
  const mean = [0.485, 0.456, 0.406];
  const variance = [0.229 ** 2, 0.224 ** 2, 0.225 ** 2];
  const w = {
    kernel: seeded(30, 3 * 3 * 3 * 4), gamma: seeded(31, 4).map((v) => 1 + v / 4), beta: seeded(32, 4), mm: seeded(33, 4), mv: seeded(34, 4).map((v) => 1 + v / 2),
    dense: seeded(35, 12), bias: seeded(36, 3),
  };
  // h5-route names: variable paths, layers of a Functional built outside its scope (notes/keras3-format.md)
  const input3 = artifacts(model, [
    ['normalization/mean', [3], Float32Array.from(mean)], ['normalization/variance', [3], Float32Array.from(variance)], ['normalization/count', [], Float32Array.of(1000)],
    ['stem_conv/kernel', [3, 3, 3, 4], w.kernel], ['stem_bn/gamma', [4], w.gamma], ['stem_bn/beta', [4], w.beta], ['stem_bn/moving_mean', [4], w.mm], ['stem_bn/moving_variance', [4], w.mv],
    ['predictions/kernel', [4, 3], w.dense], ['predictions/bias', [3], w.bias],
  ]);
  const images = tf.tensor4d(seeded(37, 2 * 8 * 8 * 3).map((v) => (v + 1) * 127.5), [2, 8, 8, 3]);
  const expected = tf.tidy(() => {
    let x = tf.div(images, 255);
    x = tf.div(tf.sub(x, tf.tensor1d(mean)), tf.tensor1d(variance.map((v) => Math.max(Math.sqrt(v), 1e-7))));
    x = tf.mul(x, tf.tensor1d(scale));
    x = tf.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]]);
    x = tf.conv2d(x as tf.Tensor4D, tf.tensor4d(w.kernel, [3, 3, 3, 4]), 2, 'valid');
    x = tf.batchNorm(x, tf.tensor1d(w.mm), tf.tensor1d(w.mv), tf.tensor1d(w.beta), tf.tensor1d(w.gamma), 0.001);
    x = tf.mul(x, tf.sigmoid(x));
    x = tf.mean(x, [1, 2]);
    return tf.softmax(tf.add(tf.matMul(x as tf.Tensor2D, tf.tensor2d(w.dense, [4, 3])), tf.tensor1d(w.bias)));
  });
  await loaded(input3, async (converted, changes) => {
    expect(converted.layers.map((l) => l.name)).toEqual(['image', 'efficientnetb0', 'top_dropout', 'predictions']);
    expect(changes).toContain('nested models left empty (only identity layers) dropped (1)');
    await expectSame(converted.predict(images) as tf.Tensor, expected, 1e-5);
  });
  images.dispose();
});

describe('5. field by field: a half-converted file stock tfjs loads goes through', () => {
  test('camelCase batchInputShape on a Keras 3 InputLayer, Keras 2 inbound nodes beside Keras 3 ones', async () => {
    const model = functional('m', [
      { class_name: 'InputLayer', config: { batchInputShape: [null, 3], dtype: 'float32', sparse: false, ragged: false, name: 'x' }, name: 'x', inbound_nodes: [] },
      { ...layer('Dense', 'a', { units: 2, activation: 'linear', use_bias: false }), inbound_nodes: [[['x', 0, 0, {}]]] },
      layer('Dense', 'b', { units: 1, activation: 'linear', use_bias: false }, [kt('a')]),
    ], [['x', 0, 0]], [['b', 0, 0]]);
    await loaded(artifacts(model, [['a/kernel', [3, 2], Float32Array.of(1, 0, 0, 1, 1, 1)], ['b/kernel', [2, 1], Float32Array.of(1, -1)]]), async (converted) => {
      const y = converted.predict(tf.tensor2d([[1, 2, 3]])) as tf.Tensor;
      expect(Array.from(await y.data())).toEqual([4 - 5]);
      y.dispose();
    });
  });
});

test('5. a file the conversion would refuse but stock tfjs loads as it is is read unconverted, with a note', async () => {
  // a DTypePolicy object (a Keras 3 field stock tfjs tolerates) beside an option tfjs ignores
  const seq = { class_name: 'Sequential', config: { name: 's', layers: [{ class_name: 'Dense', config: { name: 'd', units: 2, use_bias: false, dtype: policy(), batch_input_shape: [null, 3], future_option: 'x' } }] } };
  const input = { modelTopology: seq, weightSpecs: [{ name: 'd/kernel', shape: [3, 2], dtype: 'float32' as const }], weightData: new Float32Array(6).buffer };
  expect(refusal(() => irFromArtifacts(input))).toBe('s/d (Dense): option future_option="x" has no tfjs-layers equivalent');
  const result = await convertKeras3(input);
  expect(result.report.converted).toBeUndefined();
  expect(result.report.notes).toEqual(['not converted from Keras 3 (s/d (Dense): option future_option="x" has no tfjs-layers equivalent), but stock tfjs loads the file as it is: read unconverted']);
  expect(result.artifacts).toBe(input);
});

describe('6. classes tfjs-layers lacks: a custom layer is named as such', () => {
  const withClass = (entry: J) => topology(functional('m', [input('x', [null, 3]), entry], [['x', 0, 0]], [[entry.name, 0, 0]]));
  test('custom (non-keras module, or unknown class without a module) vs a Keras layer tfjs lacks', () => {
    expect(refusal(() => convertKeras3Topology(withClass({ ...layer('MyBlock', 'blk', { units: 3 }, [kt('x')]), module: '__main__', registered_name: 'MyBlock' }))))
      .toBe('m/blk (MyBlock): class MyBlock is a custom layer (module "__main__"), not part of Keras: tfjs-layers needs its implementation registered (tf.serialization.registerClass) before loading');
    const bare = layer('Scaler', 'sc', {}, [kt('x')]) as J;
    delete bare.module;
    delete bare.registered_name;
    expect(refusal(() => convertKeras3Topology(withClass(bare))))
      .toBe('m/sc (Scaler): class Scaler is a custom layer, not part of Keras: tfjs-layers needs its implementation registered (tf.serialization.registerClass) before loading');
    expect(refusal(() => convertKeras3Topology(withClass(layer('GroupNormalization', 'gn', { groups: 3 }, [kt('x')])))))
      .toBe('m/gn (GroupNormalization): Keras layer class GroupNormalization has no tfjs-layers equivalent');
  });
});

describe('7. convertKeras3 and `tfjs-rewrite convert`', () => {
  const model = functional('m', [input('x', [null, 3]), layer('RandomFlip', 'flip', { mode: 'horizontal' }, [kt('x')]), layer('Dense', 'd', { units: 2, activation: 'linear', use_bias: false }, [kt('flip')])], [['x', 0, 0]], [['d', 0, 0]]);
  const write = (json: J, dir: string) => {
    fs.mkdirSync(dir, { recursive: true });
    const kernel = Float32Array.of(1, 2, 3, 4, 5, 6);
    fs.writeFileSync(path.join(dir, 'w.bin'), Buffer.from(kernel.buffer));
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ format: 'layers-model', modelTopology: topology(json), weightsManifest: [{ paths: ['w.bin'], weights: [{ name: 'd/kernel', shape: [3, 2], dtype: 'float32' }] }] }));
    return path.join(dir, 'model.json');
  };
  test('library: converted artifacts, report with the model\'s inputs and outputs; a Keras 2 model passes through', async () => {
    const result = await convertKeras3(write(model, path.join(tempDir(), 'in')));
    expect(result.report.converted?.changes).toContain('RandomFlip dropped: the identity at inference (1)');
    expect(result.report.inputs).toEqual([['x', [null, 3]]]);
    expect(result.report.outputs).toEqual([['d', [null, 2]]]);
    const keras2 = await convertKeras3(result.artifacts);
    expect(keras2.report.notes).toContain(ALREADY_LOADABLE);
  });
  test('CLI: writes a folder stock tfjs loads; exit 2 with one line, nothing written, input untouched; --force', async () => {
    const dir = tempDir();
    const file = write(model, path.join(dir, 'in'));
    const before = snapshotDir(path.dirname(file));
    const out = path.join(dir, 'out');
    const ok = runCli(['convert', file, '--out', out]);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/inputs: x \[\?, 3\]; outputs: d \[\?, 2\] \(loaded with stock tfjs\)/);
    const written = JSON.parse(fs.readFileSync(path.join(out, 'model.json'), 'utf8'));
    const loadedModel = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: written.modelTopology, weightSpecs: written.weightsManifest[0].weights, weightData: new Uint8Array(fs.readFileSync(path.join(out, written.weightsManifest[0].paths[0]))).buffer }));
    const y = loadedModel.predict(tf.tensor2d([[1, 1, 1]])) as tf.Tensor;
    expect(Array.from(await y.data())).toEqual([9, 12]);
    y.dispose();
    disposeModel(loadedModel);
    expect(runCli(['convert', file, '--out', out]).status).toBe(2);
    expect(runCli(['convert', file, '--out', out, '--force']).status).toBe(0);
    const bad = path.join(dir, 'bad');
    const custom = write(functional('m', [input('x', [null, 3]), { ...layer('Mine', 'd', {}, [kt('x')]), module: 'my_pkg.layers' }], [['x', 0, 0]], [['d', 0, 0]]), path.join(dir, 'custom'));
    const refused = runCli(['convert', custom, '--out', bad]);
    expect(refused.status).toBe(2);
    expect(refused.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^tfjs-rewrite: .*m\/d \(Mine\): class Mine is a custom layer \(module "my_pkg.layers"\), not part of Keras/)]);
    expect(fs.existsSync(bad)).toBe(false);
    expect(snapshotDir(path.dirname(file))).toEqual(before);
  });
});
