import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { optimize, verify } from '../src';
import { InputError } from '../src/errors';
import { readNpy, writeNpy } from '../src/io/npy';
import { compareOutputs } from '../src/verify/compare';
import { REPO, committedModel, expectNoLeaks, tempDir } from './helpers/tf';

const MINI = committedModel('qwen3vl-patch-embed-mini');
const PATCHES = path.join(REPO, 'fixtures', 'inputs', 'jetty-patches-p4.npy');
// The rewrite itself is under test, not the speed policy (its decisions depend on timings).
const TIGHT = { atol: 1e-5, rtol: 1e-4, policy: 'always' as const };
const dir = tempDir('verify-');

/** A copy of `artifacts` whose weight ending in `suffix` is passed through `edit`. */
function editWeight(artifacts: io.ModelArtifacts, suffix: string, edit: (values: Float32Array, shape: number[]) => void): io.ModelArtifacts {
  const bytes = new Uint8Array((artifacts.weightData as ArrayBuffer).slice(0));
  let offset = 0;
  let found = false;
  for (const spec of artifacts.weightSpecs!) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    if (spec.name.endsWith(suffix)) {
      edit(new Float32Array(bytes.buffer, offset, size), spec.shape);
      found = true;
    }
    offset += size * 4;
  }
  if (!found) throw new Error(`no weight ending in ${suffix}`);
  return { ...artifacts, weightData: bytes.buffer };
}

/** Zeroes the low `bits` of every float32 mantissa: a rewrite wrong only in the last bits. */
const dropBits = (bits: number) => (values: Float32Array) => {
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < words.length; i++) words[i] = (words[i] >>> bits) << bits;
};

let rewritten: Awaited<ReturnType<typeof optimize>>;
beforeAll(async () => {
  rewritten = await optimize(MINI, { verify: false, policy: 'always' });
});

describe('verification on user inputs', () => {
  test('the rewrite passes on real image patches, with per-layer float64 errors', async () => {
    const report = await expectNoLeaks(() => verify(MINI, rewritten.artifacts, { backend: 'wasm', inputs: [PATCHES], ...TIGHT }));
    expect(report).toMatchObject({ passed: true, backend: 'wasm', rows: 256, inputs: PATCHES });
    const [output] = report.outputs;
    expect(output.shape).toEqual([256, 32]);
    expect(output.outsideTolerance).toBe(0);
    expect(output.maxAbsDiff).toBeLessThan(TIGHT.atol);
    expect(output.cosine).toBeGreaterThan(1 - 1e-9);
    const [layer] = report.layers!;
    expect(layer.layer).toBe('patch_embed');
    expect(layer.elements).toBe(256 * 32);
    // Both float32 layers sit within float32 rounding of the float64 truth (K = 96, |y| <= ~2).
    for (const side of [layer.original, layer.rewritten]) {
      expect(side.maxAbsError).toBeGreaterThan(0);
      expect(side.maxAbsError).toBeLessThan(2e-6);
      expect(side.meanAbsError).toBeLessThan(2e-7);
    }
    expect(layer.ratio).toBeLessThan(layer.limit);
  });

  test('batching gives the same metrics as one pass', async () => {
    const one = await verify(MINI, rewritten.artifacts, { backend: 'cpu', inputs: [PATCHES], batchSize: 256 });
    const batched = await expectNoLeaks(() => verify(MINI, rewritten.artifacts, { backend: 'cpu', inputs: [PATCHES], batchSize: 37 }));
    expect(batched.batchSize).toBe(37);
    expect(batched.outputs).toEqual(one.outputs);
    expect(batched.layers).toEqual(one.layers);
  });

  test('batched metrics equal a direct comparison of the whole outputs', async () => {
    const report = await verify(MINI, rewritten.artifacts, { backend: 'cpu', inputs: [PATCHES], batchSize: 50 });
    const x = readNpy(PATCHES);
    const unchanged = (await optimize(MINI, { verify: false, passes: [] })).artifacts;
    await tf.setBackend('cpu');
    const [a, b] = [await tf.loadLayersModel(tf.io.fromMemory(unchanged)), await rewritten.load()];
    const [ya, yb] = [a.predict(tf.tensor(x.data, x.shape)) as tf.Tensor, b.predict(tf.tensor(x.data, x.shape)) as tf.Tensor];
    const direct = compareOutputs(report.outputs[0].name, ya.shape, ya.dataSync(), yb.dataSync(), { atol: report.atol, rtol: report.rtol });
    tf.dispose([ya, yb]);
    a.dispose();
    b.dispose();
    expect(report.outputs[0]).toEqual(direct);
  });

  test('arrays and tensors work like the file, and the caller keeps its tensor', async () => {
    const fromFile = await verify(MINI, rewritten.artifacts, { backend: 'cpu', inputs: [PATCHES], batchSize: 100 });
    const array = readNpy(PATCHES);
    const fromArray = await verify(MINI, rewritten.artifacts, { backend: 'cpu', inputs: [array], batchSize: 100 });
    const tensor = tf.tensor(array.data, array.shape);
    const fromTensor = await expectNoLeaks(() => verify(MINI, rewritten.artifacts, { backend: 'cpu', inputs: [tensor], batchSize: 100 }));
    expect(tensor.isDisposed).toBe(false);
    tensor.dispose();
    expect(fromArray.outputs).toEqual(fromFile.outputs);
    expect(fromTensor.outputs).toEqual(fromFile.outputs);
    expect(fromTensor.layers).toEqual(fromFile.layers);
  });

  test('inputs that do not fit the model are InputErrors naming the file and the input', async () => {
    const wide = path.join(dir, 'wide.npy');
    writeNpy(wide, { dtype: 'float32', shape: [4, 97], data: new Float32Array(4 * 97) });
    const ints = path.join(dir, 'ints.npy');
    writeNpy(ints, { dtype: 'int32', shape: [4, 96], data: new Int32Array(4 * 96) });
    const run = (inputs: string[]) => verify(MINI, rewritten.artifacts, { backend: 'cpu', inputs });
    await expect(run([wide])).rejects.toThrow(InputError);
    await expect(run([wide])).rejects.toThrow(/wide\.npy has shape \[4, 97\], which does not fit model input 0 "pixel_values" \[N, 96\]/);
    await expect(run([ints])).rejects.toThrow(/ints\.npy is int32 but model input 0 "pixel_values" \[N, 96\] float32 needs float32/);
    await expect(run([PATCHES, PATCHES])).rejects.toThrow(/got 2 inputs but the model has 1 \(pixel_values\)/);
  });

  test('two-input models take one file per input and refuse unequal row counts', async () => {
    const model = committedModel('shared-two-input');
    const result = await optimize(model, { verify: false, policy: 'always' });
    const clip = (rows: number, seed: number) => {
      const file = path.join(dir, `clip-${rows}-${seed}.npy`);
      const t = tf.randomUniform([rows, 4, 8, 8, 3], -1, 1, 'float32', seed);
      writeNpy(file, { dtype: 'float32', shape: t.shape, data: t.dataSync() as Float32Array });
      t.dispose();
      return file;
    };
    const report = await expectNoLeaks(() => verify(model, result.artifacts, { backend: 'wasm', inputs: [clip(5, 1), clip(5, 2)], batchSize: 2 }));
    expect(report.passed).toBe(true);
    expect(report.outputs.map((o) => o.shape)).toEqual([[5, 2, 2, 2, 12], [5, 2, 2, 2, 12]]);
    // One shared conv, two calls: both are checked against float64.
    expect(report.layers!.map((l) => [l.layer, l.elements])).toEqual([['shared_embed', 2 * 5 * 2 * 2 * 2 * 12]]);
    await expect(verify(model, result.artifacts, { backend: 'cpu', inputs: [clip(5, 1), clip(3, 2)] }))
      .rejects.toThrow(/inputs disagree on the number of rows: .*clip-5-1\.npy has 5, .*clip-3-2\.npy has 3/);
  });
});

