/**
 * model.json + weight shards on disk, with no tfjs-node: files are read with fs and combined
 * with tfjs's own helpers (getModelArtifactsForJSON, getWeightSpecs). Writes are atomic: a
 * temp directory beside the target, renamed into place only when complete.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { InputError } from '../errors';
import { describeValue, isObject } from '../validate/describe';
import { ANY_DTYPES, LAYERS_DTYPES, checkManifest, groupBytes, specBytes } from '../validate/manifest';

type ModelArtifacts = io.ModelArtifacts;

/** Default shard size of tensorflowjs_converter: small enough for HTTP caches. */
export const SHARD_BYTES = 4 * 1024 * 1024;

export const BYTES_PER_ELEMENT: Record<string, number> = {
  float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, int8: 1, int16: 2, complex64: 8,
};

/** A model.json this large is not a topology but an attempt on memory. */
const MAX_MODEL_JSON_BYTES = 256 * 1024 * 1024;

const errorCode = (error: unknown) => (error as NodeJS.ErrnoException).code ?? (error as Error).message;

/** Size of `file`, refusing what is not a regular file: reading a FIFO or device would block or never end. */
function regularFileSize(file: string, label: string): number {
  let stats: fs.Stats;
  try {
    stats = fs.statSync(file);
  } catch (error) {
    throw new InputError(`${label} cannot be read (${errorCode(error)})`);
  }
  if (!stats.isFile()) throw new InputError(`${label} is not a regular file`);
  return stats.size;
}

export function readJson(file: string): Record<string, unknown> {
  const size = regularFileSize(file, file);
  if (size > MAX_MODEL_JSON_BYTES) throw new InputError(`${file} is ${size} bytes; a model.json over ${MAX_MODEL_JSON_BYTES} bytes is refused`);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new InputError(`cannot read ${file}: ${errorCode(error)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new InputError(`${file} is not valid JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InputError(`${file}: expected a JSON object at the top level, got ${describeValue(parsed)}`);
  }
  return parsed as Record<string, unknown>;
}

/** A weight path from the manifest, resolved inside the model's folder or refused. */
export function resolveWeightPath(modelDir: string, weightPath: unknown, where: string): string {
  if (typeof weightPath !== 'string' || weightPath.length === 0 || weightPath.includes('\0')) {
    throw new InputError(`${where}: expected a relative file name, got ${describeValue(weightPath)}`);
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(weightPath) || path.isAbsolute(weightPath) || weightPath.startsWith('\\')) {
    throw new InputError(`${where}: "${weightPath}" must be a path relative to the model folder`);
  }
  let decoded: string;
  try {
    decoded = decodeURIComponent(weightPath);
  } catch {
    throw new InputError(`${where}: "${weightPath}" is not a valid URL-encoded file name`);
  }
  // Decoding may reveal an absolute path ("%2Fetc%2Fpasswd") or a NUL; check the result again.
  if (decoded.includes('\0') || path.isAbsolute(decoded)) {
    throw new InputError(`${where}: "${weightPath}" must be a path relative to the model folder`);
  }
  const dirReal = fs.realpathSync(modelDir);
  const resolved = path.resolve(dirReal, decoded);
  const inside = (candidate: string) => candidate.startsWith(dirReal + path.sep);
  if (!inside(resolved)) throw new InputError(`${where}: "${weightPath}" points outside the model folder`);
  if (fs.existsSync(resolved) && !inside(fs.realpathSync(resolved))) {
    throw new InputError(`${where}: "${weightPath}" is a link to a file outside the model folder`);
  }
  return resolved;
}

/** Reads model.json and its shards into ModelArtifacts; the files are only read. */
export async function readModelFiles(modelJsonPath: string): Promise<ModelArtifacts> {
  const modelJson = readJson(modelJsonPath);
  if (modelJson.modelTopology == null) {
    throw new InputError(`${modelJsonPath}: no "modelTopology" (is this a tfjs layers model.json?)`);
  }
  if (modelJson.format === 'graph-model') {
    throw new InputError(`${modelJsonPath}: is a graph model; read it with readGraphModelFiles (src/graphdef)`);
  }
  if (!isObject(modelJson.modelTopology)) {
    throw new InputError(`${modelJsonPath}: modelTopology: expected an object, got ${describeValue(modelJson.modelTopology)}`);
  }
  inFile(modelJsonPath, () => checkManifest(modelJson.weightsManifest, LAYERS_DTYPES));
  return readWeightsFor(modelJsonPath, modelJson);
}

/** Runs `check`, prefixing its InputError with the file it is about. */
function inFile<T>(file: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof InputError) error.message = `${file}: ${error.message}`;
    throw error;
  }
}

/**
 * Artifacts for an already parsed model.json of any format: the manifest's shard paths are
 * checked to stay inside the model folder, read, and checked against the sizes the specs need.
 */
