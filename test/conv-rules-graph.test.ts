/**
 * The conv-to-dense rules on GraphDef models (src/rewrite/non-sliding-conv-graphdef.ts): Conv2D,
 * _FusedConv2D (bias and activation carried into a _FusedMatMul) and the converter's Conv1D
 * form, each on the IR (node counts, refusal text) and numerically against the original run by
 * stock tf.loadGraphModel; and parity: the same convs as a layers model and as a graph model get
 * the same pass names and the same refusal reasons.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { GraphBuilder } from '../fixtures/graph-models';
import { attr } from '../src/graphdef/attrs';
import { InputError } from '../src/errors';
import { mulberry32 } from '../fixtures/models';
import { UNCHANGED, inspect } from '../src/pipeline';
import { inspectGraphModel, optimizeGraphModel, verifyGraphModels } from '../src/pipeline';
import * as path from 'path';
import { writeModelFiles } from '../src/io/files';
import { writeNpy } from '../src/io/npy';
import { runCli } from './helpers/cli';
import { expectNoLeaks, tempDir } from './helpers/tf';

const ATOL = 1e-5;
const CONV_PASSES = ['conv3d-to-dense', 'conv2d-to-dense', 'conv1d-to-dense'];
type Node = { name: string; op: string; input?: string[]; attr?: Record<string, { list?: { s?: string[] } }> };
const nodesOf = (a: io.ModelArtifacts) => (a.modelTopology as unknown as { node: Node[] }).node;
const count = (a: io.ModelArtifacts, op: string) => nodesOf(a).filter((n) => n.op === op).length;
const fusedOps = (node: Node) => (node.attr?.fused_ops?.list?.s ?? []).map((s) => Buffer.from(s, 'base64').toString());

beforeAll(() => tf.setBackend('cpu'));

/** Runs both models in stock tfjs on the same seeded batch; returns the largest |a - b| over all outputs. */
async function maxDiff(original: io.ModelArtifacts, rewritten: io.ModelArtifacts, batch = 3, seed = 7): Promise<number> {
  const [a, b] = [await tf.loadGraphModel(tf.io.fromMemory(original)), await tf.loadGraphModel(tf.io.fromMemory(rewritten))];
  const rand = mulberry32(seed);
  const feed: tf.NamedTensorMap = {};
  for (const input of a.inputs) {
    const shape = input.shape!.map((d) => (d < 0 ? batch : d));
    feed[input.name] = tf.tensor(Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, () => rand() * 2 - 1), shape);
  }
  try {
    const run = (m: tf.GraphModel) => [m.execute(feed, a.outputNodes)].flat();
    const [ya, yb] = [run(a), run(b)];
    const diffs = ya.map((t, i) => {
      expect(yb[i].shape).toEqual(t.shape);
      return tf.tidy(() => tf.max(tf.abs(tf.sub(t, yb[i]))).dataSync()[0]);
    });
    tf.dispose([...ya, ...yb]);
    return Math.max(...diffs);
  } finally {
    tf.dispose(Object.values(feed));
    a.dispose();
    b.dispose();
  }
}

/** ViT patch embed as the converter writes it: Conv2D 16x16/16 -> BiasAdd -> Reshape to tokens. */
function vitPatchEmbed(fused: boolean): io.ModelArtifacts {
  const g = new GraphBuilder(11);
  const x = g.placeholder('pixel_values', [-1, 32, 48, 3]);
  const filter = g.weight('patch_embed/Conv2D/ReadVariableOp', [16, 16, 3, 24]);
  const bias = g.weight('patch_embed/BiasAdd/ReadVariableOp', [24]);
  const embed = fused
    ? g.conv2d('patch_embed/BiasAdd', x, filter, [16, 16], 'VALID', { fused: ['BiasAdd'], args: [bias] })
    : g.biasAdd('patch_embed/BiasAdd', g.conv2d('patch_embed/Conv2D', x, filter, [16, 16], 'VALID'), bias);
  g.output(g.reshape('tokens/Reshape', embed, [-1, 6, 24]), [-1, 6, 24]);
  return g.artifacts();
}

