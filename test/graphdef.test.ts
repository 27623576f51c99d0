/** optimize / inspect / verify on graph models, and the GraphDef lowering of conv3d-to-dense and its guards. */
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { GraphBuilder, graphFixture } from '../fixtures/graph-models';
import { InputError } from '../src/errors';
import { attr } from '../src/graphdef/attrs';
import { inspectGraphModel, optimizeGraphModel, verifyGraphModels } from '../src/pipeline';
import { readGraphModelFiles } from '../src/graphdef/files';
import { UNCHANGED } from '../src/pipeline';
import { graphIRFromArtifacts } from '../src/graphdef/ir';
import { loadGraph, runGraph } from '../src/formats/load';
import { verifyGraphArtifacts } from '../src/verify/graphdef';
import { compareOutputs } from '../src/verify/compare';
import { REPO, expectNoLeaks, snapshotDir, tempDir } from './helpers/tf';

const committed = (name: string) => path.join(REPO, 'fixtures', 'graph-models', name, 'model.json');
// The rewrite itself is under test, not the speed policy.
const TIGHT = { atol: 1e-5, rtol: 1e-4, policy: 'always' as const };
type Topology = { node: { name: string; op: string; input?: string[]; attr?: Record<string, unknown> }[] };
const topology = (a: io.ModelArtifacts) => a.modelTopology as unknown as Topology;
const ops = (a: io.ModelArtifacts) => topology(a).node.map((n) => n.op);

beforeAll(() => tf.setBackend('cpu'));

