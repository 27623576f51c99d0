import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { benchModel, formatModelBench } from '../src/bench/model-bench';
import { load, measure, prepare } from '../src/bench/measure';
import { BENCH_CASES } from '../src/bench/cases';
import { checkPolicy, checkTargets, formatPolicyChecks, formatTargets, markdownTable, PassCost, Row } from '../src/bench/report';
import { MEASURED_SPEEDUP, MIN_SPEEDUP } from '../src/rewrite/policy';
import { interleave, repsFor, summarizeSamples } from '../src/bench/stats';
import { InputError } from '../src/errors';
import { writeNpy } from '../src/io/npy';
import { committedModel, expectNoLeaks, tempDir } from './helpers/tf';
import { makeInputs } from '../src/verify/inputs';

const TINY = { warmup: 1, minReps: 2, maxReps: 2, budgetMs: 0 };

describe('stats', () => {
  test('median and half-range spread, robust to one outlier', () => {
    const s = summarizeSamples([10, 12, 11, 100, 9]);
    expect(s.median).toBe(11);
    expect([s.min, s.max]).toEqual([9, 100]);
    expect(s.spread).toBeCloseTo((100 - 9) / 2 / 11);
    expect(summarizeSamples([5]).spread).toBe(0);
  });

  test('reps fit the budget within bounds', () => {
    const options = { warmup: 1, minReps: 3, maxReps: 15, budgetMs: 3000 };
    expect(repsFor(8000, options)).toBe(3);
    expect(repsFor(500, options)).toBe(6);
    expect(repsFor(1, options)).toBe(15);
  });

  test('interleave warms up, then runs round-robin; slow variants drop out early', async () => {
    const order: string[] = [];
    const runner = (name: string, ms: number, extra: { reps?: number; warmup?: number } = {}) =>
      ({ name, ...extra, run: async () => (order.push(name), ms) });
    const samples = await interleave(
      [runner('a', 1000), runner('b', 100), runner('slow', 5000, { reps: 1, warmup: 0 })],
      { warmup: 1, minReps: 2, maxReps: 4, budgetMs: 2000 },
    );
    expect(order).toEqual(['a', 'b', 'a', 'b', 'slow', 'a', 'b', 'b', 'b']);
    expect(samples.get('a')!.ms).toEqual([1000, 1000]);
    expect(samples.get('b')!.ms).toHaveLength(4);
    expect(samples.get('slow')!.ms).toEqual([5000]);
  });
});

describe('report', () => {
  const samples = (ms: number) => summarizeSamples([ms, ms]);
  const row = (name: string, batch: number, original: number, rewritten: number, subgraph: number, bare: number): Row => ({
    case: name, backend: 'wasm', unit: 'patches',
    measurement: {
      batch, original: samples(original), rewritten: samples(rewritten), subgraph: samples(subgraph), bare: samples(bare),
      speedup: original / rewritten, overhead: rewritten / bare, subgraphOverhead: subgraph / bare, notes: ['a note'],
    },
  });

  test('the table has one line per row, ratios and notes', () => {
    const table = markdownTable([row('qwen3vl-patch-embed', 1024, 5700, 120, 110, 100)]);
    expect(table).toContain('| qwen3vl-patch-embed | wasm | 1024 patches | 5700 ±0% | 120 ±0% | 110 ±0% | 100 ±0% | 47.5x | 1.20x | 1.10x |');
    expect(table).toContain('- qwen3vl-patch-embed / wasm / 1024: a note');
  });

  test('targets pass and fail on the issue-4 thresholds', () => {
    const cost: PassCost = {
      modelBytes: 300e6, convs: 32, runs: 1, baselineRss: 80e6,
      loadSave: { ms: 1000, peakRss: 700e6 }, optimize: { ms: 2500, peakRss: 400e6 },
    };
    const good = checkTargets([row('qwen3vl-patch-embed', 1024, 5700, 120, 109, 100)], cost);
    expect(good.map((t) => t.pass)).toEqual([true, true, false, true]);
    const bad = checkTargets([row('qwen3vl-patch-embed', 1024, 3000, 120, 120, 100)], null);
    expect(bad.map((t) => t.pass)).toEqual([false, false]);
    expect(formatTargets(bad)).toMatch(/^FAIL {2}qwen3vl patch embed on wasm at N=1024: speedup >= 40x: 25\.0x/);
    expect(checkTargets([], null)[0].pass).toBeNull();
  });
});

