/**
 * The pass contract, after MLIR's matchAndRewrite / notifyMatchFailure: `match` is pure and
 * either returns a plan or a refusal naming the failing condition; `rewrite` runs only after
 * every guard passed and returns replacement layers and weights. The driver splices them in.
 */
import type { GraphShapes } from './graph/shapes';
import type { Graph, LayerNode, ModelIR, TensorRef, Weight } from './graph/types';

export interface MatchContext {
  ir: ModelIR;
  graph: Graph;
  shapes: GraphShapes;
  /** Returns a layer name derived from `base` that is unused anywhere in the model. */
  freshName(base: string): string;
  /** The backend the model is optimized for (the verification backend), if known. */
  backend?: string;
  /** The user asked for this pass by name: apply it even where a policy says it does not pay. */
  forced?: boolean;
  /** `--policy measure`: timings decide whether a rewrite pays, not a pass's built-in table. */
  measuring?: boolean;
  /**
   * Nobody else holds the weight buffers (files read for this run, no verification against
   * them): a rewrite may reorder a weight's values in place instead of copying them.
   */
  reuseWeights?: boolean;
}

export type MatchResult<Plan> = { plan: Plan } | { refusal: string };

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
}

/** Placeholder in Replacement.layers calls for "the inputs of the replaced call". */
export const REPLACED_INPUT = '\u0000replaced-input';

export interface Pass<Plan = unknown> {
  /** Stable identifier, used in reports and `--passes`. */
  name: string;
  /** The layer classes this pass looks at; every such layer gets a rewrite or a refusal. */
  appliesTo(layer: LayerNode): boolean;
  match(layer: LayerNode, context: MatchContext): MatchResult<Plan>;
  /**
   * Whether refusals belong in the report. Rewrites of a layer class (convs) say why each
   * candidate stays; clean-up passes, which look at every Reshape or Dense, stay quiet.
   */
  reportRefusals?: boolean;
  rewrite(layer: LayerNode, plan: Plan, context: MatchContext): Replacement;
}