describe('patch embed', () => {
  test('Conv3D + BiasAdd become Reshape -> 2-D _FusedMatMul -> Reshape, verified on cpu', async () => {
    const spec = graphFixture('graph-patch-embed-mini');
    const result = await expectNoLeaks(() => optimizeGraphModel(committed(spec.name), { backend: 'cpu', ...TIGHT }));
    const { report, artifacts } = result;
    expect(report.rewritten.map((r) => r.layer)).toEqual(spec.expectRewritten);
    expect(report.skipped).toEqual([]);
    expect(report.before.layers.Conv3D).toBe(1);
    expect(report.after.layers.Conv3D).toBeUndefined();
    expect(report.after.layers.BiasAdd).toBeUndefined();
    expect(report.after.layers._FusedMatMul).toBe(1);
    // Patch embed: no transpose is added, the one there is the model's own.
    expect(report.after.layers.Transpose).toBe(report.before.layers.Transpose);
    // Same params: the kernel is reshaped, not duplicated; the old filter is gone.
    expect(report.after.params).toBe(report.before.params);
    const fused = topology(artifacts).node.find((n) => n.op === '_FusedMatMul')!;
    const kernel = artifacts.weightSpecs!.find((w) => w.name === fused.input![1])!;
    expect(kernel.shape).toEqual([2 * 4 * 4 * 3, 32]);
    expect(fused.attr).toMatchObject({ transpose_a: { b: false }, transpose_b: { b: false } });
    // The chain's last node takes the BiasAdd's name, so the Identity output still reads it.
    const last = topology(artifacts).node.find((n) => n.name.endsWith('patch_embed/BiasAdd'))!;
    expect(last.op).toBe('Reshape');
    expect(report.verification).toMatchObject({ passed: true, backend: 'cpu', atol: TIGHT.atol, rtol: TIGHT.rtol });
    expect(report.verification!.outputs[0].maxAbsDiff).toBeLessThan(1e-5);
    expect(report.verification!.outputs[0].shape).toEqual(spec.outputShapes(2)[0]);
  });

  test('a kernel with rows out of order fails verification', async () => {
    const original = await readGraphModelFiles(committed('graph-patch-embed-mini'));
    const { artifacts } = await optimizeGraphModel(original, { verify: false, policy: 'always' });
    const specs = artifacts.weightSpecs!;
    const at = specs.findIndex((w) => w.name.endsWith('matmul_kernel'));
    const offset = specs.slice(0, at).reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1) * 4, 0);
    const data = new Float32Array((artifacts.weightData as ArrayBuffer).slice(0));
    const row = (i: number) => data.subarray(offset / 4 + i * 32, offset / 4 + (i + 1) * 32);
    const first = row(0).slice();
    row(0).set(row(1));
    row(1).set(first);
    const broken = { ...artifacts, weightData: data.buffer };
    const verification = await expectNoLeaks(() => verifyGraphArtifacts(original, broken, { backend: 'cpu', ...TIGHT }));
    expect(verification.passed).toBe(false);
    expect(verification.outputs[0].outsideTolerance).toBeGreaterThan(0);
  });

  test('user rows are fed a batch at a time and stitched back', async () => {
    const original = await readGraphModelFiles(committed('graph-patch-embed-mini'));
    const { artifacts } = await optimizeGraphModel(original, { verify: false, policy: 'always' });
    const data = Float32Array.from({ length: 7 * 96 }, (_, i) => Math.sin(i));
    const progress: number[] = [];
    const verification = await expectNoLeaks(() => verifyGraphArtifacts(original, artifacts, {
      backend: 'cpu', inputs: [{ data, shape: [7, 96], dtype: 'float32' }], batchSize: 3, onProgress: (p) => progress.push(p.done), ...TIGHT,
    }));
    expect(progress).toEqual([3, 6, 7]);
    expect(verification).toMatchObject({ passed: true, rows: 7, batchSize: 3 });
    expect(verification.outputs[0].shape).toEqual([7, 32]);
    await expect(verifyGraphArtifacts(original, artifacts, { backend: 'cpu', inputs: [{ data: data.subarray(0, 7 * 95), shape: [7, 95], dtype: 'float32' }] }))
      .rejects.toThrow('does not fit model input 0 "pixel_values" [N, 96]');
  });

  test('save writes a graph model stock tfjs loads; verify compares it; no overwrite without force', async () => {
    const source = path.dirname(committed('graph-patch-embed-mini'));
    const sourceBefore = snapshotDir(source);
    const out = path.join(tempDir(), 'out');
    const result = await optimizeGraphModel(source, { verify: false, policy: 'always' });
    const saved = result.save(out);
    expect(saved).toBe(path.join(out, 'model.json'));
    const reread = await readGraphModelFiles(saved);
    expect(reread.format).toBe('graph-model');
    expect(ops(reread)).toEqual(ops(result.artifacts));
    const verification = await expectNoLeaks(() => verifyGraphModels(source, saved, { backend: 'cpu', batch: 3, ...TIGHT }));
    expect(verification.passed).toBe(true);
    expect(verification.outputs[0].shape).toEqual([3, 32]);

    const written = snapshotDir(out);
    expect(() => result.save(out)).toThrow(InputError);
    expect(snapshotDir(out)).toEqual(written);
    expect(snapshotDir(source)).toEqual(sourceBefore);
  });
});

/** uint8 affine quantization of some float32 weights, as tensorflowjs_converter --quantize_uint8 writes it. */
function quantized(artifacts: io.ModelArtifacts, which: (name: string) => boolean): io.ModelArtifacts {
  const data = new Uint8Array(artifacts.weightData as ArrayBuffer);
  const specs: io.WeightsManifestEntry[] = [];
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const spec of artifacts.weightSpecs!) {
    const length = spec.shape.reduce((a, b) => a * b, 1) * 4;
    const bytes = data.slice(offset, offset + length);
    offset += length;
    if (!which(spec.name)) {
      specs.push(spec);
      chunks.push(bytes);
      continue;
    }
    const values = new Float32Array(bytes.buffer);
    const min = Math.min(...values);
    const scale = (Math.max(...values) - min) / 255;
    specs.push({ ...spec, quantization: { dtype: 'uint8', scale, min } });
    chunks.push(Uint8Array.from(values, (v) => Math.round((v - min) / scale)));
  }
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  chunks.reduce((at, c) => (out.set(c, at), at + c.byteLength), 0);
  return { ...artifacts, weightSpecs: specs, weightData: out.buffer };
}

