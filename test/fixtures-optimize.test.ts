/**
 * The optimizer on every fixture: which convs are rewritten, which are refused and why, the
 * shape of the replacement, and numerical equality (verified on the default backend).
 */
import * as tf from '@tensorflow/tfjs';
import { optimize } from '../src';
import { UNCHANGED } from '../src/pipeline';
import { conv3dToDense } from '../passes/conv3d-to-dense';
import { FIXTURES, fixture } from '../fixtures/models';
import type { Pass } from '../src/pass';
import { NonSlidingPlan } from '../src/rewrite/non-sliding-conv';
import { disposeModel, layerCalls } from './helpers/tf';

// The rewrite itself is under test, not the speed policy (its decisions depend on timings).
const TIGHT = { atol: 1e-5, rtol: 1e-4, policy: 'always' as const };

type TopologyLayer = { name: string; class_name: string; config: { layers?: TopologyLayer[] } & Record<string, unknown>; inbound_nodes?: unknown[] };

function topologyLayers(artifacts: tf.io.ModelArtifacts): TopologyLayer[] {
  const all: TopologyLayer[] = [];
  // Sequential entries carry their name in config only.
  const walk = (layers: TopologyLayer[]) => layers.forEach((layer) => {
    all.push({ ...layer, name: layer.name ?? (layer.config.name as string) });
    if (Array.isArray(layer.config.layers)) walk(layer.config.layers);
  });
  walk((artifacts.modelTopology as { config: { layers: TopologyLayer[] } }).config.layers);
  return all;
}

const CONV = /^Conv[123]D$/;
const isConvRewrite = (record: { pass: string }) => /^conv[123]d-to-(dense|conv2d-slices)$/.test(record.pass);

async function optimizeFixture(name: string, options = {}) {
  const spec = fixture(name);
  const model = spec.build();
  try {
    return await optimize(model, { ...TIGHT, passes: spec.passes, ...options });
  } finally {
    disposeModel(model);
  }
}

