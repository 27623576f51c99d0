/**
 * Applies passes to every graph of a model (nested models included) until nothing changes,
 * linting after each rewrite, and records every rewrite and every refusal.
 */
import { GraphShapes, inferShapes } from '../graph/shapes';
import { lintGraph } from '../graph/lint';
import { Graph, LayerNode, ModelIR, TensorRef, ownNodeCount } from '../graph/types';
import { MatchContext, Pass, REPLACED_INPUT, Replacement } from '../pass';
import { ownerOf } from '../rewrite/weights';

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
  /** Layers a pass matched but the policy hook (`keep`) told the driver to leave as they are. */
  kept?: SkipRecord[];
}

/** A successful match, offered to the policy hook before anything is rewritten. */
export interface Candidate {
  layer: LayerNode;
  /** Path of the model holding the layer, as in the records. */
  graph: string;
  pass: Pass;
  plan: unknown;
  context: MatchContext;
}

/** Returns a reason to keep the original layer, or null to let the pass rewrite it. */
export type KeepHook = (candidate: Candidate) => string | null;

/** A pass that keeps matching its own output would loop; no sane pipeline needs this many. */
const MAX_SWEEPS = 16;

export interface RunOptions {
  /** The backend the model is optimized for, as policies see it. */
  backend?: string;
  keep?: KeepHook;
  /** Names of passes the user asked for explicitly (built-in policies do not hold them back). */
  forced?: Set<string>;
  /** A measured policy (the keep hook) decides instead of the passes' built-in tables. */
  measuring?: boolean;
  /** See MatchContext.reuseWeights. */
  reuseWeights?: boolean;
}

export function runPasses(ir: ModelIR, passes: Pass[], target: RunOptions = {}): PassRun {
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
  let kept: SkipRecord[] = [];
  for (let count = 0; ; count++) {
    if (count === MAX_SWEEPS) throw new Error(`passes still rewriting after ${MAX_SWEEPS} sweeps; a pass matches its own output`);
    skipped = [];
    kept = [];
    const sweep: Sweep = { ir, passes, freshName, backend: target.backend, keep: target.keep, forced: target.forced ?? new Set(), measuring: target.measuring, reuseWeights: target.reuseWeights, rewritten, skipped, kept };
    const changed = sweepGraph(sweep, ir.graph, inferShapes(ir.graph), ir.graph.name);
    if (!changed) break;
  }
  return { rewritten, skipped, kept };
}

interface Sweep {
  ir: ModelIR;
  passes: Pass[];
  freshName: (base: string) => string;
  backend?: string;
  keep?: KeepHook;
  forced: Set<string>;
  measuring?: boolean;
  reuseWeights?: boolean;
  rewritten: RewriteRecord[];
  skipped: SkipRecord[];
  /** Reset every sweep, like `skipped`: a kept layer is offered again (and kept again) each sweep. */
  kept: SkipRecord[];
}

function sweepGraph(sweep: Sweep, graph: Graph, shapes: GraphShapes, path: string): boolean {
  let changed = false;
  const { ir, freshName, backend } = sweep;
  for (const layer of [...graph.layers]) {
    if (layer.graph) {
      const nested = shapes.nested.get(layer.name) ?? inferShapes(layer.graph);
      changed = sweepGraph(sweep, layer.graph, nested, `${path}/${layer.name}`) || changed;
      continue;
    }
    for (const pass of sweep.passes) {
      if (!graph.layers.includes(layer) || !pass.appliesTo(layer)) continue;
      // Shapes stay valid within a sweep: a replacement keeps the shapes it produces; layers it
      // creates are seen, with fresh shapes, by the next sweep.
      const context: MatchContext = { ir, graph, shapes, freshName, backend, forced: sweep.forced.has(pass.name), measuring: sweep.measuring, reuseWeights: sweep.reuseWeights };
      const result = pass.match(layer, context);
      if ('refusal' in result) {
        if (pass.reportRefusals !== false) sweep.skipped.push({ layer: layer.name, graph: path, pass: pass.name, reason: result.refusal });
        continue;
      }
      const keepReason = sweep.keep?.({ layer, graph: path, pass, plan: result.plan, context }) ?? null;
      if (keepReason !== null) {
        sweep.kept.push({ layer: layer.name, graph: path, pass: pass.name, reason: keepReason });
        break;
      }
      const replacement = pass.rewrite(layer, result.plan, context);
      replaceLayer(ir, graph, layer, replacement);
      try {
        lintGraph(graph, path);
      } catch (error) {
        // The input was linted before any pass ran: a broken graph now is the pass's bug.
        throw new Error(`pass ${pass.name} left an invalid graph after rewriting ${path}/${layer.name}: ${(error as Error).message}`);
      }
      sweep.rewritten.push({ layer: layer.name, graph: path, pass: pass.name, replacement: replacement.layers.map((l) => l.name) });
      changed = true;
      break;
    }
  }
  return changed;
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
