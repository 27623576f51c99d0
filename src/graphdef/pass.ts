/**
 * The GraphDef dialect of the rule contract (src/core/rule.ts). A replacement's last node takes
 * over the name of the last node it replaces, so every reference to it (other nodes' inputs,
 * the signature, `execute(x, outputName)` calls in user code) keeps working without rewiring.
 */
import type { Rule, RunSettings } from '../core/rule';
import type { GraphModelIR, GraphNode, GraphWeight } from './ir';
import type { GraphShapes } from './shapes';

export interface GraphDefMatchContext extends RunSettings {
  ir: GraphModelIR;
  shapes: GraphShapes;
  node(name: string): GraphNode | undefined;
  weight(name: string): GraphWeight | undefined;
  /** Nodes reading any output of `name` (control dependencies included), in graph order. */
  consumers(name: string): GraphNode[];
  /** true when the model returns an output of `name` (signature outputs, or a node nobody reads). */
  isOutput(name: string): boolean;
}

export interface GraphDefReplacement {
  /** Nodes that disappear; the last one's name is taken by the last new node. */
  remove: string[];
  /** New nodes in topological order; the last one produces what the last removed node did. */
  nodes: GraphNode[];
  addWeights: GraphWeight[];
  /** Nodes that may now be unused (filter Consts, Identity chains): dropped if nobody reads them. */
  maybeUnused: string[];
  notes?: string[];
}

/** A rule's lowering for the GraphDef dialect. */
export type GraphDefPass<Plan = unknown> = Rule<GraphNode, GraphDefMatchContext, Plan, GraphDefReplacement>;
