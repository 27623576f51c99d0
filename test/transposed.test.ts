/**
 * Transposed convs (passes/conv3d-transpose-to-dense.ts, conv3d-transpose-by-depth.ts) on seeded
 * random geometries: every rewrite is compared with the original on cpu by optimize's own
 * verification (end to end, exact integer probe, float64 per layer), and the float64 reference
 * itself is checked against tf.conv3dTranspose/conv2dTranspose on cpu.
 */
import * as tf from '@tensorflow/tfjs';
import { optimize } from '../src';
import { ConvSpec, convReference } from '../src/verify/reference';
import { mulberry32 } from '../fixtures/models';
import { disposeModel, useBackendForFile } from './helpers/tf';

useBackendForFile('cpu');

const pick = <T>(rand: () => number, values: T[]): T => values[Math.floor(rand() * values.length)];

interface Case {
  rank: 2 | 3;
  kernel: number[];
  strides: number[];
  padding: 'valid' | 'same';
  channelsFirst: boolean;
  spatial: number[];
  channels: number;
  filters: number;
  bias: boolean;
  activation: string;
}

/** A geometry drawn over every dimension that matters: kernel vs stride (equal, larger, smaller), remainders, layouts. */
function draw(rand: () => number): Case {
  const rank = rand() < 0.3 ? 2 : 3;
  const strides = Array.from({ length: rank }, () => pick(rand, [1, 2, 2, 3]));
  const equal = rand() < 0.4;
  const kernel = strides.map((s) => (equal ? s : Math.max(1, s + pick(rand, [-1, 0, 1, 1, 2]))));
  let padding: 'valid' | 'same' = rand() < 0.5 ? 'valid' : 'same';
  // tfjs pads 3D 'same' with k < s by a negative amount (refused): keep those rare, as a negative.
  if (rank === 3 && padding === 'same' && kernel.some((k, a) => k < strides[a]) && rand() < 0.8) padding = 'valid';
  return {
    rank, kernel, strides, padding,
    channelsFirst: rand() < 0.25,
    spatial: Array.from({ length: rank }, () => pick(rand, [1, 2, 3, 4])),
    channels: pick(rand, [1, 2, 3]),
    filters: pick(rand, [1, 2, 4]),
    bias: rand() < 0.7,
    activation: pick(rand, ['linear', 'linear', 'relu', 'tanh', 'softmax']),
  };
}

function modelOf(c: Case, seed: number): tf.LayersModel {
  const shape = c.channelsFirst ? [c.channels, ...c.spatial] : [...c.spatial, c.channels];
  const input = tf.input({ shape });
  const args = {
    name: 'up', filters: c.filters, kernelSize: c.kernel, strides: c.strides, padding: c.padding, useBias: c.bias,
    activation: c.activation as 'linear', dataFormat: c.channelsFirst ? 'channelsFirst' as const : 'channelsLast' as const,
    kernelInitializer: tf.initializers.randomUniform({ minval: -1, maxval: 1, seed }),
    biasInitializer: tf.initializers.randomUniform({ minval: -1, maxval: 1, seed: seed + 1 }),
  };
  const layer = c.rank === 3 ? tf.layers.conv3dTranspose(args) : tf.layers.conv2dTranspose(args);
  return tf.model({ inputs: input, outputs: layer.apply(input) as tf.SymbolicTensor });
}

