/**
 * The pass contract for graph models, the GraphDef twin of src/pass.ts: `match` is pure and
 * returns a plan or a refusal naming the failing value; `rewrite` runs only after every guard
 * passed. A replacement's last node takes over the name of the last node it replaces, so every
 * reference to it (other nodes' inputs, the signature, `execute(x, outputName)` calls in user
 * code) keeps working without rewiring.
 */
import type { MatchResult } from '../pass';
import type { GraphModelIR, GraphNode, GraphWeight } from './ir';
import type { GraphShapes } from './shapes';

export interface GraphMatchContext {
  ir: GraphModelIR;
  shapes: GraphShapes;
  node(name: string): GraphNode | undefined;
  weight(name: string): GraphWeight | undefined;
  /** Nodes reading any output of `name` (control dependencies included), in graph order. */
  consumers(name: string): GraphNode[];
  /** true when the model returns an output of `name` (signature outputs, or a node nobody reads). */
  isOutput(name: string): boolean;
  /** A node name derived from `base` that is unused in the graph. */
  freshName(base: string): string;
}

export interface GraphReplacement {
  /** Nodes that disappear; the last one's name is taken by the last new node. */
  remove: string[];
  /** New nodes in topological order; the last one produces what the last removed node did. */
  nodes: GraphNode[];
  addWeights: GraphWeight[];
  /** Nodes that may now be unused (filter Consts, Identity chains): dropped if nobody reads them. */
  maybeUnused: string[];
  notes?: string[];
}

export interface GraphPass<Plan = unknown> {
  name: string;
  /** Every node this returns true for gets a rewrite or a refusal in the report. */
  appliesTo(node: GraphNode): boolean;
  match(node: GraphNode, context: GraphMatchContext): MatchResult<Plan>;
  rewrite(node: GraphNode, plan: Plan, context: GraphMatchContext): GraphReplacement;
}
