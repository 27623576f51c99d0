/**
 * Numerical check of a graph-model rewrite: both models are loaded by stock tfjs
 * (tf.loadGraphModel(tf.io.fromMemory(...))), fed the same rows (the user's, or seeded ones)
 * on the selected backend a batch at a time, and every output compared with compareOutputs.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { InputError } from '../errors';
import { selectBackend } from '../backend/select';
import { MetricsAccumulator, OutputMetrics } from '../verify/compare';
import { InputSet, openInputs } from '../verify/inputs';
import { runHeader, runSettings, VerificationReport, VerifyOptions } from '../verify/verify';
import { yieldToEventLoop } from '../yield';

export async function loadGraph(artifacts: io.ModelArtifacts, label: string): Promise<tf.GraphModel> {
  try {
    return await tf.loadGraphModel(tf.io.fromMemory(artifacts));
  } catch (error) {
    throw new InputError(`stock tfjs cannot load the ${label} graph model: ${(error as Error).message}`);
  }
}

/**
 * The input rows for a graph model, through the layers verifier's reader (.npy files, arrays,
 * tensors or seeded rows). That reader looks only at each input's name, shape and dtype, which
 * a graph model's signature gives too (with -1, not null, for unknown sizes).
 */
export function openGraphInputs(model: tf.GraphModel, inputs: VerifyOptions['inputs'], generated: { batch: number; seed: number }): InputSet {
  const signature = model.inputs.map((input) => {
    if (input.shape === undefined) throw new InputError(`input "${input.name}" has an unknown rank; its shape must be known to feed it`);
    return { name: input.name, dtype: input.dtype, shape: input.shape.map((d) => (d < 0 ? null : d)) };
  });
  return openInputs({ inputs: signature } as unknown as tf.LayersModel, inputs, generated);
}

/** `execute`, or `executeAsync` when the graph has control flow or dynamic ops. */
export async function runGraph(model: tf.GraphModel, feed: tf.NamedTensorMap, outputs: string[]): Promise<tf.Tensor[]> {
  let result: tf.Tensor | tf.Tensor[];
  try {
    result = model.execute(feed, outputs);
  } catch (error) {
    if (!/executeAsync/.test((error as Error).message)) throw error;
    result = await model.executeAsync(feed, outputs);
  }
  return Array.isArray(result) ? result : [result];
}

/** Runs `model` on rows [start, start + count) and returns every output's values. */
async function runRows(model: tf.GraphModel, rows: InputSet, start: number, count: number): Promise<{ shape: number[]; values: Float32Array }[]> {
  const tensors = rows.batch(start, count);
  const feed: tf.NamedTensorMap = {};
  model.inputs.forEach((input, i) => (feed[input.name] = tensors[i]));
  let outputs: tf.Tensor[] = [];
  try {
    outputs = await runGraph(model, feed, model.outputNodes);
    return await Promise.all(outputs.map(async (t, o) => {
      // Batches are stitched along axis 0: an output without the batch there cannot be.
      if (count !== rows.rows && t.shape[0] !== count) {
        throw new InputError(`output ${model.outputNodes[o]} has shape ${JSON.stringify(t.shape)}, not ${count} rows first; use a batch size >= ${rows.rows}`);
      }
      return { shape: t.shape, values: Float32Array.from(await t.data()) };
    }));
  } finally {
    tf.dispose([...tensors, ...outputs]);
  }
}

export async function verifyGraphArtifacts(
  original: io.ModelArtifacts, rewritten: io.ModelArtifacts, options: VerifyOptions = {},
): Promise<VerificationReport> {
  const backend = await selectBackend(options.backend ?? 'auto', options.moduleLoader);
  const settings = runSettings(options);
  const { atol, rtol, batch, seed, batchSize } = settings;
  const models: tf.GraphModel[] = [];
  let rows: InputSet | undefined;
  try {
    models.push(await loadGraph(original, 'original'));
    models.push(await loadGraph(rewritten, 'rewritten'));
    const [before, after] = models;
    const names = (m: tf.GraphModel) => `inputs [${m.inputNodes.join(', ')}], outputs [${m.outputNodes.join(', ')}]`;
    if (names(before) !== names(after)) throw new InputError(`the models differ: ${names(before)} vs ${names(after)}`);
    rows = openGraphInputs(before, options.inputs, { batch, seed });
    // Compared batch by batch as they come (memory bounded by --batch-size, as for layers).
    let accumulators: MetricsAccumulator[] = [];
    for (let start = 0; start < rows.rows; start += batchSize) {
      const count = Math.min(batchSize, rows.rows - start);
      // Between forward passes, signals (Ctrl-C) and aborts get their turn (see src/yield.ts).
      await yieldToEventLoop(options.signal);
      const expected = await runRows(before, rows, start, count);
      await yieldToEventLoop(options.signal);
      const actual = await runRows(after, rows, start, count);
      if (start === 0) accumulators = expected.map((e, o) => new MetricsAccumulator(before.outputNodes[o], e.shape.slice(1), { atol, rtol }));
      expected.forEach((e, o) => {
        if (e.shape.join() !== actual[o].shape.join()) {
          throw new InputError(`output ${before.outputNodes[o]}: shape ${JSON.stringify(e.shape)} vs ${JSON.stringify(actual[o].shape)}`);
        }
        accumulators[o].add(e.values, actual[o].values);
      });
      options.onProgress?.({ backend: backend.name, done: start + count, total: rows.rows });
    }
    const outputs: OutputMetrics[] = accumulators.map((accumulator) => accumulator.result());
    return {
      passed: outputs.every((output) => output.passed),
      ...runHeader(backend, settings, rows),
      outputs,
      ...(options.accuracyFactor === undefined ? {} : { notes: ['accuracyFactor is not applied: graph models get the end-to-end comparison only, no per-layer float64 reference'] }),
    };
  } finally {
    rows?.close();
    models.forEach((model) => model.dispose());
  }
}
