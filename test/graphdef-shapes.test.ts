/**
 * GraphDef shape inference (src/graphdef/shapes.ts, shape-rules.ts) against what stock tfjs
 * computes: every case builds a small graph as the converter writes it, runs it in
 * tf.loadGraphModel at batch 2 and at batch 3, and expects for every checked tensor the sizes
 * both runs agree on, and null exactly where the size follows the batch. Then a seeded property
 * test over random chains of these ops, and the execution fallback (learned-shapes.ts) for a
 * shape only a run tells.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { GraphBuilder } from '../fixtures/graph-models';
import { mulberry32 } from '../fixtures/models';
import { attr } from '../src/graphdef/attrs';
import { graphIRFromArtifacts } from '../src/graphdef/ir';
import { GraphShapes } from '../src/graphdef/shapes';
import { learnUnknownShapes } from '../src/graphdef/learned-shapes';
import { inspectGraphModel } from '../src/pipeline';
import * as path from 'path';
import { writeModelFiles } from '../src/io/files';
import { runCli } from './helpers/cli';
import { committedModel, tempDir, useBackendForFile } from './helpers/tf';

useBackendForFile('cpu');

const F32 = attr.type('DT_FLOAT');
const I32 = attr.type('DT_INT32');
type Build = (g: GraphBuilder, x: string) => string[];

/** The shapes stock tfjs gives `names` at two batches: equal sizes stay, differing ones are null. */
async function executedShapes(artifacts: io.ModelArtifacts, input: number[], names: string[]): Promise<(number | null)[][]> {
  const model = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
  try {
    const runs: number[][][] = [];
    for (const batch of [2, 3]) {
      const x = tf.randomUniform(input.map((d) => (d < 0 ? batch : d)), -1, 1, 'float32', 7);
      const result = model.execute({ x }, names);
      const outputs = Array.isArray(result) ? result : [result];
      runs.push(outputs.map((t) => t.shape));
      tf.dispose([x, ...outputs]);
    }
    return runs[0].map((shape, i) => shape.map((d, a) => (d === runs[1][i][a] ? d : null)));
  } finally {
    model.dispose();
  }
}

async function expectInferred(input: number[], build: Build): Promise<void> {
  const g = new GraphBuilder(3);
  const x = g.placeholder('x', input);
  const names = build(g, x);
  g.output(names[names.length - 1], []);
  const artifacts = g.artifacts();
  const shapes = new GraphShapes(graphIRFromArtifacts(artifacts), null);
  const inferred = names.map((n) => {
    const s = shapes.of(n);
    return 'dims' in s ? s.dims : s.unknown;
  });
  expect(Object.fromEntries(names.map((n, i) => [n, inferred[i]]))).toEqual(
    Object.fromEntries((await executedShapes(artifacts, input, names)).map((s, i) => [names[i], s])));
}

const ints = (g: GraphBuilder, name: string, values: number[], shape?: number[]) => g.ints(name, values, shape);
const slice = (g: GraphBuilder, name: string, x: string, b: number[], e: number[], s: number[], masks: Partial<Record<'begin_mask' | 'end_mask' | 'ellipsis_mask' | 'new_axis_mask' | 'shrink_axis_mask', number>> = {}) =>
  g.op(name, 'StridedSlice', [x, ints(g, `${name}/b`, b), ints(g, `${name}/e`, e), ints(g, `${name}/s`, s)], {
    T: F32, Index: I32, ...Object.fromEntries(['begin_mask', 'end_mask', 'ellipsis_mask', 'new_axis_mask', 'shrink_axis_mask'].map((m) => [m, attr.int(masks[m as keyof typeof masks] ?? 0)])),
  });
const window = (strides: number[], padding: string, dilations = [1, 1, 1, 1]) => ({ T: F32, strides: attr.ints(strides), padding: attr.str(padding), data_format: attr.str('NHWC'), dilations: attr.ints(dilations) });