test('a uint8-quantized filter stays uint8 in the MatMul kernel; an untouched quantized bias stays as it was', async () => {
  const original = quantized(graphFixture('graph-patch-embed-mini').build(), (name) => /patch_embed\/(Conv3D|BiasAdd)\/ReadVariableOp$/.test(name));
  const { report, artifacts } = await expectNoLeaks(() => optimizeGraphModel(original, { backend: 'cpu', ...TIGHT }));
  expect(report.rewritten).toHaveLength(1);
  expect(report.verification!.passed).toBe(true);
  expect(report.notes.join('\n')).toContain('the uint8-quantized filter keeps its encoding in the MatMul kernel');
  const bias = artifacts.weightSpecs!.find((w) => w.name.endsWith('BiasAdd/ReadVariableOp'))!;
  expect(bias.quantization).toEqual(original.weightSpecs!.find((w) => w.name === bias.name)!.quantization);
  const filter = original.weightSpecs!.find((w) => w.name.endsWith('Conv3D/ReadVariableOp'))!;
  expect(artifacts.weightSpecs!.find((w) => w.name.endsWith('matmul_kernel'))).toEqual({ ...filter, name: expect.stringMatching(/matmul_kernel$/), shape: [96, 32] });
});

describe('tubelet with remainders and SAME padding', () => {
  test('rewrites both convs, verifies on wasm, and keeps the batch dynamic', async () => {
    const spec = graphFixture('graph-tubelet-remainder');
    const original = await readGraphModelFiles(committed(spec.name));
    const { report, artifacts } = await expectNoLeaks(() => optimizeGraphModel(original, { backend: 'wasm', ...TIGHT }));
    expect(report.rewritten.map((r) => r.layer).sort()).toEqual([...spec.expectRewritten].sort());
    expect(report.verification).toMatchObject({ passed: true, backend: 'wasm' });
    for (const output of report.verification!.outputs) expect(output.maxAbsDiff).toBeLessThan(1e-5);
    // The SAME conv has two readers: nothing folded there, so one plain MatMul.
    expect(report.after.layers).toMatchObject({ MatMul: 1, _FusedMatMul: 1 });
    expect(report.after.layers.BiasAdd).toBeUndefined();
    // Every MatMul operand is 2-D: the shape Const before it is [-1, P].
    const nodes = topology(artifacts).node;
    const shapeOfReshape = (name: string) => {
      const reshape = nodes.find((n) => n.name === name)!;
      return artifacts.weightSpecs!.find((w) => w.name === reshape.input![1])!.shape;
    };
    for (const matmul of nodes.filter((n) => /MatMul/.test(n.op))) expect(shapeOfReshape(matmul.input![0])).toEqual([2]);

    await expectNoLeaks(async () => {
      const [before, after] = [await loadGraph(original, 'original'), await loadGraph(artifacts, 'rewritten')];
      try {
        for (const batch of [1, 5]) {
          const feed = { 'clip:0': tf.randomUniform([batch, 9, 34, 33, 3], -1, 1, 'float32', batch) };
          const expected = await runGraph(before, feed, before.outputNodes);
          const actual = await runGraph(after, feed, after.outputNodes);
          expect(actual.map((t) => t.shape)).toEqual(spec.outputShapes(batch));
          expected.forEach((e, i) => {
            expect(compareOutputs(`out${i}`, e.shape, e.dataSync(), actual[i].dataSync(), TIGHT).passed).toBe(true);
          });
          tf.dispose([...expected, ...actual, ...Object.values(feed)]);
        }
      } finally {
        before.dispose();
        after.dispose();
      }
    });
  });
});

