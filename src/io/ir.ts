/**
 * ModelArtifacts <-> ModelIR. The IR keeps weights as plain typed arrays so passes never touch
 * tensors. Every weight is viewed in place in its stored encoding (tfjs's decode/encode would
 * copy every weight into a backend and out again: 3x the model in memory, and quantized weights
 * would come back float32, 2-4x larger): float32/int32/bool as themselves, uint8/uint16/float16
 * quantized ones as their stored elements with the manifest's `quantization` beside them.
 * test/roundtrip.test.ts checks both directions against tf.io.decodeWeights / encodeWeights.
 */
import type { io } from '@tensorflow/tfjs';
import { InputError } from '../errors';
import { ReadOptions, graphToJson, readTopology } from '../layers/json';
import { Keras3Conversion, Keras3Error, isKerasFileRouteWeightName, kerasFileRouteWeightName, keras3WeightName } from '../layers/keras3';
import { normalizationWeights } from '../layers/keras3-normalization';
import { lintGraph } from '../layers/lint';
import { Conversion, JsonObject, ModelIR, Weight, WeightDtype, WeightQuantization, WeightValues } from '../layers/types';
import { checkWeightSpecs, groupBytes, specBytes } from '../validate/manifest';

const PASSED_THROUGH = ['format', 'generatedBy', 'convertedBy', 'trainingConfig', 'userDefinedMetadata', 'signature'] as const;

export function irFromArtifacts(artifacts: io.ModelArtifacts, options: ReadOptions = {}): ModelIR {
  const topology = artifacts.modelTopology as JsonObject | ArrayBuffer | undefined;
  if (topology == null || topology instanceof ArrayBuffer) {
    throw new InputError('modelTopology is missing or binary; only JSON layers-model topologies are supported');
  }
  const { graph, extra, keras3 } = readTopology(topology, options);
  lintGraph(graph);

  const notes: string[] = [];
  // In-memory artifacts reach here unchecked; files were checked with key paths already.
  let specs = checkWeightSpecs(artifacts.weightSpecs ?? [], 'weightSpecs');
  let converted: Conversion | undefined;
  let dropped = new Set<number>();
  if (keras3) {
    const renamed = keras3Specs(specs, keras3);
    converted = { from: 'keras3', kerasVersion: keras3.kerasVersion, changes: [...keras3.changes, ...renamed.changes] };
    specs = renamed.specs;
    dropped = renamed.drop;
  }
  if (converted) notes.push(conversionNote(converted));
  const quantized = specs.filter((spec) => spec.quantization);
  if (quantized.length) notes.push(`${describeEncodings(quantized)}: kept in their encoding`);
  const artifactExtra: JsonObject = {};
  for (const key of PASSED_THROUGH) {
    if (artifacts[key] != null) artifactExtra[key] = artifacts[key] as unknown as JsonObject;
  }
  let weights = decode(artifacts, specs).filter((_, i) => !dropped.has(i));
  if (keras3 && keras3.normalizations.size) weights = convertedWeights(weights, keras3, converted!);
  const ir: ModelIR = { graph, topologyExtra: extra, weights, artifactExtra, notes };
  if (converted) ir.converted = converted;
  return ir;
}

/**
 * Weights of layers the conversion replaced: a Normalization's stored mean/variance/count (or
 * the statistics in its config) become its BatchNormalization's four weights, in its place.
 */
function convertedWeights(weights: Weight[], conversion: Keras3Conversion, converted: Conversion): Weight[] {
  const owner = (weight: Weight) => weight.name.split('/')[0];
  const out: Weight[] = [];
  const made = new Set<string>();
  const make = (name: string) => {
    if (made.has(name)) return;
    made.add(name);
    const plan = conversion.normalizations.get(name)!;
    const stored = new Map(weights.filter((w) => owner(w) === name).map((w) => [w.name.slice(name.length + 1), w]));
    out.push(...normalizationWeights(name, plan, stored));
  };
  for (const weight of weights) {
    if (conversion.normalizations.has(owner(weight))) make(owner(weight));
    else out.push(weight);
  }
  for (const name of conversion.normalizations.keys()) make(name);
  converted.changes.push(`Normalization statistics -> BatchNormalization weights gamma, beta, moving_mean, moving_variance (${made.size})`);
  return out;
}