/** _FusedConv2D 1x1 stride 1 with BiasAdd + an activation (as the converter fuses a pointwise conv). */
function pointwise(activation: string, args = 1): io.ModelArtifacts {
  const g = new GraphBuilder(12);
  const x = g.placeholder('x', [-1, 5, 7, 6]);
  const extra = [g.weight('pw/bias', [10]), ...(args === 2 ? [g.weight('pw/alpha', [10])] : [])];
  const conv = g.conv2d('pw/Relu', x, g.weight('pw/filter', [1, 1, 6, 10]), [1, 1], 'VALID', { fused: ['BiasAdd', activation], args: extra, alpha: 0.3 });
  g.output(conv, [-1, 5, 7, 10]);
  return g.artifacts();
}

/** An audio frontend as the converter writes tf conv1d: ExpandDims -> Conv2D -> Squeeze -> BiasAdd. */
function audio(stride: number): io.ModelArtifacts {
  const g = new GraphBuilder(16);
  const x = g.placeholder('waveform', [-1, 50, 2]);
  const framed = g.conv1d('frames/conv1d', x, g.weight('frames/filter', [1, 5, 2, 12]), stride, 'VALID');
  const out = g.biasAdd('frames/BiasAdd', framed, g.weight('frames/bias', [12]));
  g.output(out, [-1, Math.floor((50 - 5) / stride) + 1, 12]);
  return g.artifacts();
}

