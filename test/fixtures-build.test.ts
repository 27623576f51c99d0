import * as tf from '@tensorflow/tfjs';
import { FIXTURES, fixture, fillDeterministic } from '../fixtures/models';

/** Expected output shapes (batch 2) of every fixture, in model output order. */
const EXPECTED_OUTPUT_SHAPES: Record<string, number[][]> = {
  'qwen2vl-patch-embed': [[2, 1280]],
  'qwen3vl-patch-embed': [[2, 1152]],
  'qwen3vl-patch-embed-mini': [[2, 32]],
  'video-tubelet': [[2, 64, 48]],
  'video-swin-remainder': [[2, 2, 4, 4, 8]],
  'channels-first-gelu': [[2, 160]],
  'shared-two-input': [
    [2, 2, 2, 2, 12],
    [2, 2, 2, 2, 12],
  ],
  'nested-sequential': [[2, 3]],
  'pointwise-1x1x1': [[2, 3, 5, 5, 7]],
  negatives: [[2, 468]],
  'sequential-mixed': [[2, 4]],
  'vit-b16-patch-embed': [[2, 196, 768]],
  'vit-patch-embed-mini': [[2, 16, 48]],
  'audio-conv1d-frontend': [[2, 40, 64]],
  // 64 (3-D, exact) + 36 (2-D, exact) + 54 (2-D 'same' padded to 3x3)
  'same-exact': [[2, 154]],
  'meshnet-mini': [[2, 20, 20, 20, 3]],
  'c3d-sequential': [[2, 5]],
};

/** All layers, recursing into nested models (Sequential / functional used as layers). */
function allLayers(model: tf.LayersModel): tf.layers.Layer[] {
  const out: tf.layers.Layer[] = [];
  for (const layer of model.layers) {
    out.push(layer);
    if (layer instanceof tf.LayersModel) out.push(...allLayers(layer));
  }
  return out;
}

function bytesOf(t: tf.Tensor): Buffer {
  const d = t.dataSync() as Float32Array;
  return Buffer.from(d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength));
}

function weightBytes(model: tf.LayersModel): Buffer[] {
  // getWeights() returns the live variables: read their data, never dispose them.
  return model.getWeights().map(bytesOf);
}

function totalWeightBytes(model: tf.LayersModel): number {
  return model.weights.reduce((acc, w) => acc + w.shape.reduce((a: number, b) => a * (b ?? 1), 1) * 4, 0);
}

function onesInputs(model: tf.LayersModel, batch: number): tf.Tensor[] {
  return model.inputs.map((inp) => tf.ones(inp.shape.map((d, i) => (i === 0 ? batch : (d as number)))));
}

/**
 * Disposes a model and every weight it owns.
 *
 * tfjs 4.22 quirk: a layer applied symbolically N times gets `_refCount` N, but
 * `LayersModel.dispose()` calls `layer.dispose()` only once, so a layer shared
 * between two call sites (shared-two-input) keeps its weights alive after
 * `model.dispose()`. Dispose such leftovers explicitly. Returns how many
 * variables were left over by `model.dispose()`.
 */
function disposeModel(model: tf.LayersModel): number {
  const vars = Array.from(new Set(model.weights.map((w) => w.read())));
  model.dispose();
  let leftover = 0;
  for (const v of vars) {
    if (!v.isDisposed) {
      leftover++;
      v.dispose();
    }
  }
  return leftover;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

describe('fixture registry', () => {
  test('names are unique kebab-case and every fixture has expected shapes', () => {
    const names = FIXTURES.map((f) => f.name);
    expect(new Set(names).size).toBe(names.length);
    for (const n of names) {
      expect(n).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/);
      expect(EXPECTED_OUTPUT_SHAPES[n]).toBeDefined();
    }
    expect(Object.keys(EXPECTED_OUTPUT_SHAPES).sort()).toEqual([...names].sort());
  });

  test('fixture() looks up by name and throws on unknown names', () => {
    expect(fixture('video-tubelet').name).toBe('video-tubelet');
    expect(() => fixture('no-such-fixture')).toThrow(/no-such-fixture/);
  });
});

