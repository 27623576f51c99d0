/**
 * The Keras 3 -> Keras 2 topology converter on JSON alone: each difference keras 3.10 writes
 * (functional.py get_config / serialize_node, serialization_lib.py, input_layer.py,
 * sequential.py) is converted to what tfjs-layers reads, and what tfjs cannot express is refused
 * in one line naming the layer and the option.
 */
import * as tf from '@tensorflow/tfjs';
import { Keras3Error, convertKeras3Topology, isKeras3Topology, kerasFileRouteWeightName, keras3WeightName } from '../src/layers/keras3';
import { readTopology } from '../src/layers/json';
import { loadableArtifacts, irFromArtifacts } from '../src/io/ir';
import type { JsonObject } from '../src/layers/types';

const policy = (name = 'float32') => ({ module: 'keras', class_name: 'DTypePolicy', config: { name }, registered_name: null });
const init = (className: string) => ({ module: 'keras.initializers', class_name: className, config: { seed: null }, registered_name: null });
const kt = (layer: string, node: number, tensor = 0) => ({
  class_name: '__keras_tensor__', config: { shape: [null, 4], dtype: 'float32', keras_history: [layer, node, tensor] },
});
const inputLayer = (name: string, shape: (number | null)[] = [null, 4]) => ({
  class_name: 'InputLayer', config: { batch_shape: shape, dtype: 'float32', sparse: false, ragged: false, name }, name, inbound_nodes: [],
});
const dense = (name: string, units: number, extra: JsonObject = {}) => ({
  name, trainable: true, dtype: policy(), units, activation: 'linear', use_bias: true,
  kernel_initializer: init('GlorotUniform'), bias_initializer: { ...init('Zeros'), config: {} },
  kernel_regularizer: null, bias_regularizer: null, kernel_constraint: null, bias_constraint: null, ...extra,
});
const call = (layer: string, config: JsonObject, className: string, args: unknown[], kwargs: JsonObject = {}) => ({
  module: 'keras.layers', class_name: className, config, registered_name: null, build_config: { input_shape: [null, 4] },
  name: layer, inbound_nodes: [{ args, kwargs }],
});
const functional = (name: string, layers: unknown[], inputs: unknown, outputs: unknown) => ({
  class_name: 'Functional', config: { name, trainable: true, layers, input_layers: inputs, output_layers: outputs },
});
const wrap = (model: unknown) => ({ keras_version: '3.10.0', backend: 'tensorflow', model_config: model }) as unknown as JsonObject;

/** Layer entries of a converted topology, by name, at any depth. */
function layersOf(topology: JsonObject): Map<string, any> {
  const out = new Map<string, any>();
  const walk = (layers: any[]) => layers.forEach((layer) => {
    out.set(layer.name ?? layer.config.name, layer);
    if (Array.isArray(layer.config?.layers)) walk(layer.config.layers);
  });
  walk((topology.config as any).layers);
  return out;
}

