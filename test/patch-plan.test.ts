/**
 * The layout planner against tfjs's own conv3d: for many geometries, applying the planned
 * Reshape/Permute/Crop steps and a matMul with the reordered kernel must equal tf.conv3d.
 */
import * as tf from '@tensorflow/tfjs';
import { ConvGeometry, PatchPlan, Step, chooseRowOrder, planPatches, canonicalRowOrder, withFilters } from '../src/rewrite/patch-plan';
import { permuteRows, transposeValues } from '../src/rewrite/transpose';
import { mulberry32 } from '../fixtures/models';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function applyStep(x: tf.Tensor, step: Step): tf.Tensor {
  const batch = x.shape[0];
  switch (step.kind) {
    case 'reshape':
      return x.reshape([batch, ...step.targetShape]);
    case 'permute':
      return x.transpose([0, ...step.dims]);
    case 'crop': {
      const [, channels, rows, cols] = x.shape;
      return x.slice([0, 0, 0, 0], [batch, channels, rows - step.cropping[0][1], cols - step.cropping[1][1]]);
    }
  }
}

/** Ranks of every tensor the steps produce, batch included. */
function ranks(inputRank: number, steps: Step[]): number[] {
  let rank = inputRank;
  return steps.map((step) => (rank = step.kind === 'reshape' ? step.targetShape.length + 1 : step.kind === 'crop' ? 4 : rank));
}

function runPlan(x: tf.Tensor, kernel: tf.Tensor, order: string[], plan: PatchPlan, filters: number): tf.Tensor {
  return tf.tidy(() => {
    let y = plan.before.reduce(applyStep, x);
    const perm = [...order.map((name) => (name === 'c' ? 3 : Number(name.slice(1)))), 4];
    const rows = transposeValues(kernel.dataSync() as Float32Array, kernel.shape, perm);
    const w = tf.tensor2d(rows, [rows.length / filters, filters]);
    const flat = y.reshape([-1, y.shape[y.shape.length - 1]]);
    y = tf.matMul(flat, w).reshape([...y.shape.slice(0, -1), filters]);
    return withFilters(plan.after, filters).reduce(applyStep, y);
  });
}

function random(shape: number[], seed: number): tf.Tensor {
  return tf.randomUniform(shape, -1, 1, 'float32', seed);
}

const cases: { name: string; geometry: ConvGeometry; transposes: number }[] = [
  { name: 'patch embed (covers its input)', geometry: { spatial: [2, 4, 4], channels: 3, kernel: [2, 4, 4], channelsFirst: false }, transposes: 0 },
  { name: '1x1x1 pointwise', geometry: { spatial: [3, 5, 5], channels: 4, kernel: [1, 1, 1], channelsFirst: false }, transposes: 0 },
  { name: 'tubelet, many patches', geometry: { spatial: [4, 8, 8], channels: 3, kernel: [2, 4, 4], channelsFirst: false }, transposes: 1 },
  { name: 'remainders on every axis', geometry: { spatial: [5, 9, 10], channels: 2, kernel: [2, 4, 3], channelsFirst: false }, transposes: 1 },
  { name: 'remainder on W only', geometry: { spatial: [4, 8, 9], channels: 2, kernel: [2, 4, 4], channelsFirst: false }, transposes: 1 },
  { name: 'single temporal patch (d = 1)', geometry: { spatial: [2, 8, 8], channels: 3, kernel: [2, 4, 4], channelsFirst: false }, transposes: 1 },
  { name: 'channels-first patch embed', geometry: { spatial: [2, 4, 4], channels: 3, kernel: [2, 4, 4], channelsFirst: true }, transposes: 0 },
  { name: 'channels-first general', geometry: { spatial: [4, 8, 8], channels: 3, kernel: [2, 4, 4], channelsFirst: true }, transposes: 3 },
  { name: 'channels-first remainders', geometry: { spatial: [5, 7, 9], channels: 2, kernel: [2, 3, 4], channelsFirst: true }, transposes: 3 },
  { name: 'channels-first 1x1x1', geometry: { spatial: [2, 3, 3], channels: 5, kernel: [1, 1, 1], channelsFirst: true }, transposes: 2 },
];

