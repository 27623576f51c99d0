import { spawnSync } from 'child_process';
import * as path from 'path';
import { writeNpy } from '../src/io/npy';
import { REPO, committedModel, tempDir } from './helpers/tf';

const CLI = path.join(REPO, 'dist', 'src', 'cli', 'main.js');
const MINI = committedModel('qwen3vl-patch-embed-mini');
const PATCHES = path.join(REPO, 'fixtures', 'inputs', 'jetty-patches-p4.npy');
const dir = tempDir('verify-cli-');
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

test('optimize --inputs --batch-size --json: one JSON object, per-layer errors, progress on stderr', () => {
  const result = run('optimize', MINI, '--out', path.join(dir, 'out'), '--inputs', PATCHES, '--batch-size', '100', '--backend', 'cpu', '--json', '--policy', 'always');
  expect(result.status).toBe(0);
  const report = JSON.parse(result.stdout);
  expect(report.verification).toMatchObject({ passed: true, backend: 'cpu', rows: 256, batchSize: 100, inputs: PATCHES });
  expect(Object.keys(report.verification.outputs[0])).toEqual(expect.arrayContaining(['name', 'maxAbsDiff', 'maxRelDiff', 'meanAbsDiff', 'cosine', 'outsideTolerance', 'worst']));
  expect(report.verification.layers[0]).toMatchObject({ layer: 'patch_embed', passed: true });
  expect(report.verification.layers[0].original.maxAbsError).toBeGreaterThan(0);
  expect(result.stderr).toMatch(/verifying on cpu: 256\/256 rows/);
});

test('an input that does not fit exits 2 with one line', () => {
  const bad = path.join(dir, 'bad.npy');
  writeNpy(bad, { dtype: 'float32', shape: [3, 4, 24], data: new Float32Array(288) });
  const result = run('verify', MINI, MINI, '--inputs', bad);
  expect(result.status).toBe(2);
  expect(result.stdout).toBe('');
  expect(result.stderr.trim().split('\n')).toEqual([`tfjs-rewrite: ${bad} has shape [3, 4, 24], which does not fit model input 0 "pixel_values" [N, 96] float32`]);
});

test('the human report shows the float64 layer check', () => {
  const out = path.join(dir, 'mini-out');
  const optimized = run('optimize', MINI, '--out', out, '--backend', 'cpu', '--policy', 'always');
  expect(optimized.status).toBe(0);
  expect(optimized.stdout).toContain('verification PASSED on backend cpu, cpu (JavaScript) (2 seeded uniform rows (seed 1234), |a-b| <= 0.00001 + 0.0001*|a|)');
  const result = run('verify', MINI, path.join(out, 'model.json'), '--inputs', PATCHES, '--backend', 'cpu', '--batch-size', '100');
  expect(result.status).toBe(0);
  // The header names the rows actually fed, not the unused seeded-row settings.
  expect(result.stdout).toContain(`verification PASSED on backend cpu, cpu (JavaScript) (256 rows of ${PATCHES}, 100 per pass, |a-b|`);
  expect(result.stdout).not.toMatch(/seed|batch 2/);
  expect(result.stdout).toMatch(/patch_embed: original max [\d.e-]+ mean [\d.e-]+, replacement max [\d.e-]+ mean [\d.e-]+, ratio [\d.]+ \(limit [\d.]+\) ok/);
});
