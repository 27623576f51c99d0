/**
 * Correctness beats speed (src/verify/original-check.ts): tfjs-backend-wasm 4.22 computes
 * conv3dTranspose wrong for any stride > 1. A 3D U-Net decoder optimized for wasm must come back
 * computing the right thing (float64 decides), with the finding in the report; a model no rule
 * can fix is never written as a silent "unchanged".
 */
import * as tf from '@tensorflow/tfjs';
import { optimize } from '../src';
import { selectBackend } from '../src/backend/select';
import { convReference, convSpecOf } from '../src/verify/reference';
import { mulberry32 } from '../fixtures/models';
import { disposeModel, useBackendForFile } from './helpers/tf';

useBackendForFile('cpu');

/** A small decoder stage: stride-2 kernel-3 upsampler ('same'), then a kernel == strides one. */
function decoder(): tf.LayersModel {
  const input = tf.input({ shape: [2, 4, 4, 6], name: 'features' });
  const init = (seed: number) => tf.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed });
  const up1 = tf.layers.conv3dTranspose({ name: 'up1', filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: init(1), biasInitializer: init(2) });
  const up2 = tf.layers.conv3dTranspose({ name: 'up2', filters: 2, kernelSize: 2, strides: 2, kernelInitializer: init(3), biasInitializer: init(4) });
  return tf.model({ inputs: input, outputs: up2.apply(up1.apply(input)) as tf.SymbolicTensor, name: 'decoder' });
}

/** The decoder in float64: the two layers' references chained. */
function float64(model: tf.LayersModel, x: Float32Array, rows: number): Float64Array {
  let data: ArrayLike<number> = x;
  let shape = model.inputs[0].shape.slice(1) as number[];
  for (const name of ['up1', 'up2']) {
    const spec = convSpecOf(model.getLayer(name));
    if ('unavailable' in spec) throw new Error(spec.unavailable);
    const out = convReference(spec, data, shape, rows);
    [data, shape] = [out.data, out.rowShape];
  }
  return data as Float64Array;
}

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

test('a stride-2 Conv3DTranspose decoder optimized for wasm comes back right, with the findings in the report', async () => {
  const model = decoder();
  const tensors = tf.memory().numTensors;
  // Default policy: the findings, not the timer, decide.
  const result = await optimize(model, { backend: 'wasm' });
  const r = result.report;
  expect(r.findings?.map((f) => [f.layer, f.backend, f.className])).toEqual([['up1', 'wasm', 'Conv3DTranspose'], ['up2', 'wasm', 'Conv3DTranspose']]);
  for (const f of r.findings!) expect(f.maxAbsDiff).toBeGreaterThan(1);
  expect(r.rewritten.filter((w) => w.layer === 'up1' || w.layer === 'up2').map((w) => [w.layer, w.pass]))
    .toEqual([['up1', 'conv3d-transpose-by-depth'], ['up2', 'conv3d-transpose-to-dense']]);
  const decisions = r.policy!.decisions.filter((d) => d.evidence === 'correctness');
  expect(decisions.map((d) => d.layer)).toEqual(['up1', 'up2']);
  expect(decisions[0].reason).toMatch(/^the original computes wrong on wasm: Conv3DTranspose decoder\/up1 is off by up to \d+/);
  expect(r.verification?.passed).toBe(true);
  expect(r.verification?.notes?.join('\n')).toMatch(/outputs are compared with the original run on tfjs's cpu backend/);
  // The exact probe found original and rewrite apart and asked float64: the rewrite equals it.
  expect(r.verification?.exact?.map((e) => [e.layer, e.exact, (e.originalMaxAbsDiff ?? 0) > 0])).toEqual([['up1', true, true], ['up2', true, true]]);

  // On wasm itself, against float64: the rewrite is right, the original is not.
  const rand = mulberry32(11);
  const xv = Float32Array.from({ length: 2 * 2 * 4 * 4 * 6 }, () => rand() * 2 - 1);
  const reference = float64(model, xv, 2);
  expect(tf.getBackend()).toBe('cpu'); // the caller's backend, untouched (optimize ran in a worker)
  await selectBackend('wasm'); // registers and sets wasm in this thread's tfjs
  const rewritten = await result.load();
  const x = tf.tensor(xv, [2, 2, 4, 4, 6]);
  const [a, b] = [model.predict(x) as tf.Tensor, rewritten.predict(x) as tf.Tensor];
  expect(maxAbs(await b.data(), reference)).toBeLessThan(1e-5);
  expect(maxAbs(await a.data(), reference)).toBeGreaterThan(1e-2);
  tf.dispose([x, a, b]);
  disposeModel(rewritten);
  await tf.setBackend('cpu');
  expect(tf.memory().numTensors).toBe(tensors);
  disposeModel(model);
}, 120000);

test('nothing to rewrite, but wrong on wasm: written through with the finding, never a silent "unchanged"', async () => {
  const model = decoder();
  const result = await optimize(model, { backend: 'wasm', passes: ['conv3d-to-dense'] });
  expect(result.report.rewritten).toEqual([]);
  expect(result.report.findings?.map((f) => f.layer)).toEqual(['up1', 'up2']);
  expect(result.report.notes.join('\n')).toMatch(/written through unchanged, and it COMPUTES WRONG on wasm \(2 findings: up1, up2/);
  disposeModel(model);
});

test('no finding where the backend is right: cpu', async () => {
  const model = decoder();
  const result = await optimize(model, { backend: 'cpu', passes: ['conv3d-to-dense'] });
  expect(result.report.findings).toEqual([]);
  expect(result.report.notes.join('\n')).toMatch(/nothing was rewritten: the model is written through unchanged \(same topology/);
  disposeModel(model);
});

test("layers too: wasm's Conv2D with 'same' padding where TF's clamps at 0 (kernel 2, stride 3) is a finding; the probe's crop keeps the size's remainder", async () => {
  // 12: TF pads (4 - 1) * 3 + 2 - 12 = -1 -> 0, wasm shifts the windows. 14: TF pads 0 exactly, wasm is right
  // (a crop to 6 would have made it -1 there: a finding the model does not have).
  const inputs = [12, 14].map((size) => tf.input({ shape: [size, size, 3], name: `in${size}` }));
  const outputs = [12, 14].map((size, i) => tf.layers.conv2d({ name: `conv${size}`, filters: 4, kernelSize: 2, strides: 3, padding: 'same' }).apply(inputs[i]) as tf.SymbolicTensor);
  const model = tf.model({ inputs, outputs, name: 'strided' });
  const result = await optimize(model, { backend: 'wasm', passes: ['conv3d-to-dense'] });
  expect(result.report.findings?.map((f) => [f.layer, f.className, f.shape])).toEqual([['conv12', 'Conv2D', [6, 6, 3]]]);
  const cpu = await optimize(model, { backend: 'cpu', passes: ['conv3d-to-dense'] });
  expect(cpu.report.findings).toEqual([]);
  disposeModel(model);
}, 120000);
