/**
 * The rule contract every dialect shares, after MLIR's matchAndRewrite / notifyMatchFailure:
 * `match` is pure and returns a plan or a refusal naming the failing value; `rewrite` runs only
 * after every guard passed and returns the dialect's replacement, which the dialect splices in.
 * "Correct" is `match`'s question; "worth it" is the keep hook's (see driver.ts).
 */

export type MatchResult<Plan> = { plan: Plan } | { refusal: string };

/** What every dialect's match context carries: the settings of the run, as the driver sets them. */
export interface RunSettings {
  /** Returns a unit name derived from `base` that is unused anywhere in the model. */
  freshName(base: string): string;
  /** The backend the model is optimized for (the verification backend), if known. */
  backend?: string;
  /** The user asked for this rule by name: the keep hook (the policy) does not hold it back. */
  forced?: boolean;
  /**
   * Nobody else holds the weight buffers (files read for this run, no verification against
   * them): a rewrite may reorder a weight's values in place instead of copying them.
   */
  reuseWeights?: boolean;
}

/** One rule in one dialect: `Unit` is what it looks at (a layer, a node). */
export interface Rule<Unit, Context, Plan, Replacement> {
  /** Stable identifier, used in reports and `--passes`; the same in every dialect. */
  name: string;
  /**
   * The units this rule looks at; every such unit gets a rewrite or a refusal. The context is
   * there for patterns that span units (the converter's ExpandDims -> Conv2D -> Squeeze).
   */
  appliesTo(unit: Unit, context: Context): boolean;
  match(unit: Unit, context: Context): MatchResult<Plan>;
  /**
   * Whether refusals belong in the report. Rewrites of a unit class (convs) say why each
   * candidate stays; clean-up rules, which look at every Reshape or Dense, stay quiet.
   */
  reportRefusals?: boolean;
  rewrite(unit: Unit, plan: Plan, context: Context): Replacement;
  /**
   * The input (sizes without the batch) on which the policy times this rule's rewrite of `unit`,
   * when the whole input would take as long as running the model (a 256^3 volume); absent: the whole.
   */
  timingInput?(unit: Unit, dims: number[], plan: Plan): number[];
}

export interface RewriteRecord {
  /** The rewritten unit (layer or node) name. */
  layer: string;
  /** Path of the graph holding it ("model", "model/inner_encoder"; "graph" for a GraphDef). */
  graph: string;
  pass: string;
  replacement: string[];
  /** Other units the rewrite removed (a view chain folded into the replacement). */
  absorbed?: string[];
  /**
   * Absorbed units whose output the replacement reads in depth pieces: per unit, the tensors
   * (unit, call) that now hold that output, in depth order. The per-layer check joins them.
   */
  pieces?: Record<string, { layer: string; node: number }[]>;
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
  /** Units a rule matched but the keep hook told the driver to leave as they are. */
  kept?: SkipRecord[];
}

/** A successful match, offered to the keep hook before anything is rewritten. */
export interface RuleCandidate<Unit, Context, R> {
  layer: Unit;
  /** Path of the graph holding the unit, as in the records. */
  graph: string;
  pass: R;
  plan: unknown;
  context: Context;
}