describe.each(FIXTURES.map((f) => [f.name, f] as const))('fixture %s', (_name, spec) => {
  test('builds deterministically, predicts finite outputs, names its conv layers, leaks nothing', () => {
    const baseline = tf.memory().numTensors;

    const m1 = spec.build();
    // Building creates exactly the model's weights and nothing else.
    expect(tf.memory().numTensors - baseline).toBe(new Set(m1.weights).size);

    // --- predict on ones, batch 2 ---
    const inputs = onesInputs(m1, 2);
    const pred = m1.predict(inputs.length === 1 ? inputs[0] : inputs);
    const outs = Array.isArray(pred) ? pred : [pred];
    expect(outs.map((o) => o.shape)).toEqual(EXPECTED_OUTPUT_SHAPES[spec.name]);
    for (const o of outs) {
      const data = o.dataSync() as Float32Array;
      expect(data.every((v) => Number.isFinite(v))).toBe(true);
      // outputs should be O(1) thanks to fan-in scaling (and not all zeros)
      const maxAbs = data.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
      expect(maxAbs).toBeGreaterThan(0);
      expect(maxAbs).toBeLessThan(100);
    }
    tf.dispose(outs);
    tf.dispose(inputs);

    // --- named Conv3D layers exist (nested models included) ---
    const layers1 = allLayers(m1);
    const byName = new Map(layers1.map((l) => [l.name, l]));
    const expectedConvs = [...spec.expectRewritten, ...spec.expectSkipped.map((s) => s.layer)];
    for (const name of expectedConvs) {
      const layer = byName.get(name);
      expect(layer).toBeDefined();
      expect(['Conv1D', 'Conv2D', 'Conv3D']).toContain(layer!.getClassName());
    }
    for (const s of spec.expectSkipped) {
      expect(s.reasonIncludes).toBe(s.reasonIncludes.toLowerCase());
    }
    // every conv in the model is accounted for
    const allConvs = layers1.filter((l) => /^Conv[123]D$/.test(l.getClassName())).map((l) => l.name);
    expect([...allConvs].sort()).toEqual([...expectedConvs].sort());

    // --- small flag matches weight size ---
    expect(totalWeightBytes(m1) < 300 * 1024).toBe(spec.small);

    // --- second build: same layer names, byte-identical weights ---
    const m2 = spec.build();
    expect(allLayers(m2).map((l) => l.name)).toEqual(layers1.map((l) => l.name));
    expect(m2.weights.map((w) => w.originalName)).toEqual(m1.weights.map((w) => w.originalName));
    const w1 = weightBytes(m1);
    const w2 = weightBytes(m2);
    expect(w2.length).toBe(w1.length);
    for (let i = 0; i < w1.length; i++) {
      expect(w2[i].equals(w1[i])).toBe(true);
    }

    const sharedWeightCount = spec.name === 'shared-two-input' ? 2 : 0; // shared_embed kernel + bias
    expect(disposeModel(m1)).toBe(sharedWeightCount);
    expect(disposeModel(m2)).toBe(sharedWeightCount);
    expect(tf.memory().numTensors).toBe(baseline);
  });
});

describe('fillDeterministic', () => {
  test('respects scale = 1/sqrt(fanIn), depends on the seed, and does not leak', () => {
    const baseline = tf.memory().numTensors;
    const model = fixture('video-tubelet').build();
    const afterBuild = tf.memory().numTensors;

    const before = weightBytes(model);
    fillDeterministic(model, 12345);
    expect(tf.memory().numTensors).toBe(afterBuild);
    const other = weightBytes(model);
    expect(other[0].equals(before[0])).toBe(false);

    fillDeterministic(model, 12345);
    const again = weightBytes(model);
    for (let i = 0; i < other.length; i++) expect(again[i].equals(other[i])).toBe(true);

    for (const w of model.weights) {
      const shape = w.shape as number[];
      const fanIn = shape.length <= 1 ? 1 : shape.slice(0, -1).reduce((a, b) => a * b, 1);
      const scale = 1 / Math.sqrt(fanIn);
      const data = w.read().dataSync() as Float32Array;
      const maxAbs = data.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
      expect(maxAbs).toBeLessThanOrEqual(scale);
      expect(maxAbs).toBeGreaterThan(scale * 0.5);
    }

    expect(disposeModel(model)).toBe(0);
    expect(tf.memory().numTensors).toBe(baseline);
  });
});

describe('serialization round trip (small fixtures)', () => {
  test.each(FIXTURES.filter((f) => f.small).map((f) => [f.name] as const))(
    '%s saves and reloads with identical layer names and predictions',
    async (name) => {
      const baseline = tf.memory().numTensors;
      const model = fixture(name).build();
      let artifacts: tf.io.ModelArtifacts | undefined;
      await model.save(
        tf.io.withSaveHandler(async (a) => {
          artifacts = a;
          return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
        }),
      );
      // saved weight names use the stable originalName (no process-unique suffix)
      const specNames = artifacts!.weightSpecs!.map((s) => s.name);
      expect(specNames.some((n) => /_\d+$/.test(n.split('/').pop()!))).toBe(false);

      const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts!));
      expect(allLayers(loaded).map((l) => l.name)).toEqual(allLayers(model).map((l) => l.name));

      const inputs = model.inputs.map((inp) =>
        tf.randomUniform(inp.shape.map((d, i) => (i === 0 ? 2 : (d as number))), -1, 1, 'float32', 7),
      );
      const feed = inputs.length === 1 ? inputs[0] : inputs;
      const a = model.predict(feed);
      const b = loaded.predict(feed);
      const aa = Array.isArray(a) ? a : [a];
      const bb = Array.isArray(b) ? b : [b];
      expect(bb.length).toBe(aa.length);
      for (let i = 0; i < aa.length; i++) {
        expect(bytesOf(bb[i]).equals(bytesOf(aa[i]))).toBe(true);
      }
      tf.dispose([...aa, ...bb, ...inputs]);
      disposeModel(model);
      disposeModel(loaded);
      expect(tf.memory().numTensors).toBe(baseline);
    },
  );
});