describe.each(FIXTURES.map((spec) => [spec.name, spec]))('%s', (_, spec) => {
  let result: Awaited<ReturnType<typeof optimize>>;
  beforeAll(async () => {
    const before = tf.memory().numTensors;
    result = await optimizeFixture(spec.name);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('rewrites exactly the eligible convs', () => {
    expect(result.report.rewritten.filter(isConvRewrite).map((r) => r.layer).sort()).toEqual([...spec.expectRewritten].sort());
  });

  test('refuses the others with the right reason', () => {
    const skipped = result.report.skipped;
    expect(skipped.map((s) => s.layer).sort()).toEqual(spec.expectSkipped.map((s) => s.layer).sort());
    for (const expected of spec.expectSkipped) {
      expect(skipped.find((s) => s.layer === expected.layer)!.reason.toLowerCase()).toContain(expected.reasonIncludes);
    }
  });

  test('leaves no eligible conv and keeps every parameter', () => {
    // The fixture's own convs (a replacement may hold new Conv2D layers of its own).
    const own = new Set([...spec.expectRewritten, ...spec.expectSkipped.map((s) => s.layer)]);
    const convs = topologyLayers(result.artifacts).filter((layer) => CONV.test(layer.class_name) && own.has(layer.name));
    expect(convs.map((layer) => layer.name).sort()).toEqual(spec.expectSkipped.map((s) => s.layer).sort());
    expect(result.report.after.params).toBe(result.report.before.params);
  });

  test('computes the same outputs', () => {
    if (result.report.rewritten.length === 0) {
      // Nothing rewritten: written through as it came, nothing to compare.
      expect(result.report.verification).toBeNull();
      expect(result.report.notes).toContain(UNCHANGED);
      return;
    }
    const verification = result.report.verification!;
    expect(verification.passed).toBe(true);
    expect(verification.outputs.length).toBeGreaterThan(0);
    for (const output of verification.outputs) {
      expect(output.outsideTolerance).toBe(0);
      expect(output.cosine).toBeGreaterThan(0.999999);
    }
  });

  // Checked on every tensor of the model stock tfjs loads: the replacement's own layer names may
  // be gone by now (merged or dropped by the clean-up passes), the limits must hold regardless.
  test('every tensor stays within backend rank limits (6; a Dense input 5)', async () => {
    const model = await result.load();
    const calls = layerCalls(model);
    expect(calls.length).toBeGreaterThan(0);
    const over = calls.filter((call) => Math.max(...call.ranks) > 6 || (call.className === 'Dense' && call.ranks[0] > 5));
    expect(over).toEqual([]);
    disposeModel(model);
  });
});

test('a patch embed becomes Reshape + rank-2 Dense + Reshape with the kernel bytes unchanged', async () => {
  const model = fixture('qwen3vl-patch-embed-mini').build();
  const original = await model.getLayer('patch_embed').getWeights()[0].data();
  disposeModel(model);
  const result = await optimizeFixture('qwen3vl-patch-embed-mini', { passes: ['conv3d-to-dense'] });
  const [record] = result.report.rewritten;
  const layers = topologyLayers(result.artifacts);
  // A rank-2 Dense input: on rank > 2 tfjs-layers copies the kernel on every call (see patch-plan.ts).
  expect(record.replacement.map((name) => layers.find((l) => l.name === name)!.class_name)).toEqual(['Reshape', 'Dense', 'Reshape']);
  const rewritten = await result.load();
  const dense = rewritten.getLayer(record.replacement[1]);
  expect(dense.getWeights()[0].shape).toEqual([96, 32]);
  expect(Array.from(await dense.getWeights()[0].data())).toEqual(Array.from(original));
  disposeModel(rewritten);
});

test('a 1x1x1 conv becomes a lone Dense', async () => {
  const result = await optimizeFixture('pointwise-1x1x1', { passes: ['conv3d-to-dense'] });
  const layers = topologyLayers(result.artifacts);
  expect(result.report.rewritten[0].replacement.map((name) => layers.find((l) => l.name === name)!.class_name)).toEqual(['Dense']);
});

test('a shared conv stays shared: one Dense called once per original call', async () => {
  const result = await optimizeFixture('shared-two-input');
  const layers = topologyLayers(result.artifacts);
  const dense = layers.filter((l) => l.class_name === 'Dense');
  expect(dense).toHaveLength(1);
  expect(dense[0].inbound_nodes).toHaveLength(2);
  expect(result.report.verification!.outputs.map((o) => o.name)).toHaveLength(2);
});

test('a conv inside a nested Sequential is rewritten in place', async () => {
  const result = await optimizeFixture('nested-sequential');
  expect(result.report.rewritten[0].graph).toBe('nested_sequential/inner_encoder');
  const inner = topologyLayers(result.artifacts).find((l) => l.name === 'inner_encoder')!;
  const classes = inner.config.layers!.map((l) => l.class_name);
  expect(classes).not.toContain('Conv3D');
  expect(classes).toContain('Dense');
});

test('the rewritten model runs on the cpu backend too and matches', async () => {
  const result = await optimizeFixture('video-swin-remainder', { backend: 'cpu' });
  expect(result.report.verification).toMatchObject({ backend: 'cpu', passed: true });
});

/** The pass with two kernel rows swapped: the kind of bug verification exists to catch. */
const swappedRows: Pass<NonSlidingPlan> = {
  ...conv3dToDense,
  name: 'swapped-rows',
  rewrite(layer, plan, context) {
    const replacement = conv3dToDense.rewrite(layer, plan, context);
    const kernel = replacement.addWeights[0];
    const [rows, filters] = kernel.shape;
    const values = Float32Array.from(kernel.values as Float32Array);
    for (let f = 0; f < filters; f++) {
      [values[f], values[(rows - 1) * filters + f]] = [values[(rows - 1) * filters + f], values[f]];
    }
    replacement.addWeights[0] = { ...kernel, values };
    return replacement;
  },
};

test('verification catches a rewrite with two kernel rows swapped', async () => {
  const model = fixture('video-tubelet').build();
  const before = tf.memory().numTensors;
  const result = await optimize(model, { ...TIGHT, passes: [swappedRows as Pass] });
  expect(result.report.rewritten.map((r) => r.pass)).toEqual(['swapped-rows']);
  expect(tf.memory().numTensors).toBe(before);
  disposeModel(model);
  const verification = result.report.verification!;
  expect(verification.passed).toBe(false);
  expect(verification.outputs[0].outsideTolerance).toBeGreaterThan(0);
  expect(verification.outputs[0].maxAbsDiff).toBeGreaterThan(1e-3);
});

test('--no-verify equivalent skips verification', async () => {
  const result = await optimizeFixture('video-tubelet', { verify: false });
  expect(result.report.verification).toBeNull();
  expect(result.report.rewritten.filter(isConvRewrite)).toHaveLength(1);
});
