/**
 * Model structures beyond the fixtures: nested functional models (called twice), a Sequential
 * inside a Sequential, a conv feeding several readers, unknown spatial sizes.
 */
import * as tf from '@tensorflow/tfjs';
import { optimize } from '../src';
import { fillDeterministic } from '../fixtures/models';
import { readModelFiles } from '../src/io/files';
import { committedModel, disposeModel } from './helpers/tf';

// The rewrite itself is under test, not the speed policy (its decisions depend on timings).
const TIGHT = { atol: 1e-5, rtol: 1e-4, policy: 'always' as const };

async function run(build: () => tf.LayersModel) {
  const model = build();
  fillDeterministic(model, 99);
  const before = tf.memory().numTensors;
  try {
    return await optimize(model, TIGHT);
  } finally {
    expect(tf.memory().numTensors).toBe(before);
    disposeModel(model);
  }
}

const conv = (name: string, kernel: [number, number, number], extra: Partial<Parameters<typeof tf.layers.conv3d>[0]> = {}) =>
  tf.layers.conv3d({ name, filters: 5, kernelSize: kernel, strides: kernel, ...extra });

test('a nested functional model called twice is rewritten once, inside', async () => {
  const result = await run(() => {
    const innerIn = tf.input({ shape: [4, 8, 8, 2], name: 'inner_in' });
    const innerOut = conv('inner_conv', [2, 4, 4]).apply(innerIn) as tf.SymbolicTensor;
    const inner = tf.model({ inputs: innerIn, outputs: innerOut, name: 'encoder' });
    const a = tf.input({ shape: [4, 8, 8, 2], name: 'a' });
    const b = tf.input({ shape: [4, 8, 8, 2], name: 'b' });
    const sum = tf.layers.add({ name: 'sum' }).apply([inner.apply(a) as tf.SymbolicTensor, inner.apply(b) as tf.SymbolicTensor]);
    return tf.model({ inputs: [a, b], outputs: sum as tf.SymbolicTensor, name: 'outer' });
  });
  expect(result.report.rewritten.filter((r) => r.pass === 'conv3d-to-dense')).toEqual([
    expect.objectContaining({ layer: 'inner_conv', graph: 'outer/encoder' }),
  ]);
  expect(result.report.verification!.passed).toBe(true);
});

test('a Sequential inside a Sequential', async () => {
  const result = await run(() => tf.sequential({
    name: 'outer_seq',
    layers: [
      tf.sequential({ name: 'inner_seq', layers: [conv('deep_conv', [2, 2, 2], { inputShape: [4, 4, 4, 3] })] }),
      tf.layers.flatten({ name: 'flat' }),
    ],
  }));
  expect(result.report.rewritten.map((r) => r.layer)).toContain('deep_conv');
  expect(result.report.verification!.passed).toBe(true);
});

test('a conv read by several layers and by the model output', async () => {
  const result = await run(() => {
    const x = tf.input({ shape: [4, 4, 4, 3], name: 'x' });
    const y = conv('fan_conv', [2, 2, 2], { activation: 'tanh' }).apply(x) as tf.SymbolicTensor;
    const a = tf.layers.flatten({ name: 'fa' }).apply(y) as tf.SymbolicTensor;
    const b = tf.layers.maxPooling3d({ name: 'pool', poolSize: 2 }).apply(y) as tf.SymbolicTensor;
    return tf.model({ inputs: x, outputs: [a, b, y] });
  });
  expect(result.report.rewritten.map((r) => r.layer)).toContain('fan_conv');
  expect(result.report.verification!.outputs).toHaveLength(3);
  expect(result.report.verification!.passed).toBe(true);
});

test('unknown spatial sizes are refused with the shape in the reason', async () => {
  const model = tf.sequential({ layers: [conv('dyn_conv', [2, 2, 2], { inputShape: [null, 8, 8, 3] as unknown as number[] })] });
  fillDeterministic(model, 1);
  const result = await optimize(model, { verify: false, policy: 'always' });
  disposeModel(model);
  expect(result.report.skipped).toEqual([
    expect.objectContaining({ layer: 'dyn_conv', pass: 'conv3d-to-dense', reason: 'input shape [null, null, 8, 8, 3] is not static beyond the batch' }),
    expect.objectContaining({ layer: 'dyn_conv', pass: 'conv3d-to-conv2d-slices', reason: 'input sizes [null, 8, 8] x 3 channels are not static beyond the batch' }),
  ]);
});

