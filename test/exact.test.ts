/**
 * The exact check (src/verify/exact.ts): every rewritten conv of every committed fixture (layers
 * models and the small graph-model fixtures) is bitwise equal to its original on integer data,
 * on cpu, wasm and (when a browser is present) webgl; a rewrite that puts one kernel row in the
 * wrong place is caught, in either format.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { optimize } from '../src';
import { BUILTIN_GRAPHDEF_PASSES, BUILTIN_PASSES } from '../passes';
import { conv3dToDense, conv3dToDenseGraphDef } from '../passes/conv3d-to-dense';
import { selectBackend } from '../src/backend/select';
import { BrowserSession } from '../src/browser/session';
import { GRAPH_FIXTURES } from '../fixtures/graph-models';
import { graphDefExactSubject } from '../src/graphdef/cutout';
import { GraphDefCandidate, runGraphDefPasses } from '../src/graphdef/driver';
import { graphIRFromArtifacts } from '../src/graphdef/ir';
import type { GraphDefPass } from '../src/graphdef/pass';
import { loadChecked } from '../src/io/source';
import { layersExactSubject } from '../src/layers/cutout';
import { Candidate, runPasses } from '../src/layers/driver';
import type { Graph, ModelIR } from '../src/layers/types';
import type { Pass } from '../src/pass';
import { ExactCheck, ExactSubject, magnitudesFor, rewrittenSubjects, runExactChecks } from '../src/verify/exact';
import { describeBrowser } from './helpers/browser';
import { COMMITTED, committedModel, expectNoLeaks } from './helpers/tf';

const FIXTURES = fs.readdirSync(COMMITTED).filter((name) => fs.existsSync(path.join(COMMITTED, name, 'model.json'))).sort();
const FORCED = new Set(BUILTIN_PASSES.map((pass) => pass.name));
const CONV_PASSES = new Set(BUILTIN_PASSES.filter((pass) => pass.reportRefusals !== false).map((pass) => pass.name));

/** The exact subjects of a layers model: a dry run's conv candidates, as optimize takes them. */
function exactSubjects(ir: ModelIR, passes: Pass[], backend: string, forced: Set<string>): ExactSubject[] {
  const candidates: Candidate[] = [];
  runPasses(ir, passes, { backend, forced, keep: (candidate) => (candidates.push(candidate), 'dry run') });
  return candidates.filter((c) => c.pass.reportRefusals !== false).map((c) => layersExactSubject(c, passes));
}

/** The same for a graph model. */
function graphDefSubjects(artifacts: tf.io.ModelArtifacts, passes: GraphDefPass[], backend: string): ExactSubject[] {
  const candidates: GraphDefCandidate[] = [];
  runGraphDefPasses(graphIRFromArtifacts(artifacts), passes, { backend, keep: (candidate) => (candidates.push(candidate), 'dry run') });
  return candidates.map((c) => graphDefExactSubject(c, passes));
}

/** Every layer name of a topology, nested models included. */
const layerNames = (graph: Graph): string[] => graph.layers.flatMap((layer) => [layer.name, ...(layer.graph ? layerNames(layer.graph) : [])]);

/**
 * Each fixture's rewritten convs (every pass forced, so Conv1D/Conv2D are covered too). Only the
 * original's convs have subjects: a Conv2D that one rewrite made (conv3d-to-conv2d-slices) and a
 * later rule rewrote again is checked as part of its original conv's subject.
 */
async function subjectsOf(name: string, backend: string) {
  const graph = GRAPH_FIXTURES.find((f) => f.name === name);
  if (graph) {
    const subjects = graphDefSubjects(graph.build(), BUILTIN_GRAPHDEF_PASSES, backend);
    const { rewritten } = runGraphDefPasses(graphIRFromArtifacts(graph.build()), BUILTIN_GRAPHDEF_PASSES, { backend });
    return { convs: rewritten.map((record) => record.layer).sort(), subjects: rewrittenSubjects(subjects, rewritten) };
  }
  const { ir } = await loadChecked(committedModel(name));
  const original = new Set(layerNames(ir.graph));
  const subjects = exactSubjects(ir, BUILTIN_PASSES, backend, FORCED);
  const { rewritten } = runPasses(ir, BUILTIN_PASSES, { backend, forced: FORCED });
  const convs = [...new Set(rewritten.filter((record) => CONV_PASSES.has(record.pass) && original.has(record.layer)).map((record) => record.layer))].sort();
  return { convs, subjects: rewrittenSubjects(subjects, rewritten) };
}

/** The small graph-model fixtures (built in memory; the full-size Qwen3-VL one is left to npm run bench). */
const GRAPH_SMALL = GRAPH_FIXTURES.filter((f) => f.small && f.expectRewritten.length > 0).map((f) => f.name);

/** Runs the check on every fixture and asserts each rewritten conv is exact. */
async function checkAll(backend: string, run: (subjects: ReturnType<typeof rewrittenSubjects>) => Promise<ExactCheck[]>) {
  let total = 0;
  for (const name of [...FIXTURES, ...GRAPH_SMALL]) {
    const { convs, subjects } = await subjectsOf(name, backend);
    const checks = await run(subjects);
    expect({ name, layers: [...new Set(checks.map((c) => c.layer))].sort() }).toEqual({ name, layers: convs });
    for (const check of checks) expect({ name, layer: check.layer, exact: check.exact, mismatches: check.mismatches }).toEqual({ name, layer: check.layer, exact: true, mismatches: 0 });
    total += checks.length;
  }
  process.stderr.write(`exact check on ${backend}: ${total} cut-outs over ${FIXTURES.length} layers and ${GRAPH_SMALL.length} graph fixtures, all bitwise equal\n`);
  expect(total).toBeGreaterThanOrEqual(15);
}

