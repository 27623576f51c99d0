/**
 * Sequential models whose rewrite needs branches (src/layers/functional.ts): the Add of
 * conv3d-to-conv2d-slices' depth terms, conv3d-transpose-by-depth's overlap-add. The Sequential
 * (top level, or nested in a functional model or in another Sequential) is written as a
 * functional model with the same layer and weight names, loaded by stock tfjs and verified.
 */
import * as tf from '@tensorflow/tfjs';
import { optimize } from '../src';
import { fixture, fillDeterministic } from '../fixtures/models';
import { readModelFiles } from '../src/io/files';
import { committedModel, disposeModel, useBackendForFile } from './helpers/tf';

useBackendForFile('cpu');

type Entry = { name?: string; class_name: string; config: { name?: string; layers?: Entry[] } & Record<string, unknown>; inbound_nodes?: unknown[] };
const topologyOf = (artifacts: tf.io.ModelArtifacts) => artifacts.modelTopology as unknown as Entry;
const nameOf = (entry: Entry) => entry.name ?? entry.config.name;
/** Every layer entry, nested models' included. */
const entries = (layers: Entry[]): Entry[] => layers.flatMap((l) => [l, ...entries(l.config.layers ?? [])]);

describe('C3D written as a Sequential (fixture c3d-sequential)', () => {
  test.each(['wasm', 'cpu'])('default settings on %s: both sliding Conv3Ds rewritten, the model functional, verified there', async (backend) => {
    const tensors = tf.memory().numTensors;
    const model = fixture('c3d-sequential').build();
    try {
      // The table decides on wasm (rewrite) and cpu (keep: the same JS loops): 'always' on cpu, so there is something to verify.
      const result = await optimize(model, { backend, batch: 2, ...(backend === 'cpu' ? { policy: 'always' as const } : {}) });
      const r = result.report;
      expect(r.rewritten.map((w) => [w.layer, w.pass])).toEqual([['conv1a', 'conv3d-to-conv2d-slices'], ['conv2a', 'conv3d-to-conv2d-slices']]);
      expect(r.verification).toMatchObject({ passed: true, backend });
      expect(r.notes.filter((n) => /Sequential is written as a functional model/.test(n))).toEqual([
        'c3d_sequential: the Sequential is written as a functional model (class Model, input conv1a_input): a rewrite in it needs branches, which a Sequential\'s one chain of layers cannot hold; every layer and weight keeps its name',
      ]);
      const topology = topologyOf(result.artifacts);
      expect(topology.class_name).toBe('Model');
      const names = topology.config.layers!.map(nameOf);
      // Every layer the rewrite did not replace keeps its name; the convs' last views take theirs.
      for (const name of ['conv1a_input', 'conv1a', 'pool1', 'conv2a', 'pool2', 'flatten', 'fc']) expect(names).toContain(name);
      expect(topology.config.layers!.filter((l) => l.class_name === 'Add').length).toBe(2);
      // Weights: the untouched Dense's names as they were, the Conv2Ds' after their layers.
      const weights = result.artifacts.weightSpecs!.map((w) => w.name);
      expect(weights).toEqual(expect.arrayContaining(['fc/kernel', 'fc/bias', 'conv1a_conv2d_0/kernel', 'conv2a_conv2d_2/kernel']));
      expect(weights.some((w) => /^conv[12]a\//.test(w))).toBe(false);

      // Stock tfjs loads it (strict weight names) and computes what the original does; the input
      // keeps the name tfjs gives a Sequential's (`<first layer>_input`), so inputs fed by name still match.
      const loaded = await result.load();
      expect(loaded.inputNames).toEqual(['conv1a_input']);
      const x = tf.randomUniform([2, 4, 8, 8, 3], -1, 1, 'float32', 5);
      const [a, b] = [model.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor];
      expect(tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0])).toBeLessThan(1e-5);
      tf.dispose([x, a, b]);
      disposeModel(loaded);
      expect(tf.getBackend()).toBe('cpu');
    } finally {
      disposeModel(model);
    }
    expect(tf.memory().numTensors).toBe(tensors);
  }, 300000);

  test('the committed files: a Sequential on disk comes back functional, and the input files are untouched', async () => {
    const artifacts = await readModelFiles(committedModel('c3d-sequential'));
    expect(topologyOf(artifacts).class_name).toBe('Sequential');
    const result = await optimize(committedModel('c3d-sequential'), { backend: 'cpu', policy: 'always', batch: 1 });
    expect(result.report.verification?.passed).toBe(true);
    expect(topologyOf(result.artifacts).class_name).toBe('Model');
    expect(topologyOf(await readModelFiles(committedModel('c3d-sequential'))).class_name).toBe('Sequential');
  }, 120000);
});