describe('conv2d-to-dense on graph models', () => {
  test.each([false, true])('ViT patch embed (fused BiasAdd: %s) becomes Reshape/Transpose/_FusedMatMul under --passes, matching the original', async (fused) => {
    const original = vitPatchEmbed(fused);
    const { report, artifacts } = await expectNoLeaks(() => optimizeGraphModel(original, { passes: ['conv2d-to-dense'], backend: 'cpu', atol: ATOL, rtol: 0 }));
    expect(report.rewritten).toEqual([expect.objectContaining({ layer: fused ? 'patch_embed/BiasAdd' : 'patch_embed/Conv2D', pass: 'conv2d-to-dense' })]);
    expect(report.skipped).toEqual([]);
    expect([count(artifacts, 'Conv2D'), count(artifacts, '_FusedConv2D'), count(artifacts, 'BiasAdd')]).toEqual([0, 0, 0]);
    expect(count(artifacts, '_FusedMatMul')).toBe(1);
    // The output keeps its node name, so the signature and execute(name) still work.
    expect(nodesOf(artifacts).find((n) => n.name === 'patch_embed/BiasAdd')!.op).toBe('Reshape');
    expect(report.verification!.passed).toBe(true);
    expect(await maxDiff(original, artifacts)).toBeLessThanOrEqual(ATOL);
  });

  test.each([
    ['Relu', 1], ['Relu6', 1], ['Elu', 1], ['LeakyRelu', 1], ['Sigmoid', 1], ['Prelu', 2],
  ])('_FusedConv2D 1x1/1 + BiasAdd + %s becomes Reshape -> _FusedMatMul(BiasAdd, %s) -> Reshape', async (activation, args) => {
    const original = pointwise(activation as string, args as number);
    const { report, artifacts } = await expectNoLeaks(() => optimizeGraphModel(original, { passes: ['conv2d-to-dense'], backend: 'cpu', atol: ATOL, rtol: 0 }));
    expect(report.rewritten.map((r) => r.pass)).toEqual(['conv2d-to-dense']);
    const matmul = nodesOf(artifacts).find((n) => n.op === '_FusedMatMul')!;
    expect(fusedOps(matmul)).toEqual(['BiasAdd', activation]);
    expect(ops(artifacts)).toEqual(expect.not.arrayContaining(['_FusedConv2D', 'Transpose']));
    expect(report.verification!.passed).toBe(true);
    expect(await maxDiff(original, artifacts)).toBeLessThanOrEqual(ATOL);
  });

  test('a sliding _FusedConv2D stays, with its reason, and the model is unchanged', async () => {
    const g = new GraphBuilder(13);
    const x = g.placeholder('x', [-1, 8, 8, 3]);
    const conv = g.conv2d('sliding/Relu', x, g.weight('sliding/filter', [3, 3, 3, 4]), [1, 1], 'SAME', { fused: ['BiasAdd', 'Relu'], args: [g.weight('sliding/bias', [4])] });
    g.output(conv, [-1, 8, 8, 4]);
    const original = g.artifacts();
    const { report, artifacts } = await optimizeGraphModel(original, { passes: ['conv2d-to-dense'], backend: 'cpu', atol: ATOL, rtol: 0 });
    expect(report.rewritten).toEqual([]);
    expect(report.skipped).toEqual([{ layer: 'sliding/Relu', graph: 'graph', pass: 'conv2d-to-dense', reason: 'strides [1, 1] != kernel_size [3, 3]' }]);
    expect(artifacts.modelTopology).toEqual(original.modelTopology);
  });

  test.each([
    ['FusedBatchNorm', ['FusedBatchNorm', 'Relu'], 4, 'fused_ops ["FusedBatchNorm", "Relu"] is not BiasAdd with one of relu, relu6, elu, leakyrelu, sigmoid, prelu'],
    ['Tanh', ['BiasAdd', 'Tanh'], 1, 'fused_ops ["BiasAdd", "Tanh"] is not BiasAdd with one of relu, relu6, elu, leakyrelu, sigmoid, prelu'],
  ])('a _FusedConv2D with %s tfjs cannot fuse into a MatMul stays', async (_, fused, args, reason) => {
    const g = new GraphBuilder(14);
    const x = g.placeholder('x', [-1, 4, 4, 3]);
    const extra = Array.from({ length: args as number }, (_, i) => g.weight(`c/arg${i}`, [5]));
    g.output(g.conv2d('c', x, g.weight('c/filter', [2, 2, 3, 5]), [2, 2], 'VALID', { fused: fused as string[], args: extra }), [-1, 2, 2, 5]);
    const report = await inspectGraphModel(g.artifacts(), { passes: ['conv2d-to-dense'] });
    expect(report.skipped.map((s) => s.reason)).toEqual([reason]);
  });

  test('without --passes, inspect says the default policy would time a graph Conv2D; the rule itself does not refuse it', async () => {
    const report = await inspectGraphModel(vitPatchEmbed(true), { backend: 'cpu' });
    expect(report.rewritten).toEqual([]);
    expect(report.skipped).toEqual([]);
    expect(report.kept).toEqual([expect.objectContaining({ pass: 'conv2d-to-dense', reason: 'optimize would time it on cpu at batch 16 (the conv alone vs its replacement alone) and rewrite it only if >= 1.1x faster; inspect touches no tensors' })]);
    const always = await inspectGraphModel(vitPatchEmbed(true), { backend: 'cpu', policy: 'always' });
    expect(always.rewritten.map((r) => r.pass)).toContain('conv2d-to-dense');
  });

  test('every _FusedConv2D of a MobileNetV2-like graph is considered: rewritten or given a reason', async () => {
    // As the converter writes MobileNetV2 (BatchNorm folded): stem 3x3/2 -> inverted residual
    // blocks [expand 1x1 + Relu6 -> (Pad) FusedDepthwiseConv2dNative + Relu6 -> project 1x1 (+ AddV2
    // residual)] -> head 1x1 -> Mean -> _FusedMatMul. Shapes must flow through all of it.
    const g = new GraphBuilder(15);
    const T = attr.type('DT_FLOAT');
    const fusedConv = (name: string, x: string, k: number, cin: number, cout: number, stride: number, act?: string) =>
      g.conv2d(name, x, g.weight(`${name}/w`, [k, k, cin, cout]), [stride, stride], k === 1 ? 'VALID' : 'SAME',
        { fused: act ? ['BiasAdd', act] : ['BiasAdd'], args: [g.weight(`${name}/b`, [cout])] });
    const depthwise = (name: string, x: string, c: number, stride: number) => g.op(name, 'FusedDepthwiseConv2dNative', [x, g.weight(`${name}/w`, [3, 3, c, 1]), g.weight(`${name}/b`, [c])], {
      T, strides: attr.ints([1, stride, stride, 1]), padding: attr.str(stride === 1 ? 'SAME' : 'VALID'), data_format: attr.str('NHWC'),
      dilations: attr.ints([1, 1, 1, 1]), fused_ops: attr.strs(['BiasAdd', 'Relu6']), num_args: attr.int(1), explicit_paddings: attr.ints([]),
    });
    let x = fusedConv('stem', g.placeholder('input', [-1, 16, 16, 3]), 3, 3, 8, 2, 'Relu6');
    const blocks: [number, number, number][] = [[8, 8, 1], [8, 12, 2], [12, 12, 1]];
    blocks.forEach(([cin, cout, stride], i) => {
      const expanded = fusedConv(`block${i}/expand`, x, 1, cin, cin * 3, 1, 'Relu6');
      const padded = stride === 2 ? g.op(`block${i}/pad`, 'Pad', [expanded, g.ints(`block${i}/pad/paddings`, [0, 0, 0, 1, 0, 1, 0, 0], [4, 2])], { T, Tpaddings: attr.type('DT_INT32') }) : expanded;
      const projected = fusedConv(`block${i}/project`, depthwise(`block${i}/depthwise`, padded, cin * 3, stride), 1, cin * 3, cout, 1);
      x = stride === 1 && cin === cout ? g.op(`block${i}/add`, 'AddV2', [x, projected], { T }) : projected;
    });
    x = fusedConv('head', x, 1, 12, 16, 1, 'Relu6');
    const pooled = g.op('pool', 'Mean', [x, g.ints('pool/axes', [1, 2])], { T, Tidx: attr.type('DT_INT32'), keep_dims: attr.bool(false) });
    g.output(g.op('logits', '_FusedMatMul', [pooled, g.weight('logits/w', [16, 5]), g.weight('logits/b', [5])], {
      T, transpose_a: attr.bool(false), transpose_b: attr.bool(false), fused_ops: attr.strs(['BiasAdd']), num_args: attr.int(1), epsilon: attr.float(0),
    }), [-1, 5]);
    const original = g.artifacts();
    const convs = nodesOf(original).filter((n) => n.op === '_FusedConv2D').map((n) => n.name);
    expect(convs).toHaveLength(8);
    const inspected = await inspectGraphModel(original, { backend: 'cpu' });
    // Default policy: all 8 listed, the stem as sliding (a refusal), the 1x1 ones as what optimize would time.
    expect(inspected.skipped.map((s) => `${s.layer}: ${s.reason}`)).toEqual([`${convs[0]}: strides [2, 2] != kernel_size [3, 3]`]);
    expect(inspected.kept!.map((s) => s.layer)).toEqual(convs.slice(1));
    expect(new Set(inspected.kept!.map((s) => s.reason))).toEqual(new Set(['optimize would time it on cpu at batch 16 (the conv alone vs its replacement alone) and rewrite it only if >= 1.1x faster; inspect touches no tensors']));
    const { report, artifacts } = await optimizeGraphModel(original, { passes: ['conv2d-to-dense'], backend: 'cpu', atol: ATOL, rtol: 0 });
    expect(report.rewritten.map((r) => r.layer)).toEqual(convs.slice(1));
    expect(report.skipped.map((s) => s.layer)).toEqual(['stem']);
    expect(count(artifacts, '_FusedConv2D')).toBe(1);
    expect(report.verification!.layers!.every((l) => l.passed)).toBe(true);
    expect(await maxDiff(original, artifacts)).toBeLessThanOrEqual(ATOL);
  });
});

