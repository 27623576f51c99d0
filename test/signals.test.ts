/**
 * Ctrl-C and kill during long work: the CLI ends within a second (long loops yield to the event
 * loop between forward passes and timed runs), writes nothing, and exits 130 (SIGINT) or 143
 * (SIGTERM) as shells expect.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { verify } from '../src';
import { RowPacer } from '../src/verify/pacing';
import { CLI } from './helpers/cli';
import { REPO, committedModel, tempDir } from './helpers/tf';
import { meshnet } from '../fixtures/meshnet';
import { artifactsOfModel, writeModelFiles } from '../src/io/files';

interface Interrupted {
  code: number | null;
  /** From the signal to the process's exit. */
  ms: number;
  stderr: string;
  /** From spawn to the signal. */
  sentAfterMs: number;
}

/**
 * Starts the CLI and sends `signal` once it has been busy for `afterMs` and its stderr shows
 * `busy` (so the signal lands inside that phase, not in startup).
 */
async function interrupt(args: string[], signal: NodeJS.Signals, busy: RegExp, afterMs: number): Promise<Interrupted> {
  const started = Date.now();
  const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO });
  let stderr = '';
  let sentAt = 0;
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
    if (!sentAt && busy.test(stderr)) {
      setTimeout(() => {
        sentAt = Date.now();
        child.kill(signal);
      }, Math.max(0, afterMs - (Date.now() - started)));
    }
  });
  const code = await exited;
  return { code, ms: Date.now() - sentAt, stderr, sentAfterMs: sentAt ? sentAt - started : -1 };
}

test('SIGINT 5 s into a long optimize verification ends it within 1 s, exit 130, nothing written', async () => {
  const parent = tempDir('tfjs-rewrite-sigint-');
  const out = path.join(parent, 'out');
  // 200,000 seeded rows: minutes of verification on cpu, in passes of 512 rows.
  const run = await interrupt(['optimize', committedModel('qwen3vl-patch-embed-mini'), '--out', out, '--backend', 'cpu', '--rows', '200000', '--policy', 'always'],
    'SIGINT', /verifying on cpu: \d+\/200000 rows/, 5000);
  console.log(`SIGINT sent ${run.sentAfterMs} ms after start, process ended ${run.ms} ms later`);
  expect(run.sentAfterMs).toBeGreaterThanOrEqual(5000);
  expect(run.code).toBe(130);
  expect(run.ms).toBeLessThan(1000);
  expect(fs.readdirSync(parent)).toEqual([]); // no output, no temp folder
  expect(run.stderr.trim().split('\n').pop()).toBe('tfjs-rewrite: interrupted (SIGINT); nothing was written');
});

test('SIGTERM during a graph-model verification ends it within 1 s with exit 143', async () => {
  const graph = path.join(REPO, 'fixtures', 'graph-models', 'graph-patch-embed-mini', 'model.json');
  const parent = tempDir('tfjs-rewrite-sigterm-');
  const run = await interrupt(['optimize', graph, '--out', path.join(parent, 'out'), '--backend', 'cpu', '--rows', '200000', '--json', '--policy', 'always'],
    'SIGTERM', /verifying on cpu/, 2000);
  console.log(`SIGTERM sent ${run.sentAfterMs} ms after start, process ended ${run.ms} ms later`);
  expect(run.code).toBe(143);
  expect(run.ms).toBeLessThan(1000);
  expect(fs.readdirSync(parent)).toEqual([]);
});

test('SIGINT inside one long op (a 64^3 MeshNet-shaped Conv3D on wasm) ends the run within 1 s: the worker is terminated', async () => {
  await tf.setBackend('cpu');
  const parent = tempDir('tfjs-rewrite-sigint-op-');
  const model = meshnet({ size: 64, filters: 16 });
  const file = writeModelFiles(await artifactsOfModel(model), path.join(parent, 'model'));
  model.dispose();
  const out = path.join(parent, 'out');
  // Each of its 3x3x3 convs is seconds of one wasm call: the signal lands inside one.
  const run = await interrupt(['optimize', file, '--out', out, '--backend', 'wasm', '--policy', 'always', '--rows', '1'], 'SIGINT', /^/, 4000);
  console.log(`SIGINT sent ${run.sentAfterMs} ms after start (inside a Conv3D), process ended ${run.ms} ms later`);
  expect(run.code).toBe(130);
  expect(run.ms).toBeLessThan(1000);
  expect(fs.existsSync(out)).toBe(false);
});

describe('library', () => {
  test('an AbortSignal stops a long verify between passes: rejects fast, no leaked tensors, backend kept', async () => {
    await tf.setBackend('cpu');
    const model = committedModel('qwen3vl-patch-embed-mini');
    const tensors = tf.memory().numTensors;
    const controller = new AbortController();
    let abortedAt = 0;
    let scheduled = false;
    // Once the rows are running (the first progress report), not during model loading.
    const onProgress = () => {
      if (!scheduled) setTimeout(() => ((abortedAt = Date.now()), controller.abort(new Error('stop'))), 300);
      scheduled = true;
    };
    await expect(verify(model, model, { backend: 'wasm', batch: 100_000, signal: controller.signal, onProgress })).rejects.toThrow('stop');
    const ms = Date.now() - abortedAt;
    console.log(`verify rejected ${ms} ms after the abort`);
    expect(abortedAt).toBeGreaterThan(0);
    expect(ms).toBeLessThan(1000);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(tf.getBackend()).toBe('cpu');
  });
});

describe('RowPacer: passes short enough for a signal, never above --batch-size', () => {
  test('starts small, sizes passes to the target from the slowest step, caps at the batch size', () => {
    const pacer = new RowPacer(512, 200);
    expect(pacer.next(20000)).toBe(8);
    pacer.record(8, 400); // 50 ms per row: a slow model
    expect(pacer.next(20000)).toBe(4);
    pacer.record(4, 2000); // slower still: one row per pass, never zero
    expect(pacer.next(20000)).toBe(1);
    pacer.record(1, 0.1); // fast: up to the cap
    expect(pacer.next(20000)).toBe(512);
    expect(pacer.next(3)).toBe(3); // the remainder
  });
});
