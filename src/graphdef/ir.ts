/**
 * ModelArtifacts of a graph model (format "graph-model") <-> a small GraphDef IR. Nodes keep
 * their JSON attrs; weights keep their manifest spec and raw bytes, so untouched weights (int8
 * or float16 quantized, strings) are written back byte for byte, and only the weights a pass
 * reads are decoded. Validation happens here, before anything reaches tfjs.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { InputError } from '../errors';
import { BYTES_PER_ELEMENT } from '../io/files';
import { describeEncodings } from '../io/ir';
import { transposeValues } from '../io/transpose';
import type { Attrs } from './attrs';

export interface GraphNode {
  name: string;
  op: string;
  /** "node", "node:1" or "^node" (control dependency). */
  input: string[];
  attr: Attrs;
  /** Keys we do not interpret (device, experimentalDebugInfo...), kept for round trips. */
  extra: Record<string, unknown>;
}

export interface GraphWeight {
  spec: io.WeightsManifestEntry;
  bytes: Uint8Array;
}

export interface GraphModelIR {
  nodes: GraphNode[];
  /** modelTopology keys besides `node` (library, versions). */
  topologyExtra: Record<string, unknown>;
  weights: GraphWeight[];
  /** format, signature, userDefinedMetadata, modelInitializer...: passed through. */
  artifactExtra: Partial<io.ModelArtifacts>;
  notes: string[];
  /** Shapes learned by one execution of the model (learned-shapes.ts), and why some were not. */
  learnedShapes?: LearnedShapes;
}

export interface LearnedShapes {
  /** By tensor name ("node", "node:1"); a dynamic batch stays null. */
  shapes: Map<string, (number | null)[]>;
  /** Why the tensors asked for were not all learned (the run failed, or could not be made). */
  failure?: string;
}

export interface TensorName {
  node: string;
  index: number;
  control: boolean;
}

export function parseTensorName(name: string): TensorName {
  const control = name.startsWith('^');
  const body = control ? name.slice(1) : name;
  const match = /^(.*):(\d+)$/.exec(body);
  return match ? { node: match[1], index: Number(match[2]), control } : { node: body, index: 0, control };
}

const PASSED_THROUGH = ['format', 'generatedBy', 'convertedBy', 'userDefinedMetadata', 'signature',
  'modelInitializer', 'initializerSignature'] as const;

/** TF v1 loops feed NextIteration back into Merge: the only legal cycle in a GraphDef. */
const BACK_EDGE_OPS = new Set(['NextIteration', 'RefNextIteration']);

export function isGraphModelJson(modelJson: unknown): boolean {
  if (typeof modelJson !== 'object' || modelJson === null) return false;
  const json = modelJson as { format?: unknown; modelTopology?: { node?: unknown } };
  // Old converters did not write `format`; a GraphDef topology has a `node` array, Keras never does.
  return json.format === 'graph-model' || Array.isArray(json.modelTopology?.node);
}

function parseNode(raw: unknown, i: number): GraphNode {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InputError(`modelTopology.node[${i}] is not an object`);
  const { name, op, input, attr, ...extra } = raw as Record<string, unknown>;
  if (typeof name !== 'string' || name.length === 0) throw new InputError(`modelTopology.node[${i}] has no name`);
  if (typeof op !== 'string' || op.length === 0) throw new InputError(`node "${name}" has no op`);
  if (input !== undefined && !(Array.isArray(input) && input.every((x) => typeof x === 'string'))) {
    throw new InputError(`node "${name}": input must be a list of tensor names, got ${JSON.stringify(input)}`);
  }
  if (attr !== undefined && (typeof attr !== 'object' || attr === null || Array.isArray(attr))) {
    throw new InputError(`node "${name}": attr must be an object`);
  }
  return { name, op, input: [...((input as string[]) ?? [])], attr: (attr as Attrs) ?? {}, extra };
}

/** Bytes one manifest entry occupies in the weight data (strings are length-prefixed). */
function specByteLength(spec: io.WeightsManifestEntry, data: Uint8Array, offset: number): number {
  const size = spec.shape.reduce((a, b) => a * b, 1);
  if (spec.dtype === 'string') {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    let at = offset;
    for (let i = 0; i < size; i++) {
      if (at + 4 > data.byteLength) return Infinity;
      at += 4 + view.getUint32(at, true);
    }
    return at - offset;
  }
  const dtype = spec.quantization?.dtype ?? spec.dtype;
  const bytes = BYTES_PER_ELEMENT[dtype];
  if (bytes === undefined) throw new InputError(`weight "${spec.name}" has unsupported dtype ${dtype}`);
  return size * bytes;
}

