/**
 * Numerical check of a rewrite: both models are instantiated by stock tfjs from their
 * artifacts, fed the same seeded inputs on the selected backend, and every output compared.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { InputError } from '../errors';
import { BackendRequest, selectBackend } from '../backend/select';
import { OutputMetrics, compareOutputs } from './compare';

export interface VerifyOptions {
  backend?: BackendRequest;
  /** Defaults: see DEFAULT_TOLERANCE. */
  atol?: number;
  rtol?: number;
  /** Batch size of the generated inputs (default 2: catches batch-mixing bugs). */
  batch?: number;
  seed?: number;
}

/**
 * float32 dot products of length K carry a relative error around sqrt(K) * 6e-8; for the
 * patch embeds here (K up to 1536, outputs O(1)) that is ~1e-6 absolute. The defaults leave
 * ~10x headroom over what we measure while a permuted kernel row misses by O(0.1..1).
 */
export const DEFAULT_TOLERANCE = { atol: 1e-5, rtol: 1e-4 };

export interface VerificationReport {
  passed: boolean;
  backend: string;
  device: string;
  fallbacks: string[];
  atol: number;
  rtol: number;
  batch: number;
  seed: number;
  outputs: OutputMetrics[];
}

/** Seeded inputs for every model input; only the batch dimension may be unknown. */
export function makeInputs(model: tf.LayersModel, batch: number, seed: number): tf.Tensor[] {
  return model.inputs.map((input, i) => {
    const shape = input.shape.map((dim, axis) => {
      if (dim !== null) return dim;
      if (axis === 0) return batch;
      throw new InputError(`input "${input.name}" has an unknown dimension ${axis} (${JSON.stringify(input.shape)}); generated inputs need static shapes`);
    });
    return input.dtype === 'int32'
      ? tf.randomUniform(shape, 0, 10, 'int32', seed + i)
      : tf.randomUniform(shape, -1, 1, 'float32', seed + i);
  });
}

async function instantiate(artifacts: io.ModelArtifacts, label: string): Promise<tf.LayersModel> {
  try {
    return await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  } catch (error) {
    throw new InputError(`stock tfjs cannot load the ${label} model: ${(error as Error).message}`);
  }
}

/** Layers shared between calls hold one extra reference per call; dispose() drops only one. */
function disposeModel(model: tf.LayersModel): void {
  model.dispose();
  for (const weight of model.weights) {
    try {
      weight.dispose();
    } catch {
      // already disposed by model.dispose(): the usual, unshared case
    }
  }
}

export async function verifyArtifacts(
  original: io.ModelArtifacts, rewritten: io.ModelArtifacts, options: VerifyOptions = {},
): Promise<VerificationReport> {
  const backend = await selectBackend(options.backend ?? 'auto');
  const atol = options.atol ?? DEFAULT_TOLERANCE.atol;
  const rtol = options.rtol ?? DEFAULT_TOLERANCE.rtol;
  const batch = options.batch ?? 2;
  const seed = options.seed ?? 1234;
  const models: tf.LayersModel[] = [];
  let inputs: tf.Tensor[] = [];
  try {
    models.push(await instantiate(original, 'original'));
    models.push(await instantiate(rewritten, 'rewritten'));
    const [before, after] = models;
    if (before.inputs.length !== after.inputs.length || before.outputs.length !== after.outputs.length) {
      throw new InputError(`the models differ in inputs/outputs (${before.inputs.length}/${before.outputs.length} vs ${after.inputs.length}/${after.outputs.length})`);
    }
    inputs = makeInputs(before, batch, seed);
    const outputs: OutputMetrics[] = [];
    for (let o = 0; o < before.outputs.length; o++) {
      // One output at a time keeps at most two output tensors alive.
      const [expected, actual] = [before, after].map((model) => {
        const result = model.predict(inputs) as tf.Tensor | tf.Tensor[];
        const all = Array.isArray(result) ? result : [result];
        const kept = all[o];
        tf.dispose(all.filter((t) => t !== kept));
        return kept;
      });
      try {
        if (expected.shape.join() !== actual.shape.join()) {
          throw new InputError(`output ${before.outputs[o].name}: shape ${JSON.stringify(expected.shape)} vs ${JSON.stringify(actual.shape)}`);
        }
        outputs.push(compareOutputs(before.outputNames[o] ?? `output_${o}`, expected.shape,
          await expected.data() as Float32Array, await actual.data() as Float32Array, { atol, rtol }));
      } finally {
        tf.dispose([expected, actual]);
      }
    }
    return {
      passed: outputs.every((output) => output.passed),
      backend: backend.name,
      device: backend.device,
      fallbacks: backend.fallbacks,
      atol,
      rtol,
      batch,
      seed,
      outputs,
    };
  } finally {
    tf.dispose(inputs);
    models.forEach(disposeModel);
  }
}
