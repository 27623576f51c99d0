/**
 * The one rewrite driver, for every dialect (the way MLIR runs one greedy driver over many
 * dialects): sweeps the model until no rule changes anything, trying rules in priority order on
 * each unit, recording every refusal; a successful match is offered to the keep hook, then
 * rewritten; the dialect's lint runs after every rewrite, and a failure there is the rule's bug.
 * A dialect supplies scopes (its graphs), units, a match context and splice/replace.
 */
import type { PassRun, RewriteRecord, Rule, RuleCandidate, RunSettings, SkipRecord } from './rule';

/** One graph of a model, as a dialect exposes it to the driver for one sweep. */
export interface Scope<Unit, Context, Replacement> {
  /** Path of the graph, as written in the records. */
  path: string;
  /** The units to visit, in order: a snapshot taken when the sweep reaches this scope. */
  units(): Unit[];
  nameOf(unit: Unit): string;
  /** A graph nested in `unit` (a model used as a layer): swept in its place. */
  nested?(unit: Unit): Scope<Unit, Context, Replacement> | undefined;
  /** false when an earlier rewrite in this sweep removed `unit`. */
  contains(unit: Unit): boolean;
  context(settings: RunSettings): Context;
  /**
   * Splices `replacement` in for `unit` (updating use-lists and whatever the scope's contexts
   * derive from the graph, e.g. shapes); `context` is the one the rule matched in (its fresh
   * names). Returns the new units' names and the other units removed.
   */
  replace(unit: Unit, replacement: Replacement, context: Context): { names: string[]; absorbed?: string[]; pieces?: RewriteRecord['pieces'] };
  /** Throws when the graph is structurally invalid (after a rewrite: the rule's fault). */
  lint(): void;
}

export interface Dialect<Unit, Context, Replacement> {
  /** Every unit name in the model (fresh names avoid them). */
  names(): Iterable<string>;
  /** The top scope, built anew for each sweep (shapes are re-inferred after rewrites). */
  root(): Scope<Unit, Context, Replacement>;
}

export type KeepHookOf<C> = (candidate: C) => string | null;

export interface DriverOptions<C> {
  /** The backend the model is optimized for, as policies see it. */
  backend?: string;
  /** Consulted after a successful match, before the rewrite: a reason keeps the unit. */
  keep?: KeepHookOf<C>;
  /** Names of rules the user asked for explicitly (the keep hook does not hold them back). */
  forced?: Set<string>;
  reuseWeights?: boolean;
}

/** A rule that keeps matching its own output would loop; no sane pipeline needs this many. */
export const MAX_SWEEPS = 16;

export function runRules<Unit, Context, Replacement, R extends Rule<Unit, Context, unknown, Replacement>>(
  dialect: Dialect<Unit, Context, Replacement>,
  rules: R[],
  options: DriverOptions<RuleCandidate<Unit, Context, R>> = {},
): PassRun {
  const taken = new Set(dialect.names());
  // Refusals speak of the model's own units: a unit a rewrite made (the Conv2Ds of
  // conv3d-to-conv2d-slices) is not a conv the user has to be told about.
  const own = new Set(taken);
  const freshName = (base: string) => {
    let name = base;
    for (let i = 2; taken.has(name); i++) name = `${base}_${i}`;
    taken.add(name);
    return name;
  };
  const forced = options.forced ?? new Set<string>();
  const rewritten: RewriteRecord[] = [];
  let skipped: SkipRecord[] = [];
  let kept: SkipRecord[] = [];

  const sweep = (scope: Scope<Unit, Context, Replacement>): boolean => {
    let changed = false;
    for (const unit of scope.units()) {
      const nested = scope.nested?.(unit);
      if (nested) {
        changed = sweep(nested) || changed;
        continue;
      }
      const name = scope.nameOf(unit);
      for (const rule of rules) {
        if (!scope.contains(unit)) continue;
        const context = scope.context({
          freshName, backend: options.backend, forced: forced.has(rule.name), reuseWeights: options.reuseWeights,
        });
        if (!rule.appliesTo(unit, context)) continue;
        const result = rule.match(unit, context);
        if ('refusal' in result) {
          if (rule.reportRefusals !== false && own.has(name)) skipped.push({ layer: name, graph: scope.path, pass: rule.name, reason: result.refusal });
          continue;
        }
        const keepReason = options.keep?.({ layer: unit, graph: scope.path, pass: rule, plan: result.plan, context }) ?? null;
        if (keepReason !== null) {
          kept.push({ layer: name, graph: scope.path, pass: rule.name, reason: keepReason });
          break;
        }
        const replacement = rule.rewrite(unit, result.plan, context);
        const { names, absorbed, pieces } = scope.replace(unit, replacement, context);
        try {
          scope.lint();
        } catch (error) {
          // The input was linted before any rule ran: a broken graph now is the rule's bug.
          throw new Error(`pass ${rule.name} left an invalid graph after rewriting ${scope.path}/${name}: ${(error as Error).message}`);
        }
        rewritten.push({ layer: name, graph: scope.path, pass: rule.name, replacement: names, ...(absorbed?.length ? { absorbed } : {}), ...(pieces ? { pieces } : {}) });
        changed = true;
        break;
      }
    }
    return changed;
  };

  for (let count = 0; ; count++) {
    if (count === MAX_SWEEPS) throw new Error(`passes still rewriting after ${MAX_SWEEPS} sweeps; a pass matches its own output`);
    // Refusals and kept units are those of the last sweep: the state the model ends in.
    skipped = [];
    kept = [];
    if (!sweep(dialect.root())) break;
  }
  return { rewritten, skipped, kept };
}