const FAMILIES: [string, number[], Build][] = [
  ['ConcatV2, Pack, Unpack, Split, SplitV', [-1, 4, 6, 3], (g, x) => [
    g.op('concat', 'ConcatV2', [x, x, ints(g, 'axis3', [3], [])], { T: F32, N: attr.int(2) }),
    g.op('concat0', 'ConcatV2', [x, x, ints(g, 'axis0', [-4], [])], { T: F32, N: attr.int(2) }),
    g.op('pack', 'Pack', [x, x, x], { T: F32, N: attr.int(3), axis: attr.int(2) }),
    g.op('unpack', 'Unpack', [x], { T: F32, num: attr.int(6), axis: attr.int(-2) }), 'unpack:5',
    g.op('split', 'Split', [ints(g, 'split/axis', [1], []), x], { T: F32, num_split: attr.int(2) }), 'split:1',
    g.op('splitv', 'SplitV', [x, ints(g, 'splitv/sizes', [1, -1, 2]), ints(g, 'splitv/axis', [2], [])], { T: F32, num_split: attr.int(3), Tlen: I32 }), 'splitv:1',
  ]],
  ['StridedSlice masks and Slice', [-1, 5, 6, 3], (g, x) => [
    slice(g, 'ss_plain', x, [0, 1, 0, 0], [0, 4, 6, 3], [1, 2, 1, 1], { begin_mask: 1, end_mask: 1 }),
    slice(g, 'ss_neg', x, [0, -1, -5, 0], [0, -4, -1, 2], [1, -1, 2, 1], { begin_mask: 9, end_mask: 1 }),
    slice(g, 'ss_ellipsis', x, [0, 1], [0, 3], [1, 1], { ellipsis_mask: 1 }),
    slice(g, 'ss_shrink', x, [0, 2, 0], [0, 3, 0], [1, 1, 1], { begin_mask: 5, end_mask: 5, shrink_axis_mask: 2 }),
    slice(g, 'ss_newaxis', x, [0, 0, 1], [0, 0, 4], [1, 1, 1], { begin_mask: 1, end_mask: 1, new_axis_mask: 2 }),
    slice(g, 'ss_ellipsis_new', x, [0, 0, 0], [0, 0, 2], [1, 1, 1], { ellipsis_mask: 1, new_axis_mask: 2 }),
    slice(g, 'ss_clamped', x, [0, -100, 2], [0, 100, 99], [1, 3, 1], { begin_mask: 1, end_mask: 1 }),
    g.op('slice', 'Slice', [x, ints(g, 'slice/b', [0, 1, 2, 0]), ints(g, 'slice/s', [-1, 3, -1, 2])], { T: F32, Index: I32 }),
  ]],
  ['reductions with and without keep_dims', [-1, 4, 6, 3], (g, x) => [
    g.op('mean', 'Mean', [x, ints(g, 'mean/axes', [1, 2])], { T: F32, Tidx: I32, keep_dims: attr.bool(true) }),
    g.op('max', 'Max', [x, ints(g, 'max/axes', [-1], [])], { T: F32, Tidx: I32, keep_dims: attr.bool(false) }),
    g.op('sum', 'Sum', [x, ints(g, 'sum/axes', [0, 3])], { T: F32, Tidx: I32, keep_dims: attr.bool(false) }),
    g.op('min', 'Min', [x, ints(g, 'min/axes', [2])], { T: F32, Tidx: I32, keep_dims: attr.bool(true) }),
    g.op('prod', 'Prod', [x, ints(g, 'prod/axes', [1])], { T: F32, Tidx: I32, keep_dims: attr.bool(false) }),
  ]],
  ['depthwise, fused and transposed convs, pools, batch norm', [-1, 7, 9, 4], (g, x) => [
    g.op('dw', 'DepthwiseConv2dNative', [x, g.weight('dw/w', [3, 3, 4, 2])], window([1, 2, 2, 1], 'SAME')),
    g.op('dw_valid', 'DepthwiseConv2dNative', [x, g.weight('dwv/w', [3, 2, 4, 1])], window([1, 1, 1, 1], 'VALID', [1, 1, 2, 1])),
    g.op('fdw', 'FusedDepthwiseConv2dNative', [x, g.weight('fdw/w', [3, 3, 4, 1]), g.weight('fdw/b', [4])],
      { ...window([1, 1, 1, 1], 'VALID'), fused_ops: attr.strs(['BiasAdd', 'Relu']), num_args: attr.int(1) }),
    g.conv2d('fconv', x, g.weight('fconv/w', [2, 3, 4, 5]), [2, 3], 'SAME', { fused: ['BiasAdd', 'Relu6'], args: [g.weight('fconv/b', [5])] }),
    g.op('deconv', 'Conv2DBackpropInput', [ints(g, 'deconv/sizes', [2, 14, 18, 6]), g.weight('deconv/w', [3, 3, 6, 4]), x], window([1, 2, 2, 1], 'SAME')),
    g.op('maxpool', 'MaxPool', [x], { T: F32, ksize: attr.ints([1, 3, 2, 1]), strides: attr.ints([1, 2, 2, 1]), padding: attr.str('VALID'), data_format: attr.str('NHWC') }),
    g.op('avgpool', 'AvgPool', [x], { T: F32, ksize: attr.ints([1, 2, 2, 1]), strides: attr.ints([1, 2, 3, 1]), padding: attr.str('SAME'), data_format: attr.str('NHWC') }),
    g.op('bn', 'FusedBatchNormV3', [x, g.weight('bn/s', [4]), g.weight('bn/o', [4]), g.weight('bn/m', [4]), g.weight('bn/v', [4])], { T: F32, U: F32, epsilon: attr.float(1e-3), data_format: attr.str('NHWC'), is_training: attr.bool(false) }),
  ]],
  ['resize, pads, space to batch', [-1, 4, 6, 2], (g, x) => [
    g.op('bilinear', 'ResizeBilinear', [x, ints(g, 'bilinear/size', [8, 3])], { T: F32, align_corners: attr.bool(false), half_pixel_centers: attr.bool(true) }),
    g.op('nearest', 'ResizeNearestNeighbor', [x, ints(g, 'nearest/size', [5, 12])], { T: F32, align_corners: attr.bool(false), half_pixel_centers: attr.bool(true) }),
    g.op('pad', 'Pad', [x, ints(g, 'pad/p', [0, 0, 1, 2, 0, 3, 1, 1], [4, 2])], { T: F32, Tpaddings: I32 }),
    g.op('padv2', 'PadV2', [x, ints(g, 'padv2/p', [0, 0, 2, 2, 1, 0, 0, 0], [4, 2]), g.weight('padv2/c', [])], { T: F32, Tpaddings: I32 }),
    g.op('mirror', 'MirrorPad', [x, ints(g, 'mirror/p', [0, 0, 1, 1, 2, 1, 0, 0], [4, 2])], { T: F32, Tpaddings: I32, mode: attr.str('REFLECT') }),
    g.op('s2b', 'SpaceToBatchND', [x, ints(g, 's2b/b', [2, 2]), ints(g, 's2b/p', [0, 0, 1, 1], [2, 2])], { T: F32, Tblock_shape: I32, Tpaddings: I32 }),
    g.op('b2s', 'BatchToSpaceND', ['s2b', ints(g, 'b2s/b', [2, 2]), ints(g, 'b2s/c', [0, 0, 1, 1], [2, 2])], { T: F32, Tblock_shape: I32, Tcrops: I32 }),
  ]],
  ['broadcast arithmetic and matmuls', [-1, 4, 6, 3], (g, x) => {
    const flat = g.reshape('flat', x, [-1, 72]);
    return [
      g.op('add', 'AddV2', [x, g.weight('add/c', [6, 1])], { T: F32 }),
      g.op('sub', 'Sub', [g.weight('sub/c', [4, 1, 3]), x], { T: F32 }),
      g.op('mul', 'Mul', [x, g.weight('mul/c', [])], { T: F32 }),
      g.op('div', 'RealDiv', [x, g.weight('div/c', [1, 1, 1, 3])], { T: F32 }),
      g.op('maximum', 'Maximum', [x, g.weight('max/c', [1, 6, 1])], { T: F32 }),
      g.op('sqdiff', 'SquaredDifference', [g.weight('sq/c', [3]), x], { T: F32 }),
      g.biasAdd('bias', x, g.weight('bias/c', [3])),
      flat,
      g.op('matmul', 'MatMul', [flat, g.weight('matmul/w', [5, 72])], { T: F32, transpose_a: attr.bool(false), transpose_b: attr.bool(true) }),
      g.op('fmatmul', '_FusedMatMul', [flat, g.weight('fmatmul/w', [72, 7]), g.weight('fmatmul/b', [7])], { T: F32, transpose_a: attr.bool(false), transpose_b: attr.bool(false), fused_ops: attr.strs(['BiasAdd']), num_args: attr.int(1), epsilon: attr.float(0) }),
      g.op('bmm', 'BatchMatMulV2', [x, g.weight('bmm/w', [4, 5, 3])], { T: F32, adj_x: attr.bool(false), adj_y: attr.bool(true) }),
    ];
  }],
  ['views and folded shape chains', [-1, 4, 6, 3], (g, x) => {
    const shape = g.op('shape', 'Shape', [x], { T: F32, out_type: I32 });
    const batch = g.op('batch', 'StridedSlice', [shape, ints(g, 'batch/b', [0]), ints(g, 'batch/e', [1]), ints(g, 'batch/s', [1])],
      { T: I32, Index: I32, begin_mask: attr.int(0), end_mask: attr.int(0), ellipsis_mask: attr.int(0), new_axis_mask: attr.int(0), shrink_axis_mask: attr.int(1) });
    const hw = g.op('hw', 'Mul', [slice(g, 'h', shape, [1], [2], [1], { shrink_axis_mask: 1 }), slice(g, 'w', shape, [2], [3], [1], { shrink_axis_mask: 1 })], { T: I32 });
    const target = g.op('target', 'Pack', [batch, hw, ints(g, 'three', [3], [])], { T: I32, N: attr.int(3), axis: attr.int(0) });
    return [
      g.op('chain', 'Reshape', [x, target], { T: F32, Tshape: I32 }),
      g.reshape('inferred', x, [-1, 12, 2, 3]),
      g.op('transpose', 'Transpose', [x, ints(g, 'perm', [0, 3, 1, 2])], { T: F32, Tperm: I32 }),
      g.op('expand', 'ExpandDims', [x, ints(g, 'expand/axis', [-2], [])], { T: F32, Tdim: I32 }),
      g.op('squeeze', 'Squeeze', ['expand'], { T: F32, squeeze_dims: attr.ints([3]) }),
      g.op('tile', 'Tile', [x, ints(g, 'tile/m', [1, 2, 1, 3])], { T: F32, Tmultiples: I32 }),
      g.op('fill', 'Fill', [g.op('fill/dims', 'ConcatV2', [shape, ints(g, 'one', [2]), ints(g, 'fill/axis', [0], [])], { T: I32, N: attr.int(2) }), g.weight('fill/v', [])], { T: F32, index_type: I32 }),
      g.op('gather', 'GatherV2', [x, ints(g, 'gather/i', [0, 2, 2, 1, 0], [5]), ints(g, 'gather/a', [2], [])], { Tparams: F32, Tindices: I32, Taxis: I32, batch_dims: attr.int(0) }),
      g.op('cast', 'Cast', [x], { SrcT: F32, DstT: I32 }),
      g.op('relu6', 'Relu6', [x], { T: F32 }),
    ];
  }],
];

