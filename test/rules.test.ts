/**
 * One block per rule in passes/: on the IR alone (inspect touches no tensor) the layer counts a
 * rewrite changes and the exact refusal of a negative; then one numerical check (optimize with
 * only that rule, the result loaded by stock tfjs and compared with the original on cpu).
 * Rules are reached by name, as users reach them; a rule registered without a block here fails.
 */
import * as tf from '@tensorflow/tfjs';
import { BUILTIN_PASSES, artifactsOfModel, inspect, optimize, passesByName } from '../src';
import { inferShapes } from '../src/layers/shapes';
import { loadChecked } from '../src/io/source';
import type { MatchContext } from '../src/pass';
import { disposeModel, useBackendForFile } from './helpers/tf';

useBackendForFile('cpu');

/** Filled while jest collects the blocks below, before any test runs. */
const tested = new Set<string>();
test('every built-in rule has a block here', () => {
  expect(BUILTIN_PASSES.map((pass) => pass.name).filter((name) => !tested.has(name))).toEqual([]);
  expect(tested.size).toBeGreaterThanOrEqual(6);
});

type Build = () => tf.LayersModel;

function functional(shape: number[], layers: tf.layers.Layer[], name: string): tf.LayersModel {
  const input = tf.input({ shape, name: `${name}_x` });
  const output = layers.reduce<tf.SymbolicTensor>((x, layer) => layer.apply(x) as tf.SymbolicTensor, input);
  return tf.model({ inputs: input, outputs: output, name });
}

/** inspect with only `rule`: the report, from the topology and weight specs alone. */
async function inspectWith(rule: string, build: Build) {
  const model = build();
  try {
    return await inspect(await artifactsOfModel(model), { passes: [rule], backend: 'cpu' });
  } finally {
    disposeModel(model);
  }
}

/**
 * The rule's own answer for one layer (clean-up rules keep their refusals out of the report):
 * match() on the checked IR with its inferred shapes.
 */
async function matchWith(rule: string, build: Build, layerName: string) {
  const model = build();
  try {
    const { ir } = await loadChecked(await artifactsOfModel(model));
    const layer = ir.graph.layers.find((l) => l.name === layerName)!;
    const context: MatchContext = { ir, graph: ir.graph, shapes: inferShapes(ir.graph), freshName: (base) => `${base}_fresh`, backend: 'cpu', forced: true };
    const [pass] = passesByName([rule]);
    expect(pass.appliesTo(layer)).toBe(true);
    return pass.match(layer, context);
  } finally {
    disposeModel(model);
  }
}

/** optimize with only `rule`; stock tfjs runs both models on the same seeded rows. */
async function expectSameOutputs(rule: string, build: Build, batch = 3): Promise<void> {
  const tensors = tf.memory().numTensors;
  const model = build();
  const result = await optimize(model, { passes: [rule], backend: 'cpu', atol: 1e-5, rtol: 1e-4, batch });
  expect(result.report.rewritten.map((r) => r.pass)).toContain(rule);
  expect(result.report.verification?.passed).toBe(true);
  const rewritten = await result.load();
  const x = tf.randomUniform([batch, ...(model.inputs[0].shape.slice(1) as number[])], -1, 1, 'float32', 5);
  const [a, b] = [model.predict(x) as tf.Tensor, rewritten.predict(x) as tf.Tensor];
  expect(b.shape).toEqual(a.shape);
  expect(tf.tidy(() => tf.max(tf.sub(tf.abs(tf.sub(a, b)), tf.add(1e-5, tf.mul(1e-4, tf.abs(a))))).dataSync()[0])).toBeLessThanOrEqual(0);
  tf.dispose([x, a, b]);
  disposeModel(rewritten);
  disposeModel(model);
  expect(tf.memory().numTensors).toBe(tensors);
}

const withoutInput = (layers: Record<string, number>) => Object.fromEntries(Object.entries(layers).filter(([name]) => name !== 'InputLayer'));

