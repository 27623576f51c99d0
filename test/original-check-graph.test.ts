/**
 * The check of the original for graph models (src/verify/original-check-graphdef.ts): every
 * conv-family op tfjs-converter runs is probed alone with integers on the target and compared
 * with float64. A real wrong case on a Node backend: tfjs-backend-wasm 4.22 computes Conv2D and
 * DepthwiseConv2dNative wrong where 'SAME' padding would be negative and TF clamps it at 0
 * (kernel 2 < stride 3 on size 6: TF pads nothing; wasm shifts the windows). A graph model wrong
 * on its target is never written through as a silent "unchanged".
 */
import * as tf from '@tensorflow/tfjs';
import { optimizeGraphModel, UNCHANGED } from '../src/pipeline';
import { GraphBuilder } from '../fixtures/graph-models';
import { mulberry32 } from '../fixtures/models';
import { attr } from '../src/graphdef/attrs';
import { graphIRFromArtifacts } from '../src/graphdef/ir';
import { checkSubjects } from '../src/verify/original-check';
import { graphDefSubjects } from '../src/verify/original-check-graphdef';
import { useBackendForFile } from './helpers/tf';

useBackendForFile('cpu');

const F32 = attr.type('DT_FLOAT');
const NHWC = { T: F32, data_format: attr.str('NHWC'), dilations: attr.ints([1, 1, 1, 1]) };

/** Conv2D and depthwise, kernel 2 stride 3 'SAME', on 6x6 (TF pads -1 -> 0) and on 7x7 (TF pads 1: wasm is right). */
function strideBeyondKernel(): tf.io.ModelArtifacts {
  const g = new GraphBuilder(5);
  const x = g.placeholder('x', [-1, 6, 6, 3]);
  const y = g.placeholder('y', [-1, 7, 7, 3]);
  const conv = g.conv2d('a/Conv2D', x, g.weight('a/filter', [2, 2, 3, 4]), [3, 3], 'SAME');
  const dw = g.op('b/depthwise', 'DepthwiseConv2dNative', [x, g.weight('b/filter', [2, 2, 3, 2])], { ...NHWC, strides: attr.ints([1, 3, 3, 1]), padding: attr.str('SAME') });
  const right = g.conv2d('c/Conv2D', y, g.weight('c/filter', [2, 2, 3, 4]), [3, 3], 'SAME');
  g.output(conv, [-1, 2, 2, 4]);
  g.output(dw, [-1, 2, 2, 6]);
  g.output(right, [-1, 3, 3, 4]);
  return g.artifacts();
}

