/**
 * The GraphDef dialect for the core driver (src/core/driver.ts): one scope (the main graph),
 * node use-lists and output names, splice/replace that keeps the replaced node's name, and lint.
 */
import { Dialect, DriverOptions, runRules } from '../core/driver';
import type { PassRun, RuleCandidate, RunSettings } from '../core/rule';
import { GraphModelIR, GraphNode, lintGraphModel, parseTensorName } from './ir';
import type { GraphDefMatchContext, GraphDefPass, GraphDefReplacement } from './pass';
import { GraphShapes } from './shapes';

/** Reported as the `graph` of records: graph models have one main graph. */
export const MAIN_GRAPH = 'graph';

export type GraphDefCandidate = RuleCandidate<GraphNode, GraphDefMatchContext, GraphDefPass>;
export type GraphDefRunOptions = DriverOptions<GraphDefCandidate>;

/** Node names the model returns: the signature's outputs, else (as tfjs does) unread nodes. */
function outputNodes(ir: GraphModelIR, readers: Map<string, GraphNode[]>): Set<string> {
  const outputs = (ir.artifactExtra.signature as { outputs?: Record<string, { name?: string }> } | undefined)?.outputs;
  const named = Object.entries(outputs ?? {}).map(([key, entry]) => parseTensorName(entry?.name ?? key).node);
  if (named.length) return new Set(named);
  return new Set(ir.nodes.filter((n) => !(readers.get(n.name)?.length)).map((n) => n.name));
}

type GraphLookups = Omit<GraphDefMatchContext, keyof RunSettings>;

/** Lookups over the graph as it is now (rebuilt after every rewrite). */
export function graphDefLookups(ir: GraphModelIR): GraphLookups {
  const nodes = new Map(ir.nodes.map((n) => [n.name, n]));
  const weights = new Map(ir.weights.map((w) => [w.spec.name, w]));
  const readers = new Map<string, GraphNode[]>();
  for (const node of ir.nodes) {
    for (const name of new Set(node.input.map((i) => parseTensorName(i).node))) readers.set(name, [...(readers.get(name) ?? []), node]);
  }
  const outputs = outputNodes(ir, readers);
  return {
    ir,
    shapes: new GraphShapes(ir),
    node: (name) => nodes.get(name),
    weight: (name) => weights.get(name),
    consumers: (name) => readers.get(name) ?? [],
    isOutput: (name) => outputs.has(name),
  };
}

export function graphDefDialect(ir: GraphModelIR): Dialect<GraphNode, GraphDefMatchContext, GraphDefReplacement> {
  return {
    names: () => ir.nodes.map((n) => n.name),
    root: () => {
      let lookups: GraphLookups | undefined;
      const current = () => (lookups ??= graphDefLookups(ir));
      return {
        path: MAIN_GRAPH,
        units: () => [...ir.nodes],
        nameOf: (node) => node.name,
        // A rewrite can remove more than its node (a folded BiasAdd).
        contains: (node) => current().node(node.name) === node,
        context: (settings) => ({ ...current(), ...settings }),
        replace: (node, replacement) => {
          applyReplacement(ir, replacement, current());
          ir.notes.push(...(replacement.notes ?? []));
          lookups = undefined;
          return { names: replacement.nodes.map((n) => n.name) };
        },
        lint: () => lintGraphModel(ir),
      };
    },
  };
}

export function runGraphDefPasses(ir: GraphModelIR, passes: GraphDefPass[], options: GraphDefRunOptions = {}): PassRun {
  return runRules(graphDefDialect(ir), passes, options);
}

/** Splices the new nodes in where the last removed node was, then drops what became unused. */
export function applyReplacement(ir: GraphModelIR, replacement: GraphDefReplacement, context: Pick<GraphDefMatchContext, 'isOutput'>): void {
  const removed = new Set(replacement.remove);
  const anchor = ir.nodes.findIndex((n) => n.name === replacement.remove[replacement.remove.length - 1]);
  if (anchor < 0) throw new Error(`internal: node ${replacement.remove[replacement.remove.length - 1]} is not in the graph`);
  // Keeping the position keeps the order of outputs tfjs derives from unread nodes.
  ir.nodes = [
    ...ir.nodes.slice(0, anchor).filter((n) => !removed.has(n.name)),
    ...replacement.nodes,
    ...ir.nodes.slice(anchor + 1).filter((n) => !removed.has(n.name)),
  ];
  ir.weights.push(...replacement.addWeights);

  // An unread Const would become a model output in tfjs (without a signature): drop it.
  const pending = [...replacement.maybeUnused];
  while (pending.length) {
    const name = pending.pop()!;
    const node = ir.nodes.find((n) => n.name === name);
    if (!node || (node.op !== 'Const' && node.op !== 'Identity') || context.isOutput(name)) continue;
    if (ir.nodes.some((n) => n.input.some((i) => parseTensorName(i).node === name))) continue;
    ir.nodes = ir.nodes.filter((n) => n !== node);
    if (node.op === 'Const') ir.weights = ir.weights.filter((w) => w.spec.name !== name);
    pending.push(...node.input.map((i) => parseTensorName(i).node));
  }
}
