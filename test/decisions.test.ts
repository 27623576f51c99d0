/**
 * Issue 20: stable timed decisions (an interval of the speedup, re-timed while it holds the
 * margin), decisions files that record and replay the policy, and byte-identical outputs.
 * Timers are injected: no timing here depends on the machine.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { InputError, inspect, optimize } from '../src';
import type { CandidateTimer } from '../src';
import { optimizeGraphModel } from '../src/pipeline';
import { DecisionsFile } from '../src/policy/decisions';
import { MAX_ROUNDS, ProbeSamples, mulberry32, speedupInterval, timeUntilSettled } from '../src/policy/interval';
import { packageVersion } from '../src/version';
import { COMMITTED, committedModel, snapshotDir, tempDir, useBackendForFile } from './helpers/tf';

useBackendForFile('cpu');

const GRAPHS = path.join(COMMITTED, '..', 'graph-models');
const graphModel = (name: string) => path.join(GRAPHS, name, 'model.json');

/** Samples around `ms` with a relative spread, drawn from `rand`. */
const around = (rand: () => number, ms: number, spread: number, n: number) => Array.from({ length: n }, () => ms * (1 + spread * (2 * rand() - 1)));

/** A timer returning samples: round r of each layer gets `rounds(layer, r)` = [original, rewritten] samples. */
function sampledTimer(rounds: (layer: string, round: number) => [number[], number[]]) {
  const seen = new Map<string, number>();
  return jest.fn(async (probe: { layer?: string; node?: string }, batch: number) => {
    const name = probe.layer ?? probe.node!;
    const r = seen.get(name) ?? 0;
    seen.set(name, r + 1);
    const [original, rewritten] = rounds(name, r);
    const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];
    return { originalMs: median(original), rewrittenMs: median(rewritten), samples: { original, rewritten }, batch };
  });
}

const clearWin = (): [number[], number[]] => [[20, 21, 19, 20, 22], [10, 10.5, 9.8, 10.2, 10.1]];
/** Median ratio ~1.12, but spread so wide that the interval holds 1.1. */
const noisy = (): [number[], number[]] => [[11, 16, 8, 12, 10.2, 13], [10, 8, 12.5, 10.8, 9.1, 11]];