/** conv3d-to-dense with the first two rows of the Dense kernel swapped: a layout bug. */
const planted: Pass = {
  ...conv3dToDense,
  rewrite(layer, plan, context) {
    const replacement = conv3dToDense.rewrite(layer, plan as never, context);
    const kernel = replacement.addWeights.find((w) => w.name.endsWith('/kernel'))!;
    const filters = kernel.shape[1];
    const values = Float32Array.from(kernel.values as Float32Array);
    values.set(kernel.values.slice(filters, 2 * filters) as Float32Array, 0);
    values.set(kernel.values.slice(0, filters) as Float32Array, filters);
    return { ...replacement, addWeights: replacement.addWeights.map((w) => (w === kernel ? { ...w, values } : w)) };
  },
};
const PLANTED_PIPELINE = [planted, ...BUILTIN_PASSES.filter((pass) => pass.name !== 'conv3d-to-dense')];

/** The GraphDef lowering of conv3d-to-dense with the first two rows of its MatMul kernel swapped. */
const plantedGraphDef: GraphDefPass = {
  ...conv3dToDenseGraphDef,
  rewrite(node, plan, context) {
    const replacement = conv3dToDenseGraphDef.rewrite(node, plan as never, context);
    const kernel = replacement.addWeights.find((w) => w.spec.dtype === 'float32' && w.spec.shape.length === 2)!;
    const filters = kernel.spec.shape[1];
    const values = new Float32Array(kernel.bytes.slice().buffer);
    const first = values.slice(0, filters);
    values.copyWithin(0, filters, 2 * filters);
    values.set(first, filters);
    return { ...replacement, addWeights: replacement.addWeights.map((w) => (w === kernel ? { ...w, bytes: new Uint8Array(values.buffer) } : w)) };
  },
};

test('magnitudes keep every partial sum P*a*b + c within the exact-integer limit, for any patch size', () => {
  for (const limit of [2 ** 11, 2 ** 24]) {
    for (let patch = 1; patch <= limit; patch = Math.ceil(patch * 1.37)) {
      const m = magnitudesFor(patch, limit)!;
      expect(m.input).toBeGreaterThanOrEqual(1);
      expect(patch * m.input * m.kernel + m.bias).toBeLessThanOrEqual(limit);
    }
    expect(magnitudesFor(limit + 1, limit)).toBeNull();
  }
  // Float16 with the Qwen3-VL patch (2*16*16*3 = 1536 values): only +-1 fits.
  expect(magnitudesFor(1536, 2 ** 11)).toEqual({ input: 1, kernel: 1, bias: 16 });
});

describe.each(['cpu', 'wasm'])('on %s', (backend) => {
  let previous: string;
  beforeAll(async () => {
    await tf.ready();
    previous = tf.getBackend();
    await selectBackend(backend as 'cpu' | 'wasm');
  });
  afterAll(() => tf.setBackend(previous));

  test('every rewritten conv of every fixture is bitwise exact', async () => {
    await expectNoLeaks(() => checkAll(backend, (subjects) => runExactChecks(subjects, { float16: false })));
  });

  test('optimize reports exact: true per layer; a planted wrong kernel row reports false and fails', async () => {
    const good = await optimize(committedModel('qwen3vl-patch-embed-mini'), { backend: backend as 'cpu', policy: 'always' });
    expect(good.report.verification!.exact).toEqual([expect.objectContaining({ layer: 'patch_embed', exact: true, mismatches: 0 })]);
    const bad = await optimize(committedModel('qwen3vl-patch-embed-mini'), { backend: backend as 'cpu', passes: PLANTED_PIPELINE });
    const [check] = bad.report.verification!.exact!;
    expect(check).toMatchObject({ layer: 'patch_embed', exact: false });
    expect(check.mismatches).toBeGreaterThan(0);
    expect(bad.report.verification!.passed).toBe(false);
  });

  test('graph models: optimize reports exact: true per op; a swapped kernel row in a GraphDef rewrite reports false and fails', async () => {
    const model = GRAPH_FIXTURES.find((f) => f.name === 'graph-patch-embed-mini')!;
    const conv = model.expectRewritten[0];
    const good = await optimize(model.build(), { backend: backend as 'cpu', policy: 'always' });
    expect(good.report.verification!.exact).toEqual([expect.objectContaining({ layer: conv, exact: true, mismatches: 0 })]);
    const bad = await optimize(model.build(), { backend: backend as 'cpu', passes: [plantedGraphDef] });
    const [check] = bad.report.verification!.exact!;
    expect(check).toMatchObject({ layer: conv, exact: false });
    expect(check.mismatches).toBeGreaterThan(0);
    expect(bad.report.verification!.passed).toBe(false);
  });
});

describeBrowser('on webgl (headless browser)', () => {
  let session: BrowserSession;
  beforeAll(async () => {
    session = await BrowserSession.open('webgl');
  }, 60000);
  afterAll(() => session?.close());

  test('every rewritten conv of every fixture is bitwise exact', async () => {
    await checkAll('webgl', (subjects) => runExactChecks(subjects, { float16: session.float16, session }));
    expect(await session.numTensors()).toBe(0);
  }, 180000);

  test('a planted wrong kernel row is not exact, also with float16 magnitudes', async () => {
    const { ir } = await loadChecked(committedModel('qwen3vl-patch-embed-mini'));
    const subjects = exactSubjects(ir, PLANTED_PIPELINE, 'webgl', new Set());
    for (const float16 of [false, true]) {
      const [check] = await runExactChecks(subjects, { float16, session });
      expect(check).toMatchObject({ layer: 'patch_embed', exact: false });
      expect(check.magnitudes!.bound).toBeLessThanOrEqual(float16 ? 2048 : 2 ** 24);
    }
  }, 60000);
});