describe('shapes agree with what tfjs computes', () => {
  test.each(FAMILIES)('%s', async (_, input, build) => {
    await expectInferred(input, build);
  });

  test('_output_shapes and the signature fill what the rules leave open', () => {
    const g = new GraphBuilder(1);
    const x = g.placeholder('x', [1, 8, 8, 3]);
    const artifacts = g.artifacts();
    // The converter of TF2 models can leave the Placeholder open and the signature fixed.
    const node = (artifacts.modelTopology as { node: { name: string; attr: Record<string, unknown> }[] }).node.find((n) => n.name === x)!;
    node.attr.shape = attr.shape([1, -1, -1, 3]);
    expect(new GraphShapes(graphIRFromArtifacts(artifacts), null).of('x')).toEqual({ dims: [1, 8, 8, 3] });
  });
});

test('a cond: Merge keeps the sizes both branches agree on, which match what either branch computes', async () => {
  // Once with the predicate, once with its negation: each branch is taken once.
  for (const taken of [true, false]) {
    const g = new GraphBuilder(2);
    const x = g.placeholder('x', [-1, 4, 6, 3]);
    const pred = g.op('pred', 'Greater', [g.weight('a', []), g.weight('b', [])], { T: F32 });
    const when = g.op('switch', 'Switch', [x, taken ? pred : g.op('not', 'LogicalNot', [pred])], { T: F32 });
    const small = g.op('small', 'ResizeBilinear', ['switch', ints(g, 'small/size', [2, 3])], { T: F32, align_corners: attr.bool(false), half_pixel_centers: attr.bool(false) });
    const same = g.op('same', 'Identity', [`${when}:1`], { T: F32 });
    const merged = g.op('merge', 'Merge', [small, same], { T: F32, N: attr.int(2) });
    g.output(merged, []);
    const artifacts = g.artifacts();
    expect(new GraphShapes(graphIRFromArtifacts(artifacts), null).of(merged)).toEqual({ dims: [null, null, null, 3] });
    const model = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
    const input = tf.zeros([2, 4, 6, 3]);
    const out = (await model.executeAsync({ x: input }, merged)) as tf.Tensor;
    // Rank and channels are what inference claims; the branch taken decides the rest.
    expect([out.shape.length, out.shape[3]]).toEqual([4, 3]);
    tf.dispose([input, out]);
    model.dispose();
  }
});