describe('stable timed decisions', () => {
  test('a clear win settles in one round, and the report gives its interval', async () => {
    const timer = sampledTimer(clearWin);
    const { report } = await optimize(committedModel('video-tubelet'), { backend: 'cpu', verify: false, policyTimer: timer as unknown as CandidateTimer });
    expect(timer).toHaveBeenCalledTimes(1);
    const [d] = report.policy!.decisions;
    // Lower quartiles (interval.ts QUANTILE): 20 of 19..22, 10 of 9.8..10.5.
    expect(d).toMatchObject({ decision: 'rewrite', evidence: 'measured', rounds: 1, originalMs: 20, rewrittenMs: 10, speedup: 2 });
    expect(d.interval!.low).toBeGreaterThanOrEqual(1.1);
    expect(d.interval!.high).toBeGreaterThanOrEqual(d.interval!.low);
    expect(d.reason).toMatch(/^measured here: 20\.0 ms -> 10\.0 ms \(2\.00x, 95% interval [\d.]+x-[\d.]+x over 1 round\) on cpu at batch 16; >= 1\.1x$/);
  });

  test('a reading within noise of the margin is timed again (same batch) until the interval clears it', async () => {
    // Round 1 straddles; later rounds add tight samples of a real 1.5x.
    const timer = sampledTimer((_, r) => (r === 0 ? noisy() : [[15, 15.1, 14.9, 15, 15.2], [10, 10.1, 9.9, 10, 10.05]]));
    const { report } = await optimize(committedModel('video-tubelet'), { backend: 'cpu', verify: false, policyBatch: 4, policyTimer: timer as unknown as CandidateTimer });
    const [d] = report.policy!.decisions;
    expect(d.rounds).toBeGreaterThanOrEqual(2);
    expect(timer).toHaveBeenCalledTimes(d.rounds!);
    expect(timer.mock.calls.map((call) => call[1])).toEqual(new Array(d.rounds).fill(4));
    expect(d.decision).toBe('rewrite');
    expect(d.interval!.low).toBeGreaterThanOrEqual(1.1);
  });

  test('still within noise after the last round: the original is kept, and the report says why', async () => {
    const timer = sampledTimer(noisy);
    const { report } = await optimize(committedModel('video-tubelet'), { backend: 'cpu', verify: false, policyTimer: timer as unknown as CandidateTimer });
    expect(timer).toHaveBeenCalledTimes(MAX_ROUNDS);
    expect(report.rewritten).toEqual([]);
    const [d] = report.policy!.decisions;
    expect(d).toMatchObject({ decision: 'keep', rounds: MAX_ROUNDS });
    expect(d.interval!.low).toBeLessThan(1.1);
    expect(d.interval!.high).toBeGreaterThanOrEqual(1.1);
    expect(d.reason).toMatch(new RegExp(`the interval still holds the 1\\.1x margin after ${MAX_ROUNDS} rounds: kept \\(too close to call\\)$`));
  });

  test('graph models: the same interval and re-timing', async () => {
    const timer = sampledTimer(noisy);
    const { report } = await optimizeGraphModel(graphModel('graph-patch-embed-mini'), { backend: 'cpu', verify: false, policyTimer: timer as unknown as CandidateTimer });
    expect(report.policy!.decisions.length).toBeGreaterThan(0);
    for (const d of report.policy!.decisions) {
      expect(d).toMatchObject({ decision: 'keep', rounds: MAX_ROUNDS });
      expect(d.reason).toMatch(/95% interval .*: kept \(too close to call\)$/);
    }
    expect(timer).toHaveBeenCalledTimes(MAX_ROUNDS * report.policy!.decisions.length);
  });

  test('property: the decision always agrees with the interval, and the interval is a function of the samples', async () => {
    const rand = mulberry32(20);
    const drawn: string[] = [];
    const ROUNDS = 3; // fewer than the policy's, to keep the bootstraps few
    for (let c = 0; c < 16; c++) {
      const ratio = 0.8 + 0.7 * rand();
      const spread = [0.01, 0.05, 0.15, 0.4][Math.floor(rand() * 4)];
      const n = 3 + Math.floor(rand() * 10);
      const probes = 1 + Math.floor(rand() * 3);
      const calls = Array.from({ length: probes }, () => 1 + Math.floor(rand() * 4));
      const base = Array.from({ length: probes }, () => 0.5 + 50 * rand());
      drawn.push(`${ratio.toFixed(2)}x±${spread}/${n}x${probes}`);
      const seed = Math.floor(rand() * 2 ** 31);
      const run = () => {
        const r = mulberry32(seed);
        return timeUntilSettled(async () => base.map((ms, i) => {
          const original = around(r, ms * ratio, spread, n);
          const rewritten = around(r, ms, spread, n);
          return { calls: calls[i], timing: { originalMs: original[0], rewrittenMs: rewritten[0], samples: { original, rewritten } } };
        }), 1.1, ROUNDS, Infinity); // no time budget: the rounds depend on the samples alone
      };
      const [a, b] = [await run(), await run()];
      expect(b).toEqual(a);
      expect(a.rounds).toBeGreaterThanOrEqual(1);
      expect(a.rounds).toBeLessThanOrEqual(ROUNDS);
      if (a.decision === 'rewrite') expect(a.interval!.low).toBeGreaterThanOrEqual(1.1);
      else if (a.settled) expect(a.interval!.high).toBeLessThan(1.1);
      else expect([a.rounds, a.interval!.low < 1.1 && a.interval!.high >= 1.1]).toEqual([ROUNDS, true]);
    }
    console.info(`interval property cases (ratio±spread/samples x probes): ${drawn.join(' ')}`);
  });

  test('speedupInterval: seeded, so the same samples give the same interval; wider for noisier samples', () => {
    const tight: ProbeSamples[] = [{ calls: 2, original: [20, 20.2, 19.9, 20.1], rewritten: [10, 10.1, 9.95, 10] }];
    // Paired runs share their load: a slow pair moves both sides, and the ratio barely.
    const drifting: ProbeSamples[] = [{ calls: 1, original: [20, 40, 20.2, 60], rewritten: [10, 20, 10.1, 30] }];
    const d = speedupInterval(drifting);
    expect(d.high - d.low).toBeLessThan(0.05);
    const wide: ProbeSamples[] = [{ calls: 2, original: [14, 26, 20, 17], rewritten: [7, 13, 10, 12] }];
    expect(speedupInterval(tight)).toEqual(speedupInterval(tight));
    const [t, w] = [speedupInterval(tight), speedupInterval(wide)];
    expect(t.low).toBeGreaterThan(1.9);
    expect(t.high).toBeLessThan(2.1);
    expect(w.high - w.low).toBeGreaterThan(t.high - t.low);
  });
});

