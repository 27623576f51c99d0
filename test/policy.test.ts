import * as tf from '@tensorflow/tfjs';
import { artifactsOfModel, inspect, optimize } from '../src';
import type { CandidateTimer } from '../src';
import { MIN_SPEEDUP, TABLE, decide } from '../src/policy/policy';
import { committedModel, expectNoLeaks } from './helpers/tf';

const timed = (table: Record<string, [number, number]>): jest.MockedFunction<CandidateTimer> =>
  jest.fn(async (probe) => {
    const [originalMs, rewrittenMs] = table[probe.layer];
    return { originalMs, rewrittenMs };
  });

/** A Conv3D the table vouches for: Reshape + Dense only, 512 x 2048 = 1M multiply-adds per item. */
async function tableSized(): Promise<tf.io.ModelArtifacts> {
  await tf.setBackend('cpu');
  const input = tf.input({ shape: [1, 8, 8, 8] });
  const output = tf.layers.conv3d({ name: 'big_patch', filters: 2048, kernelSize: [1, 8, 8], strides: [1, 8, 8] }).apply(input) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: output });
  const artifacts = await artifactsOfModel(model);
  model.dispose();
  return artifacts;
}

describe('decide', () => {
  test('a timed rewrite must clear the margin; a tie or a loss keeps the layer', () => {
    expect(MIN_SPEEDUP).toBe(1.1);
    expect(decide({ originalMs: 10, rewrittenMs: 2 })).toBe('rewrite');
    expect(decide({ originalMs: 11, rewrittenMs: 10 })).toBe('rewrite');
    expect(decide({ originalMs: 10.9, rewrittenMs: 10 })).toBe('keep');
    expect(decide({ originalMs: 3, rewrittenMs: 3 })).toBe('keep');
    expect(decide({ originalMs: 0.98, rewrittenMs: 33 })).toBe('keep'); // issue 11's remainder crop on cpu
  });
});