test('a graph model stock tfjs cannot run is reported as the model\'s problem, not an internal error', async () => {
  const g = new GraphBuilder(19);
  const x = g.placeholder('x', [-1, 4, 4, 3]);
  // A filter for 5 input channels on a 3-channel input: it loads, but tfjs's conv2d refuses to run it.
  g.output(g.conv2d('conv', x, g.weight('conv/w', [2, 2, 5, 4]), [1, 1], 'VALID'), [-1, 3, 3, 4]);
  // Nothing to rewrite: optimize writes it through unchanged (it loads); running it is refused.
  const optimized = await optimizeGraphModel(g.artifacts(), { backend: 'cpu' });
  expect(optimized.report.notes).toContain(UNCHANGED);
  const failure = verifyGraphModels(g.artifacts(), g.artifacts(), { backend: 'cpu' });
  await expect(failure).rejects.toThrow(InputError);
  await expect(failure).rejects.toThrow(/^the original model does not run on cpu: .*depth/);
});

describe('conv1d-to-dense on graph models (the converter Conv1D form)', () => {

  test('ExpandDims -> Conv2D -> Squeeze -> BiasAdd becomes Reshape -> _FusedMatMul -> Reshape', async () => {
    const original = audio(5);
    const { report, artifacts } = await expectNoLeaks(() => optimizeGraphModel(original, { passes: ['conv1d-to-dense'], backend: 'cpu', atol: ATOL, rtol: 0 }));
    expect(report.rewritten).toEqual([expect.objectContaining({ layer: 'frames/conv1d', pass: 'conv1d-to-dense' })]);
    for (const op of ['ExpandDims', 'Conv2D', 'Squeeze', 'BiasAdd']) expect(count(artifacts, op)).toBe(0);
    expect(count(artifacts, '_FusedMatMul')).toBe(1);
    expect(await maxDiff(original, artifacts)).toBeLessThanOrEqual(ATOL);
  });

  test('a sliding one stays with a rank-1 reason; conv2d-to-dense does not claim it', async () => {
    const report = await inspectGraphModel(audio(3), { passes: CONV_PASSES });
    expect(report.skipped).toEqual([{ layer: 'frames/conv1d', graph: 'graph', pass: 'conv1d-to-dense', reason: 'strides [3] != kernel_size [5]' }]);
  });
});