/** model.json and every shard of a saved output, as bytes. */
function savedBytes(result: { save(dir: string): string }): Map<string, string> {
  const dir = path.join(tempDir(), 'out');
  result.save(dir);
  return snapshotDir(dir);
}

describe('decisions files: record, then replay exactly', () => {
  test('layers: absent, the decisions are timed and recorded; present, replayed with no timer called, byte-identical output', async () => {
    const file = path.join(tempDir(), 'decisions.json');
    const timer = sampledTimer((layer) => (layer === 'embed_cf' ? clearWin() : [[2, 2.1, 1.9], [6, 6.2, 5.9]]));
    const recorded = await optimize(committedModel('channels-first-gelu'), { backend: 'cpu', verify: false, policyTimer: timer as unknown as CandidateTimer, decisions: file });
    expect(timer).toHaveBeenCalledTimes(2);
    const json = JSON.parse(fs.readFileSync(file, 'utf8')) as DecisionsFile;
    expect(json).toMatchObject({
      format: 'tfjs-rewrite-decisions', version: 1, tool: `tfjs-rewrite ${packageVersion()}`, modelFormat: 'layers-model',
      backend: 'cpu', device: recorded.report.policy!.device, mode: 'auto', batch: 16, minSpeedup: 1.1,
    });
    expect(json.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(json.decisions.map((d) => [d.layer, d.decision, d.evidence, /^[0-9a-f]{64}$/.test(d.fingerprint), d.rounds])).toEqual([
      ['embed_cf', 'rewrite', 'measured', true, 1], ['embed_cf_rem', 'keep', 'measured', true, 1],
    ]);
    expect(json.decisions[0].interval!.low).toBeGreaterThanOrEqual(1.1);

    const never = jest.fn<ReturnType<CandidateTimer>, Parameters<CandidateTimer>>();
    const before = fs.readFileSync(file);
    const replayed = await optimize(committedModel('channels-first-gelu'), { backend: 'cpu', verify: false, policyTimer: never, decisions: file });
    expect(never).not.toHaveBeenCalled();
    expect(fs.readFileSync(file)).toEqual(before);
    expect(replayed.report.policy!.decisions.map((d) => [d.layer, d.decision, d.replayed])).toEqual([['embed_cf', 'rewrite', file], ['embed_cf_rem', 'keep', file]]);
    expect(replayed.report.kept![0].reason).toMatch(/^replayed from .*decisions\.json: measured here: /);
    expect(savedBytes(replayed)).toEqual(savedBytes(recorded));

    // A report's policy (or just its decisions) can be passed back instead of a path.
    for (const decisions of [recorded.report.policy!, recorded.report.policy!.decisions, replayed.report.policy!]) {
      const again = await optimize(committedModel('channels-first-gelu'), { backend: 'cpu', verify: false, policyTimer: never, decisions });
      expect(savedBytes(again)).toEqual(savedBytes(recorded));
    }
    expect(never).not.toHaveBeenCalled();
  });

  test('--passes and --policy always win over the file (which is still checked against the model)', async () => {
    const file = path.join(tempDir(), 'decisions.json');
    const keepAll = sampledTimer(() => [[1, 1, 1], [5, 5, 5]]);
    await optimize(committedModel('channels-first-gelu'), { backend: 'cpu', verify: false, policyTimer: keepAll as unknown as CandidateTimer, decisions: file });
    const replay = await optimize(committedModel('channels-first-gelu'), { backend: 'cpu', verify: false, decisions: file });
    expect(replay.report.rewritten.filter((r) => r.pass === 'conv3d-to-dense')).toEqual([]);
    const forced = await optimize(committedModel('channels-first-gelu'), { backend: 'cpu', verify: false, decisions: file, passes: ['conv3d-to-dense'] });
    expect(forced.report.rewritten.map((r) => r.layer).sort()).toEqual(['embed_cf', 'embed_cf_rem']);
    expect(forced.report.policy!.decisions.map((d) => d.evidence)).toEqual(['forced', 'forced']);
    const always = await optimize(committedModel('channels-first-gelu'), { backend: 'cpu', verify: false, decisions: file, policy: 'always' });
    expect(always.report.policy!.decisions.map((d) => d.evidence)).toEqual(['always', 'always']);
    await expect(optimize(committedModel('video-tubelet'), { backend: 'cpu', verify: false, decisions: file, policy: 'always' })).rejects.toThrow('was made for another model');
  });

  test('a file for another model, missing a candidate, or unreadable is refused with one line (InputError), and nothing is written', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'decisions.json');
    const { report } = await optimize(committedModel('channels-first-gelu'), { backend: 'cpu', verify: false, policy: 'always', decisions: file });
    const refused = async (source: string, options: object, message: RegExp | string) => {
      const error = await optimize(source, { backend: 'cpu', verify: false, ...options }).then(() => undefined, (e: Error) => e);
      expect(error).toBeInstanceOf(InputError);
      expect(error!.message).toMatch(message);
      expect(error!.message).not.toContain('\n');
    };
    const entries = fs.readdirSync(dir).sort();
    await refused(committedModel('video-tubelet'), { decisions: file }, /decisions\.json was made for another model: none of its 2 decisions is for a candidate of this one/);
    await refused(committedModel('channels-first-gelu'), { decisions: report.policy!.decisions.slice(1) }, 'the decisions object misses the candidate channels_first_gelu/embed_cf (conv3d-to-dense) of this model');
    const extra = [...report.policy!.decisions, { ...report.policy!.decisions[0], layer: 'gone' }];
    await refused(committedModel('channels-first-gelu'), { decisions: extra }, /made for another model: it decides .*\/gone \(conv3d-to-dense\), which is not a candidate of this one/);
    // Same topology, one kernel value changed: the candidate's fingerprint differs.
    const artifacts = JSON.parse(fs.readFileSync(committedModel('channels-first-gelu'), 'utf8'));
    const weights = await (await import('../src/io/files')).readModelFiles(committedModel('channels-first-gelu'));
    const buffer = Array.isArray(weights.weightData) ? tf.io.concatenateArrayBuffers(weights.weightData) : weights.weightData!;
    const data = new Float32Array(buffer.slice(0));
    data[0] += 1;
    const changed = { ...weights, modelTopology: artifacts.modelTopology, weightData: data.buffer };
    const error = await optimize(changed, { backend: 'cpu', verify: false, decisions: file }).then(() => undefined, (e: Error) => e);
    expect(error?.message).toMatch(/was made for another model: channels_first_gelu\/embed_cf \(conv3d-to-dense\) differs/);
    const pending = await inspect(committedModel('channels-first-gelu'), { backend: 'cpu' });
    await refused(committedModel('channels-first-gelu'), { decisions: pending.policy! }, /is "pending", not rewrite or keep \(an inspect report decides nothing\)/);
    const garbage = path.join(dir, 'garbage.json');
    fs.writeFileSync(garbage, '{"decisions": [');
    await refused(committedModel('channels-first-gelu'), { decisions: garbage }, /garbage\.json is not a tfjs-rewrite decisions file: not JSON/);
    const graphFile = { ...JSON.parse(fs.readFileSync(file, 'utf8')), modelFormat: 'graph-model' };
    await refused(committedModel('channels-first-gelu'), { decisions: graphFile }, 'was made for another model: a graph-model, this is a layers-model');
    await refused(committedModel('channels-first-gelu'), { decisions: path.join(dir, 'no', 'such.json') }, /its folder .* does not exist/);
    await expect(inspect(committedModel('channels-first-gelu'), { backend: 'cpu', decisions: path.join(dir, 'absent.json') })).rejects.toThrow(/does not exist \(inspect reads one/);
    expect(fs.readdirSync(dir).sort()).toEqual([...entries, 'garbage.json'].sort());
  });

  test('inspect shows what a file would replay, timing nothing', async () => {
    const file = path.join(tempDir(), 'decisions.json');
    await optimize(committedModel('channels-first-gelu'), { backend: 'cpu', verify: false, policyTimer: sampledTimer(() => clearWin()) as unknown as CandidateTimer, decisions: file });
    const report = await inspect(committedModel('channels-first-gelu'), { backend: 'cpu', decisions: file });
    expect(report.policy!.decisions.map((d) => d.decision)).toEqual(['rewrite', 'rewrite']);
    expect(report.rewritten.map((r) => r.layer).sort()).toEqual(['embed_cf', 'embed_cf_rem']);
  });

  test('graph models: record, replay with no timer called, byte-identical; another graph is refused', async () => {
    for (const name of ['graph-patch-embed-mini', 'graph-tubelet-remainder']) {
      const file = path.join(tempDir(), 'decisions.json');
      const timer = sampledTimer((node) => (node.length % 2 ? clearWin() : [[2, 2.1, 1.9], [6, 6.2, 5.9]]));
      const recorded = await optimizeGraphModel(graphModel(name), { backend: 'cpu', verify: false, policyTimer: timer as unknown as CandidateTimer, decisions: file });
      const json = JSON.parse(fs.readFileSync(file, 'utf8')) as DecisionsFile;
      expect(json.modelFormat).toBe('graph-model');
      expect(json.decisions.length).toBe(timer.mock.calls.length);
      const never = jest.fn<ReturnType<CandidateTimer>, Parameters<CandidateTimer>>();
      const replayed = await optimizeGraphModel(graphModel(name), { backend: 'cpu', verify: false, policyTimer: never, decisions: file });
      expect(never).not.toHaveBeenCalled();
      expect(replayed.report.policy!.decisions.map((d) => d.decision)).toEqual(json.decisions.map((d) => d.decision));
      expect(savedBytes(replayed)).toEqual(savedBytes(recorded));
      // The library entry point takes the graph model too.
      const viaOptimize = await optimize(graphModel(name), { backend: 'cpu', verify: false, decisions: file });
      expect(savedBytes(viaOptimize)).toEqual(savedBytes(recorded));
      const other = name === 'graph-patch-embed-mini' ? 'graph-tubelet-remainder' : 'graph-patch-embed-mini';
      await expect(optimizeGraphModel(graphModel(other), { backend: 'cpu', verify: false, decisions: file })).rejects.toThrow('was made for another model');
      await expect(optimize(committedModel('channels-first-gelu'), { backend: 'cpu', verify: false, decisions: file })).rejects.toThrow('a graph-model, this is a layers-model');
    }
  });
});