describe('a graph model wrong on wasm', () => {
  test('optimize for wasm: nothing to rewrite, written through with the findings (and only the ops really wrong)', async () => {
    const result = await optimizeGraphModel(strideBeyondKernel(), { backend: 'wasm', passes: ['conv3d-to-dense'] });
    const r = result.report;
    expect(r.rewritten).toEqual([]);
    expect(r.findings?.map((f) => [f.graph, f.layer, f.className, f.backend])).toEqual([
      ['graph', 'a/Conv2D', 'Conv2D', 'wasm'], ['graph', 'b/depthwise', 'DepthwiseConv2dNative', 'wasm'],
    ]);
    for (const f of r.findings!) {
      expect(f.maxAbsDiff).toBeGreaterThan(1);
      expect(f.shape).toEqual([6, 6, 3]);
    }
    expect(r.findings![0].summary).toMatch(/^the original computes wrong on wasm: Conv2D graph\/a\/Conv2D is off by up to \d+ vs float64/);
    expect(r.notes.join('\n')).toMatch(/written through unchanged, and it COMPUTES WRONG on wasm \(2 findings: a\/Conv2D, b\/depthwise/);
    expect(tf.getBackend()).toBe('cpu');
  }, 120000);

  test('the finding is real: the model itself, run on wasm, differs from cpu on those outputs only', async () => {
    const artifacts = strideBeyondKernel();
    const rand = mulberry32(3);
    const feed = (shape: number[]) => tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rand() * 2 - 1), shape);
    const inputs = { x: feed([1, 6, 6, 3]), y: feed([1, 7, 7, 3]) };
    const outputsOn = async (backend: string) => {
      await tf.setBackend(backend);
      const model = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
      const ys = model.execute(inputs, ['a/Conv2D', 'b/depthwise', 'c/Conv2D']) as tf.Tensor[];
      const data = await Promise.all(ys.map((t) => t.data()));
      tf.dispose(ys);
      model.dispose();
      return data;
    };
    const [onCpu, onWasm] = [await outputsOn('cpu'), await outputsOn('wasm')];
    await tf.setBackend('cpu');
    const maxDiff = (i: number) => Array.from(onCpu[i]).reduce((m, v, j) => Math.max(m, Math.abs(v - onWasm[i][j])), 0);
    expect(maxDiff(0)).toBeGreaterThan(1e-2);
    expect(maxDiff(1)).toBeGreaterThan(1e-2);
    expect(maxDiff(2)).toBeLessThan(1e-5);
    tf.dispose(Object.values(inputs));
  }, 120000);

  test('on cpu, where these ops are right: no findings, the plain "unchanged" note', async () => {
    const result = await optimizeGraphModel(strideBeyondKernel(), { backend: 'cpu', passes: ['conv3d-to-dense'] });
    expect(result.report.findings).toEqual([]);
    expect(result.report.notes).toContain(UNCHANGED);
  });
});

describe('wrong on every backend, cpu included (tfjs itself, not a backend kernel)', () => {
  const cpu = { name: 'cpu', device: 'cpu' };
  const subjectsOf = (build: (g: GraphBuilder) => void) => {
    const g = new GraphBuilder(8);
    build(g);
    return graphDefSubjects(graphIRFromArtifacts(g.artifacts()));
  };

  test("a 'SAME' Conv3D whose TF padding clamps at 0: tfjs pads it negative (kernel 1, stride 2 on size 2)", async () => {
    const subjects = subjectsOf((g) => {
      const x = g.placeholder('x', [-1, 2, 2, 2, 2]);
      g.output(g.conv3d('c3/Conv3D', x, g.weight('c3/filter', [1, 1, 1, 2, 3]), [2, 2, 2], 'SAME'), [-1, 1, 1, 1, 3]);
    });
    const findings = await checkSubjects(subjects, cpu);
    expect(findings.map((f) => [f.layer, f.className, f.backend])).toEqual([['c3/Conv3D', 'Conv3D', 'cpu']]);
    expect(findings[0].maxAbsDiff).toBeGreaterThan(0);
  });

  test("an NCHW Conv2D with dilations [1, 1, 2, 1]: tfjs-converter reads them at NHWC positions ([1, 2])", async () => {
    const subjects = subjectsOf((g) => {
      const x = g.placeholder('x', [-1, 2, 6, 6]);
      const conv = g.op('nchw/Conv2D', 'Conv2D', [x, g.weight('nchw/filter', [2, 2, 2, 3])], {
        T: F32, strides: attr.ints([1, 1, 1, 1]), dilations: attr.ints([1, 1, 2, 1]), padding: attr.str('VALID'), data_format: attr.str('NCHW'),
      });
      g.output(conv, [-1, 3, 4, 5]);
    });
    const findings = await checkSubjects(subjects, cpu);
    expect(findings.map((f) => [f.layer, f.className, f.backend])).toEqual([['nchw/Conv2D', 'Conv2D', 'cpu']]);
  });
});

type Kind = 'Conv2D' | '_FusedConv2D' | 'DepthwiseConv2dNative' | 'FusedDepthwiseConv2dNative' | 'Conv2DBackpropInput' | 'Conv3D';
const KINDS: Kind[] = ['Conv2D', '_FusedConv2D', 'DepthwiseConv2dNative', 'FusedDepthwiseConv2dNative', 'Conv2DBackpropInput', 'Conv3D'];

