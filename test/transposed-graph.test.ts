/**
 * conv2d-transpose-to-dense on graph models: Conv2DBackpropInput (as the converter writes
 * Conv2DTranspose) -> MatMul + one Transpose, checked
 * by the graph verifier against the original on cpu; and a negative with its refusal.
 */
import * as tf from '@tensorflow/tfjs';
import { GraphBuilder } from '../fixtures/graph-models';
import { attr } from '../src/graphdef/attrs';
import { optimizeGraphModel } from '../src/pipeline';

beforeAll(() => tf.setBackend('cpu'));

const F32 = attr.type('DT_FLOAT');

/** x [2, ...spatial, C] -> transposed conv (kernel, strides) -> BiasAdd -> output. */
function build(rank: 2 | 3, spatial: number[], kernel: number[], strides: number[], padding: 'VALID' | 'SAME', C: number, F: number, seed: number) {
  const g = new GraphBuilder(seed);
  const x = g.placeholder('x', [2, ...spatial, C]);
  const out = spatial.map((n, a) => n * strides[a] + (padding === 'VALID' ? Math.max(kernel[a] - strides[a], 0) : 0));
  const sizes = g.ints('up/input_sizes', [2, ...out, F]);
  const filter = g.weight('up/kernel', [...kernel, F, C]);
  const op = g.op('up/conv_transpose', rank === 3 ? 'Conv3DBackpropInputV2' : 'Conv2DBackpropInput', [sizes, filter, x], {
    T: F32, strides: attr.ints([1, ...strides, 1]), padding: attr.str(padding), data_format: attr.str(rank === 3 ? 'NDHWC' : 'NHWC'),
    dilations: attr.ints(new Array(rank + 2).fill(1)), ...(rank === 3 ? { Tshape: attr.type('DT_INT32') } : {}),
  });
  const biased = g.biasAdd('up/BiasAdd', op, g.weight('up/bias', [F]));
  g.output(biased, [2, ...out, F]);
  return g.artifacts();
}

test.each([
  ['conv2d-transpose-to-dense', 2, [3, 4], [3, 2], [3, 2], 'VALID'],
  ['conv2d-transpose-to-dense', 2, [2, 5], [2, 2], [2, 2], 'SAME'],
  ['conv2d-transpose-to-dense', 2, [1, 3], [1, 4], [1, 4], 'VALID'],
] as const)('%s: %d-D input %j, kernel == strides, becomes MatMul + Transpose, verified on cpu', async (rule, rank, spatial, kernel, strides, padding) => {
  const artifacts = build(rank, [...spatial], [...kernel], [...strides], padding, 3, 4, 5);
  const result = await optimizeGraphModel(artifacts, { backend: 'cpu', passes: [rule] });
  expect(result.report.rewritten.map((r) => [r.layer, r.pass])).toEqual([['up/conv_transpose', rule]]);
  expect(result.report.verification?.passed).toBe(true);
  expect(result.report.verification?.outputs[0].maxAbsDiff).toBeLessThan(1e-5);
  const ops = (result.artifacts.modelTopology as { node: { op: string }[] }).node.map((n) => n.op);
  expect(ops.filter((op) => /Backprop/.test(op))).toEqual([]);
  expect(ops.filter((op) => op === 'MatMul' || op === 'Transpose')).toEqual(['MatMul', 'Transpose']);
});

test('a transposed conv op that overlaps (kernel > strides) stays, with the refusal the layers form gives', async () => {
  const artifacts = build(2, [2, 3], [3, 3], [2, 2], 'SAME', 2, 2, 6);
  const result = await optimizeGraphModel(artifacts, { backend: 'cpu', passes: ['conv2d-transpose-to-dense'] });
  expect(result.report.rewritten).toEqual([]);
  expect(result.report.skipped.map((s) => [s.layer, s.reason])).toEqual([['up/conv_transpose', 'strides [2, 2] != kernel_size [3, 3]']]);
});
