/** Everything a model can be given as: a model.json path (or its folder), a model, or artifacts. */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { InputError } from '../errors';
import { inferShapes, isKnownLayerClass } from '../layers/shapes';
import { Graph, ModelIR, Weight } from '../layers/types';
import { artifactsOfModel, readModelFiles } from './files';
import { irFromArtifacts, loadableArtifacts } from './ir';
import { checkLayerConfigs } from '../validate/config';
import type { ReadOptions } from '../layers/json';
import { Keras3Error } from '../layers/keras3-errors';
import { checkWeightsAgainstLayers } from '../validate/weights';

export type ModelSource = string | tf.LayersModel | io.ModelArtifacts;

export function modelJsonPath(location: string): string {
  return fs.existsSync(location) && fs.statSync(location).isDirectory() ? path.join(location, 'model.json') : location;
}

/** A tf.LayersModel of this or another tfjs copy (duck-typed: `instanceof` fails across copies). */
export function isLayersModelObject(source: unknown): source is tf.LayersModel {
  const model = source as tf.LayersModel;
  return source instanceof tf.LayersModel ||
    (typeof model?.save === 'function' && typeof model.predict === 'function' && Array.isArray(model.layers) && typeof model.getConfig === 'function');
}

export async function artifactsOf(source: ModelSource): Promise<io.ModelArtifacts> {
  if (typeof source === 'string') return readModelFiles(modelJsonPath(source));
  if (isLayersModelObject(source)) return artifactsOfModel(source);
  if (source && typeof source === 'object' && 'modelTopology' in source) return source;
  throw new InputError('expected a model.json path, a tf.LayersModel or tf.GraphModel, or ModelArtifacts');
}

/**
 * Reads and checks a model: structure, references, known layer classes, weights against the
 * layers that use them, finite weights. Everything tfjs would hang or fail obscurely on.
 */
export function checkedIR(artifacts: io.ModelArtifacts, options: ReadOptions = {}): ModelIR {
  const ir = irFromArtifacts(artifacts, options);
  checkLayerClasses(ir.graph, ir.graph.name);
  checkLayerConfigs(ir.graph);
  checkWeightsAgainstLayers(ir.graph, inferShapes(ir.graph), ir.weights);
  for (const weight of ir.weights) {
    const { bad, first } = nonFinite(weight);
    // NaN would make verification fail (or pass, where both sides propagate it) for the wrong reason.
    if (bad) throw new InputError(`weight "${weight.name}" has ${bad} NaN/Inf value(s) (first at flat index ${first})`);
  }
  return ir;
}

/** How many stored values of a float weight are NaN or +-Inf, and the first one's index. */
function nonFinite(weight: Weight): { bad: number; first: number } {
  let bad = 0;
  let first = -1;
  const values = weight.values;
  // Affine uint8/uint16 are finite by construction (scale and min were checked finite).
  if (weight.dtype !== 'float32' || (weight.quantization && weight.quantization.dtype !== 'float16')) return { bad, first };
  if (weight.quantization) {
    for (let i = 0; i < values.length; i++) {
      // float16 bits: an all-ones exponent is NaN or +-Inf.
      if ((values[i] & 0x7c00) === 0x7c00 && bad++ === 0) first = i;
    }
    return { bad, first };
  }
  for (let i = 0; i < values.length; i++) {
    // v - v is NaN exactly for NaN and +-Inf; cheaper than Number.isFinite on 100M values.
    if (values[i] - values[i] !== 0 && bad++ === 0) first = i;
  }
  return { bad, first };
}

/** Artifacts and checked IR of a source; errors about a file name it first. */
export async function loadChecked(source: ModelSource): Promise<{ artifacts: io.ModelArtifacts; ir: ModelIR }> {
  const artifacts = await artifactsOf(source);
  try {
    const ir = await checkedOrAsStockLoads(artifacts);
    // A Keras 3 file is compared as tfjs would load it: its Keras 2 form, same weight bytes.
    return { artifacts: loadableArtifacts(artifacts, ir), ir };
  } catch (error) {
    const file = typeof source === 'string' ? modelJsonPath(source) : undefined;
    if (file && error instanceof InputError && !error.message.startsWith(file)) error.message = `${file}: ${error.message}`;
    throw error;
  }
}

/**
 * The checked IR; when the Keras 3 conversion refuses a file that stock tfjs loads as it is (a
 * half-converted file whose Keras 3 fields tfjs happens to tolerate), the file unconverted, with
 * a note: tfjs-rewrite never refuses what stock tfjs loads. Stock tfjs is only asked after our
 * own checks passed on the unconverted file (it hangs on dangling references, tfjs #7271).
 */
export const NOT_CONVERTED = 'not converted from Keras 3';

async function checkedOrAsStockLoads(artifacts: io.ModelArtifacts): Promise<ModelIR> {
  try {
    return checkedIR(artifacts);
  } catch (error) {
    if (!(error instanceof Keras3Error)) throw error;
    let ir: ModelIR;
    try {
      ir = checkedIR(artifacts, { keras3: false });
    } catch {
      throw error;
    }
    if (!(await stockBuilds(artifacts.modelTopology))) throw error;
    ir.notes.push(`${NOT_CONVERTED} (${error.message}), but stock tfjs loads the file as it is: read unconverted`);
    return ir;
  }
}

/** Whether stock tfjs builds the topology (weights initialized, then freed: nothing is left behind). */
async function stockBuilds(topology: unknown): Promise<boolean> {
  const known = new Set(Object.keys(tf.engine().state.registeredVariables));
  tf.engine().startScope();
  try {
    const model = await tf.models.modelFromJSON({ modelTopology: topology } as io.ModelJSON);
    model.dispose();
    return true;
  } catch {
    return false;
  } finally {
    tf.engine().endScope();
    for (const [name, variable] of Object.entries(tf.engine().state.registeredVariables)) if (!known.has(name)) variable.dispose();
  }
}

function checkLayerClasses(graph: Graph, where: string): void {
  for (const layer of graph.layers) {
    if (layer.graph) checkLayerClasses(layer.graph, `${where}/${layer.name}`);
    else if (!isKnownLayerClass(layer.className)) {
      throw new InputError(`${where}/${layer.name}: unknown layer class "${layer.className}" ` +
        '(custom layers must be registered with tf.serialization.registerClass first)');
    }
  }
}
