/** Everything a model can be given as: a model.json path (or its folder), a model, or artifacts. */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { InputError } from '../errors';
import { isKnownLayerClass } from '../graph/shapes';
import { Graph, ModelIR } from '../graph/types';
import { artifactsOfModel, readModelFiles } from './files';
import { irFromArtifacts } from './ir';

export type ModelSource = string | tf.LayersModel | io.ModelArtifacts;

export function modelJsonPath(location: string): string {
  return fs.existsSync(location) && fs.statSync(location).isDirectory() ? path.join(location, 'model.json') : location;
}

export async function artifactsOf(source: ModelSource): Promise<io.ModelArtifacts> {
  if (typeof source === 'string') return readModelFiles(modelJsonPath(source));
  if (source instanceof tf.LayersModel) return artifactsOfModel(source);
  if (source && typeof source === 'object' && 'modelTopology' in source) return source;
  throw new InputError('expected a model.json path, a tf.LayersModel or ModelArtifacts');
}

/** Reads and checks a model: structure, references, known layer classes, finite weights. */
export function checkedIR(artifacts: io.ModelArtifacts): ModelIR {
  const ir = irFromArtifacts(artifacts);
  checkLayerClasses(ir.graph, ir.graph.name);
  for (const weight of ir.weights) {
    let bad = 0;
    if (weight.dtype === 'float32') for (const value of weight.values) if (!Number.isFinite(value)) bad++;
    if (bad) throw new InputError(`weight "${weight.name}" has ${bad} NaN/Inf value(s)`);
  }
  return ir;
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