/**
 * The same convs as a layers model and as the graph model the converter would write: each case
 * is [name, kind, input shape without batch, kernel, strides, padding, filters, dilation].
 */
const PARITY: [string, 'conv1d' | 'conv2d' | 'conv3d', number[], number[], number[], 'valid' | 'same', number, number[]?][] = [
  ['patch2d', 'conv2d', [8, 12, 3], [4, 4], [4, 4], 'valid', 5],
  ['remainder2d', 'conv2d', [9, 10, 3], [4, 4], [4, 4], 'valid', 5],
  ['sliding2d', 'conv2d', [8, 8, 3], [3, 3], [1, 1], 'valid', 4],
  ['overlap2d', 'conv2d', [8, 8, 3], [4, 4], [2, 2], 'valid', 4],
  ['samepad2d', 'conv2d', [10, 10, 3], [4, 4], [4, 4], 'same', 4],
  ['sameexact2d', 'conv2d', [8, 8, 3], [4, 4], [4, 4], 'same', 4],
  ['dilated2d', 'conv2d', [8, 8, 3], [2, 2], [1, 1], 'valid', 4, [2, 2]],
  ['pointwise2d', 'conv2d', [5, 5, 6], [1, 1], [1, 1], 'valid', 7],
  ['frames1d', 'conv1d', [40, 2], [4], [4], 'valid', 6],
  ['sliding1d', 'conv1d', [40, 2], [4], [2], 'valid', 6],
  ['tubelet3d', 'conv3d', [4, 8, 8, 3], [2, 4, 4], [2, 4, 4], 'valid', 6],
  ['sliding3d', 'conv3d', [4, 8, 8, 3], [2, 2, 2], [1, 1, 1], 'valid', 6],
  ['small3d', 'conv3d', [1, 8, 8, 3], [2, 4, 4], [2, 4, 4], 'valid', 6],
];

function parityLayers(): tf.LayersModel {
  const inputs = PARITY.map(([name, , shape]) => tf.input({ shape, name: `${name}_in` }));
  const outputs = PARITY.map(([name, kind, , kernelSize, strides, padding, filters, dilationRate], i) => {
    const config = { name, filters, kernelSize, strides, padding, dilationRate: dilationRate ?? 1 };
    const layer = kind === 'conv1d' ? tf.layers.conv1d(config) : kind === 'conv2d' ? tf.layers.conv2d(config) : tf.layers.conv3d(config);
    return layer.apply(inputs[i]) as tf.SymbolicTensor;
  });
  return tf.model({ inputs, outputs });
}