interface Drawn {
  op: string;
  input: number[];
}

/** One random op applied to `x` of shape `dims` (rank 4, batch first); its name. */
function randomOp(g: GraphBuilder, rand: () => number, x: string, dims: number[], id: string, drawn: Map<string, number>): string {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)];
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const [, h, w, c] = dims;
  const ops = ['conv', 'depthwise', 'pool', 'pad', 'stridedslice', 'slice', 'concat', 'mean', 'transpose', 'resize', 'reshape', 'tile', 'broadcast'] as const;
  const op = pick(ops);
  drawn.set(op, (drawn.get(op) ?? 0) + 1);
  const padding = pick(['SAME', 'VALID']);
  const kh = int(1, Math.min(3, h));
  const kw = int(1, Math.min(3, w));
  const strides = [1, int(1, 2), int(1, 2), 1];
  switch (op) {
    case 'conv': {
      const filters = int(1, 4);
      return g.conv2d(id, x, g.weight(`${id}/w`, [kh, kw, c, filters]), strides.slice(1, 3), padding as 'SAME', rand() < 0.5 ? {} : { fused: ['BiasAdd', 'Relu'], args: [g.weight(`${id}/b`, [filters])] });
    }
    case 'depthwise':
      return g.op(id, 'DepthwiseConv2dNative', [x, g.weight(`${id}/w`, [kh, kw, c, int(1, 2)])], window(strides, padding));
    case 'pool':
      return g.op(id, pick(['MaxPool', 'AvgPool']), [x], { T: F32, ksize: attr.ints([1, kh, kw, 1]), strides: attr.ints(strides), padding: attr.str(padding), data_format: attr.str('NHWC') });
    case 'pad':
      return g.op(id, pick(['Pad', 'MirrorPad']), [x, ints(g, `${id}/p`, [0, 0, int(0, 1), int(0, 1), int(0, 1), int(0, 1), 0, 0], [4, 2])], { T: F32, Tpaddings: I32, mode: attr.str('SYMMETRIC') });
    case 'stridedslice': {
      const b = [0, int(-h, h - 1), int(0, w - 1), 0];
      const e = [0, int(-h, h), int(-w, w), c];
      const s = [1, pick([1, 2, -1]), pick([1, 2]), 1];
      return slice(g, id, x, b, e, s, { begin_mask: 1 | (rand() < 0.3 ? 4 : 0), end_mask: 1 | (rand() < 0.3 ? 2 : 0) });
    }
    case 'slice': {
      const b = [0, int(0, h - 1), int(0, w - 1), 0];
      return g.op(id, 'Slice', [x, ints(g, `${id}/b`, b), ints(g, `${id}/s`, [-1, rand() < 0.5 ? -1 : int(1, h - b[1]), int(1, w - b[2]), -1])], { T: F32, Index: I32 });
    }
    case 'concat':
      return g.op(id, 'ConcatV2', [x, x, ints(g, `${id}/axis`, [int(1, 3)], [])], { T: F32, N: attr.int(2) });
    case 'mean': {
      const mean = g.op(`${id}/mean`, pick(['Mean', 'Max', 'Sum']), [x, ints(g, `${id}/axes`, [int(1, 2)], [])], { T: F32, Tidx: I32, keep_dims: attr.bool(true) });
      return g.op(id, 'Mul', [x, mean], { T: F32 });
    }
    case 'transpose':
      return g.op(id, 'Transpose', [x, ints(g, `${id}/perm`, [0, ...pick([[1, 2, 3], [2, 1, 3], [1, 3, 2], [3, 2, 1]])])], { T: F32, Tperm: I32 });
    case 'resize':
      return g.op(id, pick(['ResizeBilinear', 'ResizeNearestNeighbor']), [x, ints(g, `${id}/size`, [int(1, 6), int(1, 6)])], { T: F32, align_corners: attr.bool(false), half_pixel_centers: attr.bool(false) });
    case 'reshape':
      return g.reshape(id, g.reshape(`${id}/flat`, x, [-1, h * w, c]), [-1, w, h, c]);
    case 'tile':
      return g.op(id, 'Tile', [x, ints(g, `${id}/m`, [1, int(1, 2), int(1, 2), 1])], { T: F32, Tmultiples: I32 });
    default:
      return g.op(id, pick(['AddV2', 'Mul', 'Maximum', 'SquaredDifference']), [x, g.weight(`${id}/c`, pick([[c], [w, 1], [1, h, 1, c], []]))], { T: F32 });
  }
}