describe('policy checks', () => {
  const row = (name: string, backend: string, batch: number, speedup: number | null): Row => {
    const s = summarizeSamples([1, 1]);
    return {
      case: name, backend, unit: 'images',
      measurement: { batch, original: s, rewritten: s, subgraph: s, bare: s, speedup, overhead: 1, subgraphOverhead: 1, notes: [] },
    };
  };

  test('the Conv1D/Conv2D cases force their pass: policy-gated, they would not be rewritten', () => {
    const gated = BENCH_CASES.filter((c) => c.policyClass);
    expect(gated.map((c) => [c.name, c.policyClass])).toEqual([['vit-b16-patch-embed', 'Conv2D'], ['audio-conv1d-frontend', 'Conv1D']]);
    for (const c of gated) expect(c.passes).toContain(`${c.policyClass!.toLowerCase()}-to-dense`);
  });

  test('one line per class and backend, the lowest speedup, set against policy.ts and MIN_SPEEDUP', () => {
    const classOf = { vit: 'Conv2D', other: undefined };
    const checks = checkPolicy([
      row('vit', 'wasm', 8, MIN_SPEEDUP + 1), row('vit', 'wasm', 16, MIN_SPEEDUP - 0.2),
      row('vit', 'cpu', 8, MIN_SPEEDUP), row('vit', 'nope', 8, null), row('other', 'wasm', 8, 9),
    ], classOf);
    expect(checks.map((c) => [c.backend, c.batch, c.clears])).toEqual([['wasm', 16, false], ['cpu', 8, true], ['nope', 8, null]]);
    const inTable = MEASURED_SPEEDUP.Conv2D.wasm;
    expect(checks[0]).toMatchObject({ className: 'Conv2D', inPolicy: inTable, minSpeedup: MIN_SPEEDUP, agrees: inTable < MIN_SPEEDUP });
    expect(checks[2]).toMatchObject({ inPolicy: null, agrees: null });
    const lines = formatPolicyChecks(checks).split('\n');
    expect(lines[0]).toBe(`policy Conv2D wasm: measured ${(MIN_SPEEDUP - 0.2).toFixed(2)}x (src/rewrite/policy.ts says ${inTable}x) -> `
      + `below ${MIN_SPEEDUP}x: not rewritten by default${inTable < MIN_SPEEDUP ? '' : '; policy.ts decides otherwise'} [vit, 16 images]`);
    expect(lines[1]).toContain(`-> clears ${MIN_SPEEDUP}x: rewritten by default`);
    expect(lines[2]).toBe('policy Conv2D nope: measured n/a (src/rewrite/policy.ts has no entry) -> not measured (original not timed) [vit, 8 images]');
  });
});

describe('measure', () => {
  beforeAll(() => tf.setBackend('cpu'));

  test('times original, rewritten, subgraph and bare on one input, leaking nothing', async () => {
    const prepared = await prepare(committedModel('video-tubelet'));
    expect(prepared.records.map((r) => r.layer)).toContain('tubelet_embed');
    expect(prepared.probes).toEqual([expect.objectContaining({ layer: 'tubelet_embed', shape: [8, 32, 32, 3], calls: 1 })]);
    const m = await expectNoLeaks(async () => {
      const loaded = await load(prepared);
      const inputs = makeInputs(loaded.original, 3);
      try {
        return await measure(loaded, prepared.records, inputs, { timing: TINY });
      } finally {
        tf.dispose(inputs);
        loaded.dispose();
      }
    });
    expect(m.batch).toBe(3);
    for (const s of [m.original, m.rewritten, m.subgraph, m.bare]) expect(s!.ms).toHaveLength(2);
    expect(m.speedup).toBeCloseTo(m.original!.median / m.rewritten.median);
    expect(m.subgraphOverhead).toBeCloseTo(m.subgraph!.median / m.bare!.median);
  });

  test('named passes force a policy-gated conv, in the model and in its probe', async () => {
    const passes = ['conv2d-to-dense', 'fold-views-into-dense', 'collapse-reshapes', 'drop-identity-views'];
    const prepared = await prepare(committedModel('vit-patch-embed-mini'), passes);
    expect(prepared.records.map((r) => [r.layer, r.pass])).toContainEqual(['patch_embed', 'conv2d-to-dense']);
    expect(prepared.probes).toEqual([expect.objectContaining({ layer: 'patch_embed', shape: [32, 32, 3], calls: 1 })]);
    expect(prepared.unprobed).toEqual([]);
  });

  test('a skipped original is a note, not a number', async () => {
    const prepared = await prepare(committedModel('qwen3vl-patch-embed-mini'));
    const loaded = await load(prepared);
    const inputs = makeInputs(loaded.original, 2);
    try {
      const m = await measure(loaded, prepared.records, inputs, { timing: TINY, skipOriginal: 'too slow' });
      expect(m.original).toBeNull();
      expect(m.speedup).toBeNull();
      expect(m.notes).toEqual(['too slow']);
    } finally {
      tf.dispose(inputs);
      loaded.dispose();
    }
  });
});

describe('benchModel (tfjs-rewrite bench)', () => {
  const dir = tempDir();

  test('takes the batch from the .npy inputs and reports the same columns', async () => {
    const file = path.join(dir, 'rows.npy');
    writeNpy(file, { dtype: 'float32', shape: [5, 96], data: new Float32Array(5 * 96).fill(0.5) });
    const report = await expectNoLeaks(() => benchModel(committedModel('qwen3vl-patch-embed-mini'), { backend: 'cpu', inputs: [file], timing: TINY }));
    expect(report.backend).toBe('cpu');
    expect(report.measurement.batch).toBe(5);
    expect(report.rewritten.some((r) => r.layer === 'patch_embed' && r.pass === 'conv3d-to-dense')).toBe(true);
    expect(report.measurement.bare).not.toBeNull();
    expect(formatModelBench(report, 'mini')).toContain('| mini | cpu | 5 rows |');
  });

  test('refuses a wrong number of .npy inputs', async () => {
    const file = path.join(dir, 'one.npy');
    writeNpy(file, { dtype: 'float32', shape: [2, 96], data: new Float32Array(2 * 96) });
    await expect(benchModel(committedModel('qwen3vl-patch-embed-mini'), { backend: 'cpu', inputs: [file, file], timing: TINY }))
      .rejects.toThrow(InputError);
  });
});