function conversionNote(converted: Conversion): string {
  const version = converted.kerasVersion ? ` (keras ${converted.kerasVersion})` : '';
  return `topology converted from Keras 3${version} to the Keras 2 form tfjs-layers loads: ${converted.changes.join('; ')}`;
}

/**
 * Keras 3 weight names -> the names tfjs gives the same variables; values and encodings
 * untouched. .h5 route: variable paths (`sequential/dense/kernel`); .keras route: positions
 * (`layers/dense/vars/0`), whose non-model entries (optimizer state) are dropped (`drop`).
 */
function keras3Specs(specs: io.WeightsManifestEntry[], conversion: Keras3Conversion): { specs: io.WeightsManifestEntry[]; drop: Set<number>; changes: string[] } {
  const fileRoute = specs.some((spec) => isKerasFileRouteWeightName(spec.name));
  const seen = new Map<string, string>();
  const drop = new Set<number>();
  let renamed = 0;
  let droppedState = 0;
  let firstOther = '';
  let example = '';
  const out = specs.map((spec, i) => {
    const name = fileRoute ? kerasFileRouteWeightName(spec.name, conversion.topology) : keras3WeightName(spec.name, conversion);
    if (name === null && fileRoute) {
      firstOther ||= spec.name;
      drop.add(i);
      return spec;
    }
    if (name === null) throw new Keras3Error(`weight "${spec.name}": no segment of its path names a layer of the model`);
    if (conversion.dropped.has(name.split('/')[0])) {
      drop.add(i);
      droppedState++;
      return spec;
    }
    const clash = seen.get(name);
    if (clash !== undefined) {
      throw new Keras3Error(`weights "${clash}" and "${spec.name}" would both be "${name}" in tfjs-layers (layers of nested models share a name)`);
    }
    seen.set(name, spec.name);
    if (name !== spec.name) {
      renamed++;
      example ||= `${spec.name} -> ${name}`;
    }
    return name === spec.name ? spec : { ...spec, name };
  });
  const changes = renamed ? [`weights renamed to tfjs names, e.g. ${example} (${renamed})`] : [];
  if (droppedState) changes.push(`weights of layers dropped as the identity at inference dropped (${droppedState})`);
  if (drop.size > droppedState) changes.push(`.keras-route entries that are not model weights dropped, e.g. ${firstOther} (${drop.size - droppedState})`);
  return { specs: out, drop, changes };
}

/**
 * The artifacts as tfjs loads them: a Keras 3 topology and its weight names converted, the
 * weight bytes shared with `artifacts` (repacked from `ir`, which must not have been rewritten
 * yet, only when entries were dropped); other artifacts are returned as they are.
 */
export function loadableArtifacts(artifacts: io.ModelArtifacts, ir: ModelIR): io.ModelArtifacts {
  if (!ir.converted) return artifacts;
  const { keras3 } = readTopology(artifacts.modelTopology as JsonObject);
  const { specs, drop } = keras3Specs(checkWeightSpecs(artifacts.weightSpecs ?? [], 'weightSpecs'), keras3!);
  if (drop.size || keras3!.normalizations.size) return { ...artifactsFromIR(ir), modelTopology: keras3!.topology };
  return { ...artifacts, modelTopology: keras3!.topology, weightSpecs: specs };
}

const VIEWS: Record<string, { new (buffer: ArrayBuffer, offset: number, length: number): WeightValues; BYTES_PER_ELEMENT: number }> = {
  float32: Float32Array, int32: Int32Array, bool: Uint8Array, uint8: Uint8Array, uint16: Uint16Array, float16: Uint16Array,
};

/** "3 weight(s) stored quantized (uint8 x2, float16 x1)", for notes. */
export function describeEncodings(specs: { quantization?: { dtype: string } }[]): string {
  const counts = new Map<string, number>();
  for (const spec of specs) if (spec.quantization) counts.set(spec.quantization.dtype, (counts.get(spec.quantization.dtype) ?? 0) + 1);
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  return `${total} weight(s) stored quantized (${[...counts].map(([dtype, n]) => `${dtype} x${n}`).join(', ')})`;
}

