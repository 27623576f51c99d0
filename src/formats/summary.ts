/** Before/after facts about a model, for the report. */
import { Graph, ModelIR } from '../layers/types';

export interface ModelSummary {
  /** Layer class -> count, nested models included (the nested model itself is not counted). */
  layers: Record<string, number>;
  params: number;
  weightBytes: number;
}

export function summarize(ir: ModelIR): ModelSummary {
  const layers: Record<string, number> = {};
  const count = (graph: Graph) => graph.layers.forEach((layer) => {
    if (layer.graph) count(layer.graph);
    else layers[layer.className] = (layers[layer.className] ?? 0) + 1;
  });
  count(ir.graph);
  return {
    layers,
    params: ir.weights.reduce((n, weight) => n + weight.values.length, 0),
    weightBytes: ir.weights.reduce((n, weight) => n + weight.values.byteLength, 0),
  };
}
