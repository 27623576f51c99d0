#!/usr/bin/env node
/**
 * The row-parallel verification row: `tfjs-rewrite verify` of a rewritten model against its
 * original on many real rows, on 1 thread vs every thread (TFJS_REWRITE_THREADS), interleaved,
 * each run a fresh process; prints medians, the ratio and PASS/FAIL against the target (>= 1.6x
 * on 2 cores). Default data: the committed real-image rows (fixtures/inputs/jetty-patches-p4.npy,
 * 256 rows) tiled to 24,576 rows for the qwen3vl-patch-embed-mini fixture; give the 24k-row
 * 1536-wide file and the full model for the original measurement.
 *
 *   node dist/tools/bench/threads.js [--model m.json] [--inputs rows.npy] [--rows 24576] [--reps 2] [--backend wasm]
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from '../../src/cli/args';
import { readNpy, writeNpy } from '../../src/io/npy';

const REPO = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(REPO, 'dist', 'src', 'cli', 'main.js');
export const THREADS_TARGET = 1.6;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The committed rows repeated to `rows` rows (real data; repeats cost the same as new rows). */
function tiledRows(rows: number, dir: string): string {
  const base = readNpy(path.join(REPO, 'fixtures', 'inputs', 'jetty-patches-p4.npy'));
  const width = base.shape[1];
  const data = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) data.set(base.data.subarray((r % base.shape[0]) * width, (r % base.shape[0] + 1) * width), r * width);
  const file = path.join(dir, `rows-${rows}.npy`);
  writeNpy(file, { dtype: 'float32', shape: [rows, width], data });
  return file;
}

function run(threads: number, args: string[]): { ms: number; passed: boolean; rows: number } {
  const started = Date.now();
  const child = spawnSync(process.execPath, [CLI, 'verify', ...args, '--json'], { encoding: 'utf8', env: { ...process.env, TFJS_REWRITE_THREADS: String(threads) }, maxBuffer: 64 << 20 });
  const ms = Date.now() - started;
  if (child.status !== 0 && child.status !== 1) throw new Error(`verify exited ${child.status}: ${child.stderr.trim().split('\n').pop()}`);
  const { verification } = JSON.parse(child.stdout);
  return { ms, passed: verification.passed, rows: verification.rows };
}

export interface ThreadsOptions {
  model?: string;
  inputs?: string;
  rows?: number;
  reps?: number;
  backend?: string;
  log?: (line: string) => void;
}

/** The row (markdown) and its PASS/FAIL line: `npm run bench` prints both (tools/bench/run.ts). */
export async function threadsRow(options: ThreadsOptions = {}): Promise<{ row: string; verdict: string; ratio: number }> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-rewrite-threads-'));
  try {
    const model = options.model ?? path.join(REPO, 'fixtures', 'models', 'qwen3vl-patch-embed-mini', 'model.json');
    const inputs = options.inputs ?? tiledRows(options.rows ?? 24576, dir);
    const backend = options.backend ?? 'wasm';
    const reps = options.reps ?? 2;
    const rewritten = path.join(dir, 'rewritten');
    const optimized = spawnSync(process.execPath, [CLI, 'optimize', model, '--out', rewritten, '--policy', 'always', '--no-verify'], { encoding: 'utf8' });
    if (optimized.status !== 0) throw new Error(`optimize failed: ${optimized.stderr.trim()}`);
    const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
    const verifyArgs = [model, path.join(rewritten, 'model.json'), '--inputs', inputs, '--backend', backend];
    const times: Record<number, number[]> = { 1: [], [cores]: [] };
    let rows = 0;
    for (let rep = 0; rep < reps; rep++) {
      for (const threads of [1, cores]) {
        const result = run(threads, verifyArgs);
        if (!result.passed) throw new Error(`verification failed with ${threads} thread(s)`);
        rows = result.rows;
        times[threads].push(result.ms);
        log(`threads: ${threads} thread(s), ${result.rows} rows: ${(result.ms / 1000).toFixed(1)} s`);
      }
    }
    const [one, all] = [median(times[1]), median(times[cores])];
    const ratio = one / all;
    const load = os.loadavg()[0].toFixed(1);
    return {
      row: `| verify ${rows} rows on ${backend} | 1 thread ${(one / 1000).toFixed(1)} s | ${cores} threads ${(all / 1000).toFixed(1)} s | ${ratio.toFixed(2)}x | load ${load} |`,
      verdict: `${ratio >= THREADS_TARGET ? 'PASS' : 'FAIL'} row-parallel verification on ${cores} cores >= ${THREADS_TARGET}x: ${ratio.toFixed(2)}x (median of ${reps}, load average ${load})`,
      ratio,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv, { values: ['--model', '--inputs', '--rows', '--reps', '--backend'], switches: [] });
  const number = (flag: string) => (args.values.has(flag) ? Number(args.values.get(flag)) : undefined);
  const { row, verdict } = await threadsRow({
    model: args.values.get('--model'), inputs: args.values.get('--inputs'), rows: number('--rows'), reps: number('--reps'), backend: args.values.get('--backend'),
  });
  process.stdout.write(`${row}\n${verdict}\n`);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error) => {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exitCode = 2;
  });
}