function parityGraph(): io.ModelArtifacts {
  const g = new GraphBuilder(17);
  PARITY.forEach(([name, kind, shape, kernel, strides, padding, filters, dilation]) => {
    const x = g.placeholder(`${name}_in`, [-1, ...shape]);
    const pad = padding === 'valid' ? 'VALID' : 'SAME';
    const channels = shape[shape.length - 1];
    const bias = g.weight(`${name}/bias`, [filters]);
    let y: string;
    if (kind === 'conv1d') {
      y = g.biasAdd(`${name}/BiasAdd`, g.conv1d(name, x, g.weight(`${name}/filter`, [1, kernel[0], channels, filters]), strides[0], pad), bias);
    } else if (kind === 'conv2d') {
      y = g.conv2d(name, x, g.weight(`${name}/filter`, [...kernel, channels, filters]), strides, pad, { dilations: dilation, fused: ['BiasAdd'], args: [bias] });
    } else {
      y = g.biasAdd(`${name}/BiasAdd`, g.conv3d(name, x, g.weight(`${name}/filter`, [...kernel, channels, filters]), strides, pad), bias);
    }
    g.output(y, [-1]);
  });
  return g.artifacts();
}

test('parity: a layers model and a graph model with the same convs get the same rewrites and the same refusals', async () => {
  const model = parityLayers();
  const asLayers = await inspect(model, { passes: CONV_PASSES, backend: 'cpu' });
  model.dispose();
  const asGraph = await inspectGraphModel(parityGraph(), { passes: CONV_PASSES, backend: 'cpu' });
  const rows = (report: typeof asLayers) => [
    ...report.rewritten.map((r) => `${r.layer} ${r.pass}: rewritten`),
    ...report.skipped.map((s) => `${s.layer} ${s.pass}: ${s.reason}`),
  ].sort();
  const expected = [
    // Strides are checked first: a dilated conv with strides 1 is refused as sliding in both.
    'dilated2d conv2d-to-dense: strides [1, 1] != kernel_size [2, 2]',
    'frames1d conv1d-to-dense: rewritten',
    'overlap2d conv2d-to-dense: strides [2, 2] != kernel_size [4, 4]',
    'patch2d conv2d-to-dense: rewritten',
    'pointwise2d conv2d-to-dense: rewritten',
    'remainder2d conv2d-to-dense: rewritten',
    'sameexact2d conv2d-to-dense: rewritten',
    "samepad2d conv2d-to-dense: padding 'same' pads H (10 % 4 != 0)",
    'sliding1d conv1d-to-dense: strides [2] != kernel_size [4]',
    'sliding2d conv2d-to-dense: strides [1, 1] != kernel_size [3, 3]',
    'sliding3d conv3d-to-dense: strides [1, 1, 1] != kernel_size [2, 2, 2]',
    'small3d conv3d-to-dense: input D=1 is smaller than kernel 2',
    'tubelet3d conv3d-to-dense: rewritten',
  ];
  expect(rows(asLayers)).toEqual(expected);
  expect(rows(asGraph)).toEqual(expected);
});

