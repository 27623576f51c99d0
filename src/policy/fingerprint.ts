/**
 * What makes a decisions file "for this model": each candidate's fingerprint, a sha256 over
 * what its speed depends on and what its rewrite produces. Layers: graph path, layer name,
 * pass, class, the full config (geometry, activation, data format), the input shape of every
 * call, and each of the layer's weights (name, shape, dtype, encoding, bytes). Graph models:
 * graph, node name, pass, op, attrs, the shape of each non-constant input, and every Const the
 * node or its bias add reads (spec and bytes). Anything else in the model (other layers, its
 * name, metadata) may change without invalidating the file.
 */
import * as crypto from 'crypto';
import type { Candidate } from '../layers/driver';
import type { GraphDefCandidate } from '../graphdef/driver';
import { parseTensorName } from '../graphdef/ir';
import type { GraphNode } from '../graphdef/ir';
import { ownerOf } from '../rewrite/weights';

/** JSON with object keys sorted at every level: the same value always gives the same text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

const bytesOf = (view: ArrayBufferView) => new Uint8Array(view.buffer, view.byteOffset, view.byteLength);

export function layersCandidateFingerprint(candidate: Candidate): string {
  const { layer, context } = candidate;
  const hash = crypto.createHash('sha256');
  hash.update(canonicalJson({
    graph: candidate.graph, layer: layer.name, pass: candidate.pass.name, className: layer.className,
    config: layer.config, inputs: context.shapes.callInputs.get(layer.name) ?? [],
  }));
  for (const weight of context.ir.weights) {
    if (ownerOf(weight.name) !== layer.name) continue;
    hash.update(canonicalJson({ name: weight.name, shape: weight.shape, dtype: weight.dtype, quantization: weight.quantization }));
    hash.update(bytesOf(weight.values));
  }
  return hash.digest('hex');
}

const BIAS_OPS = new Set(['BiasAdd', 'Add', 'AddV2']);

export function graphCandidateFingerprint(candidate: GraphDefCandidate): string {
  const { layer: node, context } = candidate;
  const hash = crypto.createHash('sha256');
  /** The Const behind `tensor` (through Identity chains), if any. */
  const constOf = (tensor: string): GraphNode | undefined => {
    let source = context.node(parseTensorName(tensor).node);
    while (source?.op === 'Identity') source = context.node(parseTensorName(source.input[0]).node);
    return source?.op === 'Const' ? source : undefined;
  };
  const inputs = (n: GraphNode) => n.input.filter((tensor) => !tensor.startsWith('^')).map((tensor) => {
    const constant = constOf(tensor);
    if (!constant) return { shape: context.shapes.of(tensor) };
    const weight = context.weight(constant.name);
    if (weight) hash.update(bytesOf(weight.bytes));
    return { constant: constant.name, spec: weight?.spec, attr: weight ? undefined : constant.attr };
  });
  const biases = context.consumers(node.name).filter((c) => BIAS_OPS.has(c.op)).map((c) => ({ op: c.op, inputs: inputs(c) }));
  hash.update(canonicalJson({
    graph: candidate.graph, node: node.name, pass: candidate.pass.name, op: node.op, attr: node.attr, inputs: inputs(node), biases,
  }));
  return hash.digest('hex');
}

/** One fingerprint for a set of candidates (order-free): tells two files apart at a glance. */
export function modelFingerprint(candidates: { graph: string; layer: string; pass: string; fingerprint?: string }[]): string {
  const lines = candidates.map((c) => `${c.graph}/${c.layer}/${c.pass}=${c.fingerprint ?? ''}`).sort();
  return crypto.createHash('sha256').update(lines.join('\n')).digest('hex');
}
