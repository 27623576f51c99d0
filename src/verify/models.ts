/**
 * Instantiating and disposing tfjs LayersModels without leaks, shared by verification, the
 * benchmarks and the tests.
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
