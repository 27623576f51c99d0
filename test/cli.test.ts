/** The CLI contract: exit codes, --json on stdout only, nothing written on failure, input untouched. */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { readModelFiles } from '../src/io/files';
import { readGraphModelFiles } from '../src/graphdef/files';
import { runCli } from './helpers/cli';
import { committedModel, disposeModel, snapshotDir, tempDir } from './helpers/tf';

const tubelet = committedModel('video-tubelet');

test('optimize --json prints one report object and writes a model stock tfjs loads', async () => {
  const out = path.join(tempDir(), 'out');
  const snapshot = snapshotDir(path.dirname(tubelet));
  const run = runCli(['optimize', tubelet, '--out', out, '--json', '--backend', 'wasm', '--policy', 'always']);
  expect(run.status).toBe(0);
  const report = JSON.parse(run.stdout);
  expect(report.rewritten).toEqual([expect.objectContaining({ layer: 'tubelet_embed', pass: 'conv3d-to-dense', replacement: expect.any(Array) })]);
  expect(report.skipped).toEqual([]);
  expect(report.verification).toMatchObject({ passed: true, backend: 'wasm', device: expect.stringContaining('wasm') });
  expect(report.verification.outputs[0]).toEqual(expect.objectContaining({
    name: 'norm', maxAbsDiff: expect.any(Number), maxRelDiff: expect.any(Number), cosine: expect.any(Number),
  }));
  expect(snapshotDir(path.dirname(tubelet))).toEqual(snapshot);
  const model = await tf.loadLayersModel(tf.io.fromMemory(await readModelFiles(path.join(out, 'model.json'))));
  expect(model.layers.map((layer) => layer.getClassName())).not.toContain('Conv3D');
  disposeModel(model);
});

test('the human report shows the before/after table and the backend', () => {
  const out = path.join(tempDir(), 'out');
  const run = runCli(['optimize', committedModel('sequential-mixed'), '--out', out, '--backend', 'wasm', '--policy', 'always']);
  expect(run.status).toBe(0);
  // Both convs rewritten: the sliding one by conv3d-to-conv2d-slices, whose Add makes the Sequential functional.
  expect(run.stdout).toMatch(/Conv3D\s+2\s+0/);
  expect(run.stdout).toMatch(/InputLayer\s+0\s+1/);
  // Six replacement layers named per conv, the rest counted (a chunked conv has thousands).
  const sliding = run.stdout.split('\n').find((line) => line.includes('seq_model/seq_sliding [conv3d-to-conv2d-slices] -> '))!;
  expect(sliding.replace(/ and \d+ more \(--json lists all\)$/, '').split(' -> ')[1].split(', ').length).toBeLessThanOrEqual(6);
  expect(run.stdout).toContain('note: seq_model: the Sequential is written as a functional model (class Model, input seq_patch_input)');
  expect(run.stdout).toMatch(/verification PASSED on backend wasm/);
});

test('a failed verification exits 1 and writes nothing', () => {
  const dir = tempDir();
  const out = path.join(dir, 'out');
  // Zero tolerance: float32 reassociation alone makes the outputs differ in the last bits.
  const run = runCli(['optimize', tubelet, '--out', out, '--atol', '0', '--rtol', '0', '--json', '--policy', 'always']);
  expect(run.status).toBe(1);
  expect(JSON.parse(run.stdout).verification.passed).toBe(false);
  expect(run.stderr).toContain('verification failed; nothing was written');
  expect(fs.readdirSync(dir)).toEqual([]);
});

test('an existing --out is refused without --force and replaced with it', () => {
  const out = tempDir();
  fs.writeFileSync(path.join(out, 'keep.txt'), 'x');
  const refused = runCli(['optimize', tubelet, '--out', out, '--no-verify']);
  expect(refused.status).toBe(2);
  expect(refused.stderr.trim()).toBe(`tfjs-rewrite: ${out} already exists (pass --force to replace it)`);
  expect(fs.readdirSync(out)).toEqual(['keep.txt']);
  // --force replaces only an empty folder or an earlier model output: keep.txt is in the way.
  const forced = runCli(['optimize', tubelet, '--out', out, '--no-verify', '--force']);
  expect(forced.status).toBe(2);
  expect(forced.stderr).toBe(`tfjs-rewrite: ${out} holds keep.txt, not part of a tfjs model; --force replaces only an empty folder or an earlier model output (choose another --out)\n`);
  expect(fs.readdirSync(out)).toEqual(['keep.txt']);
  fs.rmSync(path.join(out, 'keep.txt'));
  expect(runCli(['optimize', tubelet, '--out', out, '--no-verify', '--force']).status).toBe(0); // empty
  const again = runCli(['optimize', tubelet, '--out', out, '--no-verify', '--force']); // an earlier output
  expect(again.status).toBe(0);
  expect(fs.readdirSync(out).sort()).toEqual(['group1-shard1of1.bin', 'model.json']);
});

test('inspect --json explains every refusal without writing anything', () => {
  const run = runCli(['inspect', committedModel('negatives'), '--json']);
  expect(run.status).toBe(0);
  const report = JSON.parse(run.stdout);
  expect(report.rewritten).toEqual([]);
  expect(report.skipped.map((s: { layer: string }) => s.layer).sort()).toEqual(['same_pads', 'sliding_3x3x3', 'strides_mismatch']);
  expect(report.verification).toBeNull();
});

