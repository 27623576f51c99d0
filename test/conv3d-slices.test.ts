/**
 * conv3d-to-conv2d-slices (layers models): the geometry on its own (padding split, term ranges),
 * priority against conv3d-to-dense, refusals, and a property test that draws sliding convs
 * across every dimension the identity depends on and compares the rewritten model, loaded by
 * stock tfjs, with tf.conv3d on cpu (tight, explicit tolerances). MeshNet-shaped fixture: the
 * default policy on wasm (table: rewrite) and cpu (table: keep), and a run on wasm.
 */
import * as tf from '@tensorflow/tfjs';
import { artifactsOfModel, inspect, optimize, verify } from '../src';
import { convAxis, depthTerms, planSliding } from '../src/rewrite/sliding-conv';
import { CHUNK_INDIRECTION_BYTES, chunkCount, chunksOf, slidingLayersPass } from '../src/rewrite/sliding-conv-layers';
import { fixture, mulberry32 } from '../fixtures/models';
import { GraphBuilder } from '../fixtures/graph-models';
import { quantizeArtifacts } from '../fixtures/quantize';
import { attr } from '../src/graphdef/attrs';
import { optimizeGraphModel } from '../src/pipeline';
import { disposeModel, useBackendForFile } from './helpers/tf';

useBackendForFile('cpu');

const RULE = 'conv3d-to-conv2d-slices';
const ATOL = 1e-5;
const RTOL = 1e-4;

/** max(|a - b| - (atol + rtol |b|)): <= 0 when every element is within tolerance. */
function excess(actual: tf.Tensor, expected: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.sub(tf.abs(tf.sub(actual, expected)), tf.add(ATOL, tf.mul(RTOL, tf.abs(expected))))).dataSync()[0]);
}

describe('geometry', () => {
  test("'same' splits the padding as TF does: the odd zero goes after", () => {
    // size 6, kernel 2, stride 1: total 1 -> [0, 1]; size 7, kernel 4, stride 2: out 4, total 3 -> [1, 2].
    expect(convAxis(6, 2, 1, 1, 'same').pad).toEqual([0, 1]);
    expect(convAxis(7, 4, 2, 1, 'same')).toMatchObject({ out: 4, pad: [1, 2] });
    // dilation 3, kernel 3: extent 7, size 5 -> total 6 -> [3, 3].
    expect(convAxis(5, 3, 1, 3, 'same')).toMatchObject({ extent: 7, out: 5, pad: [3, 3] });
    expect(convAxis(9, 3, 2, 1, 'valid')).toMatchObject({ out: 4, pad: [0, 0] });
  });

  test('depth terms skip output depths whose input slice is padding, and terms that read only padding', () => {
    const plan = planSliding({
      kernel: [3, 1, 1], strides: [1, 1, 1], dilation: [4, 1, 1], padding: 'same', groups: 1, filters: 1,
      spatial: [5, 1, 1], channels: 1, kernelWeight: { shape: [3, 1, 1, 1, 1], dtype: 'float32' }, bias: null, owner: 'c',
    });
    if ('refusal' in plan) throw new Error(plan.refusal);
    // pad 4 before: term 0 reads d - 4 (outputs 4..4), term 1 reads d, term 2 reads d + 4 (outputs 0..0).
    expect(depthTerms(plan)).toEqual([{ i: 0, lo: 4, hi: 5, first: 0 }, { i: 1, lo: 0, hi: 5, first: 0 }, { i: 2, lo: 0, hi: 1, first: 4 }]);
    const tiny = planSliding({
      kernel: [2, 1, 1], strides: [1, 1, 1], dilation: [5, 1, 1], padding: 'same', groups: 1, filters: 1,
      spatial: [2, 1, 1], channels: 1, kernelWeight: { shape: [2, 1, 1, 1, 1], dtype: 'float32' }, bias: null, owner: 'c',
    });
    if ('refusal' in tiny) throw new Error(tiny.refusal);
    // Every tap of every output falls in the padding: no term at all (the output is zeros + bias).
    expect(depthTerms(tiny)).toEqual([]);
  });

  test('refusals name the failing value', () => {
    const base = {
      kernel: [3, 3, 3], strides: [1, 1, 1], dilation: [1, 1, 1], padding: 'valid', groups: 1, filters: 2,
      spatial: [4, 4, 4], channels: 1, kernelWeight: { shape: [3, 3, 3, 1, 2], dtype: 'float32' }, bias: null, owner: 'c',
    };
    expect(planSliding({ ...base, spatial: [2, 4, 4] })).toEqual({ refusal: 'input D=2 is smaller than the dilated kernel 3' });
    expect(planSliding({ ...base, spatial: [null, 4, 4] })).toEqual({ refusal: 'input sizes [null, 4, 4] x 1 channels are not static beyond the batch' });
    expect(planSliding({ ...base, padding: 'causal' })).toEqual({ refusal: "padding 'causal' is not 'valid' or 'same'" });
    expect(planSliding({ ...base, kernelWeight: { shape: [3, 3, 3, 1, 2], dtype: 'int32' } })).toEqual({ refusal: 'kernel dtype int32 is not float32' });
    // tfjs's conv3d reads from H=1 here where TF pads nothing (see test 'tfjs pads ... negative').
    expect(planSliding({ ...base, kernel: [1, 1, 1], strides: [1, 3, 1], padding: 'same', spatial: [2, 3, 1], kernelWeight: { shape: [1, 1, 1, 1, 2], dtype: 'float32' } }))
      .toEqual({ refusal: "padding 'same' with stride 3 on H=3 needs -2 padding: tfjs's Conv3D does not clamp it to 0 as TF does (it reads from H=1), so the original differs from TF there" });
  });

  test("tfjs pads a 'same' Conv3D with a negative amount where TF pads 0 (why the rule refuses those)", () => {
    // [1,2,3,1,1] = 1..6, kernel 1x1x1 = 2, strides [1,3,1]: TF gives rows 0 -> [2, 8]; tfjs 4.22 reads row 1.
    const out = tf.tidy(() => tf.conv3d(tf.tensor5d([1, 2, 3, 4, 5, 6], [1, 2, 3, 1, 1]), tf.tensor5d([2], [1, 1, 1, 1, 1]), [1, 3, 1], 'same').dataSync());
    const conv2d = tf.tidy(() => tf.conv2d(tf.tensor4d([1, 2, 3, 4, 5, 6], [2, 3, 1, 1]), tf.tensor4d([2], [1, 1, 1, 1]), [3, 1], 'same').dataSync());
    expect(Array.from(conv2d)).toEqual([2, 8]);
    // If a tfjs upgrade fixes this, the refusal above can go: this assertion will say so.
    expect(Array.from(out)).toEqual([4, 10]);
  });
});