test('property: random chains of ops, inferred shapes equal executed shapes', async () => {
  const rand = mulberry32(20261205);
  const drawn = new Map<string, number>();
  const lengths = new Map<number, number>();
  const CASES = 40;
  for (let i = 0; i < CASES; i++) {
    const input = [-1, 2 + Math.floor(rand() * 6), 2 + Math.floor(rand() * 6), 1 + Math.floor(rand() * 3)];
    const length = 2 + Math.floor(rand() * 5);
    lengths.set(length, (lengths.get(length) ?? 0) + 1);
    const g = new GraphBuilder(i);
    let x = g.placeholder('x', input);
    const names: string[] = [];
    for (let k = 0; k < length; k++) {
      // The shape so far, from the IR built up to here (validated against execution below).
      const shape = new GraphShapes(graphIRFromArtifacts(g.artifacts()), null).of(x);
      if (!('dims' in shape) || shape.dims.slice(1).some((d) => d === null || d === 0) || shape.dims.length !== 4) break;
      x = randomOp(g, rand, x, shape.dims as number[], `op${k}`, drawn);
      names.push(x);
    }
    g.output(x, []);
    const artifacts = g.artifacts();
    const shapes = new GraphShapes(graphIRFromArtifacts(artifacts), null);
    const inferred = names.map((n) => {
      const s = shapes.of(n);
      return 'dims' in s ? s.dims : s.unknown;
    });
    const executed = await executedShapes(artifacts, input, names);
    expect({ case: i, input, inferred }).toEqual({ case: i, input, inferred: executed });
  }
  console.info(`graphdef shape property test: ${CASES} seeded chains (mulberry32), drawn:\n`
    + `  ops     ${[...drawn].sort().map(([k, v]) => `${k}: ${v}`).join(', ')}\n`
    + `  length  ${[...lengths].sort().map(([k, v]) => `${k}: ${v}`).join(', ')}`);
});