function refusal(topology: JsonObject): string {
  let error: unknown;
  try {
    convertKeras3Topology(topology);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(Keras3Error);
  const message = (error as Error).message;
  expect(message).not.toMatch(/\n/);
  return message;
}

describe('detection', () => {
  test('keras_version 3.x, or a Keras 3-only spelling, and nothing else', () => {
    expect(isKeras3Topology({ keras_version: '3.10.0', model_config: {} })).toBe(true);
    expect(isKeras3Topology({ keras_version: '2.15.0', model_config: { class_name: 'Sequential', config: { layers: [] } } })).toBe(false);
    expect(isKeras3Topology(functional('m', [inputLayer('x')], [['x', 0, 0]], [['x', 0, 0]]) as JsonObject)).toBe(true);
    expect(isKeras3Topology({ class_name: 'Sequential', config: { layers: [{ class_name: 'Dense', config: { dtype: policy() } }] } })).toBe(true);
    // tf.keras 2.13+ writes module keys too: not a Keras 3 marker on their own.
    const keras2 = { class_name: 'Sequential', config: { layers: [{ module: 'keras.layers', class_name: 'Dense', config: { units: 2, batch_input_shape: [null, 3] } }] } };
    expect(isKeras3Topology(keras2)).toBe(false);
  });
});

describe('conversion of each Keras 3 difference', () => {
  const model = functional('m', [
    inputLayer('a'),
    inputLayer('b'),
    call('shared', dense('shared', 4), 'Dense', [kt('a', 0)]),
    // the shared layer's second call is its node 1 (plain layers count from 0 in both forms)
    { ...call('shared', dense('shared', 4), 'Dense', [kt('b', 0)]), inbound_nodes: [{ args: [kt('a', 0)], kwargs: {} }, { args: [kt('b', 0)], kwargs: {} }] },
    call('sum', { name: 'sum', trainable: true, dtype: policy() }, 'Add', [[kt('shared', 0), kt('shared', 1)]]),
    call('out', dense('out', 2, { activation: 'silu' }), 'Dense', [kt('sum', 0)], { training: null }),
  ].filter((layer, i) => i !== 2), [['a', 0, 0], ['b', 0, 0]], [['out', 0, 0], ['sum', 0, 0]]);

  let converted: ReturnType<typeof convertKeras3Topology>;
  let layers: Map<string, any>;
  beforeAll(() => {
    converted = convertKeras3Topology(wrap(model));
    layers = layersOf(converted.topology);
  });

  test('InputLayer batch_shape -> batch_input_shape; ragged (unknown to tfjs, false) dropped; sparse kept', () => {
    expect(layers.get('a').config).toEqual({ batch_input_shape: [null, 4], dtype: 'float32', sparse: false, name: 'a' });
  });
  test('dtype policy objects -> the dtype string', () => {
    expect(layers.get('shared').config.dtype).toBe('float32');
    expect(converted.changes).toContain('dtype policy objects -> dtype strings (3)');
  });
  test('initializers lose module and registered_name, keep class and config', () => {
    expect(layers.get('shared').config.kernel_initializer).toEqual({ class_name: 'GlorotUniform', config: { seed: null } });
    expect(JSON.stringify(converted.topology)).not.toMatch(/"module"|"registered_name"|"build_config"/);
  });
  test('inbound nodes {args, kwargs} -> lists of [layer, node, tensor, kwargs]; merge args flattened in order', () => {
    expect(layers.get('shared').inbound_nodes).toEqual([[['a', 0, 0, {}]], [['b', 0, 0, {}]]]);
    expect(layers.get('sum').inbound_nodes).toEqual([[['shared', 0, 0, {}], ['shared', 1, 0, {}]]]);
    // null kwargs (Keras 3 writes defaults) are dropped
    expect(layers.get('out').inbound_nodes).toEqual([[['sum', 0, 0, {}]]]);
  });
  test('input_layers / output_layers stay lists of triples', () => {
    expect((converted.topology.config as any).input_layers).toEqual([['a', 0, 0], ['b', 0, 0]]);
    expect((converted.topology.config as any).output_layers).toEqual([['out', 0, 0], ['sum', 0, 0]]);
  });
  test('model config keys tfjs does not read are dropped, and the change names them', () => {
    expect(Object.keys(converted.topology.config as object).sort()).toEqual(['input_layers', 'layers', 'name', 'output_layers']);
    expect(converted.changes).toContain('model config "trainable" dropped (1)');
    expect(converted.changes).toContain('entry keys module/registered_name/build_config/compile_config dropped (9)');
    expect(converted.changes).toContain('module/registered_name dropped from config objects (initializers, ...) (8)');
  });
  test('activation "silu" -> tfjs "swish" (the same function)', () => {
    expect(layers.get('out').config.activation).toBe('swish');
  });
  test('stock tfjs builds the converted topology', async () => {
    const built = await tf.models.modelFromJSON({ modelTopology: converted.topology } as any);
    try {
      expect(built.inputs.map((t) => t.shape)).toEqual([[null, 4], [null, 4]]);
      expect(built.outputs.map((t) => t.shape)).toEqual([[null, 2], [null, 4]]);
    } finally {
      built.dispose();
    }
  });
  test('the input is not modified', () => {
    const input = wrap(model);
    const before = JSON.stringify(input);
    convertKeras3Topology(input);
    expect(JSON.stringify(input)).toBe(before);
  });
});

describe('structures of input_layers / output_layers (functional.py map_tensors)', () => {
  const io = (inputs: unknown, outputs: unknown) => {
    const model = functional('m', [inputLayer('x'), inputLayer('y'), call('d', dense('d', 2), 'Dense', [kt('x', 0)])], inputs, outputs);
    return convertKeras3Topology(wrap(model));
  };
  test('a single tensor [[name, node, tensor]], a bare triple, nested lists and dicts (sorted keys) all flatten to triples', () => {
    expect((io([['x', 0, 0]], [['d', 0, 0]]).topology.config as any).output_layers).toEqual([['d', 0, 0]]);
    expect((io(['x', 0, 0], ['d', 0, 0]).topology.config as any).input_layers).toEqual([['x', 0, 0]]);
    expect((io([[['x', 0, 0]], [['y', 0, 0]]], [['d', 0, 0]]).topology.config as any).input_layers).toEqual([['x', 0, 0], ['y', 0, 0]]);
    const dict = io({ y_in: ['y', 0, 0], x_in: ['x', 0, 0] }, [['d', 0, 0]]);
    expect((dict.topology.config as any).input_layers).toEqual([['x', 0, 0], ['y', 0, 0]]);
    expect(dict.changes).toContain('input/output structure dict flattened in key order (1)');
  });
  test('anything else is refused naming where', () => {
    expect(() => io([['x', 0, 0]], [42])).toThrow(/m output_layers: expected \[layer, node, tensor\] references, got 42/);
  });
});

describe('nested models: node indices (functional.py serialize_node / get_config node_reindexing_map)', () => {
  const innerFunctional = functional('inner', [inputLayer('inner_in'), call('inner_d', dense('inner_d', 3), 'Dense', [kt('inner_in', 0)])], [['inner_in', 0, 0]], [['inner_d', 0, 0]]);
  const innerSequential = {
    class_name: 'Sequential',
    config: { name: 'seq', trainable: true, dtype: policy(), layers: [inputLayer('seq_in'), { module: 'keras.layers', class_name: 'Dense', config: dense('seq_d', 5), registered_name: null, build_config: { input_shape: [null, 3] } }], build_input_shape: [null, 3] },
  };
  const model = functional('outer', [
    inputLayer('x'),
    // the nested Functional called twice: keras_history nodes 0 and 1
    { ...innerFunctional, name: 'inner', inbound_nodes: [{ args: [kt('x', 0)], kwargs: {} }, { args: [kt('x', 0)], kwargs: {} }] },
    { ...innerSequential, name: 'seq', inbound_nodes: [{ args: [kt('inner', 1)], kwargs: {} }] },
    call('cat', { name: 'cat', trainable: true, dtype: policy(), axis: -1 }, 'Concatenate', [[kt('inner', 0), kt('seq', 0)]]),
  ], [['x', 0, 0]], [['cat', 0, 0], ['inner', 2, 0], ['seq', 0, 0]]);

  let layers: Map<string, any>;
  let converted: ReturnType<typeof convertKeras3Topology>;
  beforeAll(() => {
    converted = convertKeras3Topology(wrap(model));
    layers = layersOf(converted.topology);
  });
  test('keras_history counts a nested model from 0; tfjs from 1', () => {
    expect(layers.get('seq').inbound_nodes).toEqual([[['inner', 2, 0, {}]]]);
    expect(layers.get('cat').inbound_nodes).toEqual([[['inner', 1, 0, {}], ['seq', 1, 0, {}]]]);
  });
  test('output_layers: a nested Functional already counts from 1, a nested Sequential from 0 -> 1', () => {
    expect((converted.topology.config as any).output_layers).toEqual([['cat', 0, 0], ['inner', 2, 0], ['seq', 1, 0]]);
  });
  test('the nested models are converted too (their own InputLayers, dtype policies, Sequential config)', () => {
    expect(layers.get('inner_in').config.batch_input_shape).toEqual([null, 4]);
    expect(layers.get('seq').config).toEqual({ name: 'seq', layers: expect.any(Array) });
    expect(layers.get('seq_d').config.dtype).toBe('float32');
  });
  test('stock tfjs builds it with the expected output shapes', async () => {
    const built = await tf.models.modelFromJSON({ modelTopology: converted.topology } as any);
    try {
      expect(built.outputs.map((t) => t.shape)).toEqual([[null, 8], [null, 3], [null, 5]]);
    } finally {
      built.dispose();
    }
  });
});

describe('refusals name the layer and the option', () => {
  const withLayer = (entry: unknown) => wrap(functional('m', [inputLayer('x'), entry], [['x', 0, 0]], [[(entry as any).name, 0, 0]]));
  test('a layer class tfjs-layers lacks', () => {
    expect(refusal(withLayer(call('gn', { name: 'gn', trainable: true, dtype: policy(), groups: 2 }, 'GroupNormalization', [kt('x', 0)]))))
      .toBe('m/gn (GroupNormalization): Keras layer class GroupNormalization has no tfjs-layers equivalent');
  });
  test('Keras 3-only options at a value that changes the result', () => {
    const conv = (extra: JsonObject) => call('c', { name: 'c', trainable: true, dtype: policy(), filters: 4, kernel_size: [1, 1, 1], strides: [1, 1, 1], padding: 'valid', data_format: 'channels_last', dilation_rate: [1, 1, 1], groups: 1, activation: 'linear', use_bias: true, ...extra }, 'Conv3D', [kt('x', 0)]);
    expect(refusal(withLayer(conv({ groups: 2 })))).toBe('m/c (Conv3D): option groups=2 has no tfjs-layers equivalent (grouped convolution)');
    expect(refusal(withLayer(call('d', dense('d', 2, { lora_rank: 4, lora_alpha: 4 }), 'Dense', [kt('x', 0)]))))
      .toBe('m/d (Dense): option lora_rank=4 has no tfjs-layers equivalent (LoRA adapter weights)');
    expect(refusal(withLayer(call('n', { name: 'n', trainable: true, dtype: policy(), axis: -1, epsilon: 1e-3, center: true, scale: true, rms_scaling: true }, 'LayerNormalization', [kt('x', 0)]))))
      .toBe('m/n (LayerNormalization): option rms_scaling=true has no tfjs-layers equivalent (RMS normalization)');
    expect(refusal(withLayer(call('d', dense('d', 2, { future_option: 'x' }), 'Dense', [kt('x', 0)]))))
      .toBe('m/d (Dense): option future_option="x" has no tfjs-layers equivalent');
  });
  test('a no-op value of a Keras 3-only option is dropped, not refused', () => {
    const converted = convertKeras3Topology(withLayer(call('n', { name: 'n', trainable: true, dtype: policy(), axis: -1, epsilon: 1e-3, center: true, scale: true, rms_scaling: false }, 'LayerNormalization', [kt('x', 0)])));
    expect(layersOf(converted.topology).get('n').config.rms_scaling).toBeUndefined();
    expect(converted.changes).toContain('Keras 3-only option "rms_scaling" at its no-op value dropped (1)');
  });
  test('activations tfjs lacks or computes differently (hard_sigmoid: relu6(x+3)/6 in Keras 3, 0.2x+0.5 in tfjs)', () => {
    expect(refusal(withLayer(call('d', dense('d', 2, { activation: 'hard_sigmoid' }), 'Dense', [kt('x', 0)]))))
      .toBe('m/d (Dense): option activation="hard_sigmoid" has no tfjs-layers equivalent');
    expect(refusal(withLayer(call('a', { name: 'a', trainable: true, dtype: policy(), activation: 'leaky_relu' }, 'Activation', [kt('x', 0)]))))
      .toBe('m/a (Activation): option activation="leaky_relu" has no tfjs-layers equivalent');
  });
  test('dtype policies tfjs cannot run', () => {
    expect(refusal(withLayer(call('d', dense('d', 2, { dtype: policy('mixed_float16') }), 'Dense', [kt('x', 0)]))))
      .toBe('m/d (Dense): option dtype=DTypePolicy("mixed_float16") has no tfjs-layers equivalent (tfjs-layers computes in float32)');
  });
  test('InputLayer sparse / ragged / optional', () => {
    for (const key of ['sparse', 'ragged', 'optional']) {
      const x = inputLayer('x');
      (x.config as any)[key] = true;
      expect(refusal(wrap(functional('m', [x], [['x', 0, 0]], [['x', 0, 0]])))).toMatch(new RegExp(`^m/x \\(InputLayer\\): option ${key}=true has no tfjs-layers equivalent`));
    }
  });
  test('calls tfjs-layers cannot express: tensor kwargs, non-tensor args, dict args', () => {
    expect(refusal(withLayer(call('d', dense('d', 2), 'Dense', [kt('x', 0)], { mask: kt('x', 0) }))))
      .toBe('m/d: call keyword argument "mask" is a tensor, which tfjs-layers cannot express');
    expect(refusal(withLayer(call('d', dense('d', 2), 'Dense', [kt('x', 0), 3]))))
      .toBe('m/d: call argument 3 is not a tensor; tfjs-layers calls take tensors only');
    expect(refusal(withLayer(call('d', dense('d', 2), 'Dense', [{ q: kt('x', 0) }]))))
      .toBe('m/d: called on a dict of tensors, which tfjs-layers cannot express');
  });
  test('a config tfjs itself rejects is refused with tfjs\'s reason, naming the layer', () => {
    expect(refusal(withLayer(call('c', { name: 'c', trainable: true, dtype: policy(), filters: 4, kernel_size: [1, 1, 1], strides: [1, 1, 1], padding: 'bogus', groups: 1 }, 'Conv3D', [kt('x', 0)]))))
      .toMatch(/^m\/c \(Conv3D\): tfjs-layers cannot build this layer from its converted config: /);
  });
});

describe('weight names (legacy_h5_format.py: variable paths)', () => {
  const classes = { layerClasses: new Map([['dense', 'Dense'], ['dw', 'DepthwiseConv2D'], ['lstm', 'LSTM']]) };
  test('model scopes before the first layer name are dropped; deeper parts kept for tfjs\'s own fallback', () => {
    expect(keras3WeightName('sequential/dense/kernel', classes)).toBe('dense/kernel');
    expect(keras3WeightName('outer/sequential/dense/bias', classes)).toBe('dense/bias');
    expect(keras3WeightName('dense/kernel', classes)).toBe('dense/kernel');
    expect(keras3WeightName('sequential/lstm/lstm_cell/kernel', classes)).toBe('lstm/lstm_cell/kernel');
    expect(keras3WeightName('sequential/other/kernel', classes)).toBeNull();
  });
  test('DepthwiseConv2D: keras 3 "kernel" is tfjs "depthwise_kernel" (base_depthwise_conv.py)', () => {
    expect(keras3WeightName('dw/kernel', classes)).toBe('depthwise_kernel'.replace(/^/, 'dw/'));
  });

  const artifacts = (names: string[]) => {
    const model = { class_name: 'Sequential', config: { name: 'sequential', trainable: true, dtype: policy(), layers: [inputLayer('x'), { module: 'keras.layers', class_name: 'Dense', config: dense('dense', 2), registered_name: null }] } };
    return {
      modelTopology: wrap(model),
      weightSpecs: names.map((name, i) => ({ name, shape: i === 0 ? [4, 2] : [2], dtype: 'float32' as const })),
      weightData: new Float32Array(10).map((_, i) => i / 10).buffer,
    };
  };
  test('renamed in the manifest, bytes shared, the rename reported', () => {
    const input = artifacts(['sequential/dense/kernel', 'sequential/dense/bias']);
    const ir = irFromArtifacts(input);
    expect(ir.weights.map((w) => w.name)).toEqual(['dense/kernel', 'dense/bias']);
    expect(ir.converted?.changes).toContain('weights renamed to tfjs names, e.g. sequential/dense/kernel -> dense/kernel (2)');
    const loadable = loadableArtifacts(input, ir);
    expect(loadable.weightData).toBe(input.weightData);
    expect(loadable.weightSpecs!.map((s) => s.name)).toEqual(['dense/kernel', 'dense/bias']);
    expect(input.weightSpecs.map((s) => s.name)).toEqual(['sequential/dense/kernel', 'sequential/dense/bias']);
  });
  test('quantized weights are renamed, never re-encoded: stock tfjs loads the loadable form', async () => {
    const input = artifacts(['sequential/dense/kernel', 'sequential/dense/bias']) as any;
    input.weightSpecs[0].quantization = { dtype: 'uint8', scale: 0.5, min: -1 };
    const bytes = new Uint8Array(8 + 8);
    bytes.set([0, 1, 2, 3, 4, 5, 6, 7]);
    new Float32Array(bytes.buffer, 8, 2).set([0.25, -0.5]);
    input.weightData = bytes.buffer;
    const loadable = loadableArtifacts(input, irFromArtifacts(input));
    expect(loadable.weightData).toBe(input.weightData);
    expect(loadable.weightSpecs).toEqual([
      { name: 'dense/kernel', shape: [4, 2], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.5, min: -1 } },
      { name: 'dense/bias', shape: [2], dtype: 'float32' },
    ]);
    const model = await tf.loadLayersModel(tf.io.fromMemory(loadable));
    try {
      expect(Array.from(model.getLayer('dense').getWeights()[0].dataSync())).toEqual([-1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5]);
    } finally {
      model.dispose();
    }
  });
  test('the .keras-file route: positions mapped to variables, non-model entries dropped (saving_lib.py)', () => {
    const ir = irFromArtifacts(artifacts(['layers/dense/vars/0', 'layers/dense/vars/1']));
    expect(ir.weights.map((w) => w.name)).toEqual(['dense/kernel', 'dense/bias']);
    expect(Array.from(ir.weights[1].values)).toEqual([0.8, 0.9].map(Math.fround));
    const withOptimizer = artifacts(['layers/dense/vars/0', 'optimizer/vars/1']);
    withOptimizer.weightSpecs[1].shape = [];
    withOptimizer.weightData = new Float32Array(9).buffer;
    const dropped = irFromArtifacts(withOptimizer);
    expect(dropped.weights.map((w) => w.name)).toEqual(['dense/kernel']);
    expect(dropped.converted?.changes).toContain('.keras-route entries that are not model weights dropped, e.g. optimizer/vars/1 (1)');
  });
  test('.keras route: groups are numbered per class in layer order (naming.to_snake_case), nested models recurse', () => {
    const topology = {
      class_name: 'Functional',
      config: {
        name: 'm',
        layers: [
          { class_name: 'InputLayer', name: 'x', config: {} },
          { class_name: 'Conv3D', name: 'first', config: { use_bias: false } },
          { class_name: 'BatchNormalization', name: 'bn', config: { center: false } },
          { class_name: 'Conv3D', name: 'second', config: {} },
          { class_name: 'DepthwiseConv2D', name: 'dw', config: {} },
          { class_name: 'Sequential', name: 'seq', config: { name: 'seq', layers: [{ class_name: 'InputLayer', config: {} }, { class_name: 'Dense', config: { name: 'inner' } }] } },
        ],
      },
    };
    expect(kerasFileRouteWeightName('layers/conv3d/vars/0', topology)).toBe('first/kernel');
    expect(kerasFileRouteWeightName('layers/conv3d_1/vars/1', topology)).toBe('second/bias');
    expect(kerasFileRouteWeightName('layers/batch_normalization/vars/1', topology)).toBe('bn/moving_mean');
    expect(kerasFileRouteWeightName('layers/depthwise_conv2d/vars/0', topology)).toBe('dw/depthwise_kernel');
    expect(kerasFileRouteWeightName('layers/sequential/layers/dense/vars/0', topology)).toBe('inner/kernel');
    expect(kerasFileRouteWeightName('optimizer/vars/0', topology)).toBeNull();
    expect(() => kerasFileRouteWeightName('layers/conv3d/vars/1', topology)).toThrow('weight "layers/conv3d/vars/1": first (Conv3D) has 1 variable(s): kernel');
    expect(() => kerasFileRouteWeightName('layers/conv3d_2/vars/0', topology)).toThrow('no layer of the model is stored as "conv3d_2"');
    const lstm = { class_name: 'Sequential', config: { name: 's', layers: [{ class_name: 'LSTM', config: { name: 'l' } }] } };
    expect(() => kerasFileRouteWeightName('layers/lstm/cell/vars/0', lstm)).toThrow('weight "layers/lstm/cell/vars/0": positional weights of l (LSTM) are not mapped (.keras route)');
  });
  test('two paths that would collide in tfjs, and a path naming no layer, are refused', () => {
    expect(() => irFromArtifacts(artifacts(['sequential/dense/kernel', 'other/dense/kernel']))).toThrow(/weights "sequential\/dense\/kernel" and "other\/dense\/kernel" would both be "dense\/kernel"/);
    expect(() => irFromArtifacts(artifacts(['sequential/nope/kernel', 'sequential/dense/bias']))).toThrow('weight "sequential/nope/kernel": no segment of its path names a layer of the model');
  });
});

test('readTopology: Keras 2 topologies pass untouched, Keras 3 ones are converted', () => {
  const keras2 = { class_name: 'Sequential', config: { name: 's', layers: [{ class_name: 'Dense', config: { name: 'd', units: 2, batch_input_shape: [null, 3] } }] } };
  expect(readTopology(keras2).keras3).toBeNull();
  const keras3 = readTopology(wrap({ class_name: 'Sequential', config: { name: 's', layers: [inputLayer('x'), { class_name: 'Dense', config: dense('d', 2) }] } }));
  expect(keras3.keras3?.kerasVersion).toBe('3.10.0');
  expect(keras3.graph.layers.map((l) => l.name)).toEqual(['x', 'd']);
});