describe('rule', () => {
  const one = (shape: number[], args: tf.layers.Layer | object, name = 'm') => {
    const input = tf.input({ shape, name: `${name}_x` });
    const layer = args instanceof tf.layers.Layer ? args : tf.layers.conv3d({ name: 'c', ...(args as object) } as never);
    return tf.model({ inputs: input, outputs: layer.apply(input) as tf.SymbolicTensor, name });
  };
  const inspectDefault = async (model: tf.LayersModel, backend: string) => {
    try {
      return await inspect(await artifactsOfModel(model), { backend });
    } finally {
      disposeModel(model);
    }
  };

  test('priority: a conv that does not slide stays conv3d-to-dense\'s (one Dense, not kd Conv2Ds)', async () => {
    const model = one([4, 8, 8, 2], { filters: 3, kernelSize: [2, 4, 4], strides: [2, 4, 4] });
    // The default pipeline, in registry order; 'always' so the policy does not decide instead.
    const report = await inspect(await artifactsOfModel(model), { backend: 'cpu', policy: 'always' });
    disposeModel(model);
    expect(report.rewritten.map((r) => r.pass)).toEqual(['conv3d-to-dense']);
  });

  test('a dynamic depth stays, with the reason', async () => {
    const report = await inspect(await artifactsOfModel(one([null, 6, 6, 2] as unknown as number[], { filters: 2, kernelSize: 3 })), { passes: [RULE], backend: 'cpu' });
    expect(report.rewritten).toEqual([]);
    expect(report.skipped.map((s) => s.reason)).toEqual(['input sizes [null, 6, 6] x 2 channels are not static beyond the batch']);
  });

  test('an activity regularizer stays (it would see partial sums)', async () => {
    // tfjs cannot call a layer with one; Keras writes them, so the topology gets one by hand.
    const artifacts = await artifactsOfModel(one([4, 4, 4, 1], { filters: 2, kernelSize: 3 }));
    const layers = (artifacts.modelTopology as { config: { layers: { config: Record<string, unknown> }[] } }).config.layers;
    layers[1].config.activity_regularizer = { class_name: 'L1L2', config: { l1: 0, l2: 0.01 } };
    const report = await inspect(artifacts, { passes: [RULE], backend: 'cpu' });
    expect(report.skipped.map((s) => s.reason)).toEqual(['activity_regularizer set (it would see partial sums)']);
  });

  test('default policy: the table rewrites a large sliding Conv3D on wasm and keeps it on cpu, quoting its evidence', async () => {
    const build = () => one([8, 16, 16, 16], { filters: 16, kernelSize: 3, padding: 'same' });
    const wasm = await inspectDefault(build(), 'wasm');
    expect(wasm.rewritten.map((r) => r.pass)).toEqual([RULE]);
    expect(wasm.policy!.decisions).toEqual([expect.objectContaining({ pass: RULE, decision: 'rewrite', evidence: 'table', reason: expect.stringContaining('XNNPACK') })]);
    const cpu = await inspectDefault(build(), 'cpu');
    expect(cpu.rewritten).toEqual([]);
    expect(cpu.policy!.decisions).toEqual([expect.objectContaining({ pass: RULE, decision: 'keep', evidence: 'table', reason: expect.stringContaining('same JS loops') })]);
  });

  test('graph models: the table decides a large Conv3D op as it does a layer; a timed one runs on a cut-out of its volume', async () => {
    const g = new GraphBuilder(77);
    const x = g.placeholder('x', [-1, 64, 64, 64, 2]);
    const filter = g.weight('conv/kernel', [3, 3, 3, 2, 4]);
    const y = g.op('conv/Conv3D', 'Conv3D', [x, filter], {
      T: attr.type('DT_FLOAT'), strides: attr.ints([1, 1, 1, 1, 1]), padding: attr.str('SAME'), data_format: attr.str('NDHWC'), dilations: attr.ints([1, 2, 2, 2, 1]),
    });
    g.output(y, [-1, 64, 64, 64, 4]);
    const artifacts = g.artifacts();
    const wasm = await inspect(artifacts, { backend: 'wasm' });
    expect(wasm.policy!.decisions).toEqual([expect.objectContaining({ pass: RULE, decision: 'rewrite', evidence: 'table', reason: expect.stringContaining('XNNPACK') })]);
    const cpu = await inspect(artifacts, { backend: 'cpu' });
    expect(cpu.policy!.decisions).toEqual([expect.objectContaining({ pass: RULE, decision: 'keep', evidence: 'table' })]);
    // 'measure' times it: the timer gets the op on a 48^3 cut (dilation 2: reach 5 per side fits), never the 64^3 volume.
    const seen: { shape: number[]; cutOutOf?: number[]; replacement: string[] }[] = [];
    const { report } = await optimizeGraphModel(artifacts, {
      backend: 'cpu', verify: false, policy: 'measure',
      policyTimer: async (cut) => (seen.push(cut), { originalMs: 10, rewrittenMs: 1 }),
    });
    expect(seen.length).toBeGreaterThan(0);
    for (const cut of seen) expect(cut).toMatchObject({ shape: [48, 48, 48, 2], cutOutOf: [64, 64, 64, 2] });
    expect(seen[0].replacement).toContain('Conv2D');
    expect(report.policy!.decisions).toEqual([expect.objectContaining({ pass: RULE, decision: 'rewrite', evidence: 'measured', reason: expect.stringContaining('[48,48,48,2] cut-out of its [64,64,64,2] input') })]);
  });
});