describe('planPatches reproduces conv3d', () => {
  test.each(cases)('$name', ({ geometry, transposes }) => {
    const chosen = chooseRowOrder([geometry]);
    expect(chosen).not.toBeNull();
    const { order, plans: [plan] } = chosen!;
    expect(plan.transposes).toBe(transposes);
    // Backend limits: rank <= 6 everywhere, Dense input rank <= 5.
    const before = ranks(5, plan.before);
    expect(Math.max(5, ...before)).toBeLessThanOrEqual(6);
    expect(before.length ? before[before.length - 1] : 5).toBeLessThanOrEqual(5);

    const filters = 6;
    const shape = geometry.channelsFirst ? [2, geometry.channels, ...geometry.spatial] : [2, ...geometry.spatial, geometry.channels];
    const x = random(shape, 7);
    const kernel = random([...geometry.kernel, geometry.channels, filters], 8);
    const expected = tf.tidy(() => {
      const input = geometry.channelsFirst ? x.transpose([0, 2, 3, 4, 1]) : x;
      const out = tf.conv3d(input as tf.Tensor5D, kernel as tf.Tensor5D, geometry.kernel as [number, number, number], 'valid');
      return geometry.channelsFirst ? out.transpose([0, 4, 1, 2, 3]) : out;
    });
    const actual = runPlan(x, kernel, order, plan, filters);
    expect(actual.shape).toEqual(expected.shape);
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(actual, expected))).dataSync()[0]);
    expect(diff).toBeLessThan(1e-5);
    tf.dispose([x, kernel, expected, actual]);
  });
});

/**
 * Seeded random geometries (mulberry32): sizes 1..9, kernels up to the size (so remainders and
 * one-patch cases both occur), 1..4 channels, both data formats.
 */
function randomGeometries(count: number, seed = 12345): ConvGeometry[] {
  const rand = mulberry32(seed);
  const next = (n: number) => 1 + Math.floor(rand() * n);
  return Array.from({ length: count }, () => {
    const spatial = [next(6), next(9), next(9)];
    return { spatial, channels: next(4), kernel: spatial.map((size) => next(Math.min(size, 4))), channelsFirst: rand() < 0.5 };
  });
}

const GEOMETRIES = randomGeometries(100);

test('the random geometries cover both formats, channels > 1, kernels > 1 and remainders', () => {
  const count = (pred: (g: ConvGeometry) => boolean) => GEOMETRIES.filter(pred).length;
  const drawn = {
    channelsFirst: count((g) => g.channelsFirst),
    channelsLast: count((g) => !g.channelsFirst),
    'channels > 1': count((g) => g.channels > 1),
    'kernel not 1x1x1': count((g) => g.kernel.some((k) => k > 1)),
    remainder: count((g) => g.spatial.some((s, i) => s % g.kernel[i] !== 0)),
    'one patch': count((g) => g.spatial.every((s, i) => s < 2 * g.kernel[i])),
  };
  console.info(`patch-plan: ${GEOMETRIES.length} random geometries: ${JSON.stringify(drawn)}`);
  for (const n of Object.values(drawn)) expect(n).toBeGreaterThanOrEqual(5);
});

