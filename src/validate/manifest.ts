/**
 * Structure of the weights manifest (model.json `weightsManifest`) and of in-memory weight
 * specs, checked before tfjs sees them: tfjs trusts every field (a string shape or an unknown
 * dtype surfaces as a TypeError deep in decodeWeights, a huge shape as an allocation failure).
 */
import type { io } from '@tensorflow/tfjs';
import { InputError } from '../errors';
import { describeValue, isObject } from './describe';

/**
 * Weight dtypes by model kind: a layers model's IR stores float32 / int32 / bool; graph models
 * may also hold strings (hash tables) and complex64 constants.
 */
export const LAYERS_DTYPES: ReadonlySet<string> = new Set(['float32', 'int32', 'bool']);
export const ANY_DTYPES: ReadonlySet<string> = new Set([...LAYERS_DTYPES, 'string', 'complex64']);
const QUANTIZED_DTYPES = new Set(['uint8', 'uint16', 'float16']);
/** Strings are length-prefixed, so they have no fixed size. */
const BYTES_PER_ELEMENT: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8, uint8: 1, uint16: 2, float16: 2 };

/**
 * No tensor of a model we can verify has more elements than this (8 GiB of float32); beyond it,
 * element counts stop being exact doubles long before, and the file could not be read anyway.
 */
const MAX_ELEMENTS = 2 ** 31;

function fail(path: string, message: string): never {
  throw new InputError(`${path}: ${message}`);
}

function checkShape(value: unknown, path: string): number[] {
  if (!Array.isArray(value)) fail(path, `expected an array of non-negative integers, got ${describeValue(value)}`);
  value.forEach((dim, i) => {
    if (typeof dim !== 'number' || !Number.isInteger(dim) || dim < 0) {
      fail(`${path}[${i}]`, `expected a non-negative integer, got ${describeValue(dim)}`);
    }
  });
  const shape = value as number[];
  if (elementCount(shape) > MAX_ELEMENTS) fail(path, `${JSON.stringify(shape)} has more than 2^31 elements`);
  return shape;
}

export function elementCount(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Bytes one spec occupies in the weight data (quantized by its stored dtype); undefined for strings. */
export function specBytes(spec: io.WeightsManifestEntry): number | undefined {
  const size = BYTES_PER_ELEMENT[spec.quantization?.dtype ?? spec.dtype];
  return size === undefined ? undefined : elementCount(spec.shape) * size;
}

/** Bytes a list of specs occupies; undefined when one has no fixed size. */
export function groupBytes(specs: io.WeightsManifestEntry[]): number | undefined {
  let total = 0;
  for (const spec of specs) {
    const bytes = specBytes(spec);
    if (bytes === undefined) return undefined;
    total += bytes;
  }
  return total;
}

/** Checks one weight spec; `path` is its key path, e.g. weightsManifest[0].weights[3]. */
function checkSpec(value: unknown, path: string, dtypes: ReadonlySet<string>): io.WeightsManifestEntry {
  if (!isObject(value)) fail(path, `expected a weight spec object, got ${describeValue(value)}`);
  if (typeof value.name !== 'string' || value.name.length === 0) {
    fail(`${path}.name`, `expected a non-empty string, got ${describeValue(value.name)}`);
  }
  checkShape(value.shape, `${path}.shape`);
  if (typeof value.dtype !== 'string' || !dtypes.has(value.dtype)) {
    fail(`${path}.dtype`, `expected one of ${[...dtypes].join(', ')}, got ${describeValue(value.dtype)}`);
  }
  const q = value.quantization;
  if (q !== undefined) {
    const qPath = `${path}.quantization`;
    if (!isObject(q)) fail(qPath, `expected an object, got ${describeValue(q)}`);
    if (typeof q.dtype !== 'string' || !QUANTIZED_DTYPES.has(q.dtype)) {
      fail(`${qPath}.dtype`, `expected one of ${[...QUANTIZED_DTYPES].join(', ')}, got ${describeValue(q.dtype)}`);
    }
    if (q.dtype === 'float16' && value.dtype !== 'float32') {
      fail(`${qPath}.dtype`, `float16 quantization needs dtype float32, got ${describeValue(value.dtype)}`);
    }
    if (q.dtype !== 'float16') {
      if (value.dtype !== 'float32' && value.dtype !== 'int32') {
        fail(`${path}.dtype`, `a ${q.dtype}-quantized weight must be float32 or int32, got ${describeValue(value.dtype)}`);
      }
      for (const key of ['scale', 'min'] as const) {
        if (typeof q[key] !== 'number' || !Number.isFinite(q[key])) {
          fail(`${qPath}.${key}`, `expected a finite number, got ${describeValue(q[key])}`);
        }
      }
    }
  }
  return value as unknown as io.WeightsManifestEntry;
}

/** Checks a list of specs (ModelArtifacts.weightSpecs or one group's weights) and name uniqueness. */
export function checkWeightSpecs(
  value: unknown, path: string, dtypes = LAYERS_DTYPES, seen = new Map<string, string>(),
): io.WeightsManifestEntry[] {
  if (!Array.isArray(value)) fail(path, `expected an array of weight specs, got ${describeValue(value)}`);
  return value.map((entry, i) => {
    const spec = checkSpec(entry, `${path}[${i}]`, dtypes);
    const first = seen.get(spec.name);
    if (first) fail(`${path}[${i}].name`, `weight "${spec.name}" is listed twice (first at ${first})`);
    seen.set(spec.name, `${path}[${i}]`);
    return spec;
  });
}

/** Checks `weightsManifest` (absent means no weights) and returns it typed. */
export function checkManifest(value: unknown, dtypes = LAYERS_DTYPES, path = 'weightsManifest'): io.WeightsManifestConfig {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) fail(path, `expected an array of weight groups, got ${describeValue(value)}`);
  const seen = new Map<string, string>();
  return value.map((group, g) => {
    const groupPath = `${path}[${g}]`;
    if (!isObject(group)) fail(groupPath, `expected {"paths": [...], "weights": [...]}, got ${describeValue(group)}`);
    if (!Array.isArray(group.paths)) fail(`${groupPath}.paths`, `expected an array of file names, got ${describeValue(group.paths)}`);
    const weights = checkWeightSpecs(group.weights, `${groupPath}.weights`, dtypes, seen);
    return { paths: group.paths as string[], weights };
  });
}
