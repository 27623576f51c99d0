/**
 * Local verification (src/verify/local.ts, issue 19.1): a fully convolutional model checked on
 * corner sub-volumes and crops, at a cost that does not grow with the volume. Small volumes only
 * (a 50-deep slab): the volume-independence is a property of the plan, checked here; the 256^3
 * runs are measured in docs/workers.md.
 */
import * as tf from '@tensorflow/tfjs';
import { optimize, verify } from '../src';
import { artifactsOfModel } from '../src/io/files';
import { LOCAL_EDGE, LOCAL_MIN_MACS, planLocal, resized } from '../src/verify/local';
import { meshnet } from '../fixtures/meshnet';
import { fillDeterministic } from '../fixtures/models';
import { disposeModel, expectNoLeaks } from './helpers/tf';

beforeAll(() => tf.setBackend('cpu'));

const mulberry32 = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

interface Drawn {
  spatial: number[];
  convs: { kernel: number[]; dilation: number[]; filters: number }[];
}

/** A fully convolutional model: 'same' stride-1 convs with relu between, then a 1x1 classifier. */
function convStack({ spatial, convs }: Drawn, seed = 7): tf.LayersModel {
  const input = tf.input({ shape: [...spatial, 2], name: 'volume' });
  let x = input;
  const conv = { 1: tf.layers.conv1d, 2: tf.layers.conv2d, 3: tf.layers.conv3d }[spatial.length as 1 | 2 | 3] as typeof tf.layers.conv3d;
  convs.forEach(({ kernel, dilation, filters }, i) => {
    x = conv({ name: `conv_${i}`, filters, kernelSize: kernel, dilationRate: dilation, padding: 'same', activation: i % 2 ? 'relu' : 'linear' }).apply(x) as tf.SymbolicTensor;
  });
  x = conv({ name: 'classes', filters: 3, kernelSize: 1, padding: 'same' }).apply(x) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: x });
  fillDeterministic(model, seed);
  return model;
}

test('a sub-volume run equals the whole run on the corner regions the plan compares (random stacks, 1-3 spatial axes)', async () => {
  const rand = mulberry32(1901);
  const drawn: string[] = [];
  for (let trial = 0; trial < 6; trial++) {
    const rank = 1 + (trial % 3);
    const d: Drawn = {
      // One long axis (beyond the sub-volume), the others short: a few thousand positions.
      spatial: Array.from({ length: rank }, (_, a) => (a === 0 ? 40 + Math.floor(rand() * 20) : 3 + Math.floor(rand() * 4))),
      convs: Array.from({ length: 1 + Math.floor(rand() * 3) }, () => ({
        kernel: Array.from({ length: rank }, () => 1 + Math.floor(rand() * 4)), // even kernels pad unevenly
        dilation: Array.from({ length: rank }, () => 1 + Math.floor(rand() * 3)),
        filters: 1 + Math.floor(rand() * 3),
      })),
    };
    drawn.push(`${d.spatial.join('x')}: ${d.convs.map((c) => `k${c.kernel.join('x')}/d${c.dilation.join('x')}/f${c.filters}`).join(' ')}`);
    const model = convStack(d, trial);
    const plan = planLocal(model, []);
    if (typeof plan === 'string') throw new Error(`${drawn.at(-1)}: ${plan}`);
    expect(plan.subVolume[0]).toBeLessThan(d.spatial[0]);
    expect(plan.region[0]).toBe(Math.min(LOCAL_EDGE, d.spatial[0]));
    const sub = await tf.loadLayersModel(tf.io.fromMemory(resized(await artifactsOfModel(model), plan.subVolume)));
    const x = tf.randomUniform([1, ...d.spatial, 2], -1, 1, 'float32', trial);
    await expectNoLeaks(async () => {
      tf.tidy(() => {
        const whole = model.predict(x) as tf.Tensor;
        for (const corner of ['low', 'high']) {
          const start = (sizes: number[], of: number[]) => (corner === 'low' ? of.map(() => 0) : of.map((n, a) => n - sizes[a]));
          const part = sub.predict(tf.slice(x, [0, ...start(plan.subVolume, d.spatial), 0], [1, ...plan.subVolume, -1])) as tf.Tensor;
          const a = tf.slice(part, [0, ...start(plan.region, plan.subVolume), 0], [1, ...plan.region, -1]);
          const b = tf.slice(whole, [0, ...start(plan.region, d.spatial), 0], [1, ...plan.region, -1]);
          expect([drawn.at(-1), corner, tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]]).toEqual([drawn.at(-1), corner, 0]);
        }
      });
    });
    x.dispose();
    disposeModel(sub);
    disposeModel(model);
  }
  console.log(`drawn stacks: ${drawn.join('; ')}`);
});

