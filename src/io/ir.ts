/**
 * ModelArtifacts <-> ModelIR. Weight bytes are decoded and encoded by tfjs itself
 * (decodeWeights / encodeWeights handle every dtype and quantization); the IR keeps plain typed
 * arrays so passes never touch tensors.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { InputError } from '../errors';
import { graphToJson, parseGraph } from '../graph/json';
import { lintGraph } from '../graph/lint';
import { JsonObject, ModelIR, Weight, WeightDtype, WeightValues } from '../graph/types';
import { checkWeightSpecs, groupBytes } from '../validate/manifest';

const PASSED_THROUGH = ['format', 'generatedBy', 'convertedBy', 'trainingConfig', 'userDefinedMetadata', 'signature'] as const;

export function irFromArtifacts(artifacts: io.ModelArtifacts): ModelIR {
  let topology = artifacts.modelTopology as JsonObject | ArrayBuffer | undefined;
  if (topology == null || topology instanceof ArrayBuffer) {
    throw new InputError('modelTopology is missing or binary; only JSON layers-model topologies are supported');
  }
  // Keras .h5 exports wrap the topology in model_config.
  if (topology.model_config != null && typeof topology.model_config === 'object') {
    topology = topology.model_config as JsonObject;
  }
  const graph = parseGraph(topology);
  lintGraph(graph);
  const { class_name: _c, config: _cfg, ...topologyExtra } = topology;

  const notes: string[] = [];
  // In-memory artifacts reach here unchecked; files were checked with key paths already.
  const specs = checkWeightSpecs(artifacts.weightSpecs ?? [], 'weightSpecs');
  const quantized = specs.filter((spec) => spec.quantization);
  if (quantized.length) {
    notes.push(`${quantized.length} quantized weight(s) (${quantized[0].quantization!.dtype}) are written back as float32`);
  }
  const artifactExtra: JsonObject = {};
  for (const key of PASSED_THROUGH) {
    if (artifacts[key] != null) artifactExtra[key] = artifacts[key] as unknown as JsonObject;
  }
  return { graph, topologyExtra: topologyExtra as JsonObject, weights: decode(artifacts, specs), artifactExtra, notes };
}

function decode(artifacts: io.ModelArtifacts, specs: io.WeightsManifestEntry[]): Weight[] {
  if (specs.length === 0) return [];
  if (artifacts.weightData === undefined) throw new InputError('the manifest lists weights but no weight data was found');
  const data = artifacts.weightData;
  const actual = Array.isArray(data) ? data.reduce((sum, part) => sum + part.byteLength, 0) : data.byteLength;
  const expected = groupBytes(specs);
  if (expected !== actual) {
    throw new InputError(`weight data holds ${actual} bytes, but the ${specs.length} weight specs need ${expected}`);
  }
  let tensors: tf.NamedTensorMap;
  try {
    tensors = tf.io.decodeWeights(artifacts.weightData, specs);
  } catch (error) {
    throw new InputError(`weights cannot be decoded: ${(error as Error).message}`);
  }
  try {
    return specs.map((spec) => {
      const tensor = tensors[spec.name];
      return {
        name: spec.name,
        shape: [...tensor.shape],
        dtype: tensor.dtype as WeightDtype,
        values: tensor.dataSync() as WeightValues,
      };
    });
  } finally {
    tf.dispose(Object.values(tensors));
  }
}

export async function artifactsFromIR(ir: ModelIR): Promise<io.ModelArtifacts> {
  const tensors = ir.weights.map((weight) => ({
    name: weight.name,
    tensor: tf.tensor(weight.values, weight.shape, weight.dtype),
  }));
  try {
    const { data, specs } = await tf.io.encodeWeights(tensors);
    return {
      ...(ir.artifactExtra as Partial<io.ModelArtifacts>),
      modelTopology: { ...graphToJson(ir.graph), ...ir.topologyExtra },
      weightSpecs: specs,
      weightData: data,
    };
  } finally {
    tf.dispose(tensors.map((named) => named.tensor));
  }
}
