/**
 * Verification on deep float32 models: the end-to-end comparison's noise floor (how far the
 * original's outputs move when its input moves by one or two ulps) and the per-layer check measuring a
 * replacement against the float64 conv of its own input (not the original's, which upstream
 * rewritten layers changed).
 */
import * as tf from '@tensorflow/tfjs';
import { optimize, verify } from '../src';
import { artifactsOfModel } from '../src/io/files';
import { ULP_STEP, ulpPerturbed, ulpWeights, withNoiseFloor } from '../src/verify/noise-floor';
import { LayerCheck } from '../src/verify/verify';
import { convReference } from '../src/verify/reference';
import { ProbeModel, planProbes } from '../src/verify/probes';
import { fixture, mulberry32 } from '../fixtures/models';
import { disposeModel, useBackendForFile } from './helpers/tf';

useBackendForFile('cpu');

/** A Dense of width 2048 with weights ~1e3: outputs that sum 2048 terms of ~1e3, mostly cancelling. */
function cancelling(): tf.LayersModel {
  const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [2048], units: 256, useBias: false, name: 'wide' })] });
  const rand = mulberry32(11);
  const kernel = tf.tensor(Float32Array.from({ length: 2048 * 256 }, () => (rand() * 2 - 1) * 1e3), [2048, 256]);
  model.setWeights([kernel]);
  kernel.dispose();
  return model;
}

/** The model's artifacts with every kernel element scaled by (1 + relative * sign), signs drawn. */
async function scaledKernel(model: tf.LayersModel, relative: number): Promise<tf.io.ModelArtifacts> {
  const artifacts = await artifactsOfModel(model);
  const values = new Float32Array((artifacts.weightData as ArrayBuffer).slice(0));
  const rand = mulberry32(12);
  for (let i = 0; i < values.length; i++) values[i] *= 1 + (rand() < 0.5 ? -relative : relative);
  return { ...artifacts, weightData: values.buffer };
}

describe('end-to-end noise floor', () => {
  // tfjs's cpu matMul accumulates in float64: a tolerance this tight puts last-bit differences
  // outside it. A tolerance one sets is enforced as set unless the floor is asked for.
  const tight = { backend: 'cpu' as const, atol: 1e-9, rtol: 1e-9, noiseFloor: true };

  test('a last-bit change of every weight: elements outside the tolerance, within 4x the float32 noise floor, passed with a note', async () => {
    const model = cancelling();
    try {
      const original = await artifactsOfModel(model);
      const report = await verify(original, await scaledKernel(model, ULP_STEP), tight);
      const [output] = report.outputs;
      // The case must exercise the floor: some elements are outside atol + rtol*|a|.
      expect(output.outsideTolerance).toBeGreaterThan(0);
      expect(output.noiseFloor).toBeGreaterThan(0);
      expect(output.maxAbsDiff).toBeLessThanOrEqual(4 * output.noiseFloor!);
      expect(report.passed).toBe(true);
      expect(report.notes.join('\n')).toMatch(/within 4 x .* weights\) moves by 2\^-23, one or two ulps: float32 rounding, passed/);
    } finally {
      disposeModel(model);
    }
  });

  test('a wrong rewrite (every weight off by 1e-4) is far beyond the floor: FAILED', async () => {
    const model = cancelling();
    try {
      const report = await verify(await artifactsOfModel(model), await scaledKernel(model, 1e-4), tight);
      const [output] = report.outputs;
      expect(output.outsideTolerance).toBeGreaterThan(0);
      expect(output.maxAbsDiff).toBeGreaterThan(4 * output.noiseFloor!);
      expect(output.passed).toBe(false);
      expect(report.passed).toBe(false);
    } finally {
      disposeModel(model);
    }
  });

  test('ulpWeights moves every weight while it runs and puts them back exactly, leaking nothing', async () => {
    const model = cancelling();
    try {
      const before = model.getWeights()[0].dataSync().slice();
      const tensors = tf.memory().numTensors;
      const during = await ulpWeights(model, 3, async () => model.getWeights()[0].dataSync().slice());
      expect(during.filter((v, i) => v !== before[i]).length).toBeGreaterThan(0.9 * before.length);
      expect(Array.from(model.getWeights()[0].dataSync())).toEqual(Array.from(before));
      expect(tf.memory().numTensors).toBe(tensors);
    } finally {
      disposeModel(model);
    }
  });

  test('a tolerance set without noiseFloor is enforced as set: the same last-bit change FAILED', async () => {
    const model = cancelling();
    try {
      const report = await verify(await artifactsOfModel(model), await scaledKernel(model, ULP_STEP), { ...tight, noiseFloor: undefined });
      expect(report.outputs[0].outsideTolerance).toBeGreaterThan(0);
      expect(report.outputs[0].noiseFloor).toBeUndefined();
      expect(report.passed).toBe(false);
    } finally {
      disposeModel(model);
    }
  });

  test('withNoiseFloor leaves passing outputs and outputs without a floor as they are', () => {
    const base = { name: 'y', shape: [1, 4], maxRelDiff: 1, meanAbsDiff: 1e-6, cosine: 1, worst: { index: [0, 0], expected: 0, actual: 0, tolerance: 0 } };
    const failing = { ...base, maxAbsDiff: 3e-5, outsideTolerance: 2, passed: false };
    const passing = { ...base, maxAbsDiff: 1e-6, outsideTolerance: 0, passed: true };
    const { outputs, notes } = withNoiseFloor([failing, passing, failing, failing], [1e-5, 1e-9, undefined, 5e-6], 4);
    expect(outputs.map((o) => o.passed)).toEqual([true, true, false, false]);
    expect(outputs[1]).toBe(passing);
    expect(outputs[2]).toBe(failing);
    expect(notes).toHaveLength(2);
  });

  test('ulpPerturbed moves float elements by 2^-23 relative (one or two ulps), most of them, both ways; int inputs stay', () => {
    const x = tf.randomUniform([4096], -100, 100, 'float32', 5);
    const n = tf.tensor([1, 2, 3], [3], 'int32');
    const [moved, same] = ulpPerturbed([x, n], 9);
    const [a, b] = [x.dataSync(), moved.dataSync()];
    let changed = 0;
    let up = 0;
    for (let i = 0; i < a.length; i++) {
      const ulp = 2 ** (Math.floor(Math.log2(Math.abs(a[i]))) - 23);
      expect(Math.abs(b[i] - a[i])).toBeLessThanOrEqual(2 * ulp);
      if (b[i] !== a[i]) changed++;
      if (Math.abs(b[i]) > Math.abs(a[i])) up++;
    }
    expect(changed).toBeGreaterThan(0.9 * a.length);
    expect(up).toBeGreaterThan(0.3 * a.length);
    expect(up).toBeLessThan(0.7 * a.length);
    expect(Array.from(same.dataSync())).toEqual([1, 2, 3]);
    tf.dispose([x, n, moved, same]);
  });
});