interface OpCase {
  id: number;
  kind: Kind;
  rank: number;
  kernel: number[];
  strides: number[];
  dilation: number[];
  padding: 'SAME' | 'VALID' | 'EXPLICIT';
  explicit: [number, number][];
  nchw: boolean;
  spatial: number[];
  channels: number;
  filters: number;
  /** A transposed conv's output size. */
  out: number[];
  activation: string | null;
}

function drawOp(id: number, rand: () => number): OpCase {
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const pick = <T>(items: readonly T[]) => items[Math.floor(rand() * items.length)];
  // Every op kind in turn; the rest drawn.
  const kind = KINDS[id % KINDS.length];
  const rank = kind === 'Conv3D' ? 3 : 2;
  const transposed = kind === 'Conv2DBackpropInput';
  const kernel = Array.from({ length: rank }, () => int(1, 3));
  // tfjs-converter reads a Conv2D's strides and dilations at their NHWC positions (tested below):
  // an NCHW op is right only with all of them 1.
  const nchw = kind === 'Conv2D' && rand() < 0.4;
  // tfjs runs no conv with strides > 1 and dilation > 1 at once; a transposed conv takes no dilation.
  const strided = !nchw && (transposed || rand() < 0.5);
  const strides = strided ? kernel.map(() => int(1, 3)) : kernel.map(() => 1);
  const dilation = strided || nchw ? kernel.map(() => 1) : kernel.map(() => int(1, 2));
  const canExplicit = kind === 'Conv2D' || kind === 'DepthwiseConv2dNative';
  const padding = pick(canExplicit ? ['SAME', 'VALID', 'EXPLICIT'] as const : ['SAME', 'VALID'] as const);
  const explicit = kernel.map(() => [int(0, 2), int(0, 2)] as [number, number]);
  // tfjs pads a 'SAME' Conv3D by a negative amount where TF pads 0 (tested below): sizes grow until it does not.
  const spatial = kernel.map((k, a) => {
    let size = transposed ? int(2, 5) : (k - 1) * dilation[a] + 1 + int(0, 5);
    while (kind === 'Conv3D' && padding === 'SAME' && (Math.ceil(size / strides[a]) - 1) * strides[a] + k - size < 0) size++;
    return size;
  });
  // Conv2DBackpropInput: any output size whose forward conv gives the input (TF's remainder over the stride).
  const out = spatial.map((h, a) => (padding === 'VALID' ? (h - 1) * strides[a] + kernel[a] + int(0, strides[a] - 1) : (h - 1) * strides[a] + int(1, strides[a])));
  return {
    id, kind, rank, kernel, strides, dilation, padding, explicit, spatial, out,
    nchw,
    channels: int(1, 3), filters: int(1, 3),
    activation: kind.includes('Fused') ? pick(['Relu', 'Relu6', null]) : null,
  };
}

function buildOp(c: OpCase): tf.io.ModelArtifacts {
  const g = new GraphBuilder(600 + c.id);
  const transposed = c.kind === 'Conv2DBackpropInput';
  const depthwise = c.kind.includes('Depthwise');
  const full = (spatialValues: number[], fill: number) => (c.nchw ? [fill, fill, ...spatialValues] : [fill, ...spatialValues, fill]);
  const x = g.placeholder('x', c.nchw ? [-1, c.channels, ...c.spatial] : [-1, ...c.spatial, c.channels]);
  const filterShape = transposed ? [...c.kernel, c.filters, c.channels] : [...c.kernel, c.channels, c.filters];
  const filter = g.weight('op/filter', filterShape);
  const outChannels = depthwise ? c.channels * c.filters : c.filters;
  const attrs = {
    T: F32, strides: attr.ints(full(c.strides, 1)), dilations: attr.ints(full(c.dilation, 1)), padding: attr.str(c.padding),
    data_format: attr.str(c.nchw ? 'NCHW' : c.rank === 3 ? 'NDHWC' : 'NHWC'),
    ...(c.padding === 'EXPLICIT' ? { explicit_paddings: attr.ints(c.nchw ? [0, 0, 0, 0, ...c.explicit.flat()] : [0, 0, ...c.explicit.flat(), 0, 0]) } : {}),
    ...(c.kind.includes('Fused') ? { fused_ops: attr.strs(['BiasAdd', ...(c.activation ? [c.activation] : [])]), num_args: attr.int(1), epsilon: attr.float(0) } : {}),
  };
  const inputs = transposed
    ? [g.ints('op/input_sizes', [1, ...c.out, c.filters]), filter, x]
    : [x, filter, ...(c.kind.includes('Fused') ? [g.weight('op/bias', [outChannels])] : [])];
  const y = g.op('op', c.kind, inputs, attrs);
  g.output(y, [-1]);
  return g.artifacts();
}