test.each(GEOMETRIES.map((geometry) => [JSON.stringify(geometry), geometry]))('random geometry %s', (_, geometry) => {
  const chosen = chooseRowOrder([geometry])!;
  const plan = chosen.plans[0];
  expect(Math.max(5, ...ranks(5, plan.before), ...ranks(5, plan.after))).toBeLessThanOrEqual(6);
  const shape = geometry.channelsFirst ? [1, geometry.channels, ...geometry.spatial] : [1, ...geometry.spatial, geometry.channels];
  const x = random(shape, 1);
  const kernel = random([...geometry.kernel, geometry.channels, 3], 2);
  const expected = tf.tidy(() => {
    const input = geometry.channelsFirst ? x.transpose([0, 2, 3, 4, 1]) : x;
    const out = tf.conv3d(input as tf.Tensor5D, kernel as tf.Tensor5D, geometry.kernel as [number, number, number], 'valid');
    return geometry.channelsFirst ? out.transpose([0, 4, 1, 2, 3]) : out;
  });
  const actual = runPlan(x, kernel, chosen.order, plan, 3);
  expect(actual.shape).toEqual(expected.shape);
  expect(tf.tidy(() => tf.max(tf.abs(tf.sub(actual, expected))).dataSync()[0])).toBeLessThan(1e-5);
  tf.dispose([x, kernel, expected, actual]);
});

test('the patch embed keeps the kernel bytes and adds no permute', () => {
  const geometry = { spatial: [2, 16, 16], channels: 3, kernel: [2, 16, 16], channelsFirst: false };
  const chosen = chooseRowOrder([geometry])!;
  expect(chosen.order).toEqual(canonicalRowOrder(3));
  expect(chosen.plans[0].before).toEqual([{ kind: 'reshape', targetShape: [1536] }]);
  expect(chosen.plans[0].after).toEqual([{ kind: 'reshape', targetShape: [1, 1, 1, -1] }]);
});

test('a pointwise conv needs no view layer at all', () => {
  const plan = planPatches({ spatial: [3, 5, 5], channels: 4, kernel: [1, 1, 1], channelsFirst: false }, canonicalRowOrder(3));
  expect(plan).toEqual({ before: [], after: [], transposes: 0 });
});

test('one row order serves calls of different shapes', () => {
  const shapes = [[4, 8, 8], [2, 4, 4], [6, 9, 8]];
  const chosen = chooseRowOrder(shapes.map((spatial) => ({ spatial, channels: 2, kernel: [2, 4, 4], channelsFirst: false })))!;
  // The big shapes force the (kw, C, kd, kh) row order, so the patch-embed call pays a transpose too.
  expect(chosen.plans.map((plan) => plan.transposes)).toEqual([1, 1, 1]);
  expect(chosen.order).toEqual(['k2', 'c', 'k0', 'k1']);
});

test('transposeValues matches tf.transpose', () => {
  const shape = [2, 3, 4, 5];
  const x = random(shape, 3);
  const values = x.dataSync() as Float32Array;
  for (const perm of [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]]) {
    const expected = tf.tidy(() => x.transpose(perm).dataSync());
    expect(Array.from(transposeValues(values, shape, perm))).toEqual(Array.from(expected));
  }
  expect(transposeValues(values, shape, [0, 1, 2, 3])).toBe(values);
  x.dispose();
});

test('permuteRows in place equals the copying version for random permutations', () => {
  const uniform = mulberry32(7);
  const rand = (n: number) => Math.floor(uniform() * n);
  for (const [rows, rowSize] of [[1, 3], [7, 1], [24, 5], [96, 4]]) {
    const source = Int32Array.from({ length: rows }, (_, i) => i);
    for (let i = rows - 1; i > 0; i--) {
      const j = rand(i + 1);
      [source[i], source[j]] = [source[j], source[i]];
    }
    const values = Float32Array.from({ length: rows * rowSize }, (_, i) => i);
    const copied = permuteRows(values, rowSize, source);
    expect(copied).not.toBe(values);
    for (let r = 0; r < rows; r++) expect(Array.from(copied.subarray(r * rowSize, (r + 1) * rowSize))).toEqual(Array.from(values.subarray(source[r] * rowSize, (source[r] + 1) * rowSize)));
    const inPlace = permuteRows(values, rowSize, source, true);
    expect(inPlace).toBe(values);
    expect(Array.from(inPlace)).toEqual(Array.from(copied));
  }
});
