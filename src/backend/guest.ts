/**
 * The library runs in the caller's process and shares its tfjs engine: verification and
 * benchmarks switch backends (wasm, tensorflow), so every public entry point puts the caller's
 * backend back on the way out, errors included.
 */
import * as tf from '@tensorflow/tfjs';

/** Runs `fn` and restores the backend that was active before it (tf.getBackend() before == after). */
export async function keepingBackend<T>(fn: () => Promise<T>): Promise<T> {
  // No backend chosen yet: settle the one tfjs would pick now, before ours are registered.
  if (!tf.getBackend()) await tf.ready();
  const before = tf.getBackend();
  try {
    return await fn();
  } finally {
    if (tf.getBackend() !== before) await tf.setBackend(before);
  }
}

/** `fn` with keepingBackend around every call: for exported entry points. */
export function asGuest<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return (...args: A) => keepingBackend(() => fn(...args));
}
