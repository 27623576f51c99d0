/**
 * A worker thread that ends mid-task (tfjs's wasm backend aborts its thread when its 4 GB heap is
 * exhausted: a MeshNet's 171^3 corner runs did) is the model's size, said in one line: never
 * piscina's bare "worker exited with code: 0" as an internal error. The pool is replaced here by
 * one whose worker ends that way (a real exhaustion takes 4 GB and minutes).
 */
import * as tf from '@tensorflow/tfjs';
import { InputError, OutOfMemoryError } from '../src/errors';

jest.mock('../src/workers/pool', () => ({
  ...jest.requireActual('../src/workers/pool'),
  runTask: jest.fn(async () => {
    throw new Error('worker exited with code: 0');
  }),
}));

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { optimize } = require('../src') as typeof import('../src');

test('a worker that ends without a reply is an OutOfMemoryError (an InputError: exit 2, no "internal error") naming the task and the ways out', async () => {
  const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 1 })] });
  const error = await optimize(model, { backend: 'wasm' }).then(() => null, (e: unknown) => e);
  model.dispose();
  expect(error).toBeInstanceOf(OutOfMemoryError);
  expect(error).toBeInstanceOf(InputError);
  expect((error as Error).message).toMatch(/^the worker thread running optimize ended without a reply \(worker exited with code: 0\): tfjs's wasm backend .* 4 GB heap .* \(tensorflow, webgl\) or a smaller input/);
  expect((error as Error).message).not.toMatch(/\n/);
});
