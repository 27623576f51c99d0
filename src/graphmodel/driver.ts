/**
 * Applies graph passes to the main GraphDef until nothing changes, linting after each rewrite,
 * and records every rewrite and refusal in the same shape as the layers driver.
 */
import type { RewriteRecord, SkipRecord, PassRun } from '../optimize/driver';
import { GraphModelIR, GraphNode, lintGraphModel, parseTensorName } from './ir';
import type { GraphMatchContext, GraphPass, GraphReplacement } from './pass';
import { GraphShapes } from './shapes';

/** Reported as the `graph` of records: graph models have one main graph. */
export const MAIN_GRAPH = 'graph';
const MAX_SWEEPS = 16;

/** Node names the model returns: the signature's outputs, else (as tfjs does) unread nodes. */
function outputNodes(ir: GraphModelIR, readers: Map<string, GraphNode[]>): Set<string> {
  const outputs = (ir.artifactExtra.signature as { outputs?: Record<string, { name?: string }> } | undefined)?.outputs;
  const named = Object.entries(outputs ?? {}).map(([key, entry]) => parseTensorName(entry?.name ?? key).node);
  if (named.length) return new Set(named);
  return new Set(ir.nodes.filter((n) => !(readers.get(n.name)?.length)).map((n) => n.name));
}

export function graphContext(ir: GraphModelIR, taken: Set<string>): GraphMatchContext {
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
    freshName: (base) => {
      let name = base;
      for (let i = 2; taken.has(name); i++) name = `${base}_${i}`;
      taken.add(name);
      return name;
    },
  };
}

export function runGraphPasses(ir: GraphModelIR, passes: GraphPass[]): PassRun {
  const taken = new Set(ir.nodes.map((n) => n.name));
  const rewritten: RewriteRecord[] = [];
  let skipped: SkipRecord[] = [];
  for (let sweep = 0; ; sweep++) {
    if (sweep === MAX_SWEEPS) throw new Error(`passes still rewriting after ${MAX_SWEEPS} sweeps; a pass matches its own output`);
    skipped = [];
    let changed = false;
    let context = graphContext(ir, taken);
    for (const node of [...ir.nodes]) {
      if (context.node(node.name) !== node) continue; // removed by an earlier rewrite (a folded BiasAdd)
      for (const pass of passes) {
        if (!pass.appliesTo(node)) continue;
        const result = pass.match(node, context);
        if ('refusal' in result) {
          skipped.push({ layer: node.name, graph: MAIN_GRAPH, pass: pass.name, reason: result.refusal });
          continue;
        }
        const replacement = pass.rewrite(node, result.plan, context);
        applyReplacement(ir, replacement, context);
        lintGraphModel(ir, { where: `after ${pass.name} on "${node.name}"` });
        rewritten.push({ layer: node.name, graph: MAIN_GRAPH, pass: pass.name, replacement: replacement.nodes.map((n) => n.name) });
        ir.notes.push(...(replacement.notes ?? []));
        context = graphContext(ir, taken);
        changed = true;
        break;
      }
    }
    if (!changed) break;
  }
  return { rewritten, skipped };
}

/** Splices the new nodes in where the last removed node was, then drops what became unused. */
export function applyReplacement(ir: GraphModelIR, replacement: GraphReplacement, context: GraphMatchContext): void {
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