interface Case {
  id: number;
  spatial: number[];
  channels: number;
  filters: number;
  kernel: number[];
  strides: number[];
  dilation: number[];
  padding: 'valid' | 'same';
  channelsFirst: boolean;
  bias: boolean;
  activation: string;
  consumer: 'none' | 'conv' | 'flatten-dense' | 'residual';
  /**
   * What holds the conv: a functional model, a Sequential (its Add of depth terms makes it
   * functional), or a Sequential nested in a functional model (the residual's Add outside it).
   */
  container: 'functional' | 'sequential' | 'nested';
  batch: number;
}

const ACTIVATIONS = ['linear', 'relu', 'sigmoid', 'tanh', 'softmax'];
const CONSUMERS: Case['consumer'][] = ['none', 'conv', 'flatten-dense', 'residual'];
const CONTAINERS: Case['container'][] = ['functional', 'sequential', 'nested'];

/** `containers`: a PRNG of its own, so the geometries drawn stay those of the seed. */
function drawCase(id: number, rand: () => number, containers?: () => number): Case {
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const pick = <T>(items: readonly T[]) => items[Math.floor(rand() * items.length)];
  const kernel = [int(1, 3), int(1, 3), int(1, 3)];
  // tfjs runs no conv with strides > 1 and dilation > 1 at once: draw one or the other.
  const strided = rand() < 0.5;
  const strides = strided ? [int(1, 3), int(1, 3), int(1, 3)] : [1, 1, 1];
  const dilation = strided ? [1, 1, 1] : [int(1, 3), int(1, 2), int(1, 2)];
  const padding = pick(['valid', 'same'] as const);
  // 'valid' needs the dilated kernel to fit; add a stride remainder now and then.
  const spatial = kernel.map((k, a) => (k - 1) * dilation[a] + 1 + int(0, 4) + (padding === 'same' ? int(0, 2) : 0));
  const consumer = pick(CONSUMERS);
  const channels = int(1, 3);
  const filters = consumer === 'residual' ? channels : int(1, 4);
  return {
    id, spatial, channels, filters, kernel, strides, dilation, padding, channelsFirst: rand() < 0.3, bias: rand() < 0.7,
    activation: pick(ACTIVATIONS), consumer, batch: int(1, 2),
    container: containers ? CONTAINERS[Math.floor(containers() * CONTAINERS.length)] : 'functional',
  };
}

/**
 * 'residual' needs the input's shape back (stride 1, 'same'). A 'same' axis whose padding would
 * be negative (stride beyond the window) grows until it is not: tfjs's conv3d computes another
 * function there and the rule refuses it (tested above).
 */
function normalize(drawn: Case): Case {
  // A Sequential cannot hold the residual Add: the conv goes in a nested Sequential instead.
  const c = drawn.consumer === 'residual'
    ? { ...drawn, strides: [1, 1, 1], padding: 'same' as const, container: drawn.container === 'sequential' ? 'nested' as const : drawn.container }
    : drawn;
  const spatial = c.spatial.map((size, a) => {
    const extent = (c.kernel[a] - 1) * c.dilation[a] + 1;
    let s = size;
    while (c.padding === 'same' && (Math.ceil(s / c.strides[a]) - 1) * c.strides[a] + extent - s < 0) s++;
    return s;
  });
  return { ...c, spatial };
}

function buildCase(c: Case): { model: tf.LayersModel; conv: tf.layers.Layer } {
  const shape = c.channelsFirst ? [c.channels, ...c.spatial] : [...c.spatial, c.channels];
  const dataFormat = c.channelsFirst ? 'channelsFirst' : 'channelsLast';
  const conv = tf.layers.conv3d({
    name: `p${c.id}_conv`, filters: c.filters, kernelSize: c.kernel, strides: c.strides, dilationRate: c.dilation, padding: c.padding,
    dataFormat, useBias: c.bias, activation: c.activation as never, ...(c.container === 'functional' ? {} : { inputShape: shape }),
  });
  const after: tf.layers.Layer[] = [];
  if (c.consumer === 'conv') after.push(tf.layers.conv3d({ name: `p${c.id}_next`, filters: 2, kernelSize: 1, dataFormat }));
  if (c.consumer === 'flatten-dense') after.push(tf.layers.flatten({ name: `p${c.id}_flat` }), tf.layers.dense({ name: `p${c.id}_head`, units: 3 }));
  let model: tf.LayersModel;
  if (c.container === 'sequential') {
    model = tf.sequential({ name: `p${c.id}`, layers: [conv, ...after] });
  } else {
    const input = tf.input({ shape, name: `p${c.id}_x` });
    const body = c.container === 'nested' ? tf.sequential({ name: `p${c.id}_block`, layers: [conv] }) : conv;
    let y = after.reduce((t, layer) => layer.apply(t) as tf.SymbolicTensor, body.apply(input) as tf.SymbolicTensor);
    if (c.consumer === 'residual') y = tf.layers.add({ name: `p${c.id}_add` }).apply([y, input]) as tf.SymbolicTensor;
    model = tf.model({ inputs: input, outputs: y, name: `p${c.id}` });
  }
  // Non-zero biases and weights of both signs (the default bias initializer is zeros).
  const rand = mulberry32(7000 + c.id);
  const values = model.getWeights().map((w) => tf.tensor(Float32Array.from({ length: w.size }, () => rand() * 2 - 1), w.shape));
  model.setWeights(values);
  tf.dispose(values);
  return { model, conv };
}