describe('candidate fingerprints (graph models)', () => {
  test('the kernel and the bias add\'s bytes are part of the fingerprint; metadata is not', async () => {
    const { readGraphModelFiles } = await import('../src/graphdef/files');
    const original = await readGraphModelFiles(graphModel('graph-patch-embed-mini'));
    const { report } = await optimizeGraphModel(original, { backend: 'cpu', verify: false, policy: 'always' });
    const decisions = report.policy!;
    const bytes = new Uint8Array(Array.isArray(original.weightData) ? tf.io.concatenateArrayBuffers(original.weightData) : original.weightData!);
    /** A copy with one byte of weight `name` flipped. */
    const flipped = (name: string) => {
      let offset = 0;
      for (const spec of original.weightSpecs!) {
        if (spec.name.endsWith(name)) break;
        offset += spec.shape.reduce((a, b) => a * b, 1) * 4;
      }
      const copy = bytes.slice();
      copy[offset + 1] ^= 0xff;
      return { ...original, weightData: copy.buffer };
    };
    for (const name of ['patch_embed/Conv3D/ReadVariableOp', 'patch_embed/BiasAdd/ReadVariableOp']) {
      await expect(optimizeGraphModel(flipped(name), { backend: 'cpu', verify: false, decisions })).rejects.toThrow(/was made for another model: graph\/.*patch_embed\/Conv3D \(conv3d-to-dense\) differs/);
    }
    const renamed = { ...original, userDefinedMetadata: { note: 'another build' } };
    const replayed = await optimizeGraphModel(renamed, { backend: 'cpu', verify: false, decisions });
    expect(replayed.report.policy!.decisions.map((d) => d.replayed)).toEqual(['the decisions object']);
  });
});

describe('deterministic outputs', () => {
  test('optimize twice with policy always gives the same bytes (model.json and shards), both formats', async () => {
    const sources = [
      ...['channels-first-gelu', 'video-swin-remainder', 'nested-sequential', 'shared-two-input', 'qwen3vl-patch-embed-mini'].map(committedModel),
      ...['graph-patch-embed-mini', 'graph-tubelet-remainder'].map(graphModel),
    ];
    for (const source of sources) {
      const runs = [];
      for (let i = 0; i < 2; i++) runs.push(savedBytes(await optimize(source, { backend: 'cpu', verify: false, policy: 'always' })));
      expect([source, runs[1]]).toEqual([source, runs[0]]);
      expect(runs[0].size).toBeGreaterThan(1);
    }
  });
});
