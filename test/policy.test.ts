import * as tf from '@tensorflow/tfjs';
import { optimize } from '../src';
import { decide } from '../src/bench/policy';
import { committedModel, expectNoLeaks } from './helpers/tf';

describe('decide', () => {
  test('rewrites only when the rewrite is strictly faster', () => {
    expect(decide({ originalMs: 10, rewrittenMs: 2 })).toBe('rewrite');
    expect(decide({ originalMs: 2.5, rewrittenMs: 6.87 })).toBe('keep'); // the NPU case of issue 4
    expect(decide({ originalMs: 3, rewrittenMs: 3 })).toBe('keep');
  });
});

describe('optimize --policy measure', () => {
  // channels-first-gelu holds two eligible convs; the injected timings make one a loss.
  const timings: Record<string, { originalMs: number; rewrittenMs: number }> = {
    embed_cf: { originalMs: 40, rewrittenMs: 1 },
    embed_cf_rem: { originalMs: 2.5, rewrittenMs: 6.87 },
  };

  test('measured timings override the built-in Conv2D table (which would keep it on cpu)', async () => {
    const result = await optimize(committedModel('vit-patch-embed-mini'), {
      backend: 'cpu', verify: false, policy: 'measure',
      policyTimer: async () => ({ originalMs: 100, rewrittenMs: 1 }),
    });
    expect(result.report.rewritten.filter((r) => r.pass === 'conv2d-to-dense').map((r) => r.layer)).toEqual(['patch_embed']);
    expect(result.report.policy!.decisions).toEqual([expect.objectContaining({ layer: 'patch_embed', decision: 'rewrite' })]);
  });

  test('keeps the conv the rewrite would slow down, rewrites the other, and says why', async () => {
    const seen: string[] = [];
    const result = await optimize(committedModel('channels-first-gelu'), {
      backend: 'cpu',
      policy: 'measure',
      policyBatch: 4,
      policyTimer: async (probe, batch) => {
        seen.push(`${probe.layer}@${batch}`);
        return timings[probe.layer];
      },
    });
    const { report } = result;
    expect(seen.sort()).toEqual(['embed_cf@4', 'embed_cf_rem@4']);
    expect(report.rewritten.map((r) => r.layer)).toEqual(['embed_cf']);
    expect(report.kept).toEqual([expect.objectContaining({ layer: 'embed_cf_rem', pass: 'conv3d-to-dense' })]);
    expect(report.kept![0].reason).toMatch(/not faster on cpu at batch 4: 6\.87 ms vs 2\.50 ms \(0\.36x\)/);
    expect(report.after.layers.Conv3D).toBe(1);
    expect(report.policy).toMatchObject({ mode: 'measure', backend: 'cpu', batch: 4 });
    expect(report.policy!.decisions.map((d) => [d.layer, d.decision, d.speedup])).toEqual([
      ['embed_cf', 'rewrite', 40],
      ['embed_cf_rem', 'keep', 2.5 / 6.87],
    ]);
    // The kept conv still computes the same function as before: the mixed model verifies.
    expect(report.verification?.passed).toBe(true);
  });

  test('a pass named with --passes is not held back by the policy', async () => {
    const timer = jest.fn(async () => ({ originalMs: 1, rewrittenMs: 100 }));
    const { report } = await optimize(committedModel('channels-first-gelu'), {
      backend: 'cpu', verify: false, policy: 'measure', passes: ['conv3d-to-dense'], policyTimer: timer,
    });
    expect(timer).not.toHaveBeenCalled();
    expect(report.rewritten.map((r) => r.layer).sort()).toEqual(['embed_cf', 'embed_cf_rem']);
    expect(report.kept).toEqual([]);
    expect(report.policy!.decisions.map((d) => d.reason)).toEqual([
      'not measured: the pass was asked for by name', 'not measured: the pass was asked for by name']);
  });

  test('default policy rewrites both and adds no policy fields', async () => {
    const { report } = await optimize(committedModel('channels-first-gelu'), { backend: 'cpu', verify: false });
    expect(report.rewritten.map((r) => r.layer).sort()).toEqual(['embed_cf', 'embed_cf_rem']);
    expect(report).not.toHaveProperty('kept');
    expect(report).not.toHaveProperty('policy');
  });

  test('the real timer measures both sides of the patch embed with finite times and no leaks', async () => {
    await tf.setBackend('cpu');
    const { report } = await expectNoLeaks(() => optimize(committedModel('qwen3vl-patch-embed-mini'), {
      backend: 'cpu', policy: 'measure', policyBatch: 8, verify: false,
    }));
    const [decision] = report.policy!.decisions;
    expect(decision.layer).toBe('patch_embed');
    expect(Number.isFinite(decision.originalMs)).toBe(true);
    expect(Number.isFinite(decision.rewrittenMs)).toBe(true);
    // Which side wins is the machine's business; the report and the graph must agree with it.
    const rewritten = report.rewritten.some((r) => r.layer === 'patch_embed');
    expect(rewritten).toBe(decision.decision === 'rewrite');
    expect(report.after.layers.Conv3D ?? 0).toBe(rewritten ? 0 : 1);
  });
});