type Entry = { name?: string; class_name: string; config: { name?: string; layers?: Entry[] } };

/** The topology entry of the model holding the conv: the top level, or the nested Sequential. */
function holderOf(c: Case, artifacts: tf.io.ModelArtifacts): Entry {
  const top = artifacts.modelTopology as unknown as Entry;
  return c.container === 'nested' ? top.config.layers!.find((l) => (l.name ?? l.config.name) === `p${c.id}_block`)! : top;
}

/** tf.conv3d (+ bias, activation) directly: the reference the conv layer must match. */
function reference(c: Case, conv: tf.layers.Layer, x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const [kernel, bias] = conv.getWeights();
    let input = c.channelsFirst ? tf.transpose(x, [0, 2, 3, 4, 1]) : x;
    let y = tf.conv3d(input as tf.Tensor5D, kernel as tf.Tensor5D, c.strides as [number, number, number], c.padding, 'NDHWC', c.dilation as [number, number, number]);
    if (bias) y = tf.add(y, bias);
    if (c.channelsFirst) y = tf.transpose(y, [0, 4, 1, 2, 3]);
    input = y;
    switch (c.activation) {
      case 'relu': return tf.relu(input);
      case 'sigmoid': return tf.sigmoid(input);
      case 'tanh': return tf.tanh(input);
      case 'softmax': return tf.softmax(input);
      default: return input;
    }
  });
}

/** Every layer of `model`, nested models' layers too. */
const allLayers = (m: tf.LayersModel): tf.layers.Layer[] => m.layers.flatMap((l) => [l, ...(l instanceof tf.LayersModel ? allLayers(l) : [])]);

/**
 * The rewritten model against the original on one seeded batch, and (conv alone) against
 * tf.conv3d, within the tolerances; disposes both models.
 */
function expectSameFunction(c: Case, model: tf.LayersModel, conv: tf.layers.Layer, rewritten: tf.LayersModel, seed: number): void {
  const x = tf.randomUniform([c.batch, ...(model.inputs[0].shape.slice(1) as number[])], -1, 1, 'float32', seed);
  const [a, b] = [model.predict(x) as tf.Tensor, rewritten.predict(x) as tf.Tensor];
  expect(b.shape).toEqual(a.shape);
  expect(excess(b, a)).toBeLessThanOrEqual(0);
  if (c.consumer === 'none') {
    const expected = reference(c, conv, x);
    expect(excess(b, expected)).toBeLessThanOrEqual(0);
    expected.dispose();
  }
  tf.dispose([x, a, b]);
  disposeModel(rewritten);
  disposeModel(model);
}

describe('property: sliding Conv3D == its Conv2D depth sum, on stock tfjs (cpu)', () => {
  const rand = mulberry32(20261205);
  const containers = mulberry32(20261207);
  const cases = Array.from({ length: 28 }, (_, id) => normalize(drawCase(id, rand, containers)));

  beforeAll(() => {
    const count = (f: (c: Case) => string) => Object.entries(cases.reduce<Record<string, number>>((acc, c) => ({ ...acc, [f(c)]: (acc[f(c)] ?? 0) + 1 }), {}))
      .map(([k, v]) => `${k}:${v}`).join(' ');
    // Printed once so a reader can check what was drawn.
    console.log([
      `conv3d-to-conv2d-slices property cases (${cases.length}, mulberry32 seed 20261205):`,
      `  kernel ${count((c) => c.kernel.join('x'))}`,
      `  strides ${count((c) => c.strides.join('x'))}`,
      `  dilation ${count((c) => c.dilation.join('x'))} (depth dilated: ${cases.filter((c) => c.dilation[0] > 1).length})`,
      `  padding ${count((c) => c.padding)}; asymmetric 'same' split on some axis: ${cases.filter((c) => c.padding === 'same' && c.spatial.some((s, a) => ((Math.ceil(s / c.strides[a]) - 1) * c.strides[a] + (c.kernel[a] - 1) * c.dilation[a] + 1 - s) % 2 === 1)).length}`,
      `  stride remainder on some axis: ${cases.filter((c) => c.spatial.some((s, a) => c.strides[a] > 1 && (s - ((c.kernel[a] - 1) * c.dilation[a] + 1)) % c.strides[a] !== 0)).length}`,
      `  channels_first ${cases.filter((c) => c.channelsFirst).length}, bias ${cases.filter((c) => c.bias).length}`,
      `  activation ${count((c) => c.activation)}`,
      `  consumer ${count((c) => c.consumer)}, batch ${count((c) => String(c.batch))}`,
      `  container ${count((c) => c.container)} (containers: mulberry32 seed 20261207); Sequential holders with kernel depth > 1: ${cases.filter((c) => c.container !== 'functional' && c.kernel[0] > 1).length}, = 1: ${cases.filter((c) => c.container !== 'functional' && c.kernel[0] === 1).length}`,
    ].join('\n'));
  });

  test.each(cases.map((c) => [`${c.id}: ${c.spatial.join('x')}x${c.channels} k${c.kernel.join('')} s${c.strides.join('')} d${c.dilation.join('')} ${c.padding}${c.channelsFirst ? ' cf' : ''}${c.bias ? ' bias' : ''} ${c.activation} -> ${c.consumer} in ${c.container}`, c] as const))('%s', async (_, c) => {
    const tensors = tf.memory().numTensors;
    const { model, conv } = buildCase(c);
    const result = await optimize(model, { passes: [RULE], backend: 'cpu', verify: false });
    expect(result.report.rewritten.map((r) => [r.layer, r.pass])).toEqual([[`p${c.id}_conv`, RULE]]);
    // A Sequential holder becomes functional exactly when the rewrite needs an Add of depth terms.
    const holder = holderOf(c, result.artifacts);
    const hasAdd = holder.config.layers!.some((l) => l.class_name === 'Add' && (l.name ?? l.config.name) !== `p${c.id}_add`);
    expect(holder.class_name).toBe(c.container === 'functional' || hasAdd ? 'Model' : 'Sequential');
    const rewritten = await result.load();
    expect(allLayers(rewritten).some((l) => l.getClassName() === 'Conv3D' && l.name === `p${c.id}_conv`)).toBe(false);
    expectSameFunction(c, model, conv, rewritten, 100 + c.id);
    expect(tf.memory().numTensors).toBe(tensors);
  });
});

