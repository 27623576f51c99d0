/** Timed runs of models and of the bare matMul+bias they reduce to; every tensor is disposed. */
import * as tf from '@tensorflow/tfjs';
import type { Runnable } from '../formats/load';
import type { Runner } from './stats';

const asArray = (out: tf.Tensor | tf.Tensor[]) => (Array.isArray(out) ? out : [out]);

/**
 * One `predict` over the whole batch, awaiting every output (`data()`: tfjs-node may be async).
 * batchSize is the full batch: predict's default of 32 would slice a 1024-patch input into 32
 * small matMuls plus a concat and time that instead (~5x slower on wasm for the patch embed).
 */
export function predictRunner(name: string, model: tf.LayersModel, inputs: tf.Tensor[], reps?: number): Runner {
  const batch = inputs[0].shape[0];
  return {
    name,
    reps,
    async run() {
      const start = performance.now();
      const outputs = asArray(model.predict(inputs.length === 1 ? inputs[0] : inputs, { batchSize: batch }));
      try {
        await Promise.all(outputs.map((t) => t.data()));
        return performance.now() - start;
      } finally {
        tf.dispose(outputs);
      }
    },
  };
}

/** One run of a model of either format over the whole batch, awaiting every output. */
export function runnableRunner(name: string, model: Runnable, inputs: tf.Tensor[], reps?: number): Runner {
  return {
    name,
    reps,
    async run() {
      const start = performance.now();
      const outputs = await model.predict(inputs);
      try {
        await Promise.all(outputs.map((t) => t.data()));
        return performance.now() - start;
      } finally {
        tf.dispose(outputs);
      }
    },
  };
}

/** The matMul+bias a Dense computes, as rows [n, K] x kernel [K, F] (+ bias). */
export interface BareMatMul {
  rows: tf.Tensor2D;
  kernel: tf.Tensor2D;
  bias?: tf.Tensor1D;
}

/** One fused matMul+bias per operand set, run back to back: the floor a rewrite can reach. */
export function bareRunner(name: string, operands: BareMatMul[], reps?: number): Runner {
  return {
    name,
    reps,
    async run() {
      const start = performance.now();
      const outputs = operands.map(({ rows, kernel, bias }) => tf.fused.matMul({ a: rows, b: kernel, bias }));
      try {
        await Promise.all(outputs.map((t) => t.data()));
        return performance.now() - start;
      } finally {
        tf.dispose(outputs);
      }
    },
  };
}

/**
 * Operands for the Dense layers `names` of a loaded (rewritten) model at batch `batch`: the
 * layer's own kernel and bias, and seeded rows of the shape its calls see (all calls of a shared
 * layer stacked into one matMul). The caller disposes `rows` only; the weights belong to the model.
 */
export function bareOperands(model: tf.LayersModel, names: string[], batch: number, seed = 7): BareMatMul[] {
  const byName = new Map<string, tf.layers.Layer>();
  const collect = (container: tf.LayersModel) => container.layers.forEach((layer) => {
    byName.set(layer.name, layer);
    if (layer instanceof tf.LayersModel) collect(layer);
  });
  collect(model);
  const operands: BareMatMul[] = [];
  for (const name of names) {
    const layer = byName.get(name);
    if (!layer || layer.getClassName() !== 'Dense') continue;
    const [kernel, bias] = layer.getWeights() as [tf.Tensor2D, tf.Tensor1D | undefined];
    let count = 0;
    for (const node of layer.inboundNodes) {
      const shape = node.inputTensors[0].shape;
      count += batch * shape.slice(1, -1).reduce((a: number, b) => a * (b ?? 1), 1);
    }
    if (count === 0) continue;
    operands.push({ rows: tf.randomUniform([count, kernel.shape[0]], -1, 1, 'float32', seed) as tf.Tensor2D, kernel, bias });
  }
  return operands;
}