describe('negatives', () => {
  test('every Conv3D stays, each with its reason, and the model is unchanged', async () => {
    const spec = graphFixture('graph-negatives');
    const original = await readGraphModelFiles(committed(spec.name));
    // Refusals of conv3d-to-dense: conv3d-to-conv2d-slices rewrites the sliding ones (conv3d-slices.test.ts).
    const passes = ['conv3d-to-dense', 'conv2d-to-dense', 'conv1d-to-dense'];
    const { report, artifacts } = await optimizeGraphModel(original, { backend: 'cpu', ...TIGHT, passes });
    expect(report.rewritten).toEqual([]);
    expect(report.skipped.map((s) => s.layer)).toEqual(spec.expectSkipped.map((s) => s.node));
    spec.expectSkipped.forEach((expected, i) => expect(report.skipped[i].reason).toContain(expected.reasonIncludes));
    // Written through as read: the same artifacts, no numerical check needed.
    expect(artifacts).toBe(original);
    expect(report.verification).toBeNull();
    expect(report.notes).toContain(UNCHANGED);
  });
});

/** x -> Conv3D(filter) -> Identity, with attrs/filter/input shape overridable. */
function convModel(o: {
  input?: number[]; filter?: number[]; strides?: number[]; padding?: string; attrs?: Record<string, io.ModelArtifacts['modelTopology']>;
  filterThroughIdentity?: boolean; signature?: boolean; inputOp?: string; depth?: number; control?: string;
} = {}): io.ModelArtifacts {
  const g = new GraphBuilder(42);
  let x = g.placeholder('x', o.input ?? [-1, 4, 8, 8, 3]);
  if (o.inputOp) x = g.op('pre', o.inputOp, [x], { T: attr.type('DT_FLOAT') });
  for (let i = 0; i < (o.depth ?? 0); i++) x = g.op(`relu_${i}`, 'Relu', [x], { T: attr.type('DT_FLOAT') });
  let filter = g.weight('w', o.filter ?? [2, 4, 4, 3, 5]);
  if (o.filterThroughIdentity) filter = g.op('w/read', 'Identity', [filter], { T: attr.type('DT_FLOAT') });
  const conv = g.op('conv', 'Conv3D', [x, filter, ...(o.control ? [o.control] : [])], {
    T: attr.type('DT_FLOAT'), strides: attr.ints(o.strides ?? [1, 2, 4, 4, 1]), padding: attr.str(o.padding ?? 'VALID'),
    data_format: attr.str('NDHWC'), dilations: attr.ints([1, 1, 1, 1, 1]), ...(o.attrs as object),
  });
  g.output(conv, [-1, 2, 2, 2, 5]);
  const artifacts = g.artifacts();
  if (o.signature === false) delete artifacts.signature;
  return artifacts;
}

