/**
 * The loader of both formats: stock tfjs instantiates a model from its artifacts (a LayersModel
 * without leaking what a failed load made, a GraphModel), and `loadRunnable` gives either as
 * one `Runnable` for the policy's timing, the bench and the exact check.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { InputError, oneLine } from '../errors';

/** Loads `artifacts` with stock tfjs; a failed load leaves no tensor or variable behind. */
export async function instantiate(artifacts: io.ModelArtifacts, label: string): Promise<tf.LayersModel> {
  // A failed load leaves what tfjs made so far: decoded weight tensors (freed by the scope) and
  // the variables of layers already built (scopes never free variables: done by hand).
  const known = new Set(Object.keys(tf.engine().state.registeredVariables));
  tf.engine().startScope();
  try {
    const model = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
    tf.engine().endScope();
    return model;
  } catch (error) {
    tf.engine().endScope();
    for (const [name, variable] of Object.entries(tf.engine().state.registeredVariables)) {
      if (!known.has(name)) variable.dispose();
    }
    throw new InputError(`stock tfjs cannot load the ${label} model: ${oneLine(error)}`);
  }
}

/** Layers shared between calls hold one extra reference per call; dispose() drops only one. */
export function disposeModel(model: tf.LayersModel): void {
  model.dispose();
  for (const weight of model.weights) {
    try {
      weight.dispose();
    } catch {
      // already disposed by model.dispose(): the usual, unshared case
    }
  }
}

export async function loadGraph(artifacts: io.ModelArtifacts, label: string): Promise<tf.GraphModel> {
  try {
    return await tf.loadGraphModel(tf.io.fromMemory(artifacts));
  } catch (error) {
    throw new InputError(`stock tfjs cannot load the ${label} graph model: ${(error as Error).message}`);
  }
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

/** The two model formats, as the pipeline and the browser page name them. */
export type FormatName = 'layers' | 'graphdef';

/** One model input as both formats declare it (null: unknown size or rank). */
export interface InputSignature {
  name: string;
  dtype: tf.DataType;
  shape: (number | null)[] | null;
}

/** A model of either format, instantiated on the current tfjs backend. */
export interface Runnable {
  format: FormatName;
  inputs: InputSignature[];
  /** Every output for `inputs` (one tensor per model input, in order); the caller disposes them. */
  predict(inputs: tf.Tensor[]): Promise<tf.Tensor[]>;
  /** The LayersModel itself (layers format only): the bench's bare matMul column reads its Dense layers. */
  layersModel?: tf.LayersModel;
  dispose(): void;
}

/** Instantiates `artifacts` of `format` with stock tfjs as a Runnable. */
export async function loadRunnable(format: FormatName, artifacts: io.ModelArtifacts, label: string): Promise<Runnable> {
  if (format === 'graphdef') {
    const model = await loadGraph(artifacts, label);
    return {
      format,
      inputs: model.inputs.map((input) => ({ name: input.name, dtype: input.dtype, shape: input.shape?.map((d) => (d < 0 ? null : d)) ?? null })),
      predict: (xs) => {
        const feed: tf.NamedTensorMap = {};
        model.inputs.forEach((input, i) => (feed[input.name] = xs[i]));
        return runGraph(model, feed, model.outputNodes);
      },
      dispose: () => model.dispose(),
    };
  }
  const model = await instantiate(artifacts, label);
  return {
    format,
    inputs: model.inputs.map((input, i) => ({ name: model.inputNames?.[i] ?? input.name, dtype: input.dtype, shape: input.shape ?? null })),
    // batchSize is the whole batch: predict's default of 32 would time 32-row slices plus a concat.
    predict: async (xs) => {
      const out = model.predict(xs.length === 1 ? xs[0] : xs, { batchSize: xs[0].shape[0] || 1 });
      return Array.isArray(out) ? out : [out];
    },
    layersModel: model,
    dispose: () => disposeModel(model),
  };
}