describe('graph models take the layers flags', () => {
  test('the float64 per-layer check covers each rewritten op (Conv2D+BiasAdd, fused LeakyRelu, Conv1D form)', async () => {
    const cases: [io.ModelArtifacts, string, number][] = [
      [vitPatchEmbed(false), 'conv2d-to-dense', 2 * 2 * 3 * 24],
      [pointwise('LeakyRelu'), 'conv2d-to-dense', 2 * 5 * 7 * 10],
      [audio(5), 'conv1d-to-dense', 2 * 10 * 12],
    ];
    for (const [original, pass, elements] of cases) {
      const { report } = await expectNoLeaks(() => optimizeGraphModel(original, { passes: [pass], backend: 'cpu', atol: ATOL, rtol: 0 }));
      const [layer] = report.verification!.layers!;
      expect(report.verification!.layers).toHaveLength(1);
      expect(layer.layer).toBe(report.rewritten[0].layer);
      // batch 2 (the default) x every output element of the conv
      expect(layer.elements).toBe(elements);
      expect(layer.original.meanAbsError).toBeGreaterThan(0);
      expect(layer.ratio).toBeLessThan(layer.limit);
      expect(layer.passed).toBe(true);
    }
  });

  test('a rewritten kernel with two rows swapped fails the per-layer check, not only the end-to-end one', async () => {
    const original = pointwise('Relu');
    const { artifacts, report } = await optimizeGraphModel(original, { passes: ['conv2d-to-dense'], verify: false });
    const kernelName = nodesOf(artifacts).find((n) => n.op === '_FusedMatMul')!.input![1];
    let offset = 0;
    for (const spec of artifacts.weightSpecs!) {
      if (spec.name === kernelName) break;
      offset += spec.shape.reduce((a, b) => a * b, 1) * 4;
    }
    const data = new Float32Array((artifacts.weightData as ArrayBuffer).slice(0));
    const row = (r: number) => data.subarray(offset / 4 + r * 10, offset / 4 + (r + 1) * 10);
    const first = row(0).slice();
    row(0).set(row(1));
    row(1).set(first);
    const broken = { ...artifacts, weightData: data.buffer };
    const { verifyGraphArtifacts } = await import('../src/verify/graphdef');
    const verification = await verifyGraphArtifacts(original, broken, { backend: 'cpu', rewrittenLayers: report.rewritten });
    expect(verification.passed).toBe(false);
    expect(verification.layers![0].passed).toBe(false);
    expect(verification.layers![0].ratio).toBeGreaterThan(1e3);
  });

  test('policy measure times each candidate alone (probe graphs stock tfjs runs) and keeps the op where the rewrite is not faster', async () => {
    // Two non-sliding convs: the patch embed and a Conv3D tubelet; the injected timer calls the
    // tubelet's rewrite slower. The real timer runs once below on the probes themselves.
    const g = new GraphBuilder(18);
    const image = g.conv2d('embed', g.placeholder('image', [-1, 8, 8, 3]), g.weight('embed/w', [4, 4, 3, 6]), [4, 4], 'VALID', { fused: ['BiasAdd'], args: [g.weight('embed/b', [6])] });
    g.output(image, [-1, 2, 2, 6]);
    g.output(g.conv3d('tubelet', g.placeholder('clip', [-1, 2, 4, 4, 3]), g.weight('tubelet/w', [2, 2, 2, 3, 5]), [2, 2, 2], 'VALID'), [-1, 1, 2, 2, 5]);
    const original = g.artifacts();
    const probed: string[] = [];
    const { report } = await optimizeGraphModel(original, {
      backend: 'cpu', policy: 'measure', policyBatch: 3, atol: ATOL, rtol: 0,
      policyTimer: async (probe, batch) => {
        probed.push(`${probe.layer}@${batch}`);
        expect(count(probe.original, probe.layer === 'embed' ? '_FusedConv2D' : 'Conv3D')).toBe(1);
        expect(count(probe.rewritten, probe.layer === 'embed' ? '_FusedConv2D' : 'Conv3D')).toBe(0);
        return probe.layer === 'tubelet' ? { originalMs: 1, rewrittenMs: 2 } : { originalMs: 2, rewrittenMs: 1 };
      },
    });
    expect(probed).toEqual(['embed@3', 'tubelet@3']);
    expect(report.rewritten.map((r) => r.layer)).toEqual(['embed']);
    expect(report.kept).toEqual([expect.objectContaining({ layer: 'tubelet', pass: 'conv3d-to-dense', reason: 'measured here: 1.00 ms -> 2.00 ms (0.50x) on cpu at batch 3; below the 1.1x margin' })]);
    expect(report.policy!.decisions.map((d) => d.decision)).toEqual(['rewrite', 'keep']);
    expect(report.verification!.passed).toBe(true);

    const measured = await optimizeGraphModel(original, { backend: 'cpu', policy: 'measure', policyBatch: 2, verify: false });
    expect(measured.report.policy!.decisions).toHaveLength(2);
    for (const d of measured.report.policy!.decisions) {
      expect(d.originalMs).toBeGreaterThan(0);
      expect(d.rewrittenMs).toBeGreaterThan(0);
      expect(d.reason).toMatch(/^measured here: [\d.]+ ms -> [\d.]+ ms \([\d.]+x, 95% interval [\d.]+x-[\d.]+x over \d rounds?\) on cpu at batch 2; /);
      expect(d.decision === 'rewrite').toBe(d.interval!.low >= 1.1);
    }
  });

  test("backend 'all' verifies a graph model on every backend present and reports the matrix", async () => {
    const { report } = await optimizeGraphModel(vitPatchEmbed(true), { passes: ['conv2d-to-dense'], backend: 'all', atol: ATOL, rtol: 0 });
    const verification = report.verification!;
    expect(verification.backend).toBe('all');
    // webgl/webgpu run in a headless browser (listed as skipped where there is none).
    expect(verification.backends!.map((b) => b.backend)).toEqual(['tensorflow', 'wasm', 'cpu', 'webgl', 'webgpu']);
    const ran = verification.backends!.filter((b) => !('skipped' in b));
    expect(ran.map((b) => b.backend)).toEqual(expect.arrayContaining(['wasm', 'cpu']));
    expect(verification.passed).toBe(true);
    expect(verification.layers).toHaveLength(1);
    expect(tf.getBackend()).toBe('cpu');
  });

  test('CLI: optimize --passes --backend all --accuracy-factor, --policy measure and bench --inputs run on a graph model', () => {
    const dir = tempDir('tfjs-rewrite-graph-flags-');
    writeModelFiles(vitPatchEmbed(true), path.join(dir, 'model'));
    const model = path.join(dir, 'model', 'model.json');
    const optimized = runCli(['optimize', model, '--out', path.join(dir, 'out'), '--passes', 'conv2d-to-dense', '--backend', 'all', '--accuracy-factor', '4', '--json']);
    expect(optimized.stderr).not.toMatch(/not supported/);
    expect(optimized.status).toBe(0);
    const report = JSON.parse(optimized.stdout);
    expect(report.rewritten.map((r: { pass: string }) => r.pass)).toEqual(['conv2d-to-dense']);
    expect(report.verification.backend).toBe('all');
    expect(report.verification.layers).toHaveLength(1);
    const measured = runCli(['optimize', model, '--out', path.join(dir, 'measured'), '--policy', 'measure', '--policy-batch', '2', '--backend', 'cpu', '--json']);
    expect(measured.status).toBe(0);
    expect(JSON.parse(measured.stdout).policy.decisions.map((d: { layer: string }) => d.layer)).toEqual(['patch_embed/BiasAdd']);
    const rand = mulberry32(3);
    const npy = path.join(dir, 'rows.npy');
    writeNpy(npy, { dtype: 'float32', shape: [5, 32, 48, 3], data: Float32Array.from({ length: 5 * 32 * 48 * 3 }, () => rand()) });
    // bench takes optimize's rule and policy flags: the timed model is the one optimize writes.
    const bench = runCli(['bench', model, '--inputs', npy, '--passes', 'conv2d-to-dense', '--policy', 'always', '--backend', 'cpu', '--json']);
    expect(bench.stderr).not.toMatch(/not supported/);
    expect(bench.status).toBe(0);
    const benched = JSON.parse(bench.stdout);
    expect(benched.measurement.batch).toBe(5);
    expect(benched.rewritten).toEqual(report.rewritten);
    expect(benched.measurement.subgraph).not.toBeNull();
  });
});