describe('per-layer check on its own input', () => {
  const spec = {
    rank: 1, kernelSize: [3], strides: [1], dilation: [1], padding: 'same' as const, channelsFirst: false, channels: 1, filters: 1,
    kernel: Float64Array.from([0.5, -1, 2]), bias: null, activation: (v: number) => v, activationName: 'linear',
  };
  const row = (values: number[]) => ({ data: Float32Array.from(values), shape: [1, values.length, 1] });
  const conv = (values: number[]) => ({ data: Float32Array.from(convReference(spec, values, [values.length, 1], 1).data), shape: [1, values.length, 1] });
  const x = [0.3, -1.7, 2.2, 0.9, -0.4, 1.1];
  // Upstream rewritten layers moved the input in the rewritten model by ~1e-3: the replacement's
  // output is exact for its own input, 1e-3 off the original's.
  const drifted = x.map((v, i) => v + (i % 2 ? 1e-3 : -1e-3));

  test("with the rewritten model's copy of the input, the replacement's own (zero) error is measured: ok", () => {
    const check = new LayerCheck({ layer: 'c', replacement: [], spec, original: [{ input: 0, output: 1 }], rewritten: [0], rewrittenInputs: [1] });
    check.add([row(x), conv(x)], [conv(drifted), row(drifted)]);
    const result = check.result(4);
    expect(result.rewritten.maxAbsError).toBeLessThan(1e-6);
    expect(result.passed).toBe(true);
  });

  test("without it, the upstream drift is charged to the layer: LESS ACCURATE", () => {
    const check = new LayerCheck({ layer: 'c', replacement: [], spec, original: [{ input: 0, output: 1 }], rewritten: [0] });
    check.add([row(x), conv(x)], [conv(drifted)]);
    const result = check.result(4);
    expect(result.rewritten.maxAbsError).toBeGreaterThan(1e-3);
    expect(result.passed).toBe(false);
  });

  test("every rewritten conv of a MeshNet is probed on the rewritten model's copy of its input (the upstream replacement's output there)", async () => {
    const model = fixture('meshnet-mini').build();
    try {
      const result = await optimize(model, { backend: 'cpu', policy: 'always', verify: false });
      const rewritten = await result.load();
      const [a, b] = [new ProbeModel(model), new ProbeModel(rewritten)];
      const { probes } = planProbes(result.report.rewritten, a, b);
      expect(probes.length).toBe(result.report.rewritten.length);
      for (const probe of probes) {
        expect(probe.rewrittenInputs).toHaveLength(probe.rewritten.length);
        const [mine, theirs] = [b.tensors[probe.rewrittenInputs![0]], a.tensors[probe.original[0].input]];
        expect(rewritten.layers).toContain(mine.sourceLayer);
        expect(mine.sourceLayer.name).toBe(theirs.sourceLayer.name);
        expect(mine.shape).toEqual(theirs.shape);
      }
      disposeModel(rewritten);
    } finally {
      disposeModel(model);
    }
  });
});
