/**
 * Issue 4, item 4: what the pass costs on a large model, against a plain load+save of the same
 * files. Each measurement runs in its own process (peak RSS is per process), the three kinds
 * interleaved, medians over `runs`.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { artifactsOfModel, writeModelFiles } from '../../src/io/files';
import type { PassCost } from './targets';
import { quantile } from '../../src/bench/stats';

export interface PassCostOptions {
  /** Conv3D branches per input (two inputs): 16 gives 32 convs and ~302 MB of weights. */
  branches?: number;
  filters?: number;
  runs?: number;
  log?(line: string): void;
}

/**
 * Two inputs, `branches` Conv3D 2x16x16 on each, summed per input. The convs on clip_a cover
 * their whole input (Reshape + Dense, the kernel's bytes kept); those on clip_b see 2x2x2
 * patches (a Permute, and a kernel whose rows are reordered: a real new buffer).
 */
function buildLarge(branches: number, filters: number): tf.LayersModel {
  const branchSum = (input: tf.SymbolicTensor, tag: string) => {
    const outs = Array.from({ length: branches }, (_, i) => tf.layers.conv3d({
      name: `${tag}_conv${i}`, filters, kernelSize: [2, 16, 16], strides: [2, 16, 16], kernelInitializer: 'zeros',
    }).apply(input) as tf.SymbolicTensor);
    return tf.layers.add({ name: `${tag}_sum` }).apply(outs) as tf.SymbolicTensor;
  };
  const a = tf.input({ shape: [2, 16, 16, 3], name: 'clip_a' });
  const b = tf.input({ shape: [4, 32, 32, 3], name: 'clip_b' });
  return tf.model({ inputs: [a, b], outputs: [branchSum(a, 'a'), branchSum(b, 'b')], name: 'pass_cost_large' });
}

/** Writes the large model (non-zero weights: a cheap pattern) to `dir`; returns model.json and its weight bytes. */
export async function writeLarge(dir: string, branches: number, filters: number): Promise<{ file: string; bytes: number }> {
  await tf.setBackend('cpu');
  const model = buildLarge(branches, filters);
  const artifacts = await artifactsOfModel(model);
  model.dispose();
  const buffers = [artifacts.weightData ?? []].flat() as ArrayBuffer[];
  for (const buffer of buffers) {
    const values = new Float32Array(buffer);
    for (let i = 0; i < values.length; i++) values[i] = ((i * 2654435761) % 2001) / 1e5 - 0.01;
  }
  const bytes = buffers.reduce((n, buffer) => n + buffer.byteLength, 0);
  return { file: writeModelFiles(artifacts, dir, { force: true }), bytes };
}

function child(mode: string, model: string, out: string): { ms: number; peakRss: number } {
  const script = path.join(__dirname, 'pass-cost-child.js');
  const text = execFileSync(process.execPath, [script, mode, model, out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 20 });
  return JSON.parse(text) as { ms: number; peakRss: number };
}

export async function measurePassCost(options: PassCostOptions = {}): Promise<PassCost> {
  const branches = options.branches ?? 16;
  const filters = options.filters ?? 1536;
  const runs = options.runs ?? 3;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-rewrite-pass-cost-'));
  try {
    options.log?.(`pass cost: writing a ${2 * branches}-conv model to ${root}`);
    const { file, bytes } = await writeLarge(path.join(root, 'model'), branches, filters);
    const samples: Record<string, { ms: number; peakRss: number }[]> = { baseline: [], 'load-save': [], optimize: [] };
    for (let run = 0; run < runs; run++) {
      for (const mode of Object.keys(samples)) {
        options.log?.(`pass cost: ${mode} run ${run + 1}/${runs}`);
        samples[mode].push(child(mode, file, path.join(root, `out-${mode}`)));
      }
    }
    const median = (mode: string, key: 'ms' | 'peakRss') => quantile(samples[mode].map((s) => s[key]).sort((x, y) => x - y), 0.5);
    return {
      modelBytes: bytes,
      convs: 2 * branches,
      loadSave: { ms: median('load-save', 'ms'), peakRss: median('load-save', 'peakRss') },
      optimize: { ms: median('optimize', 'ms'), peakRss: median('optimize', 'peakRss') },
      baselineRss: median('baseline', 'peakRss'),
      runs,
    };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}