export async function readWeightsFor(modelJsonPath: string, modelJson: Record<string, unknown>): Promise<ModelArtifacts> {
  const modelDir = path.dirname(path.resolve(modelJsonPath));
  const manifest = inFile(modelJsonPath, () => checkManifest(modelJson.weightsManifest, ANY_DTYPES));
  const shown = (file: string) => path.relative(process.cwd(), file) || file;

  const loadWeights = async (): Promise<[io.WeightsManifestEntry[], ArrayBuffer[]]> => {
    const buffers: ArrayBuffer[] = [];
    manifest.forEach((group, g) => {
      const files = group.paths.map((p, i) => resolveWeightPath(modelDir, p, `weightsManifest[${g}].paths[${i}]`));
      // Sizes first: a truncated or oversized shard is refused before anything is read.
      const sizes = files.map((file) => regularFileSize(file, `weight file ${shown(file)}`));
      const actual = sizes.reduce((a, b) => a + b, 0);
      const expected = groupBytes(group.weights);
      if (expected !== undefined && expected !== actual) {
        const which = files.length === 1 ? `weight file ${shown(files[0])} has` : `weight files ${files.map(shown).join(', ')} have`;
        throw new InputError(
          `${which} ${actual} bytes, expected ${expected} for the ${group.weights.length} weight(s) of ` +
          `weightsManifest[${g}] (${actual < expected ? 'truncated' : 'oversized'})`,
        );
      }
      try {
        // One buffer per weight, filled straight from the shards: no per-shard copies and no
        // concatenation, and the IR can view each weight without copying it again.
        const sizes = expected === undefined ? [actual] : group.weights.map((spec) => specBytes(spec)!);
        buffers.push(...readChunks(files, sizes));
      } catch (error) {
        throw new InputError(`weight files of weightsManifest[${g}] cannot be read (${errorCode(error)})`);
      }
    });
    return [tf.io.getWeightSpecs(manifest), buffers];
  };
  return tf.io.getModelArtifactsForJSON(modelJson as unknown as io.ModelJSON, loadWeights);
}