describe('property: every conv-family op is probed and its float64 reference equals tfjs cpu exactly', () => {
  const rand = mulberry32(20261208);
  const cases = Array.from({ length: 24 }, (_, id) => drawOp(id, rand));

  beforeAll(() => {
    const count = (f: (c: OpCase) => string) => Object.entries(cases.reduce<Record<string, number>>((acc, c) => ({ ...acc, [f(c)]: (acc[f(c)] ?? 0) + 1 }), {}))
      .map(([k, v]) => `${k}:${v}`).join(' ');
    console.log([
      `graph original-check cases (${cases.length}, mulberry32 seed 20261208):`,
      `  op and padding ${count((c) => `${c.kind}/${c.padding}`)}`,
      `  padding ${count((c) => c.padding)}; NCHW ${cases.filter((c) => c.nchw).length}; fused activation ${count((c) => String(c.activation))}`,
      `  strides ${count((c) => c.strides.join('x'))}; dilation ${count((c) => c.dilation.join('x'))}; kernel ${count((c) => c.kernel.join('x'))}`,
    ].join('\n'));
  });

  test.each(cases.map((c) => [`${c.id}: ${c.kind} ${c.nchw ? 'NCHW ' : ''}${c.spatial.join('x')}x${c.channels} k${c.kernel.join('')} s${c.strides.join('')} d${c.dilation.join('')} ${c.padding}${c.padding === 'EXPLICIT' ? JSON.stringify(c.explicit) : ''}${c.kind === 'Conv2DBackpropInput' ? ` -> ${c.out.join('x')}` : ''}${c.activation ? ` ${c.activation}` : ''}`, c] as const))('%s', async (_, c) => {
    const tensors = tf.memory().numTensors;
    const subjects = graphDefSubjects(graphIRFromArtifacts(buildOp(c)));
    expect(subjects.map((s) => [s.layer, s.className])).toEqual([['op', c.kind]]);
    const cpu = { name: 'cpu', device: 'cpu' };
    // tfjs's cpu backend computes these right: the reference must agree exactly.
    expect(await checkSubjects(subjects, cpu)).toEqual([]);
    // A test double at the boundary: the same probe against a reference one off in one element
    // must be a finding (so the probe ran and was compared, and was not skipped as uncheckable).
    const skewed = subjects.map((s) => ({
      ...s,
      probe: (fill: (role: 'kernel' | 'bias', count: number) => Float32Array, rows: number) => {
        const probe = s.probe(fill, rows)!;
        return { ...probe, float64: async (input: { data: Float32Array; shape: number[] }) => {
          const reference = (await probe.float64(input))!;
          reference[0] += 1;
          return reference;
        } };
      },
    }));
    const found = await checkSubjects(skewed, cpu);
    expect(found.map((f) => [f.layer, f.mismatches, f.maxAbsDiff])).toEqual([['op', 1, 1]]);
    expect(tf.memory().numTensors).toBe(tensors);
  });
});