describe('nested Sequentials', () => {
  const sliding = (name: string, extra: object = {}) => tf.layers.conv3d({ name, filters: 3, kernelSize: 3, padding: 'same', activation: 'relu', ...extra });

  async function run(model: tf.LayersModel) {
    fillDeterministic(model, 4);
    try {
      return await optimize(model, { backend: 'cpu', policy: 'always', batch: 2, atol: 1e-5, rtol: 1e-4 });
    } finally {
      disposeModel(model);
    }
  }

  test('a Sequential inside a functional model becomes a nested functional model; the outer graph keeps its references', async () => {
    const inner = tf.sequential({ name: 'encoder', layers: [sliding('enc_conv', { inputShape: [4, 6, 6, 2] }), tf.layers.maxPooling3d({ name: 'enc_pool', poolSize: 2 })] });
    const x = tf.input({ shape: [4, 6, 6, 2], name: 'clip' });
    const y = tf.layers.flatten({ name: 'flat' }).apply(inner.apply(x)) as tf.SymbolicTensor;
    const result = await run(tf.model({ inputs: x, outputs: y, name: 'outer' }));
    expect(result.report.rewritten.map((w) => [w.graph, w.layer, w.pass])).toEqual([['outer/encoder', 'enc_conv', 'conv3d-to-conv2d-slices']]);
    expect(result.report.verification?.passed).toBe(true);
    expect(result.report.notes.some((n) => n.startsWith('encoder: the Sequential is written as a functional model (class Model, input enc_conv_input)'))).toBe(true);
    const topology = topologyOf(result.artifacts);
    expect(topology.class_name).toBe('Model');
    const encoder = topology.config.layers!.find((l) => nameOf(l) === 'encoder')!;
    expect(encoder.class_name).toBe('Model');
    expect(encoder.config.layers!.map(nameOf)).toEqual(expect.arrayContaining(['enc_conv_input', 'enc_conv', 'enc_pool']));
    // The outer graph still reads the nested model's first call (node 1, as tfjs counts a model's nodes).
    expect(topology.config.layers!.find((l) => nameOf(l) === 'flat')!.inbound_nodes).toEqual([[['encoder', 1, 0, {}]]]);
  }, 120000);

  test('a Sequential inside a Sequential: the inner one becomes functional, the outer stays Sequential', async () => {
    const inner = tf.sequential({ name: 'block', layers: [sliding('block_conv', { inputShape: [3, 5, 5, 2] })] });
    const result = await run(tf.sequential({ name: 'net', layers: [inner, tf.layers.flatten({ name: 'flat' }), tf.layers.dense({ name: 'head', units: 2 })] }));
    expect(result.report.rewritten.map((w) => [w.graph, w.layer])).toEqual([['net/block', 'block_conv']]);
    expect(result.report.verification?.passed).toBe(true);
    const topology = topologyOf(result.artifacts);
    expect(topology.class_name).toBe('Sequential');
    expect(topology.config.layers!.map((l) => [nameOf(l), l.class_name])).toEqual([['block', 'Model'], ['flat', 'Flatten'], ['head', 'Dense']]);
  }, 120000);

  test('a rewrite that stays a chain keeps the Sequential (kernel depth 1: no Add)', async () => {
    const result = await run(tf.sequential({ name: 'flat_net', layers: [sliding('thin', { inputShape: [3, 5, 5, 2], kernelSize: [1, 3, 3] })] }));
    expect(result.report.rewritten.filter((w) => w.pass === 'conv3d-to-conv2d-slices').map((w) => w.layer)).toEqual(['thin']);
    expect(entries([topologyOf(result.artifacts)]).some((l) => l.class_name === 'Add')).toBe(false);
    expect(topologyOf(result.artifacts).class_name).toBe('Sequential');
    expect(result.report.notes.some((n) => /Sequential is written as a functional model/.test(n))).toBe(false);
    expect(result.report.verification?.passed).toBe(true);
  }, 120000);

  test('a Conv3DTranspose whose overlap-add needs an Add, in a Sequential (conv3d-transpose-by-depth)', async () => {
    const model = tf.sequential({ name: 'decoder', layers: [tf.layers.conv3dTranspose({ name: 'up', inputShape: [2, 3, 3, 4], filters: 2, kernelSize: 3, strides: 2, padding: 'same' })] });
    const result = await run(model);
    expect(result.report.rewritten.map((w) => [w.layer, w.pass])).toEqual([['up', 'conv3d-transpose-by-depth']]);
    expect(topologyOf(result.artifacts).class_name).toBe('Model');
    expect(result.report.verification?.passed).toBe(true);
  }, 120000);
});
