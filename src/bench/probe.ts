/**
 * A candidate rewrite in isolation: the matched layer alone behind an Input of the shape it
 * sees in the model, and the same after the pass, as two small models built through the normal
 * IR -> artifacts path. Timing these isolates the rewritten subgraph from the rest of the model.
 */
import type { io } from '@tensorflow/tfjs';
import { Shape, isUnknown } from '../graph/shapes';
import { Graph, LayerNode, ModelIR, TensorRef } from '../graph/types';
import type { Pass } from '../pass';
import { artifactsFromIR } from '../io/ir';
import { runPasses } from '../optimize/driver';
import type { Candidate } from '../optimize/driver';

export interface Probe {
  layer: string;
  /** Input shape without the batch. */
  shape: number[];
  /** How many calls of the layer see this shape (their times add up). */
  calls: number;
  original: io.ModelArtifacts;
  rewritten: io.ModelArtifacts;
}

const ref = (layer: string): TensorRef => ({ layer, node: 0, tensor: 0, kwargs: {} });

/** The weights of `layer`, renamed to `<layer>/<suffix>` as a top-level layer's would be. */
function weightsOf(ir: ModelIR, layer: string) {
  return ir.weights
    .filter((weight) => weight.name.split('/').slice(-2, -1)[0] === layer)
    .map((weight) => ({ ...weight, name: `${layer}/${weight.name.split('/').pop()}` }));
}

function probeIR(ir: ModelIR, layer: LayerNode, shape: number[]): ModelIR {
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
    const key = dims.join(',');
    const entry = counts.get(key) ?? { shape: dims as number[], calls: 0 };
    entry.calls++;
    counts.set(key, entry);
  }
  if (counts.size === 0) return 'the layer is never called';
  const probes: Probe[] = [];
  for (const { shape, calls } of counts.values()) {
    const before = probeIR(context.ir, layer, shape);
    const original = artifactsFromIR(before);
    const after = probeIR(context.ir, layer, shape);
    // A pass forced past its policy in the model is forced in the probe too, or it refuses there.
    const run = runPasses(after, passes, { backend: context.backend, forced: context.forced ? new Set([pass.name]) : undefined });
    if (!run.rewritten.some((record) => record.layer === layer.name && record.pass === pass.name)) return `${pass.name} does not rewrite the layer on its own (${run.skipped[0]?.reason ?? 'no match'})`;
    probes.push({ layer: layer.name, shape, calls, original, rewritten: artifactsFromIR(after) });
  }
  return probes;
}
