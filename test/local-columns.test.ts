/**
 * The local check's column form (src/verify/local-columns.ts): the rewritten model run once at
 * its size, thin columns of every rewritten conv's input and output kept while tfjs computes it,
 * each conv checked on them against float64 and the original conv, each link between convs
 * against the original's layers. Small volumes (the form is forced with localForm: 'columns');
 * the 256^3 MeshNet runs are measured in docs/workers.md.
 */
import * as tf from '@tensorflow/tfjs';
import { artifactsOfModel, optimize, verify } from '../src';
import { slidingLayersPass } from '../src/rewrite/sliding-conv-layers';
import { COLUMN_EDGE, columnWindows, cut, executeWithTaps } from '../src/verify/local-columns';
import { fillDeterministic, mulberry32 } from '../fixtures/models';
import { disposeModel, expectNoLeaks } from './helpers/tf';

beforeAll(() => tf.setBackend('cpu'));

const RULE = 'conv3d-to-conv2d-slices';

interface Drawn {
  spatial: number[];
  channels: number;
  convs: { kernel: number[]; dilation: number[]; filters: number; activation: string }[];
  classes: number;
}

/** MeshNet-shaped: dilated 'same' convs, an Activation layer after each, a 1x1x1 classifier. */
function stack({ spatial, channels, convs, classes }: Drawn, seed = 5): tf.LayersModel {
  const input = tf.input({ shape: [...spatial, channels], name: 'volume' });
  let x: tf.SymbolicTensor = input;
  convs.forEach(({ kernel, dilation, filters, activation }, i) => {
    x = tf.layers.conv3d({ name: `conv${i}`, filters, kernelSize: kernel, padding: 'same', dilationRate: dilation }).apply(x) as tf.SymbolicTensor;
    x = tf.layers.activation({ name: `act${i}`, activation: activation as 'relu' }).apply(x) as tf.SymbolicTensor;
  });
  x = tf.layers.conv3d({ name: 'classifier', filters: classes, kernelSize: 1 }).apply(x) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: x });
  fillDeterministic(model, seed);
  return model;
}

const FIXED: Drawn = {
  spatial: [23, 9, 8], channels: 2, classes: 2,
  convs: [1, 2, 4, 1].map((d, i) => ({ kernel: [3, 3, 3], dilation: [d, d, d], filters: 3, activation: i % 2 ? 'relu' : 'elu' })),
};
// Small chunks (a few depths each): the convs read each other in depth pieces.
const passes = () => ['conv3d-to-dense', slidingLayersPass(RULE, 3 * 9 * 4 * 9 * 4)];

/** FIXED and its rewrite, unverified (the tests verify it their way). */
async function optimizedFixed() {
  const model = stack(FIXED);
  const original = await artifactsOfModel(model);
  const result = await optimize(model, { passes: passes(), backend: 'cpu', verify: false });
  disposeModel(model);
  return { original, rewritten: result.artifacts, result };
}

describe('a chained MeshNet-shaped model (23x9x8, pieces between convs), checked in columns', () => {
  test('passes; every conv is checked on the columns of its input against float64, every link, and it says what it compared', async () => {
    const model = stack(FIXED);
    const { report } = await optimize(model, { passes: passes(), backend: 'cpu', local: true, localForm: 'columns' });
    disposeModel(model);
    const v = report.verification!;
    expect(report.rewritten.filter((r) => r.pieces).length).toBeGreaterThan(0);
    expect(v.local).toMatchObject({ form: 'columns', rows: 1, volume: [23, 9, 8], region: [23, COLUMN_EDGE, COLUMN_EDGE] });
    // Three columns (low corner, middle, high corner), the whole depth by 4x4, each conv's filters.
    expect(v.layers!.map((l) => [l.layer, l.elements, l.passed])).toEqual(
      ['conv0', 'conv1', 'conv2', 'conv3', 'classifier'].map((name, i) => [name, 3 * 23 * 16 * (i < 4 ? 3 : 2), true]),
    );
    for (const check of v.layers!) expect(check.ratio).toBeLessThan(2);
    expect(v.outputs.map((o) => [o.shape, o.outsideTolerance, o.maxAbsDiff])).toEqual([[[3, 23, 4, 4, 2], 0, 0]]);
    expect(v.passed).toBe(true);
    expect(v.notes!.join('\n')).toMatch(/local check in columns .* 3 23x4x4 columns .* 6 links .* not compared end to end/);
  });

  test('finds a wiring fault (an absorbed activation changed) in a link, and a wrong weight in the conv check', async () => {
    const { original, rewritten, result } = await optimizedFixed();
    const records = result.report.rewritten;
    // The Activation conv2 runs per piece of conv1's output: relu there becomes linear.
    const topology = JSON.parse(JSON.stringify(rewritten.modelTopology)) as { model_config?: { config: { layers: { class_name: string; config: Record<string, unknown> }[] } }; config?: { layers: { class_name: string; config: Record<string, unknown> }[] } };
    const layers = (topology.model_config ?? topology).config!.layers;
    const perPiece = layers.filter((l) => l.class_name === 'Activation' && l.config.activation === 'relu');
    expect(perPiece.length).toBeGreaterThan(0);
    perPiece.forEach((l) => { l.config.activation = 'linear'; });
    const miswired = await verify(original, { ...rewritten, modelTopology: topology }, { backend: 'cpu', local: true, localForm: 'columns', rewrittenLayers: records });
    expect(miswired.local?.form).toBe('columns');
    expect(miswired.passed).toBe(false);
    expect(miswired.notes!.join('\n')).toMatch(/link conv1 -> conv2: \d+ values outside tolerance/);
    // One weight of one Conv2D of conv2's replacement off: conv2's own check fails.
    const specs = rewritten.weightSpecs!;
    const at = specs.findIndex((s) => s.name.startsWith('conv2_') && /kernel/.test(s.name));
    expect(at).toBeGreaterThanOrEqual(0);
    const offset = specs.slice(0, at).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1) * 4, 0);
    const data = (rewritten.weightData as ArrayBuffer).slice(0);
    new Float32Array(data, offset, 1)[0] += 0.5;
    const offWeight = await verify(original, { ...rewritten, weightData: data }, { backend: 'cpu', local: true, localForm: 'columns', rewrittenLayers: records });
    expect(offWeight.passed).toBe(false);
    expect(offWeight.layers!.filter((l) => !l.passed).map((l) => l.layer)).toEqual(['conv2']);
  });

  test('leaks no tensor and leaves every layer\'s apply as it was; without rewrite records it says why and checks the corners', async () => {
    const { original, rewritten, result } = await optimizedFixed();
    // In this thread (no worker, the column form here) so that tf.memory() sees its tensors.
    const threads = process.env.TFJS_REWRITE_THREADS;
    process.env.TFJS_REWRITE_THREADS = '0';
    try {
      await expectNoLeaks(async () => {
        const v = await verify(original, rewritten, { backend: 'cpu', local: true, localForm: 'columns', localHere: true, rewrittenLayers: result.report.rewritten });
        expect([v.local?.form, v.passed]).toEqual(['columns', true]);
      });
    } finally {
      if (threads === undefined) delete process.env.TFJS_REWRITE_THREADS;
      else process.env.TFJS_REWRITE_THREADS = threads;
    }
    // verify() of two models has no records: which depth pieces hold a conv's input is unknown.
    const v = await verify(original, rewritten, { backend: 'cpu', local: true, localForm: 'columns' });
    expect(v.local?.form).toBe('corners');
    expect(v.notes!.join('\n')).toMatch(/no check in columns: conv conv0 has no per-layer probe in the rewritten model \(per-layer reference not available for conv0: found 23 replacement output\(s\) for 1 call\(s\)\)/);
    const loaded = await result.load();
    const x = tf.randomUniform([1, 23, 9, 8, 2], -1, 1, 'float32', 3);
    const seen: string[] = [];
    const [a] = executeWithTaps(loaded, x, new Set(loaded.outputs.map((o) => o.id)), (s) => seen.push(s.name));
    const b = loaded.predict(x) as tf.Tensor;
    expect([seen, tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]]).toEqual([loaded.outputs.map((o) => o.name), 0]);
    expect(loaded.layers.filter((l) => Object.prototype.hasOwnProperty.call(l, 'apply'))).toEqual([]);
    tf.dispose([a, b, x]);
    disposeModel(loaded);
  });
});