function splitWeights(artifacts: io.ModelArtifacts): GraphWeight[] {
  const specs = artifacts.weightSpecs ?? [];
  if (specs.length === 0) return [];
  const raw = artifacts.weightData;
  if (raw === undefined) throw new InputError('the manifest lists weights but no weight data was found');
  const data = new Uint8Array(tf.io.concatenateArrayBuffers(Array.isArray(raw) ? raw : [raw]));
  const seen = new Set<string>();
  let offset = 0;
  const weights = specs.map((spec) => {
    if (seen.has(spec.name)) throw new InputError(`weight "${spec.name}" appears twice in the manifest`);
    seen.add(spec.name);
    const length = specByteLength(spec, data, offset);
    if (offset + length > data.byteLength) {
      throw new InputError(`weight "${spec.name}" ends at byte ${offset + length} but the weight data holds ${data.byteLength}`);
    }
    const weight = { spec, bytes: data.slice(offset, offset + length) };
    offset += length;
    return weight;
  });
  if (offset !== data.byteLength) throw new InputError(`the weight data holds ${data.byteLength} bytes but the manifest needs ${offset}`);
  return weights;
}

export function graphIRFromArtifacts(artifacts: io.ModelArtifacts): GraphModelIR {
  const topology = artifacts.modelTopology as Record<string, unknown> | ArrayBuffer | undefined;
  if (topology == null || topology instanceof ArrayBuffer || !Array.isArray(topology.node)) {
    throw new InputError('modelTopology has no "node" list (is this a graph-model model.json?)');
  }
  const { node: rawNodes, ...topologyExtra } = topology;
  const nodes = (rawNodes as unknown[]).map(parseNode);
  const weights = splitWeights(artifacts);
  const artifactExtra: Partial<io.ModelArtifacts> = {};
  for (const key of PASSED_THROUGH) {
    if (artifacts[key] != null) (artifactExtra as Record<string, unknown>)[key] = artifacts[key];
  }
  const ir: GraphModelIR = { nodes, topologyExtra, weights, artifactExtra: { format: 'graph-model', ...artifactExtra }, notes: [] };
  lintGraphModel(ir, { input: true });

  for (const { spec, bytes } of weights) {
    if (spec.dtype !== 'float32' || spec.quantization) continue;
    const values = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    let bad = 0;
    for (const value of values) if (!Number.isFinite(value)) bad++;
    if (bad) throw new InputError(`weight "${spec.name}" has ${bad} NaN/Inf value(s)`);
  }
  const quantized = weights.filter((w) => w.spec.quantization).map((w) => w.spec);
  if (quantized.length) ir.notes.push(`${describeEncodings(quantized)}: kept in their encoding`);
  const functions = (topologyExtra.library as { function?: unknown[] } | undefined)?.function;
  if (Array.isArray(functions) && functions.length) {
    ir.notes.push(`${functions.length} function(s) in modelTopology.library (control flow bodies) are passed through untouched`);
  }
  return ir;
}

/**
 * Structural checks, after reading (`input: true`: errors are the input's fault) and after every
 * rewrite (errors are ours): unique names, no dangling input, no cycle but loop back edges, a
 * manifest weight for every Const, no weight without a Const unless the input had it so.
 */