describe('guards', () => {
  const reasonOf = async (artifacts: io.ModelArtifacts) => {
    // conv3d-to-dense's guards (conv3d-to-conv2d-slices shares the GraphDef ones: conv3d-slices.test.ts).
    const report = await inspectGraphModel(artifacts, { policy: 'always', passes: ['conv3d-to-dense'] });
    expect(report.rewritten).toEqual([]);
    return report.skipped.map((s) => `${s.layer}: ${s.reason}`);
  };

  test.each([
    ['NCDHW', { attrs: { data_format: attr.str('NCDHW') } }, 'conv: data_format NCDHW is not NDHWC'],
    ['float16', { attrs: { T: attr.type('DT_HALF') } }, 'conv: T DT_HALF is not DT_FLOAT'],
    ['dilated', { attrs: { dilations: attr.ints([1, 2, 1, 1, 1]) } }, 'conv: dilation_rate [2, 1, 1] != 1'],
    ['explicit padding', { padding: 'EXPLICIT' }, "conv: padding 'explicit' is not 'valid'"],
    ['batch stride', { strides: [2, 2, 4, 4, 1] }, 'conv: strides [2, 2, 4, 4, 1] step over batch or channels'],
    ['dynamic spatial dims', { input: [-1, -1, 8, 8, 3] }, 'conv: input shape [null, null, 8, 8, 3] is not static beyond the batch'],
    ['input smaller than kernel', { input: [-1, 1, 8, 8, 3] }, 'conv: input D=1 is smaller than kernel 2'],
    ['a shape only a run tells, on a model that cannot run at an unknown size', { input: [-1, -1, 8, 8, 3], inputOp: 'Unique' },
      'conv: input shape is unknown: Unique "pre" has an output shape that only running the model tells, and the model cannot be run to learn it: input "x" has sizes [-1,-1,8,8,3] (give its shape with --input-shape)'],
  ])('%s', async (_, options, reason) => {
    expect(await reasonOf(convModel(options as Parameters<typeof convModel>[0]))).toEqual([reason]);
  });

  test('a filter behind Identity is found; the unread Identity and old filter are dropped (no signature)', async () => {
    const original = convModel({ filterThroughIdentity: true, signature: false });
    const { report, artifacts } = await expectNoLeaks(() => optimizeGraphModel(original, { backend: 'cpu', ...TIGHT }));
    expect(report.rewritten.map((r) => r.layer)).toEqual(['conv']);
    const names = topology(artifacts).node.map((n) => n.name);
    expect(names).not.toContain('w');
    expect(names).not.toContain('w/read');
    expect(artifacts.weightSpecs!.map((w) => w.name)).not.toContain('w');
    // Without a signature tfjs returns every unread node: still only the Identity.
    expect(report.verification!.outputs.map((o) => o.name)).toEqual(['Identity']);
    expect(report.verification!.passed).toBe(true);
  });

  test('a control dependency of the conv moves to the first op of its replacement', async () => {
    const { report, artifacts } = await optimizeGraphModel(convModel({ control: '^x' }), { backend: 'cpu', ...TIGHT });
    expect(report.rewritten).toHaveLength(1);
    const waiting = topology(artifacts).node.filter((n) => n.input?.includes('^x'));
    expect(waiting.map((n) => n.op)).toEqual(['Reshape']);
    expect(report.verification!.passed).toBe(true);
  });

  test('shapes are inferred through 30000 nodes without recursion', async () => {
    const report = await inspectGraphModel(convModel({ depth: 30000 }), { policy: 'always' });
    expect(report.skipped).toEqual([]);
    expect(report.rewritten.map((r) => r.layer)).toEqual(['conv']);
  });

  test('inspect reports without creating tensors and serializes to JSON', async () => {
    const before = tf.memory().numTensors;
    const report = await inspectGraphModel(committed('graph-tubelet-remainder'), { policy: 'always' });
    expect(tf.memory().numTensors).toBe(before);
    expect(report.verification).toBeNull();
    expect(report.rewritten).toHaveLength(2);
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
  });
});

describe('input validation', () => {
  const edited = (edit: (t: Topology, a: io.ModelArtifacts) => void) => {
    const artifacts = convModel();
    const copy = { ...artifacts, modelTopology: JSON.parse(JSON.stringify(artifacts.modelTopology)) };
    edit(topology(copy), copy);
    return copy;
  };

  test.each([
    ['dangling input', (t: Topology) => (t.node.find((n) => n.name === 'conv')!.input![0] = 'nope'), 'node "conv" reads "nope", but no node "nope" exists'],
    ['duplicate name', (t: Topology) => (t.node.find((n) => n.name === 'Identity')!.name = 'conv'), 'two nodes are named "conv"'],
    ['Const without weight', (t: Topology) => t.node.push({ name: 'orphan', op: 'Const', attr: {} }), 'Const node "orphan" has no weight'],
    ['cycle', (t: Topology) => (t.node.find((n) => n.name === 'x')!.input = ['Identity']), 'the graph has a cycle'],
    ['truncated weights', (_: Topology, a: io.ModelArtifacts) => (a.weightData = (a.weightData as ArrayBuffer).slice(0, 100)), 'weight "w" ends at byte 1920 but the weight data holds 100'],
  ])('%s is refused with a reason', async (_, edit, message) => {
    const artifacts = edited(edit as (t: Topology, a: io.ModelArtifacts) => void);
    expect(() => graphIRFromArtifacts(artifacts)).toThrow(InputError);
    await expect(inspectGraphModel(artifacts)).rejects.toThrow(message);
  });

  test('a layers model.json is refused by the graph reader', async () => {
    await expect(readGraphModelFiles(path.join(REPO, 'fixtures', 'models', 'negatives', 'model.json'))).rejects.toThrow('is not "graph-model"');
  });
});