test('random chains (kernels, dilations, volumes, channels, activations): the column form passes and its columns are where it says', async () => {
  const rand = mulberry32(1806);
  const pick = <T>(list: T[]) => list[Math.floor(rand() * list.length)];
  const drawn: string[] = [];
  for (let trial = 0; trial < 5; trial++) {
    const d: Drawn = {
      spatial: [12 + Math.floor(rand() * 14), 3 + Math.floor(rand() * 8), 3 + Math.floor(rand() * 8)],
      channels: 1 + Math.floor(rand() * 3),
      classes: 1 + Math.floor(rand() * 3),
      convs: Array.from({ length: 2 + Math.floor(rand() * 3) }, () => ({
        kernel: Array.from({ length: 3 }, () => 1 + Math.floor(rand() * 4)), // even kernels pad unevenly
        dilation: Array.from({ length: 3 }, () => 1 + Math.floor(rand() * 3)),
        filters: 1 + Math.floor(rand() * 4),
        activation: pick(['relu', 'elu', 'sigmoid', 'tanh']),
      })),
    };
    const label = `${d.spatial.join('x')}x${d.channels}: ${d.convs.map((c) => `k${c.kernel.join('')}/d${c.dilation.join('')}/f${c.filters}/${c.activation}`).join(' ')} -> ${d.classes}`;
    drawn.push(label);
    const model = stack(d, trial);
    const { report } = await optimize(model, { passes: passes(), backend: 'cpu', local: true, localForm: 'columns' });
    disposeModel(model);
    const v = report.verification!;
    const windows = columnWindows(d.spatial);
    expect([label, v.local?.form, v.passed, v.layers!.length]).toEqual([label, 'columns', true, d.convs.length + 1]);
    expect(v.outputs[0].shape).toEqual([windows.length, d.spatial[0], Math.min(COLUMN_EDGE, d.spatial[1]), Math.min(COLUMN_EDGE, d.spatial[2]), d.classes]);
  }
  console.log(`drawn chains: ${drawn.join('; ')}`);
});

test('cut (a column read out of a tapped tensor) equals tf.slice on random shapes, ranks 1-5', () => {
  const rand = mulberry32(77);
  const drawn: string[] = [];
  for (let trial = 0; trial < 40; trial++) {
    const rank = 1 + (trial % 5);
    const shape = Array.from({ length: rank }, () => 1 + Math.floor(rand() * 6));
    const begin = shape.map((n) => Math.floor(rand() * n));
    const size = shape.map((n, a) => 1 + Math.floor(rand() * (n - begin[a])));
    drawn.push(`${shape.join('x')}@${begin.join(',')}+${size.join(',')}`);
    const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i);
    const expected = tf.tidy(() => Array.from(tf.slice(tf.tensor(data, shape), begin, size).dataSync()));
    expect([drawn.at(-1), Array.from(cut(data, shape, begin, size))]).toEqual([drawn.at(-1), expected]);
  }
  console.log(`drawn cuts: ${drawn.join(' ')}`);
});
