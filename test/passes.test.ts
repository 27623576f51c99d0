/**
 * Clean-up passes, the speed policy, and the public pass API (registry, --passes, the README
 * example run as written).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { optimize, inspect, passesByName, registerPass, InputError } from '../src';
import { UNCHANGED } from '../src/pipeline';
import { fixture } from '../fixtures/models';
import { runCli } from './helpers/cli';
import { REPO, committedModel, disposeModel } from './helpers/tf';

const TIGHT = { atol: 1e-5, rtol: 1e-4 };

async function optimizeModel(build: () => tf.LayersModel, options = {}) {
  const model = build();
  try {
    return await optimize(model, { ...TIGHT, ...options });
  } finally {
    disposeModel(model);
  }
}

function layerClasses(artifacts: tf.io.ModelArtifacts): string[] {
  const config = (artifacts.modelTopology as { config: { layers: { class_name: string }[] } | { class_name: string }[] }).config;
  return (Array.isArray(config) ? config : config.layers).map((layer) => layer.class_name);
}

test('the Qwen2-VL patch embed (flat PyTorch-order input) optimizes to Input -> Dense', async () => {
  const result = await optimizeModel(() => fixture('qwen2vl-patch-embed').build());
  expect(layerClasses(result.artifacts)).toEqual(['InputLayer', 'Dense']);
  expect(new Set(result.report.rewritten.map((r) => r.pass))).toEqual(
    new Set(['conv3d-to-dense', 'fold-views-into-dense', 'collapse-reshapes', 'drop-identity-views']));
  expect(result.report.verification).toMatchObject({ passed: true });
  expect(result.report.after.params).toBe(result.report.before.params);
});

test('a permutation feeding a Dense row by row is not folded (it would mix rows)', async () => {
  const result = await optimizeModel(() => {
    const input = tf.input({ shape: [32], name: 'x' });
    let y = tf.layers.reshape({ targetShape: [4, 8], name: 'rows' }).apply(input) as tf.SymbolicTensor;
    y = tf.layers.permute({ dims: [2, 1], name: 'swap' }).apply(y) as tf.SymbolicTensor;
    y = tf.layers.dense({ units: 3, name: 'head' }).apply(y) as tf.SymbolicTensor;
    return tf.model({ inputs: input, outputs: y });
  });
  expect(result.report.rewritten).toEqual([]);
  expect(layerClasses(result.artifacts)).toEqual(['InputLayer', 'Reshape', 'Permute', 'Dense']);
});

test('a view with two readers is kept, and a lone Flatten is not churned', async () => {
  const result = await optimizeModel(() => {
    const input = tf.input({ shape: [2, 3], name: 'x' });
    const swapped = tf.layers.permute({ dims: [2, 1], name: 'swap' }).apply(input) as tf.SymbolicTensor;
    const flat = tf.layers.flatten({ name: 'flat' }).apply(swapped) as tf.SymbolicTensor;
    const head = tf.layers.dense({ units: 4, name: 'head' }).apply(flat) as tf.SymbolicTensor;
    return tf.model({ inputs: input, outputs: [head, swapped] });
  });
  // The Permute also feeds a model output, so it cannot be folded into the Dense; folding the
  // Flatten alone would only trade it for a Reshape, so nothing changes.
  expect(layerClasses(result.artifacts)).toEqual(['InputLayer', 'Permute', 'Flatten', 'Dense']);
  expect(result.report.rewritten).toEqual([]);
  expect(result.report.notes).toContain(UNCHANGED);
});

test('reshape chains collapse and identity views vanish, in a Sequential too', async () => {
  const result = await optimizeModel(() => tf.sequential({
    layers: [
      tf.layers.reshape({ targetShape: [2, 3], inputShape: [6], name: 'a' }),
      tf.layers.permute({ dims: [2, 1], name: 'b' }),
      tf.layers.flatten({ name: 'c' }),
      tf.layers.dense({ units: 4, name: 'd' }),
      tf.layers.reshape({ targetShape: [2, 2], name: 'e' }),
      tf.layers.reshape({ targetShape: [4], name: 'f' }),
    ],
  }));
  expect(layerClasses(result.artifacts)).toEqual(['Dense']);
  const [dense] = (result.artifacts.modelTopology as { config: { layers: { config: Record<string, unknown> }[] } }).config.layers;
  expect(dense.config.batch_input_shape).toEqual([null, 6]);
  expect(result.report.verification!.passed).toBe(true);
});

describe('Conv2D/Conv1D and the speed policy', () => {
  test('the rule does not refuse a correct Conv2D for speed: the policy decides, and inspect says it would time it', async () => {
    const report = await inspect(committedModel('vit-patch-embed-mini'), { backend: 'wasm' });
    expect(report.rewritten).toEqual([]);
    expect(report.skipped).toEqual([]);
    expect(report.kept).toEqual([expect.objectContaining({ layer: 'patch_embed', pass: 'conv2d-to-dense', reason: expect.stringMatching(/^optimize would time it on wasm at batch 16/) })]);
    const always = await inspect(committedModel('vit-patch-embed-mini'), { backend: 'wasm', policy: 'always' });
    expect(always.rewritten.map((r) => r.layer)).toContain('patch_embed');
  });

  test('naming the pass forces it, and the result verifies', async () => {
    const result = await optimize(committedModel('vit-patch-embed-mini'), { ...TIGHT, passes: ['conv2d-to-dense'] });
    expect(result.report.rewritten.map((r) => r.layer)).toEqual(['patch_embed']);
    expect(layerClasses(result.artifacts)).not.toContain('Conv2D');
    expect(result.report.verification!.passed).toBe(true);
  });

  test('a Conv1D audio frontend frames with a reshape and no transpose', async () => {
    const result = await optimize(committedModel('audio-conv1d-frontend'), { ...TIGHT, passes: ['conv1d-to-dense'] });
    expect(layerClasses(result.artifacts)).toEqual(['InputLayer', 'Reshape', 'Dense']);
  });
});

describe('public pass API', () => {
  // The example lives in docs/writing-a-pass.md (the README links it).
  const readme = fs.readFileSync(path.join(REPO, 'docs', 'writing-a-pass.md'), 'utf8');
  const examplePath = path.join(__dirname, 'examples', 'drop-dropout.ts');

  test('docs/writing-a-pass.md shows the example file verbatim', () => {
    const block = readme.match(/<!-- example: test\/examples\/drop-dropout\.ts -->\s*```ts\n([\s\S]*?)```/);
    expect(block).not.toBeNull();
    expect(block![1]).toBe(fs.readFileSync(examplePath, 'utf8'));
  });

  test('the documented example registers and runs as a pass', async () => {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    require('./examples/drop-dropout');
    expect(passesByName(['drop-dropout'])[0].name).toBe('drop-dropout');
    const result = await optimizeModel(() => {
      const input = tf.input({ shape: [5], name: 'x' });
      const dropped = tf.layers.dropout({ rate: 0.5, name: 'drop' }).apply(input) as tf.SymbolicTensor;
      return tf.model({ inputs: input, outputs: tf.layers.dense({ units: 2, name: 'head' }).apply(dropped) as tf.SymbolicTensor });
    }, { passes: ['drop-dropout'] });
    expect(layerClasses(result.artifacts)).toEqual(['InputLayer', 'Dense']);
    expect(result.report.verification!.passed).toBe(true);
  });

  test('names are checked', () => {
    expect(() => passesByName(['no-such-pass'])).toThrow(InputError);
    expect(() => passesByName(['no-such-pass'])).toThrow(/available: conv3d-to-dense/);
    expect(() => registerPass({ ...passesByName(['collapse-reshapes'])[0] })).toThrow(/already registered/);
    expect(() => registerPass({ ...passesByName(['collapse-reshapes'])[0], name: 'Bad Name' })).toThrow(/kebab-case/);
  });

  test('--passes on the CLI', () => {
    const forced = runCli(['inspect', committedModel('vit-patch-embed-mini'), '--passes', 'conv2d-to-dense', '--json']);
    expect(forced.status).toBe(0);
    expect(JSON.parse(forced.stdout).rewritten.map((r: { layer: string }) => r.layer)).toEqual(['patch_embed']);
    const unknown = runCli(['inspect', committedModel('vit-patch-embed-mini'), '--passes', 'nope']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/unknown pass "nope"/);
  });
});

test('a channels_first Flatten transposes, so it is not folded as a reshape', async () => {
  const result = await optimizeModel(() => {
    const input = tf.input({ shape: [24], name: 'x' });
    const cube = tf.layers.reshape({ targetShape: [2, 3, 4], name: 'cube' }).apply(input) as tf.SymbolicTensor;
    const flat = tf.layers.flatten({ dataFormat: 'channelsFirst', name: 'flat_cf' }).apply(cube) as tf.SymbolicTensor;
    return tf.model({ inputs: input, outputs: tf.layers.dense({ units: 3, name: 'head' }).apply(flat) as tf.SymbolicTensor });
  });
  expect(layerClasses(result.artifacts)).toEqual(['InputLayer', 'Reshape', 'Flatten', 'Dense']);
  expect(result.report.rewritten).toEqual([]);
  expect(result.report.notes).toContain(UNCHANGED);
});
