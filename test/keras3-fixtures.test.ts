/**
 * Keras 3-form exports (fixtures/keras3.ts, written to the letter of keras 3.10 / tfjs-converter
 * 4.22 sources) of models built directly in tfjs: stock tfjs refuses each; tfjs-rewrite converts
 * it, rewrites the eligible Conv3Ds, verifies, and the output loads in stock tfjs and computes what
 * the tfjs-built model computes. Library and CLI.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { optimize, verify } from '../src';
import { writeModelFiles, readModelFiles } from '../src/io/files';
import { KERAS3_CASES, Keras3Case, keras3Artifacts, kerasFileArtifacts } from '../fixtures/keras3';
import { mulberry32 } from '../fixtures/models';
import { runCli } from './helpers/cli';
import { disposeModel, tempDir } from './helpers/tf';

// The conversion and the rewrite are under test, not the speed policy (its decisions depend on timings).
const TIGHT = { atol: 1e-5, rtol: 1e-4, policy: 'always' as const };
const isConv3dRewrite = (record: { pass: string }) => record.pass === 'conv3d-to-dense' || record.pass === 'conv3d-to-conv2d-slices';

/** Seeded inputs for every model input (uniform in [-1, 1)), batch 3. */
function seededInputs(model: tf.LayersModel, seed: number): tf.Tensor[] {
  const rand = mulberry32(seed);
  return model.inputs.map((input) => {
    const shape = [3, ...input.shape.slice(1).map((d) => d as number)];
    const size = shape.reduce((a, b) => a * b, 1);
    return tf.tensor(Float32Array.from({ length: size }, () => rand() * 2 - 1), shape);
  });
}

/** max |a - b| over all outputs, and the largest |a| (the scale the tolerance is relative to). */
function compare(a: tf.Tensor | tf.Tensor[], b: tf.Tensor | tf.Tensor[]): { maxDiff: number; scale: number } {
  const as = Array.isArray(a) ? a : [a];
  const bs = Array.isArray(b) ? b : [b];
  expect(bs.map((t) => t.shape)).toEqual(as.map((t) => t.shape));
  let maxDiff = 0;
  let scale = 1;
  as.forEach((t, i) => {
    const x = t.dataSync();
    const y = bs[i].dataSync();
    for (let j = 0; j < x.length; j++) {
      maxDiff = Math.max(maxDiff, Math.abs(x[j] - y[j]));
      scale = Math.max(scale, Math.abs(x[j]));
    }
  });
  return { maxDiff, scale };
}

/**
 * Loads the optimized model and runs both on the cpu backend, where the reference was built
 * (optimize selects its verification backend; weights on another backend would be moved, which
 * tfjs's IS_TEST kernel check reports as a leak), then restores the previous backend.
 */
async function expectSameOutputs(reference: tf.LayersModel, load: () => Promise<tf.LayersModel>, seed: number): Promise<void> {
  const previous = tf.getBackend();
  await tf.setBackend('cpu');
  const loaded = await load();
  try {
    const inputs = seededInputs(reference, seed);
    const want = reference.predict(inputs) as tf.Tensor | tf.Tensor[];
    const got = loaded.predict(inputs) as tf.Tensor | tf.Tensor[];
    const { maxDiff, scale } = compare(want, got);
    tf.dispose([inputs, want, got]);
    expect(maxDiff).toBeLessThanOrEqual(1e-5 * scale);
  } finally {
    disposeModel(loaded);
    await tf.setBackend(previous);
  }
}

function expectRewrites(caseSpec: Keras3Case, report: Awaited<ReturnType<typeof optimize>>['report']): void {
  expect(report.rewritten.filter(isConv3dRewrite).map((r) => r.layer).sort()).toEqual([...caseSpec.expectRewritten].sort());
  for (const { layer, reasonIncludes } of caseSpec.expectSkipped) {
    const skip = report.skipped.find((s) => s.layer === layer);
    expect(skip?.reason.toLowerCase()).toContain(reasonIncludes);
  }
}

