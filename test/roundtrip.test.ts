/**
 * With no pass applied, every model goes through the IR and back unchanged: same topology JSON,
 * same weight bytes; and what we write, stock tfjs loads to the same outputs.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { FIXTURES } from '../fixtures/models';
import { artifactsOfModel, readModelFiles, writeModelFiles } from '../src/io/files';
import { artifactsFromIR, irFromArtifacts } from '../src/io/ir';
import { optimize } from '../src';
import { COMMITTED, disposeModel, snapshotDir, tempDir } from './helpers/tf';

const committed = fs.readdirSync(COMMITTED).sort();

function weightBytes(artifacts: tf.io.ModelArtifacts): Buffer {
  const data = artifacts.weightData!;
  return Buffer.from(Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : data);
}

test('every small fixture is committed', () => {
  expect(committed).toEqual(FIXTURES.filter((spec) => spec.small).map((spec) => spec.name).sort());
});

describe.each(committed)('%s', (name) => {
  const file = path.join(COMMITTED, name, 'model.json');

  test('topology and weights survive the IR unchanged', async () => {
    const before = tf.memory().numTensors;
    const original = await readModelFiles(file);
    const again = await artifactsFromIR(irFromArtifacts(original));
    expect(again.modelTopology).toEqual(original.modelTopology);
    expect(again.weightSpecs).toEqual(original.weightSpecs);
    expect(weightBytes(again).equals(weightBytes(original))).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('written files load in stock tfjs and predict the same', async () => {
    const dir = tempDir();
    const snapshot = snapshotDir(path.dirname(file));
    const original = await readModelFiles(file);
    const written = writeModelFiles(await artifactsFromIR(irFromArtifacts(original)), path.join(dir, name));
    expect(snapshotDir(path.dirname(file))).toEqual(snapshot);
    const [a, b] = await Promise.all([original, await readModelFiles(written)].map((art) => tf.loadLayersModel(tf.io.fromMemory(art))));
    const inputs = a.inputs.map((input, i) => tf.randomUniform([2, ...input.shape.slice(1)] as number[], -1, 1, 'float32', i));
    const outA = ([] as tf.Tensor[]).concat(a.predict(inputs) as tf.Tensor);
    const outB = ([] as tf.Tensor[]).concat(b.predict(inputs) as tf.Tensor);
    outA.forEach((t, i) => expect(Array.from(t.dataSync())).toEqual(Array.from(outB[i].dataSync())));
    tf.dispose([...inputs, ...outA, ...outB]);
    disposeModel(a);
    disposeModel(b);
  });
});

test('an in-memory model round-trips through the IR', async () => {
  for (const spec of FIXTURES.filter((s) => s.small)) {
    const model = spec.build();
    const artifacts = await artifactsOfModel(model);
    disposeModel(model);
    const again = await artifactsFromIR(irFromArtifacts(artifacts));
    expect(again.modelTopology).toEqual(artifacts.modelTopology);
    expect(weightBytes(again).equals(weightBytes(artifacts))).toBe(true);
  }
});

test('large weights are split into 4 MiB shards that load back', async () => {
  const dir = tempDir();
  const values = new Float32Array(1_500_000).map((_, i) => Math.sin(i));
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1500, inputShape: [1000], name: 'wide' })] });
  model.getLayer('wide').setWeights([tf.tensor2d(values, [1000, 1500]), tf.zeros([1500])]);
  const written = writeModelFiles(await artifactsOfModel(model), path.join(dir, 'wide'));
  disposeModel(model);
  const json = JSON.parse(fs.readFileSync(written, 'utf8'));
  expect(json.weightsManifest[0].paths).toEqual(['group1-shard1of2.bin', 'group1-shard2of2.bin']);
  const loaded = await tf.loadLayersModel(tf.io.fromMemory(await readModelFiles(written)));
  expect(Array.from((loaded.getLayer('wide').getWeights()[0].dataSync() as Float32Array).subarray(0, 5))).toEqual(Array.from(values.subarray(0, 5)));
  disposeModel(loaded);
});

describe('weights are the bytes tfjs itself decodes and encodes', () => {
  test.each(committed)('%s', async (name) => {
    const artifacts = await readModelFiles(path.join(COMMITTED, name, 'model.json'));
    // Read per weight (one buffer each) and viewed in place: no concatenation.
    expect(Array.isArray(artifacts.weightData)).toBe(true);
    const ir = irFromArtifacts(artifacts);
    const reference = tf.io.decodeWeights(artifacts.weightData!, artifacts.weightSpecs!);
    for (const weight of ir.weights) {
      expect(weight.shape).toEqual(reference[weight.name].shape);
      expect(Array.from(weight.values)).toEqual(Array.from(reference[weight.name].dataSync()));
    }
    const tensors = ir.weights.map((w) => ({ name: w.name, tensor: tf.tensor(w.values, w.shape, w.dtype) }));
    const encoded = await tf.io.encodeWeights(tensors);
    const packed = await artifactsFromIR(ir);
    expect(packed.weightSpecs).toEqual(encoded.specs);
    expect(Buffer.from(packed.weightData as ArrayBuffer).equals(Buffer.from(encoded.data))).toBe(true);
    tf.dispose([...Object.values(reference), ...tensors.map((t) => t.tensor)]);
  });

  test('a weight straddling two buffers, or misaligned after a bool, is copied whole', () => {
    const specs = [
      { name: 'a/flag', shape: [3], dtype: 'bool' as const },
      { name: 'a/kernel', shape: [2, 2], dtype: 'float32' as const },
    ];
    const bytes = new Uint8Array(3 + 16);
    bytes.set([1, 0, 1]);
    new DataView(bytes.buffer).setFloat32(3, 1.5, true);
    new DataView(bytes.buffer).setFloat32(15, -2, true);
    const split = [bytes.buffer.slice(0, 9), bytes.buffer.slice(9)];
    const topology = { class_name: 'Sequential', config: { name: 's', layers: [{ class_name: 'Dense', config: { name: 'a', units: 2, batch_input_shape: [null, 2] } }] } };
    const ir = irFromArtifacts({ modelTopology: topology, weightSpecs: specs, weightData: split });
    expect(Array.from(ir.weights[0].values)).toEqual([1, 0, 1]);
    expect(Array.from(ir.weights[1].values)).toEqual([1.5, 0, 0, -2]);
  });
});

test('optimizing files without verification (kernels reordered in place) writes the same bytes', async () => {
  const dir = tempDir();
  for (const name of ['video-tubelet', 'channels-first-gelu', 'shared-two-input']) {
    const file = path.join(COMMITTED, name, 'model.json');
    const snapshot = snapshotDir(path.dirname(file));
    const [fast, checked] = [await optimize(file, { verify: false, backend: 'cpu', policy: 'always' }), await optimize(file, { backend: 'cpu', policy: 'always' })];
    const outs = [fast.save(path.join(dir, `${name}-fast`)), checked.save(path.join(dir, `${name}-checked`))];
    const shards = outs.map((out) => fs.readFileSync(path.join(path.dirname(out), 'group1-shard1of1.bin')));
    expect(shards[0].equals(shards[1])).toBe(true);
    expect(checked.report.verification!.passed).toBe(true);
    expect(snapshotDir(path.dirname(file))).toEqual(snapshot);
  }
});