describe.each([
  {
    rule: 'conv3d-to-dense',
    positive: () => functional([4, 4, 6, 3], [tf.layers.conv3d({ name: 'c3', filters: 5, kernelSize: [2, 2, 3], strides: [2, 2, 3], biasInitializer: 'ones' })], 'c3m'),
    // A tubelet with patches on every axis: one transpose of the input, no view after the Dense.
    after: { Reshape: 2, Permute: 1, Dense: 1 },
    negative: () => functional([4, 4, 4, 3], [tf.layers.conv3d({ name: 'c3', filters: 5, kernelSize: 2, strides: 1 })], 'c3n'),
    refusal: 'strides [1, 1, 1] != kernel_size [2, 2, 2]',
  },
  {
    rule: 'conv2d-to-dense',
    positive: () => functional([3, 8, 6], [tf.layers.conv2d({ name: 'c2', filters: 4, kernelSize: [2, 3], strides: [2, 3], dataFormat: 'channelsFirst', biasInitializer: 'ones' })], 'c2m'),
    // channels_first: C is moved last with the patch order, and the filters go back first.
    after: { Reshape: 2, Permute: 2, Dense: 1 },
    negative: () => functional([5, 6, 3], [tf.layers.conv2d({ name: 'c2', filters: 4, kernelSize: 2, strides: 2, padding: 'same' })], 'c2n'),
    refusal: "padding 'same' pads H (5 % 2 != 0)",
  },
  {
    rule: 'conv1d-to-dense',
    positive: () => functional([12, 2], [tf.layers.conv1d({ name: 'c1', filters: 3, kernelSize: 4, strides: 4, activation: 'tanh', biasInitializer: 'ones' })], 'c1m'),
    // Frames are contiguous: one Reshape, no transpose.
    after: { Reshape: 1, Dense: 1 },
    negative: () => functional([12, 2], [tf.layers.conv1d({ name: 'c1', filters: 3, kernelSize: 4, strides: 4, dilationRate: 2 })], 'c1n'),
    refusal: 'dilation_rate [2] != 1',
  },
])('$rule', ({ rule, positive, after, negative, refusal }) => {
  tested.add(rule);
  const convClass = `Conv${rule[4]}D`;

  test('IR: the conv becomes views + one Dense, with the same parameters', async () => {
    const report = await inspectWith(rule, positive);
    expect(withoutInput(report.before.layers)).toEqual({ [convClass]: 1 });
    expect(withoutInput(report.after.layers)).toEqual(after);
    expect(report.after.params).toBe(report.before.params);
    expect(report.rewritten.map((r) => [r.layer, r.pass])).toEqual([[`c${rule[4]}`, rule]]);
  });

  test('IR: a negative stays, with the failing value in the refusal', async () => {
    const report = await inspectWith(rule, negative);
    expect(report.rewritten).toEqual([]);
    expect(report.after.layers).toEqual(report.before.layers);
    expect(report.skipped.map((s) => [s.pass, s.reason])).toEqual([[rule, refusal]]);
  });

  test('numerically equal to the conv on stock tfjs', async () => {
    await expectSameOutputs(rule, positive);
  });
});

describe('conv3d-to-conv2d-slices', () => {
  tested.add('conv3d-to-conv2d-slices');
  const rule = 'conv3d-to-conv2d-slices';
  // 'same', depth dilation 2: kernel depth 0 and 2 read padding at the ends, so they cover fewer
  // output depths than depth 1, which carries the bias.
  const sliding = () => functional([5, 6, 7, 2], [tf.layers.conv3d({ name: 'c3', filters: 3, kernelSize: 3, padding: 'same', dilationRate: [2, 1, 1], activation: 'relu', biasInitializer: 'ones' })], 's3m');

  test('IR: the conv becomes one Conv2D per kernel depth, summed, with the same parameters', async () => {
    const report = await inspectWith(rule, sliding);
    expect(withoutInput(report.before.layers)).toEqual({ Conv3D: 1 });
    const after = withoutInput(report.after.layers);
    expect(after.Conv2D).toBe(3);
    expect(after.Add).toBe(1);
    expect(after.Activation).toBe(1);
    expect(Object.keys(after).sort()).toEqual(['Activation', 'Add', 'Conv2D', 'Cropping2D', 'Reshape', 'ZeroPadding2D']);
    expect(report.after.params).toBe(report.before.params);
    expect(report.rewritten.map((r) => [r.layer, r.pass])).toEqual([['c3', rule]]);
  });

  test('IR: a conv with a weight constraint stays, with the reason', async () => {
    const constrained = () => functional([4, 4, 4, 2], [tf.layers.conv3d({ name: 'c3', filters: 2, kernelSize: 3, kernelConstraint: 'nonNeg' })], 's3n');
    const report = await inspectWith(rule, constrained);
    expect(report.rewritten).toEqual([]);
    expect(report.skipped.map((s) => [s.pass, s.reason])).toEqual([[rule, 'kernel_constraint/bias_constraint set (no Conv2D equivalent of their axes)']]);
  });

  test('numerically equal to the conv on stock tfjs', async () => {
    await expectSameOutputs(rule, sliding);
  });
});