/** The input height of every call of every Conv2D (nested models too) in one predict, in run order. */
function conv2dImages(model: tf.LayersModel, shape: number[]): Map<string, number[]> {
  const seen = new Map<string, number[]>();
  const patched = allLayers(model).filter((l) => l.getClassName() === 'Conv2D').map((layer) => {
    const call = layer.call.bind(layer);
    layer.call = (inputs, kwargs) => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      seen.set(layer.name, [...(seen.get(layer.name) ?? []), x.shape[1]!]);
      return call(inputs, kwargs);
    };
    return { layer, call };
  });
  tf.tidy(() => { model.predict(tf.zeros(shape)); });
  for (const { layer, call } of patched) layer.call = call;
  return seen;
}

/**
 * Big volumes run in depth chunks (each chunk's Conv2D images bounded, see
 * CHUNK_INDIRECTION_BYTES): the same draws with a deeper volume and a small bound, so the chunk
 * slabs, their zero slices at the volume's ends, the group slabs (more than 4 chunks) and the
 * concatenation all run here on shapes stock tfjs checks in milliseconds.
 */
describe('property: the same identity in depth chunks, on stock tfjs (cpu)', () => {
  const rand = mulberry32(20261209);
  const containers = mulberry32(20261210);
  const cases = Array.from({ length: 16 }, (_, k) => {
    const drawn = drawCase(100 + k, rand, containers);
    return { c: normalize({ ...drawn, spatial: [drawn.spatial[0] + 2 + Math.floor(rand() * 8), ...drawn.spatial.slice(1)] }), bound: [1, 1500, 6000][Math.floor(rand() * 3)] };
  });
  const chunksOfCase = ({ c, bound }: (typeof cases)[number]) => {
    const g = planSliding({
      kernel: c.kernel, strides: c.strides, dilation: c.dilation, padding: c.padding, groups: 1, filters: c.filters, spatial: c.spatial, channels: c.channels,
      kernelWeight: { shape: [...c.kernel, c.channels, c.filters], dtype: 'float32' }, bias: null, owner: 'c',
    });
    if ('refusal' in g) throw new Error(g.refusal);
    return chunksOf(g, bound).length;
  };

  beforeAll(() => {
    console.log(`conv3d-to-conv2d-slices chunked cases (${cases.length}, mulberry32 seed 20261209): ${cases.map((k) =>
      `${k.c.spatial.join('x')} k${k.c.kernel.join('')} s${k.c.strides.join('')} d${k.c.dilation.join('')} ${k.c.padding}${k.c.channelsFirst ? ' cf' : ''} ${k.c.container} -> ${chunksOfCase(k)} chunks`).join('; ')}`);
  });

  test.each(cases.map((k) => [`${k.c.id}: ${k.c.spatial.join('x')}x${k.c.channels} k${k.c.kernel.join('')} s${k.c.strides.join('')} d${k.c.dilation.join('')} ${k.c.padding}${k.c.channelsFirst ? ' cf' : ''}${k.c.bias ? ' bias' : ''} ${k.c.activation} -> ${k.c.consumer} in ${k.c.container}, bound ${k.bound} B`, k] as const))('%s', async (_, k) => {
    const { c } = k;
    const tensors = tf.memory().numTensors;
    const { model, conv } = buildCase(c);
    const result = await optimize(model, { passes: [slidingLayersPass(RULE, k.bound)], backend: 'cpu', verify: false });
    // A rule object passed in has no registry priority: it may take a 1x1x1 consumer too (compared below).
    expect(result.report.rewritten.map((r) => [r.layer, r.pass])).toContainEqual([`p${c.id}_conv`, RULE]);
    const chunks = chunksOfCase(k);
    const holder = holderOf(c, result.artifacts);
    const own = (cls: string) => holder.config.layers!.filter((l) => l.class_name === cls && (l.name ?? l.config.name)!.startsWith(`p${c.id}_conv_`));
    // A 1x1x1 consumer conv (channels_last) reads the chunk outputs as depth pieces: the whole-volume Concatenate is then gone.
    const absorbed = result.report.rewritten.some((r) => r.layer === `p${c.id}_next` && r.absorbed?.some((name) => name.startsWith(`p${c.id}_conv_`)));
    if (absorbed) expect([c.consumer, c.channelsFirst, chunks > 1]).toEqual(['conv', false, true]);
    expect(own('Concatenate').length).toBe(chunks > 1 && !absorbed ? 1 : 0);
    // One Conv2D per kernel depth however many chunks share it.
    expect(own('Conv2D').length).toBeLessThanOrEqual(c.kernel[0]);
    const rewritten = await result.load();
    // XNNPACK keeps, per filter, a buffer sized by its last image: in predict, each Conv2D's
    // last call must be its smallest (the one-depth first chunk, chunksOf).
    const images = conv2dImages(rewritten, [c.batch, ...(model.inputs[0].shape.slice(1) as number[])]);
    const ownImages = [...images].filter(([name]) => name.startsWith(`p${c.id}_conv_`));
    expect(ownImages.length).toBe(own('Conv2D').length);
    for (const [, heights] of ownImages) expect(heights[heights.length - 1]).toBe(Math.min(...heights));
    expectSameFunction(c, model, conv, rewritten, 500 + c.id);
    expect(tf.memory().numTensors).toBe(tensors);
  });

  test('each Conv2D of a chunked dilated same conv runs last on one block, a zero block where the first depth reads only padding', async () => {
    const input = tf.input({ shape: [20, 5, 5, 2] });
    const conv = tf.layers.conv3d({ name: 'mesh', filters: 3, kernelSize: 3, padding: 'same', dilationRate: 2, activation: 'relu' });
    const model = tf.model({ inputs: input, outputs: conv.apply(input) as tf.SymbolicTensor });
    // 9 rows x 5 columns x 9 taps x 4 B per output depth: chunks of 4 depths, plus the one-depth first chunk.
    const result = await optimize(model, { passes: [slidingLayersPass(RULE, 4 * 9 * 5 * 9 * 4)], backend: 'cpu', verify: false });
    const rewritten = await result.load();
    const images = conv2dImages(rewritten, [1, 20, 5, 5, 2]);
    expect([...images.keys()].length).toBe(3);
    // Blocks of 9 rows (+ 4 zero rows for the last window); kernel depth 0 reads depth -2 for
    // output 0: its last call is a zero block.
    for (const heights of images.values()) {
      expect(heights[heights.length - 1]).toBe(9 + 4);
      expect(Math.max(...heights)).toBe(4 * 9 + 4);
    }
    const x = tf.randomUniform([1, 20, 5, 5, 2], -1, 1, 'float32', 3);
    const [a, b] = [model.predict(x) as tf.Tensor, rewritten.predict(x) as tf.Tensor];
    expect(excess(b, a)).toBeLessThanOrEqual(0);
    tf.dispose([x, a, b]);
    disposeModel(rewritten);
    disposeModel(model);
  });

  test('a stack of chunked convs passes its volume in depth pieces, one conv at a time, each Conv2D last on its smallest image', async () => {
    // MeshNet-shaped: dilated 'same' convs, gelu Activation layers between, a 1x1x1 classifier.
    const input = tf.input({ shape: [23, 5, 4, 2] });
    let x: tf.SymbolicTensor = input;
    [1, 2, 4, 1].forEach((d, i) => {
      x = tf.layers.conv3d({ name: `stack${i}`, filters: 3, kernelSize: 3, padding: 'same', dilationRate: d }).apply(x) as tf.SymbolicTensor;
      x = tf.layers.activation({ name: `act${i}`, activation: i % 2 ? 'relu' : 'elu' }).apply(x) as tf.SymbolicTensor;
    });
    x = tf.layers.conv3d({ name: 'classifier', filters: 2, kernelSize: 1 }).apply(x) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: x });
    // 9 rows x 4 columns x 9 taps x 4 B per output depth at dilation 4: chunks of 3 depths.
    const result = await optimize(model, { passes: [slidingLayersPass(RULE, 3 * 9 * 4 * 9 * 4)], backend: 'cpu', verify: false });
    expect(result.report.rewritten.map((r) => r.layer)).toEqual(['stack0', 'stack1', 'stack2', 'stack3', 'classifier']);
    // Each conv after the first absorbed the Concatenate, Reshape and Activation before it.
    expect(result.report.rewritten.slice(1).map((r) => r.absorbed?.length)).toEqual([3, 3, 3, 3]);
    const rewritten = await result.load();
    const shapes = allLayers(rewritten).filter((l) => l.getClassName() === 'Concatenate').map((l) => (l.outputShape as number[])[1]);
    // The whole depth is one tensor only at the model's end (the classifier's 2 channels).
    expect(shapes.filter((depth) => depth === 23)).toHaveLength(1);
    // The barrier: an empty [0, H, W*C] read by each conv's last chunk.
    expect(allLayers(rewritten).filter((l) => l.getClassName() === 'Reshape' && (l.outputShape as number[])[1] === 0)).toHaveLength(4);
    const order: string[] = [];
    const patched = allLayers(rewritten).filter((l) => l.getClassName() === 'Conv2D').map((layer) => {
      const call = layer.call.bind(layer);
      layer.call = (inputs, kwargs) => {
        order.push(`${layer.name}:${(Array.isArray(inputs) ? inputs[0] : inputs).shape[1]}`);
        return call(inputs, kwargs);
      };
      return { layer, call };
    });
    const probe = tf.randomUniform([2, 23, 5, 4, 2], -1, 1, 'float32', 11);
    const [a, b] = [model.predict(probe) as tf.Tensor, rewritten.predict(probe) as tf.Tensor];
    for (const { layer, call } of patched) layer.call = call;
    expect(excess(b, a)).toBeLessThanOrEqual(0);
    // One conv at a time: every Conv2D call of stack i precedes every call of stack i + 1.
    const convOf = (entry: string) => entry.replace(/_conv2d.*/, '');
    const runs = order.map(convOf).filter((c, i, all) => i === 0 || c !== all[i - 1]);
    expect(runs).toEqual(['stack0', 'stack1', 'stack2', 'stack3', 'classifier']);
    for (const name of new Set(order.map((e) => e.split(':')[0]))) {
      const heights = order.filter((e) => e.startsWith(`${name}:`)).map((e) => Number(e.split(':')[1]));
      expect(heights[heights.length - 1]).toBe(Math.min(...heights));
    }
    tf.dispose([a, b]);
    disposeModel(rewritten);
    // Verified whole: each conv is checked on the depth pieces that hold its input and output
    // (joined), against the float64 conv of its own input in the rewritten model.
    const verified = await optimize(model, { passes: [slidingLayersPass(RULE, 3 * 9 * 4 * 9 * 4)], backend: 'cpu', batch: 2 });
    expect(verified.report.verification).toMatchObject({ passed: true });
    const checks = verified.report.verification!.layers;
    expect(checks.map((l) => [l.layer, l.elements])).toEqual(['stack0', 'stack1', 'stack2', 'stack3', 'classifier'].map((name, i) => [name, 2 * 23 * 5 * 4 * (i < 4 ? 3 : 2)]));
    for (const check of checks) expect(check.ratio).toBeLessThan(2);
    // With conv3d-to-dense first (the registry's priority), the 1x1x1 classifier is its: one Dense
    // per piece (shared), the pieces absorbed, the whole input volume still never one tensor.
    const both = await optimize(model, { passes: ['conv3d-to-dense', slidingLayersPass(RULE, 3 * 9 * 4 * 9 * 4)], backend: 'cpu', batch: 2 });
    const classifier = both.report.rewritten.find((r) => r.layer === 'classifier')!;
    expect([classifier.pass, classifier.absorbed?.length]).toEqual(['conv3d-to-dense', 3]);
    expect(both.report.verification).toMatchObject({ passed: true });
    expect(both.report.verification!.layers.find((l) => l.layer === 'classifier')!.ratio).toBeLessThan(2);
    const dense = await both.load();
    const denseLayers = allLayers(dense);
    // One Dense, called once per piece of act3.
    expect(classifier.pieces!.act3.length).toBeGreaterThan(4);
    expect(denseLayers.filter((l) => l.getClassName() === 'Dense').map((l) => l.inboundNodes.length)).toEqual([classifier.pieces!.act3.length]);
    const [c, d] = [model.predict(probe) as tf.Tensor, dense.predict(probe) as tf.Tensor];
    expect(excess(d, c)).toBeLessThanOrEqual(0);
    tf.dispose([c, d]);
    disposeModel(dense);
    // Given two models, no record names the pieces: a conv reading pieces has no per-layer check
    // (against the original's input it would be charged with upstream drift), said so.
    const two = await verify(model, verified.artifacts, { backend: 'cpu', batch: 2 });
    expect(two.passed).toBe(true);
    expect(two.notes.filter((n) => /reads its input in depth pieces/.test(n)).length).toBeGreaterThan(0);
    probe.dispose();
    disposeModel(model);
  });

  test('a 256^3 MeshNet layer runs in chunks whose Conv2D images keep <= CHUNK_INDIRECTION_BYTES (16 MiB) of XNNPACK indirection each', () => {
    const g = planSliding({
      kernel: [3, 3, 3], strides: [1, 1, 1], dilation: [16, 16, 16], padding: 'same', groups: 1, filters: 5, spatial: [256, 256, 256], channels: 5,
      kernelWeight: { shape: [3, 3, 3, 5, 5], dtype: 'float32' }, bias: { shape: [5] }, owner: 'c',
    });
    if ('refusal' in g) throw new Error(g.refusal);
    // 256 + 2 x 16 rows per block, 256 output columns, 9 taps of 4 B: 2.65 MB per output depth -> 6 per chunk.
    expect(CHUNK_INDIRECTION_BYTES).toBe(16 * 2 ** 20);
    expect(chunkCount(g, CHUNK_INDIRECTION_BYTES)).toBe(Math.ceil(256 / Math.floor(CHUNK_INDIRECTION_BYTES / (288 * 256 * 9 * 4))));
    expect(chunkCount(g, CHUNK_INDIRECTION_BYTES)).toBeGreaterThan(4);
    // A 38^3 volume stays one chunk: the form measured in docs/benchmarks.md.
    const small = planSliding({ ...{ kernel: [3, 3, 3], strides: [1, 1, 1], dilation: [16, 16, 16], padding: 'same', groups: 1, filters: 5, spatial: [38, 38, 38], channels: 5 }, kernelWeight: { shape: [3, 3, 3, 5, 5], dtype: 'float32' }, bias: null, owner: 'c' });
    if ('refusal' in small) throw new Error(small.refusal);
    expect(chunkCount(small, CHUNK_INDIRECTION_BYTES)).toBe(1);
  });
});