export function lintGraphModel(ir: GraphModelIR, options: { input?: boolean; where?: string } = {}): void {
  const fail = (message: string) => {
    const text = options.where ? `${options.where}: ${message}` : message;
    throw options.input ? new InputError(text) : new Error(text);
  };
  const byName = new Map<string, GraphNode>();
  for (const node of ir.nodes) {
    if (byName.has(node.name)) fail(`two nodes are named "${node.name}"; rename one`);
    byName.set(node.name, node);
  }
  const weightNames = new Set(ir.weights.map((w) => w.spec.name));
  for (const node of ir.nodes) {
    for (const input of node.input) {
      const ref = parseTensorName(input);
      if (!byName.has(ref.node)) fail(`node "${node.name}" reads "${input}", but no node "${ref.node}" exists`);
    }
    if (node.op === 'Const' && !weightNames.has(node.name)) fail(`Const node "${node.name}" has no weight of that name in the manifest`);
  }

  // Kahn's algorithm with a progress check: a node left unvisited sits on a cycle.
  const pending = new Map<string, number>();
  const users = new Map<string, string[]>();
  for (const node of ir.nodes) {
    const deps = BACK_EDGE_OPS.has(node.op) ? [] : node.input.map((i) => parseTensorName(i).node);
    pending.set(node.name, deps.length);
    for (const dep of deps) users.set(dep, [...(users.get(dep) ?? []), node.name]);
  }
  const ready = ir.nodes.filter((n) => pending.get(n.name) === 0).map((n) => n.name);
  let visited = 0;
  while (ready.length) {
    const name = ready.pop()!;
    visited++;
    for (const user of users.get(name) ?? []) {
      const left = pending.get(user)! - 1;
      pending.set(user, left);
      if (left === 0) ready.push(user);
    }
  }
  if (visited !== ir.nodes.length) {
    const stuck = ir.nodes.filter((n) => pending.get(n.name)! > 0).slice(0, 3).map((n) => `"${n.name}"`);
    fail(`the graph has a cycle through ${stuck.join(', ')} (only NextIteration may feed back)`);
  }
}

export function artifactsFromGraphIR(ir: GraphModelIR): io.ModelArtifacts {
  const node = ir.nodes.map((n) => ({
    name: n.name,
    op: n.op,
    ...(n.input.length ? { input: n.input } : {}),
    ...n.extra,
    attr: n.attr,
  }));
  const total = ir.weights.reduce((sum, w) => sum + w.bytes.byteLength, 0);
  const data = new Uint8Array(total);
  let offset = 0;
  for (const { bytes } of ir.weights) {
    data.set(bytes, offset);
    offset += bytes.byteLength;
  }
  return {
    ...ir.artifactExtra,
    modelTopology: { node, ...ir.topologyExtra },
    weightSpecs: ir.weights.map((w) => w.spec),
    weightData: data.buffer,
  };
}

/** Decodes one weight to float32 values (dequantizing if needed) without leaking tensors. */
export function decodeFloatWeight(weight: GraphWeight): Float32Array {
  // Plain float32 needs no tfjs: inspect then creates no tensor at all.
  if (weight.spec.dtype === 'float32' && !weight.spec.quantization) return new Float32Array(weight.bytes.slice().buffer);
  const map = tf.io.decodeWeights(weight.bytes.slice().buffer, [weight.spec]);
  try {
    return map[weight.spec.name].dataSync() as Float32Array;
  } finally {
    tf.dispose(Object.values(map));
  }
}

const ELEMENTS: Record<string, new (buffer: ArrayBuffer, offset: number, length: number) => Float32Array | Int32Array | Uint8Array | Uint16Array> = {
  float32: Float32Array, int32: Int32Array, bool: Uint8Array, uint8: Uint8Array, uint16: Uint16Array, float16: Uint16Array,
};

/**
 * `weight` (read as shape `from`) transposed by `perm` in its stored encoding, as a new weight `name` of `shape`: the
 * same elements reordered, so a uint8/uint16/float16-quantized weight keeps its manifest entry
 * (per-tensor scale/min commute with any reordering): exact, same size, nothing decoded.
 */
export function transposedWeight(weight: GraphWeight, name: string, shape: number[], perm: number[], from = weight.spec.shape): GraphWeight {
  const stored = weight.spec.quantization?.dtype ?? weight.spec.dtype;
  const View = ELEMENTS[stored];
  if (!View) throw new Error(`internal: cannot reorder a ${stored} weight`);
  const size = weight.spec.shape.reduce((a, b) => a * b, 1);
  // A private copy of the bytes: views need alignment, and the result must not alias the input.
  const elements = new View(weight.bytes.slice().buffer, 0, size);
  const out = transposeValues(elements, from, perm);
  const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  return { spec: { ...weight.spec, name, shape }, bytes };
}

export function float32Weight(name: string, shape: number[], values: Float32Array): GraphWeight {
  return { spec: { name, shape, dtype: 'float32' }, bytes: new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)) };
}

export function int32Weight(name: string, values: number[]): GraphWeight {
  return { spec: { name, shape: [values.length], dtype: 'int32' }, bytes: new Uint8Array(Int32Array.from(values).buffer) };
}
