/**
 * `--backend auto` falls back when the ORIGINAL model does not run on a backend: the model's
 * problem there, said as such ("the original model does not run on wasm: <tfjs message>"),
 * never an internal error; exit 2 only when no backend runs it.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { buildWasmIncompatible } from '../fixtures/graph-models';
import { InputError } from '../src';
import { optimizeGraphModel } from '../src/pipeline';
import { writeModelFiles } from '../src/io/files';
import type { ModuleLoader } from '../src/backend/select';
import { runCli } from './helpers/cli';
import { expectNoLeaks, tempDir } from './helpers/tf';

const WASM_REFUSAL = 'the original model does not run on wasm: BatchMatMul for non non-float32 tensors not yet supported.';

/** No libtensorflow here: auto goes wasm, then cpu, whatever is installed. */
const noNative: ModuleLoader = (id) => {
  if (id.startsWith('@tensorflow/tfjs-node')) throw Object.assign(new Error(`Cannot find module '${id}'`), { code: 'MODULE_NOT_FOUND' });
  return require(id);
};

beforeAll(() => tf.setBackend('cpu'));
afterAll(() => tf.setBackend('cpu'));

test('the fixture really fails on wasm and runs on cpu (stock tfjs, no tfjs-rewrite)', async () => {
  const model = await tf.loadGraphModel(tf.io.fromMemory(buildWasmIncompatible()));
  const run = () => {
    const feed = { clip: tf.zeros([1, 2, 8, 8, 3]), ids: tf.tensor2d([[1, 2, 3]], [1, 3], 'int32') };
    try {
      return (model.execute(feed) as tf.Tensor[]).map((t) => {
        const values = Array.from(t.dataSync());
        t.dispose();
        return values;
      });
    } finally {
      tf.dispose(Object.values(feed));
    }
  };
  await tf.setBackend('wasm');
  expect(run).toThrow('BatchMatMul for non non-float32 tensors not yet supported');
  await tf.setBackend('cpu');
  expect(run()[1]).toEqual([1 * 1 + 2 * 3 + 3 * 5, 1 * -2 + 2 * 4 + 3 * -6]);
  model.dispose();
});

test('auto passes wasm over, saying why, and verifies on cpu', async () => {
  const result = await expectNoLeaks(() => optimizeGraphModel(buildWasmIncompatible(), { backend: 'auto', policy: 'always', moduleLoader: noNative }));
  expect(result.report.rewritten.map((r) => r.layer)).toEqual(['StatefulPartitionedCall/model/tubelet/Conv3D']);
  const verification = result.report.verification!;
  expect(verification.passed).toBe(true);
  expect(verification.backend).toBe('cpu');
  expect(verification.fallbacks).toEqual([expect.stringContaining('tfjs-node'), WASM_REFUSAL]);
});

test('a named backend the original does not run on is the model\'s problem, in one line', async () => {
  await expect(optimizeGraphModel(buildWasmIncompatible(), { backend: 'wasm', policy: 'always' })).rejects.toThrow(new InputError(WASM_REFUSAL));
});

test('no backend runs it: exit 2 naming each failure; nothing written', async () => {
  const model = buildWasmIncompatible(true);
  const inputShapes = { ids: [2, 5] };
  const error = await optimizeGraphModel(model, { backend: 'auto', policy: 'always', moduleLoader: noNative, inputShapes }).catch((e: Error) => e);
  expect(error).toBeInstanceOf(InputError);
  expect((error as Error).message).toMatch(/^the original model does not run on wasm: .*matMul.*; nor on cpu: .*matMul.*$/i);

  const dir = tempDir();
  const input = writeModelFiles(model, path.join(dir, 'in'));
  const run = runCli(['optimize', input, '--out', path.join(dir, 'out'), '--input-shape', 'ids=2x5', '--policy', 'always']);
  expect(run.status).toBe(2);
  const lines = run.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^tfjs-rewrite: the original model does not run on \w+: .*; nor on cpu: /);
  expect(lines[0]).not.toContain('internal error');
  expect(fs.existsSync(path.join(dir, 'out'))).toBe(false);
});

test('the CLI with default settings exits 0 and reports wasm as passed over', () => {
  const dir = tempDir();
  const input = writeModelFiles(buildWasmIncompatible(), path.join(dir, 'in'));
  const run = runCli(['optimize', input, '--out', path.join(dir, 'out'), '--policy', 'always']);
  expect(run.status).toBe(0);
  expect(run.stdout).toContain(`(passed over: ${WASM_REFUSAL})`);
  expect(run.stdout).toMatch(/verification PASSED on backend (cpu|tensorflow)/);
});