test('a conv smaller input than its kernel is refused', async () => {
  const model = tf.sequential({ layers: [tf.layers.reshape({ targetShape: [1, 4, 4, 2], inputShape: [32], name: 'r' }), conv('big_kernel', [2, 2, 2], { padding: 'same' })] });
  fillDeterministic(model, 1);
  // conv3d-to-dense's refusal; the sliding rule pads it as 'same' does and rewrites it.
  const result = await optimize(model, { verify: false, policy: 'always', passes: ['conv3d-to-dense'] });
  disposeModel(model);
  expect(result.report.skipped[0].reason).toBe('input D=1 is smaller than kernel 2');
});

test('softmax on a channels_first conv is refused: it normalizes over W, not the filters', async () => {
  const model = tf.sequential({ layers: [conv('cf_softmax', [2, 2, 2], { inputShape: [3, 4, 4, 4], dataFormat: 'channelsFirst', activation: 'softmax' })] });
  fillDeterministic(model, 1);
  // conv3d-to-dense's refusal (conv3d-to-conv2d-slices keeps the softmax after its own Permute and rewrites it).
  const result = await optimize(model, { verify: false, policy: 'always', passes: ['conv3d-to-dense'] });
  disposeModel(model);
  expect(result.report.skipped[0].reason).toBe("activation 'softmax' on channels_first output normalizes over W, not the filters");
});

test('the rewritten model keeps the original output names', async () => {
  const build = () => {
    const x = tf.input({ shape: [4, 4, 4, 3], name: 'x' });
    const y = conv('embed_out', [2, 2, 2]).apply(x) as tf.SymbolicTensor;
    return tf.model({ inputs: x, outputs: y, name: 'named' });
  };
  const original = build();
  const names = original.outputNames;
  const result = await run(() => original);
  const rewritten = await result.load();
  expect(rewritten.outputNames).toEqual(names);
  expect(rewritten.getLayer('embed_out').getClassName()).toBe('Dense');
  disposeModel(rewritten);
});

test('a Keras 2 export (model_config wrapper, class Functional, groups key) is rewritten and verified', async () => {
  const artifacts = await readModelFiles(committedModel('video-swin-remainder'));
  const topology = artifacts.modelTopology as { class_name: string; config: { layers: { class_name: string; config: Record<string, unknown> }[] } };
  for (const layer of topology.config.layers) if (layer.class_name === 'Conv3D') layer.config.groups = 1;
  const keras = {
    ...artifacts,
    generatedBy: 'keras v2.15.0',
    modelTopology: { model_config: { ...topology, class_name: 'Functional', keras_version: '2.15.0', backend: 'tensorflow' } },
  };
  const result = await optimize(keras, TIGHT);
  expect(result.report.rewritten.map((r) => r.layer)).toContain('patch_embed');
  expect(result.report.verification!.passed).toBe(true);
  expect((result.artifacts.modelTopology as { class_name: string }).class_name).toBe('Functional');
});

test('a conv inside a TimeDistributed wrapper is reported, not rewritten', async () => {
  const model = tf.sequential({
    layers: [tf.layers.timeDistributed({ layer: tf.layers.conv2d({ filters: 4, kernelSize: 2, strides: 2, name: 'frame_conv' }), inputShape: [3, 4, 4, 2], name: 'per_frame' })],
  });
  fillDeterministic(model, 1);
  const result = await optimize(model, { verify: false, passes: ['conv2d-to-dense'] });
  disposeModel(model);
  expect(result.report.rewritten).toEqual([]);
  expect(result.report.skipped).toEqual([expect.objectContaining({
    layer: 'per_frame', pass: 'conv2d-to-dense', reason: expect.stringMatching(/wrapped in TimeDistributed/),
  })]);
});
