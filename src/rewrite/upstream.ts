import type { Graph, LayerNode, TensorRef } from '../layers/types';

/**
 * What feeds a single-call layer: the producing layer when it is a plain single-call layer of
 * the same graph, and the reference to read instead of it (functional graphs).
 */
export function upstreamOf(graph: Graph, layer: LayerNode): { producer?: LayerNode; input?: TensorRef } {
  if (graph.kind === 'sequential') {
    const before = graph.layers[graph.layers.indexOf(layer) - 1];
    return before && before.className !== 'InputLayer' && !before.graph ? { producer: before } : {};
  }
  if (layer.calls.length !== 1 || layer.calls[0].inputs.length !== 1) return {};
  const input = layer.calls[0].inputs[0];
  const candidate = graph.layers.find((other) => other.name === input.layer);
  const plain = candidate && candidate.className !== 'InputLayer' && !candidate.graph && candidate.calls.length === 1;
  return plain ? { producer: candidate, input } : { input };
}

/** How many times anything in `graph` (layers and model outputs) reads `layer`'s outputs. */
export function consumerCount(graph: Graph, layer: LayerNode): number {
  if (graph.kind === 'sequential') return 1;
  let count = graph.outputs.filter((ref) => ref.layer === layer.name).length;
  for (const other of graph.layers) {
    for (const call of other.calls) count += call.inputs.filter((ref) => ref.layer === layer.name).length;
  }
  return count;
}