test('the plan: MeshNet-shaped volumes go local above the threshold with a volume-independent sub-volume; others say why not', () => {
  const plans = [64, 96].map((size) => {
    const model = meshnet({ size, filters: 2 });
    const plan = planLocal(model, []);
    disposeModel(model);
    return plan;
  });
  for (const plan of plans) {
    if (typeof plan === 'string') throw new Error(plan);
    // Dilations 1,2,4,8,16,8,4,2,1 of 3x3x3: 46 positions each side; the region beyond it.
    expect(plan.reach).toEqual({ low: [46, 46, 46], high: [46, 46, 46] });
    expect(plan.subVolume).toEqual([46 + LOCAL_EDGE, 46 + LOCAL_EDGE, 46 + LOCAL_EDGE]);
  }
  const [small, large] = plans as Exclude<(typeof plans)[number], string>[];
  expect(large.macs / small.macs).toBeCloseTo((96 / 64) ** 3, 6);
  expect(large.macs).toBeGreaterThan(LOCAL_MIN_MACS);
  const flat = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [40, 40, 1], filters: 2, kernelSize: 3, strides: 2 }), tf.layers.flatten(), tf.layers.dense({ units: 2 })] });
  expect(planLocal(flat, [])).toMatch(/not a 'same' stride-1|not local/);
  disposeModel(flat);
});

describe('optimize and verify with local: true (a 50x5x5 slab, cpu)', () => {
  const slab: Drawn = { spatial: [50, 5, 5], convs: [{ kernel: [3, 3, 3], dilation: [1, 1, 1], filters: 3 }, { kernel: [3, 3, 3], dilation: [2, 1, 1], filters: 3 }] };

  test('passes, checks each rewritten conv on two crops of its real input against float64, and says what it compared', async () => {
    const model = convStack(slab);
    const { report } = await optimize(model, { backend: 'cpu', policy: 'always', local: true });
    disposeModel(model);
    const v = report.verification!;
    expect(v.passed).toBe(true);
    expect(v.local).toMatchObject({ rows: 1, of: 2, volume: [50, 5, 5], subVolume: [48, 5, 5], region: [45, 5, 5], reach: { low: [3, 2, 2], high: [3, 2, 2] } });
    // Two corner regions (first and last) of 45x5x5 positions, 3 classes.
    expect(v.outputs.map((o) => [o.name, o.shape, o.outsideTolerance])).toEqual([[expect.any(String), [2, 45, 5, 5, 3], 0]]);
    // conv_0 and conv_1 (sliding, crop 48x5x5): two crops each; the 1x1x1 classifier has no crop-sized replacement.
    expect(v.layers!.map((l) => [l.layer, l.elements, l.passed])).toEqual([['conv_0', 2 * 48 * 25 * 3, true], ['conv_1', 2 * 48 * 25 * 3, true]]);
    expect(v.exact!.every((e) => e.exact === true)).toBe(true);
    expect(v.notes!.join('\n')).toMatch(/local check .* end to end on row 1 of 2 \(the budget\)/);
    expect(v.notes!.join('\n')).toMatch(/classes: no crop-sized replacement/);
  });

  test('a "rewritten" model with one kernel tap off fails the local end-to-end comparison', async () => {
    const model = convStack(slab);
    const original = await artifactsOfModel(model);
    // The "rewritten" model: the same, with one kernel tap off (a misplaced weight).
    const wrong = convStack(slab);
    const kernel = wrong.getLayer('conv_1').getWeights();
    const values = kernel[0].arraySync() as number[][][][][];
    values[2][1][1][0][0] += 0.5; // one tap, deepest kernel row
    wrong.getLayer('conv_1').setWeights([tf.tensor(values), kernel[1]]);
    const rewritten = await artifactsOfModel(wrong);
    const v = await verify(original, rewritten, { backend: 'cpu', local: true });
    // No cut-outs (verify compares two given models): the sub-volume is the reach plus the region.
    expect(v.local).toMatchObject({ subVolume: [19, 5, 5], region: [LOCAL_EDGE, 5, 5] });
    expect(v.passed).toBe(false);
    expect(v.outputs[0].outsideTolerance).toBeGreaterThan(0);
    [model, wrong].forEach(disposeModel);
  });
});