describe('MeshNet-shaped fixture', () => {
  test('optimize --backend wasm with default settings rewrites every conv and verifies on wasm', async () => {
    const model = fixture('meshnet-mini').build();
    try {
      const result = await optimize(model, { backend: 'wasm', batch: 1 });
      expect(result.report.rewritten.map((r) => r.pass).sort()).toEqual([...new Array(5).fill(RULE), 'conv3d-to-dense'].sort());
      expect(result.report.verification).toMatchObject({ passed: true, backend: 'wasm' });
      expect(tf.getBackend()).toBe('cpu');
    } finally {
      disposeModel(model);
    }
    // ~20 s alone here; minutes when the 2 cores are shared by many jobs.
  }, 300000);
});

/**
 * The graph lowering on the converter's Conv3D (+ BiasAdd) ops, drawn like the layers cases
 * (NDHWC only: TF's CPU kernels, hence converted models, run no other), loaded by stock
 * tf.loadGraphModel and compared with tf.conv3d.
 */
describe('property (graph models): Conv3D op == its Conv2D depth sum, on stock tfjs (cpu)', () => {
  const rand = mulberry32(20261206);
  const cases = Array.from({ length: 14 }, (_, id) => normalize({ ...drawCase(id, rand), channelsFirst: false, activation: 'linear', consumer: 'none' }));

  beforeAll(() => {
    console.log(`conv3d-to-conv2d-slices graph cases (${cases.length}, mulberry32 seed 20261206): ${cases.map((c) =>
      `${c.spatial.join('x')}x${c.channels} k${c.kernel.join('')} s${c.strides.join('')} d${c.dilation.join('')} ${c.padding}${c.bias ? ' bias' : ''} b${c.batch}`).join('; ')}`);
  });

  function graphOf(c: Case): { artifacts: tf.io.ModelArtifacts; kernel: tf.Tensor5D; bias?: tf.Tensor1D } {
    const g = new GraphBuilder(9000 + c.id);
    const x = g.placeholder('x', [-1, ...c.spatial, c.channels]);
    const filter = g.weight('conv/kernel', [...c.kernel, c.channels, c.filters]);
    let y = g.op('conv/Conv3D', 'Conv3D', [x, filter], {
      T: attr.type('DT_FLOAT'), strides: attr.ints([1, ...c.strides, 1]), padding: attr.str(c.padding.toUpperCase()),
      data_format: attr.str('NDHWC'), dilations: attr.ints([1, ...c.dilation, 1]),
    });
    if (c.bias) y = g.biasAdd('conv/BiasAdd', y, g.weight('conv/bias', [c.filters]));
    g.output(y, [-1, 1, 1, 1, c.filters]);
    const artifacts = g.artifacts();
    const values = new Float32Array(artifacts.weightData as ArrayBuffer);
    const kernelSize = c.kernel.reduce((a, b) => a * b, c.channels * c.filters);
    return {
      artifacts,
      kernel: tf.tensor5d(values.slice(0, kernelSize), [...c.kernel, c.channels, c.filters] as [number, number, number, number, number]),
      ...(c.bias ? { bias: tf.tensor1d(values.slice(kernelSize, kernelSize + c.filters)) } : {}),
    };
  }

  test.each(cases.map((c) => [`${c.id}: ${c.spatial.join('x')}x${c.channels} k${c.kernel.join('')} s${c.strides.join('')} d${c.dilation.join('')} ${c.padding}${c.bias ? ' bias' : ''}`, c] as const))('%s', async (_, c) => {
    const tensors = tf.memory().numTensors;
    const { artifacts, kernel, bias } = graphOf(c);
    const result = await optimizeGraphModel(artifacts, { passes: [RULE], backend: 'cpu', atol: ATOL, rtol: RTOL, batch: c.batch });
    expect(result.report.rewritten.map((r) => [r.layer, r.pass])).toEqual([['conv/Conv3D', RULE]]);
    expect(result.report.verification?.passed).toBe(true);
    const model = await tf.loadGraphModel(tf.io.fromMemory(result.artifacts));
    const ops = (result.artifacts.modelTopology as { node: { op: string }[] }).node.map((n) => n.op);
    expect(ops).not.toContain('Conv3D');
    expect(ops).toContain('Conv2D');
    const x = tf.randomUniform([c.batch, ...c.spatial, c.channels], -1, 1, 'float32', 300 + c.id);
    const actual = model.predict(x) as tf.Tensor;
    const expected = tf.tidy(() => {
      const y = tf.conv3d(x as tf.Tensor5D, kernel, c.strides as [number, number, number], c.padding, 'NDHWC', c.dilation as [number, number, number]);
      return bias ? tf.add(y, bias) : y;
    });
    expect(actual.shape).toEqual(expected.shape);
    expect(excess(actual, expected)).toBeLessThanOrEqual(0);
    tf.dispose([x, actual, expected, kernel, ...(bias ? [bias] : [])]);
    model.dispose();
    expect(tf.memory().numTensors).toBe(tensors);
  });
});

