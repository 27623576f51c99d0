/** Layer-config helpers the layer rewrites share. */
import type { JsonObject } from '../layers/types';

/** The entries of `config` under `keys` (those it has). */
export function pick(config: JsonObject, keys: string[]): JsonObject {
  const out: JsonObject = {};
  for (const key of keys) if (key in config) out[key] = config[key];
  return out;
}

/** A conv's config a Dense that replaces it takes as is: its initializers, regularizers and constraints. */
export const DENSE_FROM_CONV_KEYS = ['kernel_initializer', 'bias_initializer', 'kernel_regularizer', 'bias_regularizer', 'activity_regularizer', 'kernel_constraint', 'bias_constraint'];
