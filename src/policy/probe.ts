/**
 * A candidate rewrite in isolation: the matched layer alone behind an Input of the shape it
 * sees in the model, and the same after the pass, as two small models built through the normal
 * IR -> artifacts path. Timing these isolates the rewritten subgraph from the rest of the model.
 */
import type { io } from '@tensorflow/tfjs';
import { Shape, isUnknown } from '../layers/shapes';
import { Graph, LayerNode, ModelIR, TensorRef } from '../layers/types';
import type { Pass } from '../pass';
import { artifactsFromIR } from '../io/ir';
import { runPasses } from '../layers/driver';
import type { Candidate } from '../layers/driver';
import { cutOutSpatial } from '../rewrite/sliding-conv';

/** A candidate's subgraphs for one input shape: what a timer (any backend) is given. */
export interface Probe {
  layer: string;
  /** The conv's class ("Conv3D"). */
  className: string;
  /** Input shape without the batch. */
  shape: number[];
  /** How many calls of the layer see this shape (their times add up). */
  calls: number;
  /** The layer alone behind an Input, as a stock-tfjs LayersModel. */
  original: io.ModelArtifacts;
  /** The same after the whole pipeline (the replacement and its clean-ups). */
  rewritten: io.ModelArtifacts;
  /** Classes of the rewritten probe's layers, Input excluded, in order ("Reshape", "Dense"). */
  replacement: string[];
  /** Multiply-adds of the conv per batch item: output positions x kernel rows x filters. */
  macsPerItem: number;
  /** The rule the probe times. */
  pass: string;
  /** Set when the probe runs on a cut-out of the layer's input, not the whole (sizes without batch). */
  cutOutOf?: number[];
}

const ref = (layer: string): TensorRef => ({ layer, node: 0, tensor: 0, kwargs: {} });

/** The weights of `layer`, renamed to `<layer>/<suffix>` as a top-level layer's would be. */
function weightsOf(ir: ModelIR, layer: string) {
  return ir.weights
    .filter((weight) => weight.name.split('/').slice(-2, -1)[0] === layer)
    .map((weight) => ({ ...weight, name: `${layer}/${weight.name.split('/').pop()}` }));
}

export function probeIR(ir: ModelIR, layer: LayerNode, shape: number[]): ModelIR {
  const input = `${layer.name}__probe_input`;
  const { batch_input_shape: _b, input_shape: _i, ...config } = layer.config;
  const graph: Graph = {
    kind: 'functional',
    className: 'Functional',
    name: `${layer.name}__probe`,
    layers: [
      { name: input, className: 'InputLayer', config: { name: input, batch_input_shape: [null, ...shape], dtype: 'float32', sparse: false }, calls: [], extra: {} },
      { name: layer.name, className: layer.className, config, calls: [{ inputs: [ref(input)] }], extra: {} },
    ],
    inputs: [ref(input)],
    outputs: [ref(layer.name)],
    extraConfig: {},
  };
  // Weight arrays are shared with `ir`, not copied; the pass builds new ones for its own output.
  return { graph, topologyExtra: {}, weights: weightsOf(ir, layer.name), artifactExtra: { format: 'layers-model' }, notes: [] };
}

/** kernel volume x channels x filters x output positions, from the config and the input shape. */
function macsOf(layer: LayerNode, shape: number[]): number {
  const c = layer.config;
  const rank = shape.length - 1;
  const tuple = (v: unknown, fallback: number) => (typeof v === 'number' ? new Array(rank).fill(v) : Array.isArray(v) ? (v as number[]) : new Array(rank).fill(fallback));
  const [kernel, strides, dilation] = [tuple(c.kernel_size, 1), tuple(c.strides, 1), tuple(c.dilation_rate, 1)];
  const channelsFirst = c.data_format === 'channels_first';
  const spatial = channelsFirst ? shape.slice(1) : shape.slice(0, rank);
  const channels = channelsFirst ? shape[0] : shape[rank];
  // Output positions as TF counts them ('same': ceil(size / stride); else the window must fit).
  const positions = spatial.reduce((n, size, a) => n * (c.padding === 'same'
    ? Math.ceil(size / strides[a])
    : Math.max(0, Math.floor((size - (kernel[a] - 1) * dilation[a] - 1) / strides[a]) + 1)), 1);
  return positions * kernel.reduce((a, b) => a * b, 1) * channels * (c.filters as number);
}

const SLIDING_PASS = 'conv3d-to-conv2d-slices';
const fmt = (dims: number[]) => dims.join(',');

/** A sliding Conv3D's input cut down to what times it faithfully (sliding-conv.ts). */
function cutOut(layer: LayerNode, dims: number[]): number[] {
  const c = layer.config;
  const triple = (v: unknown) => (typeof v === 'number' ? [v, v, v] : Array.isArray(v) ? (v as number[]) : [1, 1, 1]);
  const first = c.data_format === 'channels_first';
  const spatial = first ? dims.slice(1) : dims.slice(0, 3);
  const cut = cutOutSpatial(spatial, triple(c.kernel_size), triple(c.dilation_rate));
  return first ? [dims[0], ...cut] : [...cut, dims[3]];
}

/**
 * Probes for a candidate, one per distinct input shape; a string says why it cannot be probed
 * (several inputs, unknown or dynamic shapes, or the pass does not rewrite it on its own).
 * `passes` is the whole pipeline, so clean-ups of the replacement happen as in the real run.
 */
export async function probesFor(candidate: Candidate, passes: Pass[]): Promise<Probe[] | string> {
  const { layer, pass, context } = candidate;
  const perCall = context.shapes.callInputs.get(layer.name) ?? [];
  const counts = new Map<string, { shape: number[]; calls: number }>();
  for (const shapes of perCall) {
    if (isUnknown(shapes)) return `input shape unknown (${shapes.unknown})`;
    if (shapes.length !== 1) return `${shapes.length} inputs per call`;
    const dims = (shapes[0] as Shape).slice(1);
    if (dims.some((dim) => dim === null)) return `input shape ${JSON.stringify(shapes[0])} is not static beyond the batch`;
    if (pass.name === SLIDING_PASS) dims.splice(0, dims.length, ...cutOut(layer, dims as number[]));
    const key = dims.join(',');
    const entry = counts.get(key) ?? { shape: dims as number[], calls: 0 };
    entry.calls++;
    counts.set(key, entry);
  }
  if (counts.size === 0) return 'the layer is never called';
  const probes: Probe[] = [];
  for (const { shape, calls } of counts.values()) {
    const whole = perCall.map((shapes) => (shapes as Shape[])[0].slice(1) as number[]).find((dims) => fmt(cutOut(layer, dims)) === fmt(shape) && fmt(dims) !== fmt(shape));
    const before = probeIR(context.ir, layer, shape);
    const original = artifactsFromIR(before);
    const after = probeIR(context.ir, layer, shape);
    // No keep hook: `match` alone decides, so a correct match always rewrites here.
    const run = runPasses(after, passes, { backend: context.backend });
    if (!run.rewritten.some((record) => record.layer === layer.name && record.pass === pass.name)) return `${pass.name} does not rewrite the layer on its own (${run.skipped[0]?.reason ?? 'no match'})`;
    const replacement = after.graph.layers.filter((l) => l.className !== 'InputLayer').map((l) => l.className);
    probes.push({
      layer: layer.name, className: layer.className, shape, calls, original, rewritten: artifactsFromIR(after), replacement,
      macsPerItem: macsOf(layer, whole ?? shape), pass: pass.name, ...(whole ? { cutOutOf: whole } : {}),
    });
  }
  return probes;
}