test('property: every transposed conv a rule takes is rewritten right, every other one says why (mulberry32)', async () => {
  const rand = mulberry32(2026);
  const drawn: Record<string, number> = {};
  const count = (key: string) => (drawn[key] = (drawn[key] ?? 0) + 1);
  const tensors = tf.memory().numTensors;
  for (let i = 0; i < 24; i++) {
    const c = draw(rand);
    const model = modelOf(c, 100 + i);
    const what0 = JSON.stringify(c);
    const result = await optimize(model, { backend: 'cpu', policy: 'always', batch: 2 }).catch((e) => { throw new Error(`${what0}: ${e.message}`); });
    const r = result.report;
    const what = `${c.rank}D k${c.kernel} s${c.strides} ${c.padding}${c.channelsFirst ? ' cf' : ''} in ${c.spatial}x${c.channels} F${c.filters} ${c.bias ? 'bias' : ''} ${c.activation}`;
    count(`${c.rank}D`); count(c.padding); count(c.kernel.every((k, a) => k === c.strides[a]) ? 'k==s' : c.kernel.some((k, a) => k < c.strides[a]) ? 'k<s somewhere' : 'k>s somewhere');
    count(c.channelsFirst ? 'channels_first' : 'channels_last'); count(c.bias ? 'bias' : 'no bias'); count(c.activation);
    if (r.rewritten.length) {
      count(`rewritten by ${r.rewritten[0].pass}`);
      expect({ what, passed: r.verification?.passed, exact: r.verification?.exact?.map((e) => e.exact) }).toEqual({ what, passed: true, exact: [true] });
      // The float64 gate ran on the transposed conv itself (a reference exists for it).
      expect({ what, layers: r.verification?.layers?.map((l) => l.layer), notes: r.verification?.notes }).toEqual(c.activation === 'softmax'
        ? { what, layers: [], notes: ['per-layer reference not available for up: activation "softmax" has no float64 reference'] }
        : { what, layers: ['up'], notes: [] });
      // No tensor of the replacement is above rank 5 (rank-6 transposes, rank-5 pads are the limits).
      const loaded = await result.load();
      for (const layer of loaded.layers) expect({ what, layer: layer.name, rank: (layer.outputShape as number[]).length <= 5 }).toEqual({ what, layer: layer.name, rank: true });
      for (const layer of loaded.layers.filter((l) => l.getClassName() === 'ZeroPadding2D')) expect((layer.outputShape as number[]).length).toBe(4);
      disposeModel(loaded);
    } else {
      count('refused');
      // Only 2D with kernel != strides (no rule: conv2dTranspose is right everywhere) or a named refusal.
      const reasons = r.skipped.map((s) => s.reason).join('; ');
      expect({ what, explained: c.rank === 2 ? /strides .* != kernel_size/.test(reasons) : /kernel \d < stride \d on [DHW] with 'same'/.test(reasons) }).toEqual({ what, explained: true });
    }
    disposeModel(model);
  }
  console.log(`transposed property test drew: ${JSON.stringify(drawn)}`);
  expect(drawn['rewritten by conv3d-transpose-by-depth']).toBeGreaterThan(3);
  expect(drawn['rewritten by conv3d-transpose-to-dense'] + (drawn['rewritten by conv2d-transpose-to-dense'] ?? 0)).toBeGreaterThan(2);
  expect(tf.memory().numTensors).toBe(tensors);
}, 240000);

test('the float64 reference equals tf.conv3dTranspose / tf.conv2dTranspose on cpu (integers: exact)', () => {
  const rand = mulberry32(7);
  for (const [rank, kernel, strides, padding, spatial] of [
    [3, [3, 3, 3], [2, 2, 2], 'same', [2, 4, 4]], [3, [3, 2, 4], [2, 1, 3], 'valid', [3, 2, 2]], [3, [2, 2, 2], [2, 2, 2], 'same', [2, 3, 2]],
    [2, [3, 3], [2, 2], 'same', [4, 3]], [2, [2, 5], [3, 2], 'valid', [3, 3]], [2, [1, 3], [2, 2], 'same', [3, 4]],
  ] as [2 | 3, number[], number[], 'valid' | 'same', number[]][]) {
    const [C, F] = [2, 3];
    const ints = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * 9) - 4);
    const kv = ints(kernel.reduce((a, b) => a * b, 1) * F * C);
    const xv = ints(2 * spatial.reduce((a, b) => a * b, 1) * C);
    const spec: ConvSpec = { rank, kernelSize: kernel, strides, dilation: kernel.map(() => 1), padding, channelsFirst: false, channels: C, filters: F, kernel: Float64Array.from(kv), bias: null, activation: (v) => v, activationName: 'linear', transposed: true };
    const ref = convReference(spec, xv, [...spatial, C], 2);
    const out = ref.rowShape.slice(0, rank);
    const got = tf.tidy(() => {
      const x = tf.tensor(xv, [2, ...spatial, C]);
      const k = tf.tensor(kv, [...kernel, F, C]);
      return rank === 3
        ? tf.conv3dTranspose(x as tf.Tensor5D, k as tf.Tensor5D, [2, ...out, F] as [number, number, number, number, number], strides as [number, number, number], padding).dataSync()
        : tf.conv2dTranspose(x as tf.Tensor4D, k as tf.Tensor4D, [2, ...out, F] as [number, number, number, number], strides as [number, number], padding).dataSync();
    });
    expect({ kernel, strides, padding, equal: Array.from(got).every((v, i) => v === ref.data[i]) && got.length === ref.data.length }).toEqual({ kernel, strides, padding, equal: true });
  }
});
