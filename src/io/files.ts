/**
 * model.json + weight shards on disk, with no tfjs-node: files are read with fs and combined
 * with tfjs's own helpers (getModelArtifactsForJSON, getWeightSpecs). Writes are atomic: a
 * temp directory beside the target, renamed into place only when complete.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { InputError } from '../errors';

type ModelArtifacts = io.ModelArtifacts;
type WeightsManifestConfig = io.WeightsManifestConfig;

/** Default shard size of tensorflowjs_converter: small enough for HTTP caches. */
export const SHARD_BYTES = 4 * 1024 * 1024;

const BYTES_PER_ELEMENT: Record<string, number> = {
  float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, int8: 1, int16: 2, complex64: 8,
};

function readJson(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new InputError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new InputError(`${file} is not valid JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InputError(`${file}: expected a JSON object at the top level`);
  }
  return parsed as Record<string, unknown>;
}

/** A weight path from the manifest, resolved inside the model's folder or refused. */
export function resolveWeightPath(modelDir: string, weightPath: unknown, where: string): string {
  if (typeof weightPath !== 'string' || weightPath.length === 0) {
    throw new InputError(`${where}: expected a relative file name, got ${JSON.stringify(weightPath)}`);
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(weightPath) || path.isAbsolute(weightPath) || weightPath.startsWith('\\')) {
    throw new InputError(`${where}: "${weightPath}" must be a path relative to the model folder`);
  }
  const dirReal = fs.realpathSync(modelDir);
  const resolved = path.resolve(dirReal, decodeURIComponent(weightPath));
  const inside = (candidate: string) => candidate === dirReal || candidate.startsWith(dirReal + path.sep);
  if (!inside(resolved)) throw new InputError(`${where}: "${weightPath}" points outside the model folder`);
  if (fs.existsSync(resolved) && !inside(fs.realpathSync(resolved))) {
    throw new InputError(`${where}: "${weightPath}" is a link to a file outside the model folder`);
  }
  return resolved;
}

function expectedGroupBytes(group: WeightsManifestConfig[number]): number | undefined {
  let total = 0;
  for (const spec of group.weights) {
    const dtype = spec.quantization?.dtype ?? spec.dtype;
    const size = BYTES_PER_ELEMENT[dtype];
    if (size === undefined) return undefined; // strings are variable-length
    total += spec.shape.reduce((a, b) => a * b, 1) * size;
  }
  return total;
}

/** Reads model.json and its shards into ModelArtifacts; the files are only read. */
export async function readModelFiles(modelJsonPath: string): Promise<ModelArtifacts> {
  const modelJson = readJson(modelJsonPath);
  if (modelJson.modelTopology == null) {
    throw new InputError(`${modelJsonPath}: no "modelTopology" (is this a tfjs layers model.json?)`);
  }
  if (modelJson.format === 'graph-model') {
    throw new InputError(`${modelJsonPath}: graph models are not supported yet, only layers models`);
  }
  const modelDir = path.dirname(path.resolve(modelJsonPath));
  const manifest = modelJson.weightsManifest ?? [];
  if (!Array.isArray(manifest)) throw new InputError(`${modelJsonPath}: weightsManifest must be an array`);
  manifest.forEach((group, g) => {
    if (typeof group !== 'object' || group === null || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw new InputError(`${modelJsonPath}: weightsManifest[${g}] must have "paths" and "weights" arrays`);
    }
  });

  const loadWeights = async (groups: WeightsManifestConfig): Promise<[io.WeightsManifestEntry[], ArrayBuffer]> => {
    const buffers: ArrayBuffer[] = [];
    groups.forEach((group, g) => {
      const files = group.paths.map((p, i) =>
        resolveWeightPath(modelDir, p, `weightsManifest[${g}].paths[${i}]`));
      let actual = 0;
      for (const file of files) {
        let bytes: Buffer;
        try {
          bytes = fs.readFileSync(file);
        } catch (error) {
          throw new InputError(`weight file ${path.relative(process.cwd(), file) || file} cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
        }
        actual += bytes.byteLength;
        buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
      }
      const expected = expectedGroupBytes(group);
      if (expected !== undefined && expected !== actual) {
        throw new InputError(
          `weight group ${g} (${group.paths.join(', ')}) holds ${actual} bytes but its ${group.weights.length} ` +
          `weights need ${expected} (${actual < expected ? 'truncated' : 'oversized'} shard?)`,
        );
      }
    });
    return [tf.io.getWeightSpecs(groups), tf.io.concatenateArrayBuffers(buffers)];
  };
  return tf.io.getModelArtifactsForJSON(modelJson as unknown as io.ModelJSON, loadWeights);
}

/** Serializes an in-memory model through tfjs's own save path. */
export async function artifactsOfModel(model: tf.LayersModel): Promise<ModelArtifacts> {
  let captured: ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    captured = artifacts;
    return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
  }));
  return captured!;
}

function weightBytes(artifacts: ModelArtifacts): Uint8Array {
  const data = artifacts.weightData;
  if (data === undefined) return new Uint8Array(0);
  return new Uint8Array(Array.isArray(data) ? tf.io.concatenateArrayBuffers(data) : data);
}

/** The model.json object for artifacts whose weights sit in `paths`. */
function modelJsonFor(artifacts: ModelArtifacts, paths: string[]): Record<string, unknown> {
  const json: Record<string, unknown> = {
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy,
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths, weights: artifacts.weightSpecs ?? [] }],
  };
  if (artifacts.trainingConfig != null) json.trainingConfig = artifacts.trainingConfig;
  if (artifacts.userDefinedMetadata != null) json.userDefinedMetadata = artifacts.userDefinedMetadata;
  if (artifacts.signature != null) json.signature = artifacts.signature;
  return json;
}

/**
 * Writes model.json + group1-shardXofN.bin into `outDir`, atomically: all files go to a temp
 * directory next to it that is renamed into place at the end, and removed on any failure.
 */
export function writeModelFiles(artifacts: ModelArtifacts, outDir: string, options: { force?: boolean } = {}): string {
  const target = path.resolve(outDir);
  if (fs.existsSync(target)) {
    if (!options.force) throw new InputError(`${outDir} already exists (pass --force to replace it)`);
    if (!fs.statSync(target).isDirectory()) throw new InputError(`${outDir} exists and is not a directory`);
  }
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const temp = fs.mkdtempSync(`${target}.tmp-`);
  try {
    const bytes = weightBytes(artifacts);
    const shardCount = Math.max(1, Math.ceil(bytes.byteLength / SHARD_BYTES));
    const paths: string[] = [];
    for (let i = 0; i < shardCount; i++) {
      const name = `group1-shard${i + 1}of${shardCount}.bin`;
      fs.writeFileSync(path.join(temp, name), bytes.subarray(i * SHARD_BYTES, (i + 1) * SHARD_BYTES));
      paths.push(name);
    }
    fs.writeFileSync(path.join(temp, 'model.json'), JSON.stringify(modelJsonFor(artifacts, paths)));
    if (fs.existsSync(target)) {
      const old = `${temp}-old`;
      fs.renameSync(target, old);
      fs.renameSync(temp, target);
      fs.rmSync(old, { recursive: true, force: true });
    } else {
      fs.renameSync(temp, target);
    }
  } catch (error) {
    fs.rmSync(temp, { recursive: true, force: true });
    throw error;
  }
  return path.join(target, 'model.json');
}
