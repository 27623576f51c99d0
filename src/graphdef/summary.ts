/** Before/after facts about a graph model, in the layers report's ModelSummary shape. */
import type { ModelSummary } from '../formats/summary';
import type { GraphModelIR } from './ir';

/** `layers` counts ops; `params` counts float elements only (int32 Consts are shapes, not params). */
export function summarizeGraph(ir: GraphModelIR): ModelSummary {
  const layers: Record<string, number> = {};
  for (const node of ir.nodes) layers[node.op] = (layers[node.op] ?? 0) + 1;
  const isFloat = (dtype: string) => dtype === 'float32' || dtype === 'float16';
  return {
    layers,
    params: ir.weights.filter((w) => isFloat(w.spec.dtype)).reduce((n, w) => n + w.spec.shape.reduce((a, b) => a * b, 1), 0),
    weightBytes: ir.weights.reduce((n, w) => n + w.bytes.byteLength, 0),
  };
}