describe('fold-views-into-dense', () => {
  tested.add('fold-views-into-dense');
  const rule = 'fold-views-into-dense';
  // The Dense sees the features in another order: the order moves into its kernel rows.
  const chain = () => functional([24], [
    tf.layers.reshape({ name: 'cube', targetShape: [2, 3, 4] }),
    tf.layers.permute({ name: 'swap', dims: [3, 1, 2] }),
    tf.layers.flatten({ name: 'flat' }),
    tf.layers.dense({ name: 'head', units: 5, biasInitializer: 'ones' }),
  ], 'fold');

  test('IR: Reshape -> Permute -> Flatten -> Dense becomes the Dense alone', async () => {
    const report = await inspectWith(rule, chain);
    expect(withoutInput(report.before.layers)).toEqual({ Reshape: 1, Permute: 1, Flatten: 1, Dense: 1 });
    expect(withoutInput(report.after.layers)).toEqual({ Dense: 1 });
    expect(report.rewritten.map((r) => [r.layer, r.pass])).toEqual([['head', rule]]);
  });

  test('IR: a Dense that sees several rows per example is refused (folding would mix rows)', async () => {
    const rows = () => functional([24], [
      tf.layers.reshape({ name: 'rows', targetShape: [4, 6] }),
      tf.layers.permute({ name: 'swap', dims: [2, 1] }),
      tf.layers.dense({ name: 'head', units: 5 }),
    ], 'fold_rows');
    expect(await matchWith(rule, rows, 'head')).toEqual({ refusal: 'the Dense sees more than one row per example' });
    const report = await inspectWith(rule, rows);
    expect(report.after.layers).toEqual(report.before.layers);
  });

  test('numerically equal on stock tfjs', async () => {
    await expectSameOutputs(rule, chain);
  });
});

describe('collapse-reshapes', () => {
  tested.add('collapse-reshapes');
  const rule = 'collapse-reshapes';
  const twoReshapes = () => functional([12], [
    tf.layers.reshape({ name: 'a', targetShape: [3, 4] }),
    tf.layers.reshape({ name: 'b', targetShape: [2, 6] }),
    tf.layers.dense({ name: 'head', units: 2 }),
  ], 'collapse');

  test('IR: two reshapes in a row become one', async () => {
    const report = await inspectWith(rule, twoReshapes);
    expect(withoutInput(report.before.layers)).toEqual({ Reshape: 2, Dense: 1 });
    expect(withoutInput(report.after.layers)).toEqual({ Reshape: 1, Dense: 1 });
    expect(report.rewritten.map((r) => [r.layer, r.pass])).toEqual([['b', rule]]);
  });

  test('IR: a reshape after a Permute is refused', async () => {
    const afterPermute = () => functional([3, 4], [
      tf.layers.permute({ name: 'p', dims: [2, 1] }),
      tf.layers.reshape({ name: 'r', targetShape: [12] }),
    ], 'collapse_p');
    expect(await matchWith(rule, afterPermute, 'r')).toEqual({ refusal: 'not after a reshape' });
    const report = await inspectWith(rule, afterPermute);
    expect(report.after.layers).toEqual(report.before.layers);
  });

  test('numerically equal on stock tfjs', async () => {
    await expectSameOutputs(rule, twoReshapes);
  });
});