function ops(a: io.ModelArtifacts): string[] {
  return nodesOf(a).map((n) => n.op);
}

test('one registry: graph lowerings register by name; a name without a graph lowering is a note, an unknown name an error', async () => {
  const { registerPass, graphDefPassesByName } = await import('../passes');
  expect(() => registerPass({ ...graphDefPassesByName(['conv2d-to-dense'])[0] }, 'graphdef')).toThrow('a pass named "conv2d-to-dense" is already registered for graph models');
  // A graph-only rule: drops an Identity that is not a model output (its reader reads its input).
  registerPass({
    name: 'drop-inner-identity',
    appliesTo: (node) => node.op === 'Identity',
    match: (node, context) => (context.isOutput(node.name) ? { refusal: 'a model output' } : { plan: null }),
    rewrite: () => { throw new Error('not reached in this test'); },
  }, 'graphdef');
  const report = await inspectGraphModel(vitPatchEmbed(true), { passes: ['drop-inner-identity', 'fold-views-into-dense'] });
  expect(report.skipped).toEqual([{ layer: 'Identity', graph: 'graph', pass: 'drop-inner-identity', reason: 'a model output' }]);
  expect(report.notes).toContain('fold-views-into-dense: no graph-model lowering; not applied');
  await expect(inspectGraphModel(vitPatchEmbed(true), { passes: ['no-such-rule'] })).rejects.toThrow(/unknown pass "no-such-rule" \(available: conv3d-to-dense, conv3d-to-conv2d-slices, conv2d-to-dense, conv1d-to-dense, /);
});