describe.each(KERAS3_CASES.map((spec, i) => [spec.name, spec, i] as const))('Keras 3 %s', (_, spec, index) => {
  let reference: tf.LayersModel;
  let artifacts: tf.io.ModelArtifacts;
  beforeAll(async () => {
    // optimize leaves its verification backend selected; build the reference where it will run.
    await tf.setBackend('cpu');
    reference = spec.build();
    artifacts = keras3Artifacts(reference);
  });
  afterAll(() => disposeModel(reference));

  test('stock tfjs 4.22 cannot load the Keras 3 form (the fixture really is Keras 3)', async () => {
    await expect(tf.loadLayersModel(tf.io.fromMemory(artifacts))).rejects.toThrow(/InputLayer should be passed either a `batchInputShape` or an `inputShape`/);
  });

  test('library: converts, rewrites the eligible Conv3Ds, verifies; stock tfjs loads the output and matches the tfjs-built model', async () => {
    const before = JSON.stringify(artifacts.modelTopology) + JSON.stringify(artifacts.weightSpecs);
    const tensors = tf.memory().numTensors;
    const result = await optimize(artifacts, TIGHT);
    expect(result.report.converted?.from).toBe('keras3');
    expect(result.report.converted?.kerasVersion).toBe('3.10.0');
    expect(result.report.notes[0]).toMatch(/^topology converted from Keras 3 \(keras 3\.10\.0\)/);
    expectRewrites(spec, result.report);
    expect(result.report.verification?.passed).toBe(true);
    // The output is the Keras 2 form: no Keras 3 spelling left.
    const written = JSON.stringify(result.artifacts.modelTopology);
    for (const marker of ['batch_shape"', 'DTypePolicy', '__keras_tensor__', '"module"', '"registered_name"']) expect(written).not.toContain(marker);
    await expectSameOutputs(reference, () => result.load(), 1400 + index);
    // verify() takes the Keras 3 file as the original too
    expect((await verify(artifacts, result.artifacts, TIGHT)).passed).toBe(true);
    expect(tf.memory().numTensors).toBe(tensors);
    // The caller's artifacts are untouched.
    expect(JSON.stringify(artifacts.modelTopology) + JSON.stringify(artifacts.weightSpecs)).toBe(before);
  });

  test('CLI: optimize exits 0, reports the conversion, writes a model stock tfjs loads and that matches', async () => {
    const dir = tempDir('keras3-');
    const input = writeModelFiles(artifacts, path.join(dir, 'in'));
    const inputBytes = fs.readFileSync(input, 'utf8');
    const out = path.join(dir, 'out');
    const run = runCli(['optimize', input, '--out', out, '--json', ...TIGHT_ARGS]);
    expect(run.stderr).not.toMatch(/error/i);
    expect(run.status).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.converted.from).toBe('keras3');
    expect(report.notes.join('\n')).toContain('topology converted from Keras 3');
    expectRewrites(spec, report);
    expect(report.verification.passed).toBe(true);
    expect(fs.readFileSync(input, 'utf8')).toBe(inputBytes);
    const written = await readModelFiles(path.join(out, 'model.json'));
    await expectSameOutputs(reference, () => tf.loadLayersModel(tf.io.fromMemory(written)), 1500 + index);
  });
});

const TIGHT_ARGS = ['--atol', '1e-5', '--rtol', '1e-4', '--policy', 'always'];

test('CLI inspect names the conversion; a Keras 3 option tfjs lacks is refused in one line, exit 2, nothing written', () => {
  const dir = tempDir('keras3-');
  const reference = KERAS3_CASES[2].build();
  const artifacts = keras3Artifacts(reference);
  disposeModel(reference);
  const input = writeModelFiles(artifacts, path.join(dir, 'in'));
  const inspect = runCli(['inspect', input]);
  expect(inspect.status).toBe(0);
  expect(inspect.stdout).toMatch(/note: topology converted from Keras 3 \(keras 3\.10\.0\)/);
  expect(inspect.stdout).toContain('patch_embed');

  const topology = artifacts.modelTopology as { model_config: { config: { layers: { name: string; config: Record<string, unknown> }[] } } };
  topology.model_config.config.layers.find((layer) => layer.name === 'patch_embed')!.config.groups = 3;
  const bad = writeModelFiles(artifacts, path.join(dir, 'bad'));
  const out = path.join(dir, 'out');
  const run = runCli(['optimize', bad, '--out', out]);
  expect(run.status).toBe(2);
  expect(run.stderr.trim().split('\n')).toHaveLength(1);
  expect(run.stderr).toMatch(/patch_embed \(Conv3D\): option groups=3 has no tfjs-layers equivalent/);
  expect(fs.existsSync(out)).toBe(false);
});

describe.each(KERAS3_CASES.map((spec, i) => [spec.name, spec, i] as const))('.keras-file route (--input_format keras_keras) %s', (_, spec, index) => {
  test('positional weight names are mapped, the optimizer entry dropped; output loads in stock tfjs and matches', async () => {
    await tf.setBackend('cpu');
    const reference = spec.build();
    try {
      const artifacts = kerasFileArtifacts(reference);
      // stock tfjs cannot load this form either
      await expect(tf.loadLayersModel(tf.io.fromMemory(artifacts))).rejects.toThrow();
      const result = await optimize(artifacts, TIGHT);
      expect(result.report.converted?.from).toBe('keras3');
      expect(result.report.converted?.changes.join('\n')).toContain('.keras-route entries that are not model weights dropped, e.g. optimizer/vars/1 (1)');
      expectRewrites(spec, result.report);
      expect(result.report.verification?.passed).toBe(true);
      expect(JSON.stringify(result.artifacts.weightSpecs)).not.toMatch(/vars\/|optimizer/);
      await expectSameOutputs(reference, () => result.load(), 1600 + index);
    } finally {
      disposeModel(reference);
    }
  });
});