test('verify compares two models: 0 when equal, 1 when a weight differs', () => {
  const dir = tempDir();
  const good = path.join(dir, 'good');
  expect(runCli(['optimize', tubelet, '--out', good, '--no-verify', '--policy', 'always']).status).toBe(0);
  expect(runCli(['verify', tubelet, path.join(good, 'model.json')]).status).toBe(0);

  const bad = path.join(dir, 'bad');
  fs.cpSync(good, bad, { recursive: true });
  const shard = path.join(bad, 'group1-shard1of1.bin');
  const bytes = fs.readFileSync(shard);
  new Float32Array(bytes.buffer, bytes.byteOffset, 16).fill(3); // the first weights of the Dense kernel
  fs.writeFileSync(shard, bytes);
  const run = runCli(['verify', tubelet, path.join(bad, 'model.json'), '--json']);
  expect(run.status).toBe(1);
  const { verification } = JSON.parse(run.stdout);
  expect(verification.passed).toBe(false);
  expect(verification.outputs[0].outsideTolerance).toBeGreaterThan(0);
});

describe('bad usage and bad input exit 2 with one line on stderr', () => {
  const dir = tempDir();
  const broken = path.join(dir, 'broken.json');
  fs.writeFileSync(broken, '{"modelTopology": ');
  const cases: [string, string[], RegExp][] = [
    ['no command', [], /^$/],
    ['unknown command', ['frobnicate'], /unknown command "frobnicate"/],
    ['unknown flag', ['inspect', tubelet, '--bogus'], /unknown option --bogus/],
    ['missing --out', ['optimize', tubelet], /optimize needs --out/],
    ['bad backend', ['optimize', tubelet, '--out', path.join(dir, 'o'), '--backend', 'gpu'], /--backend must be one of/],
    ['bad number', ['verify', tubelet, tubelet, '--atol', 'abc'], /--atol must be a number >= 0/],
    ['missing file', ['inspect', path.join(dir, 'nope.json')], /nope\.json cannot be read \(ENOENT\)/],
    ['malformed JSON', ['inspect', broken], /is not valid JSON/],
  ];
  test.each(cases)('%s', (_, args, message) => {
    const run = runCli(args);
    expect(run.status).toBe(2);
    if (args.length) {
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
      expect(run.stderr).toMatch(message);
      expect(run.stderr).not.toMatch(/\n\s+at /);
    }
  });
});

test('with --json, a failure still prints one JSON object on stdout', () => {
  const run = runCli(['inspect', path.join(tempDir(), 'missing.json'), '--json']);
  expect(run.status).toBe(2);
  expect(JSON.parse(run.stdout)).toEqual({ error: expect.stringMatching(/missing\.json cannot be read \(ENOENT\)/), exitCode: 2 });
});

test('--help works for every command', () => {
  for (const command of ['optimize', 'verify', 'inspect']) {
    const run = runCli([command, '--help']);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`usage: tfjs-rewrite ${command}`);
  }
});

describe('graph models are detected by format', () => {
  const graphModel = path.join(__dirname, '..', 'fixtures', 'graph-models', 'graph-patch-embed-mini', 'model.json');

  test('inspect and optimize --json work as for layers models', async () => {
    const inspected = runCli(['inspect', graphModel, '--json', '--policy', 'always']);
    expect(inspected.status).toBe(0);
    expect(JSON.parse(inspected.stdout).rewritten).toEqual([expect.objectContaining({ pass: 'conv3d-to-dense' })]);
    const out = path.join(tempDir(), 'g');
    const optimized = runCli(['optimize', graphModel, '--out', out, '--json', '--policy', 'always']);
    expect(optimized.status).toBe(0);
    expect(JSON.parse(optimized.stdout).verification).toMatchObject({ passed: true });
    const model = await tf.loadGraphModel(tf.io.fromMemory(await readGraphModelFiles(path.join(out, 'model.json'))));
    const written = JSON.parse(fs.readFileSync(path.join(out, 'model.json'), 'utf8'));
    const ops = (written.modelTopology.node as { op: string }[]).map((node) => node.op);
    expect(ops).toContain('_FusedMatMul');
    expect(ops).not.toContain('Conv3D');
    const x = tf.ones([3, ...model.inputs[0].shape!.slice(1)]);
    const y = model.execute(x) as tf.Tensor;
    expect(y.shape[0]).toBe(3);
    tf.dispose([x, y]);
    model.dispose();
  });

  test('bench times a graph model before and after the rewrite, with the layers report', () => {
    const run = runCli(['bench', graphModel, '--backend', 'cpu', '--batch', '4', '--policy', 'always', '--json']);
    expect(run.status).toBe(0);
    const { rewritten, measurement: m, policy } = JSON.parse(run.stdout);
    expect(rewritten).toHaveLength(1);
    expect(policy.mode).toBe('always');
    expect(m.batch).toBe(4);
    expect(m.speedup).toBeCloseTo(m.original.median / m.rewritten.median);
    // The rewritten op's cut-out alone; no bare matMul column for a GraphDef.
    expect(m.subgraph.median).toBeGreaterThan(0);
    expect(m.bare).toBeNull();
  });

  test('bench of a graph model without --rows times the documented default of 16 rows, as for layers models', () => {
    // It used to time 256 rows: minutes per run on cpu for a small image model.
    const run = runCli(['bench', graphModel, '--backend', 'cpu', '--json']);
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout).measurement.batch).toBe(16);
  });

  test('comparing a graph model with a layers model is a usage error', () => {
    const run = runCli(['verify', graphModel, tubelet]);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/cannot compare a graph model with a layers model/);
  });
});
