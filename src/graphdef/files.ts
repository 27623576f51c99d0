/** Graph models on disk: the layers reader's path, shard and size checks, then the graph IR's. */
import type { io } from '@tensorflow/tfjs';
import { InputError } from '../errors';
import { readJson, readWeightsFor } from '../io/files';
import { modelJsonPath } from '../io/source';
import { isGraphModelJson } from './ir';

/** Reads model.json and its shards into ModelArtifacts, refusing anything but a graph model. */
export async function readGraphModelFiles(modelJsonPath: string): Promise<io.ModelArtifacts> {
  const modelJson = readJson(modelJsonPath);
  if (!isGraphModelJson(modelJson)) {
    throw new InputError(`${modelJsonPath}: format ${JSON.stringify(modelJson.format ?? null)} is not "graph-model" and modelTopology has no "node" list`);
  }
  return readWeightsFor(modelJsonPath, modelJson);
}

/**
 * true when the model.json at `location` (or in that folder) holds a GraphDef: the CLI's format
 * dispatch. Unreadable or invalid JSON throws the reader's InputError.
 */
export function isGraphModelFile(location: string): boolean {
  return isGraphModelJson(readJson(modelJsonPath(location)));
}
