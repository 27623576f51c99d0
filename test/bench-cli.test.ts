/** The bench's command-line surfaces, run compiled as users run them. No timing is asserted. */
import { spawnSync } from 'child_process';
import * as path from 'path';
import { runCli } from './helpers/cli';
import { REPO, committedModel, tempDir } from './helpers/tf';
import { UNCHANGED } from '../src/pipeline';

test('bench --policy always --json prints one object with the four timings and the ratios', () => {
  const run = runCli(['bench', committedModel('video-tubelet'), '--backend', 'cpu', '--batch', '2', '--policy', 'always', '--json']);
  expect(run.status).toBe(0);
  const report = JSON.parse(run.stdout);
  expect(report).toMatchObject({ command: 'bench', backend: 'cpu', measurement: { batch: 2 } });
  for (const key of ['original', 'rewritten', 'subgraph', 'bare']) {
    expect(report.measurement[key]).toEqual(expect.objectContaining({ median: expect.any(Number), ms: expect.any(Array) }));
  }
  expect(report.measurement.speedup).toBeCloseTo(report.measurement.original.median / report.measurement.rewritten.median);
});

test('bench --passes times the model optimize --passes writes; bench --policy measure decides as optimize does', () => {
  const model = committedModel('vit-patch-embed-mini');
  const bench = runCli(['bench', model, '--passes', 'conv2d-to-dense', '--backend', 'cpu', '--rows', '2', '--json']);
  expect(bench.status).toBe(0);
  const optimized = runCli(['optimize', model, '--passes', 'conv2d-to-dense', '--backend', 'cpu', '--no-verify', '--out', path.join(tempDir(), 'o'), '--json']);
  expect(optimized.status).toBe(0);
  const [b, o] = [JSON.parse(bench.stdout), JSON.parse(optimized.stdout)];
  expect(b.rewritten).toEqual(o.rewritten);
  expect(b.rewritten.map((r: { pass: string }) => r.pass)).toEqual(['conv2d-to-dense']);
  expect(b.policy.decisions.map((d: { evidence: string }) => d.evidence)).toEqual(['forced']);
  // Timed decisions: whatever they are, bench times the model they give.
  const measured = runCli(['bench', model, '--policy', 'measure', '--policy-batch', '2', '--backend', 'cpu', '--rows', '2', '--json']);
  expect(measured.status).toBe(0);
  const m = JSON.parse(measured.stdout);
  expect(m.policy.mode).toBe('measure');
  const rewrite = m.policy.decisions.filter((d: { decision: string }) => d.decision === 'rewrite').map((d: { layer: string }) => d.layer);
  expect(m.rewritten.filter((r: { pass: string }) => r.pass === 'conv2d-to-dense').map((r: { layer: string }) => r.layer)).toEqual(rewrite);
  expect(m.kept.map((k: { layer: string }) => k.layer)).toEqual(m.policy.decisions.filter((d: { decision: string }) => d.decision === 'keep').map((d: { layer: string }) => d.layer));
});

test('bench without --json prints the markdown row', () => {
  const run = runCli(['bench', committedModel('qwen3vl-patch-embed-mini'), '--backend', 'cpu', '--batch', '4']);
  expect(run.status).toBe(0);
  expect(run.stdout).toMatch(/\| .*qwen3vl-patch-embed-mini\/model\.json \| cpu \| 4 rows \| [\d.]+ ±\d+% \|/);
});

test('optimize --policy measure reports a decision per conv, consistent with what was rewritten', () => {
  const out = path.join(tempDir(), 'out');
  const run = runCli(['optimize', committedModel('channels-first-gelu'), '--out', out, '--backend', 'cpu',
    '--policy', 'measure', '--policy-batch', '2', '--json']);
  expect(run.status).toBe(0);
  const report = JSON.parse(run.stdout);
  expect(report.policy).toMatchObject({ mode: 'measure', backend: 'cpu', batch: 2 });
  expect(report.policy.decisions.map((d: { layer: string }) => d.layer).sort()).toEqual(['embed_cf', 'embed_cf_rem']);
  for (const d of report.policy.decisions) {
    const rewritten = report.rewritten.some((r: { layer: string }) => r.layer === d.layer);
    const kept = report.kept.some((k: { layer: string }) => k.layer === d.layer);
    expect([d.decision, rewritten, kept]).toEqual(d.decision === 'rewrite' ? ['rewrite', true, false] : ['keep', false, true]);
  }
  // Timings may keep both convs: then the model is written through unchanged, with nothing to verify.
  if (report.rewritten.length) expect(report.verification.passed).toBe(true);
  else expect(report.notes).toContain(UNCHANGED);
});

test('a bad --policy is a usage error', () => {
  const run = runCli(['optimize', committedModel('video-tubelet'), '--out', path.join(tempDir(), 'o'), '--policy', 'sometimes']);
  expect(run.status).toBe(2);
  expect(run.stderr).toContain('--policy must be one of auto, measure, always');
});

test('the pass-cost child reports wall time and its own peak RSS', () => {
  const child = path.join(REPO, 'dist', 'tools', 'bench', 'pass-cost-child.js');
  const run = spawnSync(process.execPath, [child, 'load-save', committedModel('video-tubelet'), path.join(tempDir(), 'copy')], { encoding: 'utf8' });
  expect(run.status).toBe(0);
  const result = JSON.parse(run.stdout);
  expect(result.ms).toBeGreaterThan(0);
  // A node process with tfjs loaded holds tens of MiB; a parent's peak would be much larger.
  expect(result.peakRss).toBeGreaterThan(20 * 2 ** 20);
  expect(result.peakRss).toBeLessThan(1024 * 2 ** 20);
});