describe('quantized weights', () => {
  test.each(['uint8', 'float16'] as const)('%s: each Conv2D kernel keeps the encoding (a slice of the stored elements); verified on cpu', async (dtype) => {
    const input = tf.input({ shape: [5, 6, 6, 2], name: 'q_x' });
    const model = tf.model({ inputs: input, outputs: tf.layers.conv3d({ name: 'q', filters: 3, kernelSize: 3, padding: 'same', biasInitializer: 'ones' }).apply(input) as tf.SymbolicTensor });
    const artifacts = quantizeArtifacts(await artifactsOfModel(model), dtype);
    disposeModel(model);
    const result = await optimize(artifacts, { passes: [RULE], backend: 'cpu', batch: 1 });
    expect(result.report.rewritten.map((r) => r.pass)).toEqual([RULE]);
    expect(result.report.verification?.passed).toBe(true);
    const kernels = result.artifacts.weightSpecs!.filter((s) => /q_conv2d_\d+\/kernel$/.test(s.name));
    expect(kernels.length).toBe(3);
    for (const spec of kernels) expect(spec.quantization?.dtype).toBe(dtype);
    expect(result.report.notes.join('\n')).toContain(`the ${dtype}-quantized kernel keeps its encoding in the Conv2D kernels`);
  });
});
