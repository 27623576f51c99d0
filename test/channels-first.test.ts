/**
 * Regressions found by the pipeline property test (test/pipeline-property.test.ts), kept as
 * fixed cases: channels_first convs whose output a Flatten feeds into a Dense, and Conv1D's
 * channels_first quirk in tfjs.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { inspect, optimize } from '../src';
import { CONV_PASSES } from './helpers/conv-cases';
import { useBackendForFile } from './helpers/tf';

useBackendForFile('cpu');

const init = (seed: number) => ({
  kernelInitializer: tf.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed }),
  biasInitializer: tf.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: seed + 1 }),
});

function cfConvFlattenDense(name: string, rank: 2 | 3, inputShape: number[], kernel: number[], functional: boolean): tf.LayersModel {
  const convArgs = { name: `${name}_conv`, filters: 3, kernelSize: kernel, strides: kernel, dataFormat: 'channelsFirst' as const, ...init(3) };
  const layers = [
    rank === 3 ? tf.layers.conv3d(convArgs) : tf.layers.conv2d(convArgs),
    tf.layers.flatten({ name: `${name}_flatten` }),
    tf.layers.dense({ name: `${name}_dense`, units: 3, ...init(5) }),
  ];
  if (functional) {
    const input = tf.input({ shape: inputShape, name: `${name}_input` });
    return tf.model({ inputs: input, outputs: layers.reduce<tf.SymbolicTensor>((x, l) => l.apply(x) as tf.SymbolicTensor, input), name });
  }
  const model = tf.sequential({ name });
  model.add(tf.layers.inputLayer({ inputShape, name: `${name}_input` }));
  layers.forEach((l) => model.add(l));
  return model;
}

async function expectRewrittenAndEqual(model: tf.LayersModel, batch = 2): Promise<void> {
  const tensors = tf.memory().numTensors;
  // inspect crashed too: the rewrite plan was wrong before any tensor was touched.
  const planned = await inspect(model, { passes: CONV_PASSES, backend: 'cpu' });
  const result = await optimize(model, { passes: CONV_PASSES, backend: 'cpu', atol: 1e-5, rtol: 1e-4, batch });
  expect(planned.rewritten.map((r) => r.pass)).toEqual(result.report.rewritten.map((r) => r.pass));
  // The conv's output Permute is folded into the Dense's kernel rows: no transpose is left after it.
  expect(result.report.rewritten.map((r) => r.pass)).toEqual(expect.arrayContaining([expect.stringMatching(/^conv[23]d-to-dense$/), 'fold-views-into-dense']));
  expect(result.report.verification?.passed).toBe(true);
  const rewritten = await tf.loadLayersModel(tf.io.fromMemory(result.artifacts));
  const x = tf.randomUniform([batch, ...(model.inputs[0].shape.slice(1) as number[])], -1, 1, 'float32', 11);
  const [a, b] = [model.predict(x) as tf.Tensor, rewritten.predict(x) as tf.Tensor];
  expect(b.shape).toEqual(a.shape);
  expect(tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0])).toBeLessThan(1e-5);
  tf.dispose([x, a, b]);
  rewritten.dispose();
  model.dispose();
  expect(tf.memory().numTensors).toBe(tensors - 4); // the model's kernels and biases
}

describe('a channels_first conv -> Flatten -> Dense rewrites and verifies', () => {
  // Was: "internal error: offset is out of bounds" in permuteRows (fold-views-into-dense read the
  // conv's input shape for the Permute that took the conv's name: the driver's shapes were stale).
  test('Conv3D [2,4,4,4] kernel 2 (Sequential)', async () => {
    await expectRewrittenAndEqual(cfConvFlattenDense('cf3a', 3, [2, 4, 4, 4], [2, 2, 2], false));
  });
  // Was: "stock tfjs cannot load the rewritten model: Shape mismatch: [16,3] vs. [24,3]" (the
  // stale input shape was smaller than the real one, so the kernel was cut to 16 rows).
  test('Conv3D [2,2,2,2] kernel 1 (Sequential)', async () => {
    await expectRewrittenAndEqual(cfConvFlattenDense('cf3b', 3, [2, 2, 2, 2], [1, 1, 1], false));
  });
  test('Conv2D [2,3,5] kernel [3,2] with a remainder (Functional, batch 3)', async () => {
    await expectRewrittenAndEqual(cfConvFlattenDense('cf2a', 2, [2, 3, 5], [3, 2], true), 3);
  });
});

test("the per-layer check says so when a conv's output was folded away, and still runs when it was only reshaped", async () => {
  // channels_first: the Dense now reads the conv-Dense's [d,h,w,F] directly; comparing that with
  // the conv's [F,d,h,w] output element for element used to fail verification.
  const folded = await optimize(cfConvFlattenDense('cf3c', 3, [2, 4, 4, 4], [2, 2, 2], false), { passes: CONV_PASSES, backend: 'cpu' });
  expect(folded.report.verification?.layers ?? []).toEqual([]);
  expect(folded.report.verification?.notes).toEqual([expect.stringContaining('cf3c_conv: its output was folded into cf3c_dense')]);

  // channels_last patch embed + Flatten: the reshapes merge, the conv's output still exists.
  const model = tf.sequential({ name: 'cl3' });
  model.add(tf.layers.conv3d({ name: 'cl3_conv', inputShape: [2, 4, 4, 3], filters: 4, kernelSize: [2, 4, 4], strides: [2, 4, 4], ...init(7) }));
  model.add(tf.layers.flatten({ name: 'cl3_flatten' }));
  const reshaped = await optimize(model, { passes: CONV_PASSES, backend: 'cpu' });
  expect(reshaped.report.verification?.layers?.map((l) => [l.layer, l.passed])).toEqual([['cl3_conv', true]]);
  model.dispose();
});

test("a channels_first Conv1D stays, with tfjs's reason", async () => {
  const model = tf.sequential({ name: 'cf1' });
  model.add(tf.layers.conv1d({ name: 'cf1_conv', inputShape: [3, 8], filters: 2, kernelSize: 2, strides: 2, dataFormat: 'channelsFirst' }));
  let artifacts: io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (saved) => {
    artifacts = saved;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  model.dispose();
  // tfjs does not save Conv1D's data_format; Keras does. The optimizer sees the Keras form.
  const topology = artifacts!.modelTopology as { config: { layers: { config: Record<string, unknown> }[] } };
  topology.config.layers[0].config.data_format = 'channels_first';
  const report = await inspect(artifacts!, { passes: ['conv1d-to-dense'], backend: 'cpu' });
  expect(report.rewritten).toEqual([]);
  expect(report.skipped.map((s) => [s.layer, s.reason])).toEqual([
    ['cf1_conv', "data_format 'channels_first' on Conv1D: tfjs computes its output channels last, not as its shape says"],
  ]);
});
