import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { benchModel, formatModelBench, prepare } from '../src/pipeline/bench';
import { load, measure } from '../src/bench/measure';
import { markdownTable, Row } from '../src/bench/report';
import { checkTargets, formatTargets, PassCost } from '../tools/bench/targets';
import { GUARANTEE_CASES, GuaranteeRow, guaranteeTable } from '../tools/bench/guarantee';
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
    const same = [{ case: 'qwen3vl-patch-embed', backend: 'wasm', same: true, decisions: [] }];
    const good = checkTargets([row('qwen3vl-patch-embed', 1024, 5700, 120, 109, 100)], cost, same);
    expect(good.map((t) => t.pass)).toEqual([true, true, false, true]);
    const bad = checkTargets([row('qwen3vl-patch-embed', 1024, 3000, 120, 120, 100)], null);
    expect(bad.map((t) => t.pass)).toEqual([false, false]);
    expect(formatTargets(bad)).toMatch(/^FAIL {2}qwen3vl patch embed on wasm at N=1024, optimize with default settings: speedup >= 40x: 25\.0x \(default output not checked\)/);
    expect(checkTargets([], null)[0].pass).toBeNull();
  });
});

describe('guarantee rows', () => {
  const speed = summarizeSamples([2, 2]);
  const guarantee = (name: string, ratio: number, rewritten = true): GuaranteeRow => ({
    case: name, backend: 'cpu', batch: 8, decision: 'rewritten (measured here: ...)', rewritten,
    original: rewritten ? speed : null, returned: rewritten ? speed : null, ratio, pass: ratio >= 0.9,
  });

  test('cover remainder crop, channels_first (with and without remainder), a general tubelet, the table floor and a MeshNet', () => {
    expect(GUARANTEE_CASES.map((c) => c.name)).toEqual(['remainder-crop', 'channels-first-remainder', 'channels-first', 'general-tubelet', 'table-floor', 'meshnet-38-default']);
  });

  test('the MeshNet line asks >= 20x end to end on wasm, from the default output', () => {
    const row = (ratio: number, rewritten = true) => ({ ...guarantee('meshnet-38-default', ratio, rewritten), backend: 'wasm', batch: 1 });
    const line = (r: GuaranteeRow) => checkTargets([], null, [], [r]).find((l) => l.target.startsWith('meshnet-38-default on wasm'))!;
    expect(line(row(24.5))).toMatchObject({ pass: true, measured: '24.5x' });
    expect(line(row(19.9)).pass).toBe(false);
    expect(line(row(1, false))).toMatchObject({ pass: false, measured: 'nothing rewritten' });
  });

  test('one target line per row at 0.9x; a kept conv is the same model', () => {
    const lines = checkTargets([], null, [], [guarantee('remainder-crop', 0.89), guarantee('general-tubelet', 1, false), guarantee('channels-first', 3.2)]);
    expect(formatTargets(lines.slice(1)).split('\n')).toEqual([
      'FAIL  remainder-crop on cpu, optimize with default settings: >= 0.9x the original: 0.89x',
      'PASS  general-tubelet on cpu, optimize with default settings: >= 0.9x the original: 1x (kept: the same model)',
      'PASS  channels-first on cpu, optimize with default settings: >= 0.9x the original: 3.20x',
    ]);
    expect(guaranteeTable([guarantee('general-tubelet', 1, false)])).toContain('| general-tubelet | cpu | 8 | = | = | 1x (same model) | PASS |');
  });

  test('the 40x patch-embed line needs the default output to be the timed model', () => {
    const m = { batch: 1024, original: speed, rewritten: speed, subgraph: null, bare: null, speedup: 50, overhead: null, subgraphOverhead: null, notes: [] };
    const rows: Row[] = [{ case: 'qwen3vl-patch-embed', backend: 'wasm', unit: 'patches', measurement: m }];
    const check = (same: boolean) => checkTargets(rows, null, [{ case: 'qwen3vl-patch-embed', backend: 'wasm', same, decisions: [] }])[0];
    expect(check(true)).toMatchObject({ pass: true, measured: '50.0x (the default output is the timed model)' });
    expect(check(false).pass).toBe(false);
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
      const inputs = makeInputs(loaded.original.layersModel!, 3);
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

  test('named passes choose the pipeline, in the model and in its probe', async () => {
    const passes = ['conv2d-to-dense', 'fold-views-into-dense', 'collapse-reshapes', 'drop-identity-views'];
    const prepared = await prepare(committedModel('vit-patch-embed-mini'), { passes });
    expect(prepared.records.map((r) => [r.layer, r.pass])).toContainEqual(['patch_embed', 'conv2d-to-dense']);
    expect(prepared.probes).toEqual([expect.objectContaining({ layer: 'patch_embed', shape: [32, 32, 3], calls: 1 })]);
    expect(prepared.unprobed).toEqual([]);
  });

  test('a skipped original is a note, not a number', async () => {
    const prepared = await prepare(committedModel('qwen3vl-patch-embed-mini'));
    const loaded = await load(prepared);
    const inputs = makeInputs(loaded.original.layersModel!, 2);
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
    const report = await expectNoLeaks(() => benchModel(committedModel('qwen3vl-patch-embed-mini'), { backend: 'cpu', inputs: [file], timing: TINY, policy: 'always' }));
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