describe('shapes only a run tells are learned by one execution', () => {
  /** x -> Reshape(x, Cast(Floor(Cast(Shape(x))))) -> pointwise Conv2D: the target is computed by a float op. */
  function dataDependent(input: number[]): io.ModelArtifacts {
    const g = new GraphBuilder(5);
    const x = g.placeholder('x', input);
    const shape = g.op('shape', 'Shape', [x], { T: F32, out_type: I32 });
    const floored = g.op('floor', 'Floor', [g.op('tofloat', 'Cast', [shape], { SrcT: I32, DstT: F32 })], { T: F32 });
    const target = g.op('toint', 'Cast', [floored], { SrcT: F32, DstT: I32 });
    const viewed = g.op('view', 'Reshape', [x, target], { T: F32, Tshape: I32 });
    const conv = g.conv2d('conv', viewed, g.weight('conv/w', [1, 1, input[3], 4]), [1, 1], 'VALID');
    g.output(conv, [-1, input[1], input[2], 4]);
    return g.artifacts();
  }

  test('static inference says why; one run learns it, leaves no tensor and the backend as it was', async () => {
    const ir = graphIRFromArtifacts(dataDependent([-1, 4, 5, 3]));
    expect(new GraphShapes(ir, null).of('view')).toEqual({ unknown: 'Reshape "view" has a target shape computed from data (not a constant)', origin: 'view' });
    const [before, backend] = [tf.memory().numTensors, tf.getBackend()];
    const notes = await learnUnknownShapes(ir);
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.getBackend()).toBe(backend);
    expect(notes).toEqual([expect.stringMatching(/^shapes of 2 tensor\(s\) .* learned by running the model once on zeros$/)]);
    // The dynamic batch stays unknown; the rules carry on from the learned tensor.
    const shapes = new GraphShapes(ir);
    expect(shapes.of('view')).toEqual({ dims: [null, 4, 5, 3] });
    expect(shapes.of('conv')).toEqual({ dims: [null, 4, 5, 4] });
  });

  test('inspect then considers the conv; without a size to run at, the reason says which input needs --input-shape', async () => {
    const report = await inspectGraphModel(dataDependent([-1, 4, 5, 3]), { policy: 'always', passes: ['conv2d-to-dense'] });
    expect(report.rewritten.map((r) => r.layer)).toEqual(['conv']);
    const open = dataDependent([-1, -1, 5, 3]);
    const refused = await inspectGraphModel(open, { policy: 'always', passes: ['conv2d-to-dense'] });
    expect(refused.skipped.map((s) => s.reason)).toEqual([
      'input shape is unknown: Reshape "view" has a target shape computed from data (not a constant), and the model cannot be run to learn it: input "x" has sizes [-1,-1,5,3] (give its shape with --input-shape)',
    ]);
    const given = await inspectGraphModel(open, { policy: 'always', passes: ['conv2d-to-dense'], inputShapes: { x: [2, 6, 5, 3] } });
    expect(given.rewritten.map((r) => r.layer)).toEqual(['conv']);
    await expect(inspectGraphModel(open, { inputShapes: { y: [2, 6, 5, 3] } })).rejects.toThrow('--input-shape names "y", which is not a model input (inputs: x)');
  });

  test('the CLI: inspect --input-shape on a graph model; refused (exit 2, one line) on a layers model', () => {
    const dir = tempDir();
    const input = writeModelFiles(dataDependent([-1, -1, 5, 3]), path.join(dir, 'in'));
    const run = runCli(['inspect', input, '--passes', 'conv2d-to-dense', '--policy', 'always', '--input-shape', 'x=1x6x5x3', '--json']);
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout).rewritten.map((r: { layer: string }) => r.layer)).toEqual(['conv']);
    const layers = runCli(['inspect', committedModel('pointwise-1x1x1'), '--input-shape', 'x=1x2x2x2x3']);
    expect([layers.status, layers.stderr.trim().split('\n')]).toEqual([2, ["tfjs-rewrite: inspect takes --input-shape for graph models only (a layers model's shapes come from its config)"]]);
  });
});
