/**
 * Applies passes to every graph of a model (nested models included) until nothing changes,
 * linting after each rewrite, and records every rewrite and every refusal.
 */
import { GraphShapes, inferShapes } from '../graph/shapes';
import { lintGraph } from '../graph/lint';
import { Graph, LayerNode, ModelIR, TensorRef, ownNodeCount } from '../graph/types';
import { MatchContext, Pass, REPLACED_INPUT, Replacement } from '../pass';

export interface RewriteRecord {
  layer: string;
  /** Path of the model holding the layer ("model" or "model/inner_encoder"). */
  graph: string;
  pass: string;
  replacement: string[];
}

export interface SkipRecord {
  layer: string;
  graph: string;
  pass: string;
  reason: string;
}

export interface PassRun {
  rewritten: RewriteRecord[];
  skipped: SkipRecord[];
}

/** A pass that keeps matching its own output would loop; no sane pipeline needs this many. */
const MAX_SWEEPS = 16;

export function runPasses(ir: ModelIR, passes: Pass[]): PassRun {
  const taken = new Set<string>();
  const collect = (graph: Graph) => graph.layers.forEach((layer) => {
    taken.add(layer.name);
    if (layer.graph) collect(layer.graph);
  });
  collect(ir.graph);
  const freshName = (base: string) => {
    let name = base;
    for (let i = 2; taken.has(name); i++) name = `${base}_${i}`;
    taken.add(name);
    return name;
  };

  const rewritten: RewriteRecord[] = [];
  let skipped: SkipRecord[] = [];
  for (let sweep = 0; ; sweep++) {
    if (sweep === MAX_SWEEPS) throw new Error(`passes still rewriting after ${MAX_SWEEPS} sweeps; a pass matches its own output`);
    skipped = [];
    const changed = sweepGraph(ir, ir.graph, inferShapes(ir.graph), ir.graph.name, passes, freshName, rewritten, skipped);
    if (!changed) break;
  }
  return { rewritten, skipped };
}

function sweepGraph(
  ir: ModelIR, graph: Graph, shapes: GraphShapes, path: string, passes: Pass[],
  freshName: (base: string) => string, rewritten: RewriteRecord[], skipped: SkipRecord[],
): boolean {
  let changed = false;
  const context: MatchContext = { ir, graph, shapes, freshName };
  for (const layer of [...graph.layers]) {
    if (layer.graph) {
      const nested = shapes.nested.get(layer.name) ?? inferShapes(layer.graph);
      changed = sweepGraph(ir, layer.graph, nested, `${path}/${layer.name}`, passes, freshName, rewritten, skipped) || changed;
      continue;
    }
    for (const pass of passes) {
      if (!pass.appliesTo(layer)) continue;
      const result = pass.match(layer, context);
      if ('refusal' in result) {
        skipped.push({ layer: layer.name, graph: path, pass: pass.name, reason: result.refusal });
        continue;
      }
      const replacement = pass.rewrite(layer, result.plan, context);
      replaceLayer(ir, graph, layer, replacement);
      lintGraph(graph, path);
      rewritten.push({ layer: layer.name, graph: path, pass: pass.name, replacement: replacement.layers.map((l) => l.name) });
      changed = true;
      break;
    }
  }
  return changed;
}

/** Splices `replacement` in for `old`: layers, every reference to its outputs, and weights. */
export function replaceLayer(ir: ModelIR, graph: Graph, old: LayerNode, replacement: Replacement): void {
  const at = graph.layers.indexOf(old);
  if (at < 0) throw new Error(`layer ${old.name} is not in ${graph.name}`);
  // A Sequential is an implicit chain: its layers carry no calls to wire.
  const fresh = replacement.layers.map((layer) => ({
    ...layer,
    calls: graph.kind === 'sequential' ? [] : layer.calls.map((call) => ({
      inputs: call.inputs.flatMap((ref) =>
        ref.layer === REPLACED_INPUT ? old.calls[ref.node].inputs.map((input) => ({ ...input })) : [ref]),
    })),
  }));

  if (graph.kind === 'sequential') {
    // The first layer of a Sequential carries the model's input shape; hand it on.
    if (at === 0 && fresh.length > 0) {
      for (const key of ['batch_input_shape', 'input_shape', 'dtype']) {
        if (key in old.config) fresh[0].config = { ...fresh[0].config, [key]: old.config[key] };
      }
    }
  } else {
    const byName = new Map(fresh.map((layer) => [layer.name, layer]));
    const rewire = (ref: TensorRef): TensorRef => {
      if (ref.layer !== old.name) return ref;
      const target = replacement.outputs[ref.node - ownNodeCount(old)];
      return { ...ref, layer: target.layer, node: target.call + ownNodeCount(byName.get(target.layer)!) };
    };
    for (const layer of graph.layers) {
      for (const call of layer.calls) call.inputs = call.inputs.map(rewire);
    }
    graph.outputs = graph.outputs.map(rewire);
  }
  graph.layers.splice(at, 1, ...fresh);

  const removed = new Set(replacement.removeWeights);
  const firstRemoved = ir.weights.findIndex((weight) => removed.has(weight.name));
  const kept = ir.weights.filter((weight) => !removed.has(weight.name));
  const insertAt = firstRemoved < 0 ? kept.length : firstRemoved;
  kept.splice(insertAt, 0, ...replacement.addWeights);
  ir.weights = kept;
}