/** Reads the concatenation of `files` as consecutive buffers of the given byte sizes. */
function readChunks(files: string[], sizes: number[]): ArrayBuffer[] {
  const chunks = sizes.map((size) => new ArrayBuffer(size));
  let chunk = 0;
  let filled = 0;
  for (const file of files) {
    const fd = fs.openSync(file, 'r');
    try {
      for (;;) {
        while (chunk < chunks.length && filled === sizes[chunk]) {
          chunk++;
          filled = 0;
        }
        if (chunk === chunks.length) break;
        const read = fs.readSync(fd, new Uint8Array(chunks[chunk], filled));
        if (read === 0) break;
        filled += read;
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  return chunks;
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

/** The weight bytes as they lie: one view per buffer, never concatenated. */
function weightChunks(artifacts: ModelArtifacts): Uint8Array[] {
  const data = artifacts.weightData;
  if (data === undefined) return [];
  return (Array.isArray(data) ? data : [data]).map((buffer) => new Uint8Array(buffer));
}

/** Writes `chunks` back to back as shards of at most SHARD_BYTES; returns the shard names. */
function writeShards(dir: string, chunks: Uint8Array[]): string[] {
  const total = chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
  const count = Math.max(1, Math.ceil(total / SHARD_BYTES));
  const names = Array.from({ length: count }, (_, i) => `group1-shard${i + 1}of${count}.bin`);
  let shard = -1;
  let fd = -1;
  let room = 0;
  const next = () => {
    if (fd >= 0) fs.closeSync(fd);
    fd = fs.openSync(path.join(dir, names[++shard]), 'w');
    room = SHARD_BYTES;
  };
  try {
    next();
    for (const chunk of chunks) {
      for (let offset = 0; offset < chunk.byteLength;) {
        if (room === 0) next();
        const length = Math.min(room, chunk.byteLength - offset);
        fs.writeSync(fd, chunk, offset, length);
        offset += length;
        room -= length;
      }
    }
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
  return names;
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
  // Graph models with hash tables carry an initializer graph; dropping it breaks their lookups.
  if (artifacts.modelInitializer != null) json.modelInitializer = artifacts.modelInitializer;
  if (artifacts.initializerSignature != null) json.initializerSignature = artifacts.initializerSignature;
  return json;
}

/** Temp dirs being written right now, removed by `removePendingWrites` (the CLI's signal handler). */
const pendingWrites = new Set<string>();

export function removePendingWrites(): void {
  for (const dir of pendingWrites) fs.rmSync(dir, { recursive: true, force: true });
  pendingWrites.clear();
}

export interface WriteOptions {
  force?: boolean;
  /** Model paths (model.json or folder) the output must not replace: --force would delete them. */
  inputs?: string[];
}

/**
 * What in folder `dir` is not a previous tfjs model output (model.json and the shards its
 * manifest lists): --force must never delete someone's project because --out pointed at it.
 */
function strangersIn(dir: string): string[] {
  const entries = fs.readdirSync(dir);
  if (entries.length === 0) return [];
  if (!entries.includes('model.json')) return entries.sort();
  const known = new Set(['model.json']);
  try {
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
    if (json === null || typeof json !== 'object' || !('modelTopology' in json)) return ['a model.json that is not a tfjs model'];
    for (const group of Array.isArray(json.weightsManifest) ? json.weightsManifest : []) {
      for (const p of Array.isArray(group?.paths) ? group.paths : []) if (typeof p === 'string') known.add(decodeURIComponent(p));
    }
  } catch {
    return ['a model.json that is not a tfjs model'];
  }
  return entries.filter((name) => !known.has(name) || !fs.lstatSync(path.join(dir, name)).isFile()).sort();
}

/** Refuses an output folder that exists (unless forced), is not a folder, or holds an input. */
export function checkOutputTarget(outDir: string, options: WriteOptions = {}): void {
  const target = path.resolve(outDir);
  let exists = true;
  try {
    fs.lstatSync(target);
  } catch {
    exists = false;
  }
  if (exists) {
    if (!options.force) throw new InputError(`${outDir} already exists (pass --force to replace it)`);
    let isDir = false;
    try {
      isDir = fs.statSync(target).isDirectory();
    } catch {
      // a dangling link: not a folder
    }
    if (!isDir) throw new InputError(`${outDir} exists and is not a directory; refusing to replace it`);
  }
  const real = exists ? fs.realpathSync(target) : target;
  for (const input of options.inputs ?? []) {
    const resolved = path.resolve(input);
    const dir = fs.existsSync(resolved) && fs.statSync(resolved).isDirectory() ? resolved : path.dirname(resolved);
    const inputDir = fs.existsSync(dir) ? fs.realpathSync(dir) : dir;
    if (inputDir === real || inputDir.startsWith(real + path.sep)) {
      throw new InputError(`--out ${outDir} would replace the folder of the input ${input}; choose another folder`);
    }
  }
  const inTheWay = exists ? strangersIn(target) : [];
  if (inTheWay.length) {
    const shown = inTheWay.length > 3 ? `${inTheWay.slice(0, 3).join(', ')} and ${inTheWay.length - 3} more` : inTheWay.join(', ');
    throw new InputError(`${outDir} holds ${shown}, not part of a tfjs model; --force replaces only an empty folder or an earlier model output (choose another --out)`);
  }
}

/** A new folder `${target}.tmp-<random>` with the umask's mode. */
function makeTempDir(target: string): string {
  for (;;) {
    const dir = `${target}.tmp-${crypto.randomBytes(6).toString('hex')}`;
    try {
      fs.mkdirSync(dir);
      return dir;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}

/**
 * Writes model.json + group1-shardXofN.bin into `outDir`, atomically: all files go to a temp
 * directory next to it that is renamed into place at the end, and removed on any failure.
 */
export function writeModelFiles(
  artifacts: ModelArtifacts, outDir: string, options: WriteOptions = {}, chunks = weightChunks(artifacts),
): string {
  checkOutputTarget(outDir, options);
  const target = path.resolve(outDir);
  let createdParent: string | undefined;
  let temp: string | undefined;
  let old: string | undefined;
  try {
    createdParent = fs.mkdirSync(path.dirname(target), { recursive: true });
    // Not mkdtemp: it makes the folder 0700 whatever the umask, and a web server running as
    // another user could not read the "deployable" model. mkdir applies the umask (755 under 022).
    temp = makeTempDir(target);
    pendingWrites.add(temp);
    const paths = writeShards(temp, chunks);
    fs.writeFileSync(path.join(temp, 'model.json'), JSON.stringify(modelJsonFor(artifacts, paths)));
    if (fs.existsSync(target)) {
      old = `${temp}-old`;
      fs.renameSync(target, old);
    }
    fs.renameSync(temp, target);
    pendingWrites.delete(temp);
    if (old) fs.rmSync(old, { recursive: true, force: true });
  } catch (error) {
    if (temp) {
      fs.rmSync(temp, { recursive: true, force: true });
      pendingWrites.delete(temp);
    }
    // The old output was moved aside but the new one never arrived: put it back.
    if (old && fs.existsSync(old) && !fs.existsSync(target)) fs.renameSync(old, target);
    if (createdParent) fs.rmSync(createdParent, { recursive: true, force: true });
    const code = (error as NodeJS.ErrnoException).code;
    throw code ? new InputError(`cannot write ${outDir} (${code}); nothing was written`) : error;
  }
  return path.join(target, 'model.json');
}