function decode(artifacts: io.ModelArtifacts, specs: io.WeightsManifestEntry[]): Weight[] {
  if (specs.length === 0) return [];
  if (artifacts.weightData === undefined) throw new InputError('the manifest lists weights but no weight data was found');
  const data = artifacts.weightData;
  const chunks = Array.isArray(data) ? data : [data];
  const actual = chunks.reduce((sum, part) => sum + part.byteLength, 0);
  const expected = groupBytes(specs);
  if (expected !== actual) {
    throw new InputError(`weight data holds ${actual} bytes, but the ${specs.length} weight specs need ${expected}`);
  }
  return viewWeights(chunks, specs);
}

/**
 * Weights are their bytes: each becomes a typed-array view (of its stored element type) of the
 * buffer it lies in (a copy only when it straddles two buffers or is misaligned), so a model of
 * any size is held once. The layout is tfjs's (decodeWeights reads the same bytes in order).
 */
function viewWeights(chunks: ArrayBuffer[], specs: io.WeightsManifestEntry[]): Weight[] {
  let chunk = 0;
  let offset = 0;
  return specs.map((spec) => {
    const View = VIEWS[spec.quantization?.dtype ?? spec.dtype];
    const size = spec.shape.reduce((a, b) => a * b, 1);
    let bytes = specBytes(spec)!;
    while (chunk < chunks.length && offset === chunks[chunk].byteLength) {
      chunk++;
      offset = 0;
    }
    let values: WeightValues;
    const element = View.BYTES_PER_ELEMENT;
    if (bytes === 0) values = new View(new ArrayBuffer(0), 0, 0);
    else if (offset + bytes <= chunks[chunk].byteLength && offset % element === 0) {
      values = new View(chunks[chunk], offset, size);
      offset += bytes;
    } else {
      const copy = new Uint8Array(bytes);
      for (let filled = 0; bytes > 0;) {
        if (offset === chunks[chunk].byteLength) {
          chunk++;
          offset = 0;
        }
        const take = Math.min(bytes, chunks[chunk].byteLength - offset);
        copy.set(new Uint8Array(chunks[chunk], offset, take), filled);
        filled += take;
        offset += take;
        bytes -= take;
      }
      values = new View(copy.buffer, 0, size);
    }
    const weight: Weight = { name: spec.name, shape: [...spec.shape], dtype: spec.dtype as WeightDtype, values };
    // The manifest entry as read (scale/min and any key tfjs adds), so it is written back as is.
    if (spec.quantization) weight.quantization = { ...spec.quantization } as WeightQuantization;
    return weight;
  });
}

/** The manifest entry of a weight: its name, shape, dtype and stored encoding. */
export function specOfWeight(weight: Weight): io.WeightsManifestEntry {
  const spec: io.WeightsManifestEntry = { name: weight.name, shape: weight.shape, dtype: weight.dtype };
  if (weight.quantization) spec.quantization = { ...weight.quantization };
  return spec;
}

/** Each weight's bytes, as views (no copy), in manifest order. */
export function weightChunksOfIR(ir: ModelIR): Uint8Array[] {
  return ir.weights.map((weight) => new Uint8Array(weight.values.buffer, weight.values.byteOffset, weight.values.byteLength));
}

/** The artifacts of `ir` without weight bytes (see weightChunksOfIR for those). */
export function artifactsMetaOfIR(ir: ModelIR): io.ModelArtifacts {
  return {
    ...(ir.artifactExtra as Partial<io.ModelArtifacts>),
    modelTopology: { ...graphToJson(ir.graph), ...ir.topologyExtra },
    weightSpecs: ir.weights.map(specOfWeight),
  };
}

/** The artifacts of `ir` with its weights in one buffer, as tfjs's savers produce them. */
export function artifactsFromIR(ir: ModelIR): io.ModelArtifacts {
  const chunks = weightChunksOfIR(ir);
  const data = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    data.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { ...artifactsMetaOfIR(ir), weightData: data.buffer };
}
