/**
 * Dynamic input shapes: a model with nothing to rewrite goes through unchanged (no inputs to
 * generate); otherwise generated inputs take their sizes from --input-shape, else the declared
 * shape, and a run is refused only when neither gives one, with a line naming the input and flag.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { buildDynamicGraph } from '../fixtures/graph-models';
import { InputError, optimize } from '../src';
import { UNCHANGED } from '../src/pipeline';
import { optimizeGraphModel } from '../src/pipeline';
import { writeModelFiles } from '../src/io/files';
import { runCli, withoutProgress } from './helpers/cli';
import { disposeModel, expectNoLeaks, tempDir } from './helpers/tf';

beforeAll(() => tf.setBackend('cpu'));

const shards = (modelJson: string) => {
  const json = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
  return Buffer.concat(json.weightsManifest[0].paths.map((p: string) => fs.readFileSync(path.join(path.dirname(modelJson), p))));
};

describe.each([
  ['image', 'image_tensor [-1,-1,-1,3] under a Conv2D patchify'],
  ['unknown-rank', 'an input of unknown rank'],
  ['dynamic-depth', 'a Conv3D whose depth is dynamic'],
] as const)('graph model with %s (%s)', (kind) => {
  test('optimize with default settings exits 0 and writes the model through unchanged', () => {
    const dir = tempDir();
    const input = writeModelFiles(buildDynamicGraph(kind), path.join(dir, 'in'));
    const run = runCli(['optimize', input, '--out', path.join(dir, 'out'), '--backend', 'cpu', '--json']);
    expect(run.stderr).not.toMatch(/error/);
    expect(run.status).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.rewritten).toEqual([]);
    expect(report.verification).toBeNull();
    expect(report.notes).toContain(UNCHANGED);
    // Each Conv3D rule says why it stays (the sliding rule's guard speaks of input sizes).
    if (kind === 'dynamic-depth') {
      expect(report.skipped.map((s: { pass: string; reason: string }) => [s.pass, s.reason])).toEqual([
        ['conv3d-to-dense', expect.stringContaining('is not static beyond the batch')],
        ['conv3d-to-conv2d-slices', expect.stringContaining('are not static beyond the batch')],
      ]);
    }
    const out = path.join(dir, 'out', 'model.json');
    expect(shards(out).equals(shards(input))).toBe(true);
    expect(JSON.parse(fs.readFileSync(out, 'utf8')).modelTopology).toEqual(JSON.parse(fs.readFileSync(input, 'utf8')).modelTopology);
  });
});

describe('a rewritten conv beside a dynamic input', () => {
  // policy 'always': the conv must be rewritten (so verified) whatever timing would say.
  const model = () => buildDynamicGraph('mixed');

  test('without a size for it, the run is refused naming the input and the flag', async () => {
    await expect(expectNoLeaks(() => optimizeGraphModel(model(), { backend: 'cpu', policy: 'always' }))).rejects.toThrow(new InputError(
      'input "extra" [-1, -1, 4] has an unknown size at axis 1; give its shape with --input-shape extra=2x?x4 (each ? a size)'));
    const dir = tempDir();
    const input = writeModelFiles(model(), path.join(dir, 'in'));
    const run = runCli(['optimize', input, '--out', path.join(dir, 'out'), '--backend', 'cpu', '--policy', 'always']);
    expect(run.status).toBe(2);
    expect(run.stderr.trim().split('\n')).toEqual(['tfjs-rewrite: input "extra" [-1, -1, 4] has an unknown size at axis 1; give its shape with --input-shape extra=2x?x4 (each ? a size)']);
    expect(fs.existsSync(path.join(dir, 'out'))).toBe(false);
  });

  test('--input-shape gives it; the rows follow its leading size', async () => {
    const result = await expectNoLeaks(() => optimizeGraphModel(model(), { backend: 'cpu', policy: 'always', inputShapes: { extra: [3, 5, 4] } }));
    expect(result.report.rewritten.map((r) => r.layer)).toEqual(['StatefulPartitionedCall/model/tubelet/Conv3D']);
    expect(result.report.verification!.passed).toBe(true);
    expect(result.report.verification!.rows).toBe(3);
    expect(result.report.verification!.inputs).toContain('extra=3x5x4');

    const dir = tempDir();
    const input = writeModelFiles(model(), path.join(dir, 'in'));
    const run = runCli(['optimize', input, '--out', path.join(dir, 'out'), '--backend', 'cpu', '--policy', 'always', '--input-shape', 'extra:0=2x7x4', '--json']);
    expect(withoutProgress(run.stderr)).toBe('');
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout).verification.passed).toBe(true);
  });

  test.each([
    [{ extra: [2, 5, 4], nope: [2, 1] }, '--input-shape names "nope", which is not a model input (inputs: clip, extra)'],
    [{ extra: [2, 5] }, '--input-shape extra=2x5: rank 2, but the model input has rank 3 [-1, -1, 4]'],
    [{ extra: [2, 5, 3] }, '--input-shape extra=2x5x3: size 3 at axis 2, but the model input declares [-1, -1, 4]'],
    [{ extra: [2, 5, 4], clip: [3, 2, 8, 8, 3] }, '--input-shape leading sizes disagree (2 vs 3): they are all the number of generated rows'],
  ])('%j is refused: %s', async (inputShapes, message) => {
    await expect(expectNoLeaks(() => optimizeGraphModel(model(), { backend: 'cpu', policy: 'always', inputShapes }))).rejects.toThrow(new InputError(message));
  });

  test('--rows that disagree with --input-shape, and malformed flags, are usage errors', () => {
    const dir = tempDir();
    const input = writeModelFiles(model(), path.join(dir, 'in'));
    const cases: [string[], string][] = [
      [['--input-shape', 'extra=2x5x4', '--rows', '3'], '--input-shape extra=2x5x4: 2 rows, but 3 rows are generated (--rows 3); give the same leading size everywhere'],
      [['--input-shape', 'extra=2x0x4'], '--input-shape needs name=<size>x<size>..., batch first (e.g. image=1x224x224x3), got "extra=2x0x4"'],
      [['--input-shape', 'extra'], '--input-shape needs name=<size>x<size>..., batch first (e.g. image=1x224x224x3), got "extra"'],
      [['--input-shape', 'extra=2x5x4', '--input-shape=extra=2x6x4'], '--input-shape extra is given twice'],
      [['--input-shape'], '--input-shape needs name=<size>x<size>..., batch first (e.g. image=1x224x224x3), got nothing'],
    ];
    for (const [flags, message] of cases) {
      const run = runCli(['optimize', input, '--out', path.join(dir, 'out'), '--backend', 'cpu', '--policy', 'always', ...flags]);
      expect([run.status, run.stderr.trim()]).toEqual([2, `tfjs-rewrite: ${message}`]);
    }
  });
});

describe('layers model with a dynamic input beside a rewritten conv', () => {
  async function artifacts(): Promise<io.ModelArtifacts> {
    const clip = tf.input({ shape: [2, 8, 8, 3], name: 'clip' });
    const extra = tf.input({ shape: [null, 4], name: 'extra' });
    const conv = tf.layers.conv3d({ name: 'tubelet', filters: 8, kernelSize: [2, 4, 4], strides: [2, 4, 4] }).apply(clip) as tf.SymbolicTensor;
    const flat = tf.layers.flatten({ name: 'flat' }).apply(conv) as tf.SymbolicTensor;
    const pooled = tf.layers.globalAveragePooling1d({ name: 'pool' }).apply(extra) as tf.SymbolicTensor;
    const out = tf.layers.concatenate({ name: 'cat' }).apply([flat, pooled]) as tf.SymbolicTensor;
    const model = tf.model({ inputs: [clip, extra], outputs: out, name: 'mixed' });
    let saved: io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (a) => {
      saved = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    disposeModel(model);
    return saved!;
  }

  test('refused without a size, verified with inputShapes', async () => {
    const source = await artifacts();
    await expect(optimize(source, { backend: 'cpu', passes: ['conv3d-to-dense'] })).rejects.toThrow(new InputError(
      'input "extra" [-1, -1, 4] has an unknown size at axis 1; give its shape with --input-shape extra=2x?x4 (each ? a size)'));
    const result = await expectNoLeaks(() => optimize(source, { backend: 'cpu', passes: ['conv3d-to-dense'], inputShapes: { extra: [2, 6, 4] } }));
    expect(result.report.rewritten.map((r) => r.layer)).toEqual(['tubelet']);
    expect(result.report.verification!.passed).toBe(true);
  });
});
