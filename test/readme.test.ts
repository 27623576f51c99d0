/**
 * The README's first screen is what users copy: its library example runs as written (output
 * folder redirected to a temp dir), its CLI lines run on a committed fixture, and CI runs
 * exactly its test command.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { optimize } from '../src';
import { runCli } from './helpers/cli';
import { REPO, committedModel, tempDir } from './helpers/tf';

const README = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
const block = (after: string, lang: string) => {
  const match = README.slice(README.indexOf(after)).match(new RegExp('```' + lang + '\\n([\\s\\S]*?)```'));
  if (!match) throw new Error(`no ${lang} block after "${after}"`);
  return match[1];
};

test('the library example runs as written on a tf.LayersModel and keeps the backend', async () => {
  const code = block('**Library**', 'ts');
  expect(code.split('\n').filter(Boolean)).toHaveLength(5);
  const out = path.join(tempDir(), 'fast');
  const body = code.replace(/^import .*\n/, '').replace("'public/models/fast'", JSON.stringify(out));
  await tf.setBackend('cpu');
  // A patch embed the default speed policy rewrites on its table's word (on wasm, the auto
  // backend here): a tiny conv would be timed, and kept when the rewrite does not pay.
  // Per frame one 16x16x3 patch (Reshape + Dense, no transpose), 4 x 768 x 384 = 1.2M multiply-adds.
  const input = tf.input({ shape: [4, 16, 16, 3] });
  const model = tf.model({ inputs: input, outputs: tf.layers.conv3d({ filters: 384, kernelSize: [1, 16, 16], strides: [1, 16, 16] }).apply(input) as tf.SymbolicTensor });
  const logged: unknown[][] = [];
  const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor;
  await new AsyncFunction('optimize', 'model', 'console', body)(optimize, model, { log: (...parts: unknown[]) => logged.push(parts) });
  expect(logged).toHaveLength(1);
  expect((logged[0][0] as unknown[]).length).toBe(1); // one rewritten conv
  expect(logged[0][2]).toBe(true); // verification passed
  expect(fs.readdirSync(out).sort()).toEqual(['group1-shard1of1.bin', 'model.json']);
  expect(tf.getBackend()).toBe('cpu');
});

test('the CLI lines run on a committed model', () => {
  const lines = block('**CLI**', 'sh').split('\n').filter(Boolean).map((line) => line.replace(/\s+#.*$/, ''));
  expect(lines).toHaveLength(3);
  const dir = tempDir();
  const model = committedModel('qwen3vl-patch-embed-mini');
  const rows = path.join(REPO, 'fixtures', 'inputs', 'jetty-patches-p4.npy');
  for (const line of lines) {
    const args = line.replace(/^npx tfjs-rewrite /, '').split(/\s+/)
      .map((arg) => (arg === 'model.json' ? model : arg === 'fast' ? path.join(dir, 'fast') : arg === 'fast/model.json' ? path.join(dir, 'fast', 'model.json') : arg === 'rows.npy' ? rows : arg));
    const run = runCli(args);
    const other = run.stderr.split('\n').filter((l) => l && !/^tfjs-rewrite: verifying on \w+: \d+\/\d+ rows(, [^,]* elapsed(, ~[^,]* left)?)?$/.test(l));
    expect([line, run.status, other]).toEqual([line, 0, []]); // progress lines only
  }
});

test('CI runs exactly the README test command', () => {
  const command = block('**The two commands**', 'sh').split('\n').find((line) => line.includes('npm test'))!.replace(/\s+#.*$/, '');
  expect(command).toBe('npm install && npm test');
  expect(fs.readFileSync(path.join(REPO, '.ci', 'run'), 'utf8').split('\n')).toContain(command);
});
