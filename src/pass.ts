/**
 * The layers dialect of the rule contract (src/core/rule.ts): what a rule sees of a Keras
 * topology and the replacement it returns (layers and weights), which the driver splices in.
 */
import type { Rule, RunSettings } from './core/rule';
import type { LayersShapes } from './layers/shapes';
import type { Graph, LayerNode, ModelIR, TensorRef, Weight } from './layers/types';

export type { MatchResult } from './core/rule';

/** What a layers rule sees: the model, the graph holding the layer, its shapes, the run settings. */
export interface MatchContext extends RunSettings {
  ir: ModelIR;
  graph: Graph;
  shapes: LayersShapes;
}

/** A chain of new layers standing in for one layer, for some of its calls. */
export interface Replacement {
  /**
   * New layers, in topological order. Each has one entry in `calls` per original call it
   * serves; an input ref with layer `REPLACED_INPUT` means "the original call's inputs".
   */
  layers: LayerNode[];
  /**
   * For each original call index: which new layer and which of its calls now produce it, or
   * an existing tensor (a layer that is dropped maps to its own input).
   */
  outputs: ({ layer: string; call: number } | { ref: TensorRef })[];
  /**
   * Upstream layers of the same graph that the replacement makes dead (a view chain folded
   * into it); the pass guarantees nothing else consumes them. Removed with their weights.
   */
  absorbed?: string[];
  /** Weights of the original layer to remove and the new ones to add in their place. */
  removeWeights: string[];
  addWeights: Weight[];
  /** Facts for the report (e.g. a quantized kernel reordered in its encoding). */
  notes?: string[];
  /**
   * Absorbed layers whose output the replacement reads in depth pieces, no one tensor holding
   * it now: per layer, the tensors that do, in depth order (see RewriteRecord.pieces).
   */
  pieces?: Record<string, TensorRef[]>;
}

/** Placeholder in Replacement.layers calls for "the inputs of the replaced call". */
export const REPLACED_INPUT = '\u0000replaced-input';

/** A rule's lowering for the layers dialect (see src/core/rule.ts for the contract). */
export type Pass<Plan = unknown> = Rule<LayerNode, MatchContext, Plan, Replacement>;