describe('float64 reference per rewritten layer', () => {
  test('a rewrite wrong only in the last bits passes end to end but fails the layer check', async () => {
    // Zeroing 8 of the Dense kernel's 24 mantissa bits: every output still within atol + rtol*|a|.
    const lossy = editWeight(rewritten.artifacts, 'patch_embed_dense/kernel', dropBits(8));
    const report = await expectNoLeaks(() => verify(MINI, lossy, { backend: 'wasm', inputs: [PATCHES], ...TIGHT }));
    expect(report.outputs[0].passed).toBe(true);
    const [layer] = report.layers!;
    expect(layer.passed).toBe(false);
    expect(layer.ratio).toBeGreaterThan(10 * layer.limit);
    expect(report.passed).toBe(false);
  });

  test('a rewrite wrong outright fails end to end', async () => {
    // Swap two kernel rows: one input pixel feeds the wrong weights.
    const swapped = editWeight(rewritten.artifacts, 'patch_embed_dense/kernel', (values, [, filters]) => {
      const row0 = values.slice(0, filters);
      values.copyWithin(0, filters, 2 * filters);
      values.set(row0, filters);
    });
    const report = await verify(MINI, swapped, { backend: 'wasm', inputs: [PATCHES], ...TIGHT });
    expect(report.passed).toBe(false);
    expect(report.outputs[0].outsideTolerance).toBeGreaterThan(256 * 32 * 0.5);
    expect(report.outputs[0].maxAbsDiff).toBeGreaterThan(1e-2);
    expect(report.layers![0].passed).toBe(false);
  });

  test('optimize passes its rewrite records to the per-layer check', async () => {
    const result = await optimize(MINI, { backend: 'cpu', inputs: [PATCHES], policy: 'always' });
    const v = result.report.verification!;
    expect(v.passed).toBe(true);
    expect(v.layers!.map((l) => l.layer)).toEqual(['patch_embed']);
    expect(v.layers![0].replacement).toContain('patch_embed_dense');
    // cpu's matMul accumulates in float64: the replacement is more accurate than the conv.
    expect(v.layers![0].ratio).toBeLessThan(1);
  });

  test('nested convs get a note instead of a silent gap', async () => {
    const model = committedModel('nested-sequential');
    const result = await optimize(model, { backend: 'cpu', policy: 'always' });
    expect(result.report.verification!.passed).toBe(true);
    expect(result.report.verification!.layers).toEqual([]);
    expect(result.report.verification!.notes).toEqual([expect.stringMatching(/per-layer reference not available for nested layer .*inner_patch/)]);
  });
});