describe('drop-identity-views', () => {
  tested.add('drop-identity-views');
  const rule = 'drop-identity-views';
  const identities = () => functional([4, 4], [
    tf.layers.reshape({ name: 'same', targetShape: [4, 4] }),
    tf.layers.permute({ name: 'inorder', dims: [1, 2] }),
    tf.layers.dense({ name: 'head', units: 3 }),
  ], 'drop');

  test('IR: a Reshape to its own shape and an in-order Permute vanish', async () => {
    const report = await inspectWith(rule, identities);
    expect(withoutInput(report.before.layers)).toEqual({ Reshape: 1, Permute: 1, Dense: 1 });
    expect(withoutInput(report.after.layers)).toEqual({ Dense: 1 });
    expect(report.rewritten.map((r) => [r.layer, r.pass])).toEqual([['same', rule], ['inorder', rule]]);
  });

  test('IR: a Permute that keeps the shape but reorders axes is refused', async () => {
    const transpose = () => functional([4, 4], [tf.layers.permute({ name: 'swap', dims: [2, 1] }), tf.layers.dense({ name: 'head', units: 3 })], 'drop_t');
    expect(await matchWith(rule, transpose, 'swap')).toEqual({ refusal: 'reorders axes' });
    const report = await inspectWith(rule, transpose);
    expect(report.after.layers).toEqual(report.before.layers);
  });

  test('numerically equal on stock tfjs', async () => {
    await expectSameOutputs(rule, identities);
  });
});

describe.each([
  {
    rule: 'conv3d-transpose-to-dense',
    positive: () => functional([2, 3, 2, 4], [tf.layers.conv3dTranspose({ name: 't3', filters: 3, kernelSize: [2, 2, 3], strides: [2, 2, 3], biasInitializer: 'ones', activation: 'relu' })], 't3m'),
    // Dense on rank-3 rows, then depth-to-space in two rank-5 transposes.
    after: { Reshape: 4, Dense: 1, Permute: 2 },
    negative: () => functional([2, 3, 2, 4], [tf.layers.conv3dTranspose({ name: 't3', filters: 3, kernelSize: 3, strides: 2 })], 't3n'),
    refusal: 'strides [2, 2, 2] != kernel_size [3, 3, 3]',
  },
  {
    rule: 'conv2d-transpose-to-dense',
    positive: () => functional([3, 5, 2], [tf.layers.conv2dTranspose({ name: 't2', filters: 4, kernelSize: [3, 2], strides: [3, 2], padding: 'same', dataFormat: 'channelsFirst', biasInitializer: 'ones' })], 't2m'),
    after: { Reshape: 3, Dense: 1, Permute: 3 },
    negative: () => functional([3, 5, 2], [tf.layers.conv2dTranspose({ name: 't2', filters: 4, kernelSize: 2, strides: 1 })], 't2n'),
    refusal: 'strides [1, 1] != kernel_size [2, 2]',
  },
  {
    rule: 'conv3d-transpose-by-depth',
    positive: () => functional([3, 4, 3, 2], [tf.layers.conv3dTranspose({ name: 't3', filters: 3, kernelSize: 3, strides: 2, padding: 'same', biasInitializer: 'ones', activation: 'tanh' })], 't3d'),
    // One Conv2DTranspose for all 3 (padded to 4) kernel depths; 2 shifts added; bias once after the sum.
    after: { Reshape: 8, ZeroPadding2D: 3, Conv2DTranspose: 1, Cropping2D: 5, Permute: 1, Add: 1, BatchNormalization: 1, Activation: 1 },
    negative: () => functional([3, 4, 3, 2], [tf.layers.conv3dTranspose({ name: 't3', filters: 3, kernelSize: [1, 3, 3], strides: [2, 1, 1], padding: 'same' })], 't3dn'),
    refusal: "kernel 1 < stride 2 on D with 'same': tfjs pads 3D convs by floor((k - s) / 2) < 0 there, unlike TensorFlow",
  },
])('$rule', ({ rule, positive, after, negative, refusal }) => {
  tested.add(rule);

  test('IR: the transposed conv becomes stock layers', async () => {
    const report = await inspectWith(rule, positive);
    expect(report.rewritten.map((r) => [r.layer, r.pass])).toEqual([[rule.startsWith('conv2d') ? 't2' : 't3', rule]]);
    expect(withoutInput(report.after.layers)).toEqual(after);
  });

  test('IR: a negative stays, with the failing value in the refusal', async () => {
    const report = await inspectWith(rule, negative);
    expect(report.rewritten).toEqual([]);
    expect(report.after.layers).toEqual(report.before.layers);
    expect(report.skipped.filter((s) => s.pass === rule).map((s) => s.reason)).toEqual([refusal]);
  });

  test('numerically equal to the transposed conv on stock tfjs', async () => {
    await expectSameOutputs(rule, positive);
  });
});