describe('default policy (auto)', () => {
  test('keeps the conv whose measured replacement is slower, rewrites the faster one, and quotes the timings', async () => {
    const timer = timed({ embed_cf: [40, 1], embed_cf_rem: [2.5, 6.87] });
    const { report } = await optimize(committedModel('channels-first-gelu'), { backend: 'cpu', policyBatch: 4, policyTimer: timer });
    expect(timer.mock.calls.map(([probe, batch, backend]) => `${probe.layer}@${batch}/${backend}`).sort()).toEqual(['embed_cf@4/cpu', 'embed_cf_rem@4/cpu']);
    expect(report.rewritten.map((r) => r.layer)).toEqual(['embed_cf']);
    expect(report.kept).toEqual([expect.objectContaining({ layer: 'embed_cf_rem', pass: 'conv3d-to-dense' })]);
    expect(report.kept![0].reason).toBe('measured here: 2.50 ms -> 6.87 ms (0.36x) on cpu at batch 4; below the 1.1x margin');
    expect(report.after.layers.Conv3D).toBe(1);
    expect(report.policy).toMatchObject({ mode: 'auto', backend: 'cpu', batch: 4, minSpeedup: 1.1 });
    expect(report.policy!.decisions.map((d) => [d.layer, d.decision, d.evidence, d.speedup])).toEqual([
      ['embed_cf', 'rewrite', 'measured', 40],
      ['embed_cf_rem', 'keep', 'measured', 2.5 / 6.87],
    ]);
    expect(report.policy!.decisions[0].reason).toBe('measured here: 40.0 ms -> 1.00 ms (40.00x) on cpu at batch 4; >= 1.1x');
    // The kept conv still computes what it did: the mixed model verifies.
    expect(report.verification?.passed).toBe(true);
  });

  test('a win inside the noise margin is kept', async () => {
    const { report } = await optimize(committedModel('video-tubelet'), { backend: 'cpu', verify: false, policyTimer: timed({ tubelet_embed: [10.5, 10] }) });
    expect(report.rewritten).toEqual([]);
    expect(report.kept![0].reason).toMatch(/^measured here: 10\.5 ms -> 10\.0 ms \(1\.05x\) on cpu at batch 16; below the 1\.1x margin$/);
  });

  test('the table rewrites a large Reshape + Dense Conv3D on wasm without timing it, and says where it comes from; on cpu it is timed', async () => {
    const artifacts = await tableSized();
    const timer = jest.fn(async () => ({ originalMs: 130, rewrittenMs: 133 }));
    const onWasm = await optimize(artifacts, { backend: 'wasm', verify: false, policyTimer: timer });
    expect(onWasm.report.rewritten.map((r) => r.layer)).toEqual(['big_patch']);
    expect(onWasm.report.policy!.decisions).toEqual([expect.objectContaining({ decision: 'rewrite', evidence: 'table', reason: `table: ${TABLE[0].source}` })]);
    expect(timer).not.toHaveBeenCalled();
    const onCpu = await optimize(artifacts, { backend: 'cpu', verify: false, policyTimer: timer });
    expect(timer).toHaveBeenCalledTimes(1);
    expect(onCpu.report.rewritten).toEqual([]);
    expect(onCpu.report.policy!.decisions[0]).toMatchObject({ decision: 'keep', evidence: 'measured' });
    timer.mockClear();
    // --policy measure ignores the table: it times this one too.
    const measured = jest.fn(async () => ({ originalMs: 1, rewrittenMs: 2 }));
    const { report } = await optimize(artifacts, { backend: 'wasm', verify: false, policy: 'measure', policyTimer: measured });
    expect(measured).toHaveBeenCalledTimes(1);
    expect(report.rewritten).toEqual([]);
    expect(timer).not.toHaveBeenCalled();
    expect(report.policy!.decisions[0]).toMatchObject({ decision: 'keep', evidence: 'measured' });
  });

  test('below the table floor (or with a transpose) the candidate is timed', async () => {
    // qwen3vl-patch-embed-mini is Reshape + Dense but 96 x 32 multiply-adds; video-tubelet has a transpose.
    const timer = timed({ patch_embed: [5, 1], tubelet_embed: [5, 1] });
    for (const name of ['qwen3vl-patch-embed-mini', 'video-tubelet']) {
      const { report } = await optimize(committedModel(name), { backend: 'wasm', verify: false, policyTimer: timer });
      expect(report.policy!.decisions.map((d) => d.evidence)).toEqual(['measured']);
    }
    expect(timer).toHaveBeenCalledTimes(2);
  });

  test('a timer per backend: the one for the target is used', async () => {
    const cpu = timed({ patch_embed: [1, 5] });
    const wasm = timed({ patch_embed: [5, 1] });
    const onWasm = await optimize(committedModel('qwen3vl-patch-embed-mini'), { backend: 'wasm', verify: false, policyTimer: { cpu, wasm } });
    const convs = (r: { pass: string; layer: string }[]) => r.filter((x) => x.pass === 'conv3d-to-dense').map((x) => x.layer);
    expect(convs(onWasm.report.rewritten)).toEqual(['patch_embed']);
    const onCpu = await optimize(committedModel('qwen3vl-patch-embed-mini'), { backend: 'cpu', verify: false, policyTimer: { cpu, wasm } });
    expect(convs(onCpu.report.rewritten)).toEqual([]);
    expect(onCpu.report.after.layers.Conv3D).toBe(1);
    expect([cpu.mock.calls.map((c) => c[2]), wasm.mock.calls.map((c) => c[2])]).toEqual([['cpu'], ['wasm']]);
  });

  test('a timer that had to time a smaller batch (budget) says so in the evidence', async () => {
    const { report } = await optimize(committedModel('video-tubelet'), {
      backend: 'cpu', verify: false, policyTimer: async () => ({ originalMs: 8600, rewrittenMs: 130, batch: 1 }),
    });
    expect(report.policy!.decisions[0].reason).toBe('measured here: 8600 ms -> 130 ms (66.15x) on cpu at batch 1 (16 asked; the timer keeps a run within its budget); >= 1.1x');
  });

  test('a candidate that cannot be timed is kept, with the timer\'s message', async () => {
    const { report } = await optimize(committedModel('video-tubelet'), {
      backend: 'cpu', verify: false, policyTimer: async () => { throw new Error('no such kernel\nstack'); },
    });
    expect(report.rewritten).toEqual([]);
    expect(report.kept).toEqual([expect.objectContaining({ layer: 'tubelet_embed', reason: 'could not time it on cpu: no such kernel' })]);
  });

  test('Conv2D and Conv1D candidates are timed, not refused by a table (issue 11: "does not rewrite the layer on its own")', async () => {
    for (const [name, layer] of [['vit-patch-embed-mini', 'patch_embed'], ['audio-conv1d-frontend', 'frame_embed']]) {
      for (const policy of ['auto', 'measure'] as const) {
        const timer = timed({ [layer]: [4, 1] });
        const { report } = await optimize(committedModel(name), { backend: 'wasm', verify: false, policy, policyTimer: timer });
        expect(timer).toHaveBeenCalledTimes(1);
        expect(report.rewritten.map((r) => r.layer)).toEqual([layer]);
        expect(report.policy!.decisions[0].reason).toMatch(/^measured here: 4\.00 ms -> 1\.00 ms \(4\.00x\) on wasm at batch 16/);
      }
    }
  });
});

