/**
 * The layers dialect for the core driver (src/core/driver.ts): every graph of a model, nested
 * models included, with Keras shape inference, splice/replace of layer calls, and lint.
 */
import { Dialect, DriverOptions, Scope, runRules } from '../core/driver';
import type { PassRun, RuleCandidate } from '../core/rule';
import { LayersShapes, Shape, inferShapes, isUnknown } from './shapes';
import { sequentialInputName, sequentialToFunctional } from './functional';
import { lintGraph } from './lint';
import { Graph, LayerNode, ModelIR, TensorRef, ownNodeCount } from './types';
import { MatchContext, Pass, REPLACED_INPUT, Replacement } from '../pass';
import { ownerOf } from './weights';

export type { RewriteRecord, SkipRecord, PassRun } from '../core/rule';

/** A successful match of a layers rule, offered to the policy hook before anything is rewritten. */
export type Candidate = RuleCandidate<LayerNode, MatchContext, Pass>;

/** Returns a reason to keep the original layer, or null to let the pass rewrite it. */
export type KeepHook = (candidate: Candidate) => string | null;

export type RunOptions = DriverOptions<Candidate>;

/** The layers dialect as the core driver sees it: one scope per (nested) graph. */
export function layersDialect(ir: ModelIR): Dialect<LayerNode, MatchContext, Replacement> {
  const names: string[] = [];
  // The input names tfjs gives the Sequentials as read: kept if one becomes functional.
  const inputNames = new Map<Graph, string | undefined>();
  const collect = (graph: Graph) => {
    inputNames.set(graph, sequentialInputName(graph));
    graph.layers.forEach((layer) => {
      names.push(layer.name);
      if (layer.graph) collect(layer.graph);
    });
  };
  collect(ir.graph);
  const scope = (graph: Graph, shapes: LayersShapes, path: string, owner?: LayerNode): Scope<LayerNode, MatchContext, Replacement> => {
    // The graph's input shape as this sweep found it (a Sequential made functional declares it).
    const first = graph.layers.find((layer) => layer.className !== 'InputLayer');
    const seen = first && shapes.callInputs.get(first.name)?.[0];
    const inputShape: Shape | undefined = seen && !isUnknown(seen) && seen.length === 1 ? seen[0] : undefined;
    return {
      path,
      units: () => [...graph.layers],
      nameOf: (layer) => layer.name,
      nested: (layer) => layer.graph && scope(layer.graph, shapes.nested.get(layer.name) ?? inferShapes(layer.graph), `${path}/${layer.name}`, layer),
      contains: (layer) => graph.layers.includes(layer),
      context: (settings) => ({ ...settings, ir, graph, shapes }),
      replace: (layer, replacement, context) => {
        // A replacement with branches (an Add of terms) needs a functional graph.
        if (graph.kind === 'sequential' && needsBranches(replacement)) {
          ir.notes.push(sequentialToFunctional(graph, { name: inputNames.get(graph), shape: inputShape }, context.freshName));
          if (owner) owner.className = graph.className;
        }
        replaceLayer(ir, graph, layer, replacement);
        ir.notes.push(...(replacement.notes ?? []));
        // A replacement keeps the shapes it produces, but the layers it defines have other input
        // shapes, often under an old name (the conv's last view, a merged reshape). Forget them:
        // passes refuse those layers for the rest of this sweep and see them, with fresh shapes,
        // in the next (a stale entry once made fold-views-into-dense read the conv's input shape).
        for (const defined of replacement.layers) shapes.callInputs.delete(defined.name);
        const pieces = replacement.pieces && Object.fromEntries(Object.entries(replacement.pieces).map(([name, refs]) => [name, refs.map((r) => ({ layer: r.layer, node: r.node }))]));
        return { names: replacement.layers.map((l) => l.name), absorbed: replacement.absorbed, ...(pieces ? { pieces } : {}) };
      },
      lint: () => lintGraph(graph, path),
    };
  };
  return { names: () => names, root: () => scope(ir.graph, inferShapes(ir.graph), ir.graph.name) };
}

export function runPasses(ir: ModelIR, passes: Pass[], options: RunOptions = {}): PassRun {
  return runRules(layersDialect(ir), passes, options);
}

/**
 * The replacement merges branches (a layer call with several inputs: the Add of a sum of terms),
 * which a Sequential, one implicit chain of layers, cannot hold. (Replacements of layers in a
 * Sequential are otherwise chains whose wiring the Sequential implies.)
 */
export function needsBranches(replacement: Replacement): boolean {
  return replacement.layers.some((layer) => layer.calls.some((call) => call.inputs.length > 1));
}

/** Splices `replacement` in for `old`: layers, every reference to its outputs, and weights. */
export function replaceLayer(ir: ModelIR, graph: Graph, old: LayerNode, replacement: Replacement): void {
  const absorbed = new Set(replacement.absorbed ?? []);
  const sequential = graph.kind === 'sequential';
  const firstConfig = graph.layers[0].config;
  // A Sequential is an implicit chain: its layers carry no calls to wire.
  const fresh = replacement.layers.map((layer) => ({
    ...layer,
    calls: sequential ? [] : layer.calls.map((call) => ({
      inputs: call.inputs.flatMap((ref) =>
        ref.layer === REPLACED_INPUT ? old.calls[ref.node].inputs.map((input) => ({ ...input })) : [ref]),
    })),
  }));

  if (!sequential) {
    const byName = new Map(fresh.map((layer) => [layer.name, layer]));
    const rewire = (ref: TensorRef): TensorRef => {
      if (ref.layer !== old.name) return ref;
      const target = replacement.outputs[ref.node - ownNodeCount(old)];
      if ('ref' in target) return { ...target.ref, kwargs: ref.kwargs };
      return { ...ref, layer: target.layer, node: target.call + ownNodeCount(byName.get(target.layer)!) };
    };
    for (const layer of graph.layers) {
      for (const call of layer.calls) call.inputs = call.inputs.map(rewire);
    }
    graph.outputs = graph.outputs.map(rewire);
  }
  graph.layers.splice(graph.layers.indexOf(old), 1, ...fresh);
  graph.layers = graph.layers.filter((layer) => !absorbed.has(layer.name));
  // The first layer of a Sequential carries the model's input shape; hand it on.
  if (sequential && graph.layers.length && graph.layers[0].config !== firstConfig) {
    for (const key of ['batch_input_shape', 'input_shape', 'dtype']) {
      if (key in firstConfig && !(key in graph.layers[0].config)) graph.layers[0].config = { ...graph.layers[0].config, [key]: firstConfig[key] };
    }
  }

  const removed = new Set(replacement.removeWeights);
  for (const name of absorbed) for (const weight of ir.weights) if (ownerOf(weight.name) === name) removed.add(weight.name);
  const firstRemoved = ir.weights.findIndex((weight) => removed.has(weight.name));
  const kept = ir.weights.filter((weight) => !removed.has(weight.name));
  kept.splice(firstRemoved < 0 ? kept.length : firstRemoved, 0, ...replacement.addWeights);
  ir.weights = kept;
}