describe('--policy always and forced passes', () => {
  test('always rewrites every correct match and times nothing', async () => {
    const timer = jest.fn<ReturnType<CandidateTimer>, Parameters<CandidateTimer>>();
    const { report } = await optimize(committedModel('channels-first-gelu'), { backend: 'cpu', verify: false, policy: 'always', policyTimer: timer });
    expect(timer).not.toHaveBeenCalled();
    expect(report.rewritten.map((r) => r.layer).sort()).toEqual(['embed_cf', 'embed_cf_rem']);
    expect(report.kept).toEqual([]);
    expect(report.policy!.decisions.map((d) => d.evidence)).toEqual(['always', 'always']);
  });

  test('a pass named with --passes is not held back by any mode', async () => {
    for (const policy of ['auto', 'measure'] as const) {
      const timer = jest.fn(async () => ({ originalMs: 1, rewrittenMs: 100 }));
      const { report } = await optimize(committedModel('channels-first-gelu'), {
        backend: 'cpu', verify: false, policy, passes: ['conv3d-to-dense'], policyTimer: timer,
      });
      expect(timer).not.toHaveBeenCalled();
      expect(report.rewritten.map((r) => r.layer).sort()).toEqual(['embed_cf', 'embed_cf_rem']);
      expect(report.policy!.decisions.map((d) => d.reason)).toEqual([
        'asked for by name (--passes): the policy does not judge it', 'asked for by name (--passes): the policy does not judge it']);
    }
  });
});

describe('inspect', () => {
  test('touches no tensors: says what it would time, decides what the table can', async () => {
    const before = tf.memory().numTensors;
    const report = await inspect(committedModel('channels-first-gelu'), { backend: 'wasm', policyBatch: 8 });
    expect(tf.memory().numTensors).toBe(before);
    expect(report.rewritten).toEqual([]);
    expect(report.policy!.decisions.map((d) => d.decision)).toEqual(['pending', 'pending']);
    expect(report.kept!.map((k) => k.reason)).toEqual([
      'optimize would time it on wasm at batch 8 (the conv alone vs its replacement alone) and rewrite it only if >= 1.1x faster; inspect touches no tensors',
      'optimize would time it on wasm at batch 8 (the conv alone vs its replacement alone) and rewrite it only if >= 1.1x faster; inspect touches no tensors',
    ]);
    const table = await inspect(await tableSized(), { backend: 'wasm' });
    expect(table.rewritten.map((r) => r.layer)).toEqual(['big_patch']);
    expect(table.policy!.decisions[0].evidence).toBe('table');
    const always = await inspect(committedModel('channels-first-gelu'), { backend: 'wasm', policy: 'always' });
    expect(always.rewritten).toHaveLength(2);
  });
});

describe('the real timer', () => {
  test('times both sides of a candidate with finite times, leaks nothing, and the graph follows its decision', async () => {
    await tf.setBackend('cpu');
    const { report } = await expectNoLeaks(() => optimize(committedModel('qwen3vl-patch-embed-mini'), {
      backend: 'cpu', policy: 'measure', policyBatch: 8, verify: false,
    }));
    const [decision] = report.policy!.decisions;
    expect(decision.layer).toBe('patch_embed');
    expect(decision.originalMs! > 0 && Number.isFinite(decision.originalMs)).toBe(true);
    expect(decision.rewrittenMs! > 0 && Number.isFinite(decision.rewrittenMs)).toBe(true);
    expect(decision.reason).toMatch(/^measured here: [\d.]+ ms -> [\d.]+ ms \([\d.]+x, 95% interval [\d.]+x-[\d.]+x over \d rounds?\) on cpu at batch \d/);
    // Which side wins is the machine's business; the report and the graph must agree with it,
    // and a rewrite needs the whole interval of its speedup above the margin.
    const rewritten = report.rewritten.some((r) => r.layer === 'patch_embed');
    expect(rewritten).toBe(decision.decision === 'rewrite');
    expect(rewritten).toBe(decision.interval!.low >= MIN_SPEEDUP);
    expect(decision.interval!.low).toBeLessThanOrEqual(decision.interval!.high);
    expect(report.after.layers.Conv3D ?? 0).toBe(rewritten ? 0 : 1);
  });
});
