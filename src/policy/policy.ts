/**
 * The rewrite policy: the one place that decides "correct, but not worth it on this backend".
 * A pass's `match` only answers "is it correct"; the driver offers every match to the keep hook
 * built here before anything is rewritten, and every decision quotes its evidence.
 *
 * Modes:
 * - auto (default): a candidate the table vouches for (TABLE: a Conv3D whose replacement is
 *   Reshape + Dense alone, big enough, on wasm) is rewritten on the table's word; every
 *   other one is timed on the target backend (the conv alone vs its replacement alone, at the
 *   policy batch, interleaved, medians) and rewritten only when at least MIN_SPEEDUP faster.
 * - measure: every candidate is timed; the table is not used.
 * - always: every correct match is rewritten.
 * Passes named by the user (--passes) are never held back. A candidate that cannot be timed is
 * kept: keeping a layer can never make the model slower. A timed candidate is decided on an
 * interval of its speedup, timed again while the interval holds the margin (interval.ts).
 * A decisions file (decisions.ts) replaces all of this by what it recorded; --passes and
 * --policy always still win over it.
 *
 * Written once for both formats: the format adapter (src/pipeline/formats/) hands in the
 * candidates of a dry run, their cut-outs (src/formats/cutout.ts), fingerprints and the
 * table's facts.
 */
import type { BackendInfo } from '../backend/select';
import type { KeepHookOf } from '../core/driver';
import type { CutOut } from '../formats/cutout';
import { pageProbeTimer } from '../bench/page';
import { isBrowserBackend, withBrowser } from '../browser/session';
import { CandidateTiming, TimerChoice, timerFor } from './timer';
import { describeInterval, describeVerdict, timeUntilSettled } from './interval';
import type { PolicyDecision, PolicyMode, PolicyReport } from './types';

export type { PolicyDecision, PolicyMode, PolicyReport } from './types';
import { LoadedDecisions, replayDecisions, replayKey, replayedDecision } from './decisions';
import type { Finding } from '../verify/original-check';

export const POLICY_MODES: PolicyMode[] = ['auto', 'measure', 'always'];

/**
 * Batch the candidates are timed at. Which side wins can depend on it (a patch embed's batch is
 * its patch count), so users should pass their real one; 16 is a middle ground, not a truth.
 */
export const DEFAULT_POLICY_BATCH = 16;

/**
 * A timed rewrite must be at least this much faster. The promise is "never below 0.9x the
 * original"; with this margin, noise on a loaded machine has to skew two interleaved medians by
 * ~20% against each other before a loss passes for a win.
 */
export const MIN_SPEEDUP = 1.1;

/** Where a rewrite wins so clearly that timing it is not worth the seconds. */
export interface TableEntry {
  /** The rule the entry speaks for; absent: any rule producing `replacement`. */
  pass?: string;
  className: string;
  /** What the table says; absent: rewrite. */
  verdict?: 'keep';
  backends: string[];
  /** Layer classes the rewritten subgraph may hold (no crop, no transpose). */
  replacement: string[];
  minMacsPerItem: number;
  /** Where the table comes from, quoted in every decision it makes. */
  source: string;
}

/** Layer classes of a conv3d-to-conv2d-slices replacement (src/rewrite/sliding-conv-layers.ts). */
const SLICES_REPLACEMENT = ['Reshape', 'ZeroPadding2D', 'Cropping2D', 'Conv2D', 'Add', 'Permute', 'Activation'];

export const TABLE: TableEntry[] = [{
  className: 'Conv3D',
  // Not cpu: there both are plain JS loops and run about as fast (table-floor: 130 vs 133 ms).
  backends: ['wasm'],
  replacement: ['Reshape', 'Dense'],
  minMacsPerItem: 2 ** 20,
  source: 'Conv3D as Reshape + Dense only (no crop, no transpose), >= 1M multiply-adds per item, on wasm: ' +
    'tfjs-backend-wasm runs Conv3D as scalar loops, the Dense as one XNNPACK matMul; npm run bench checks it ' +
    '(qwen3vl patch embed >= 40x at 1024 rows, table-floor row >= 0.9x)',
}, {
  pass: 'conv3d-to-conv2d-slices',
  className: 'Conv3D',
  backends: ['wasm'],
  replacement: SLICES_REPLACEMENT,
  minMacsPerItem: 2 ** 20,
  source: 'sliding Conv3D as Conv2Ds over depth slices, >= 1M multiply-adds per item, on wasm: tfjs-backend-wasm runs ' +
    'Conv3D as scalar loops and Conv2D on XNNPACK (measured 37x on [16,48,48,16] 3x3x3, issue 18); npm run bench checks it ' +
    '(meshnet-38-default: >= 20x end to end with default settings; meshnet-38 and c3d-block rows time the rewrite)',
}, {
  pass: 'conv3d-to-conv2d-slices',
  className: 'Conv3D',
  verdict: 'keep',
  // cpu runs Conv3D and Conv2D as the same plain JS loops; the views and the sum only add.
  backends: ['cpu'],
  replacement: SLICES_REPLACEMENT,
  minMacsPerItem: 0,
  source: 'sliding Conv3D on cpu: tfjs-backend-cpu runs Conv3D and Conv2D as the same JS loops, so the depth sum ' +
    'only adds views and copies (measured 0.74x, issue 18); npm run bench checks the kept model (--policy always rows time the rewrite)',
}];

/** What the table needs to know of a candidate, whatever its dialect. */
export interface TableFacts {
  /** The rule whose replacement this is. */
  pass?: string;
  className: string;
  macsPerItem: number;
  /** Layer classes of the replacement (a graph plan's view steps map to Reshape/Permute/Cropping2D). */
  replacement: string[];
}

export function tableEntryFor(facts: TableFacts[], backend: string): TableEntry | undefined {
  return TABLE.find((entry) => entry.backends.includes(backend) && facts.length > 0 && facts.every((f) =>
    (entry.pass === undefined || entry.pass === f.pass) && f.className === entry.className && f.macsPerItem >= entry.minMacsPerItem && f.replacement.every((c) => entry.replacement.includes(c))));
}


/** The rule for a timed candidate: rewrite only when clearly faster; anything else keeps the layer. */
export function decide(timing: CandidateTiming, minSpeedup = MIN_SPEEDUP): 'rewrite' | 'keep' {
  return timing.originalMs >= minSpeedup * timing.rewrittenMs ? 'rewrite' : 'keep';
}

export interface PolicyOptions {
  mode?: PolicyMode;
  /** The target backend, already selected (optimize resolves `auto` first). */
  backend: BackendInfo;
  batch?: number;
  /** Replaces the in-process timer, for every backend or per backend name. */
  timer?: TimerChoice;
  /** inspect: decide what the table can, time nothing (no tensors are touched). */
  dryRun?: boolean;
  /** Progress lines (stderr in the CLI). */
  log?: (line: string) => void;
  /** Decisions to replay instead of deciding (src/policy/decisions.ts): nothing is timed. */
  decisions?: LoadedDecisions;
  /** Layers the original computes wrong on this backend: their rewrite is kept whatever its timing. */
  findings?: Finding[];
}

/** What the policy needs to know of a dry run's candidate, whatever its format. */
export interface PolicyCandidate {
  layer: string;
  graph: string;
  pass: string;
  /** Named by the user (--passes): never held back. */
  forced: boolean;
  /** A clean-up rule (quiet about refusals): not judged. */
  quiet: boolean;
}

/** The candidates of one model and how to cut each out, from the format adapter. */
export interface PolicySubject<C> {
  /** Every match the passes make now (a dry run: nothing rewritten). */
  candidates: C[];
  describe(candidate: C): PolicyCandidate;
  /** The candidate's cut-outs (one per distinct input shape), or why it has none. */
  cutOuts(candidate: C): Promise<CutOut[] | string>;
  /** The table's facts about a candidate, when the format can say them. */
  facts(candidate: C, cutOuts: CutOut[]): TableFacts[] | undefined;
  /** What a decisions file checks the candidate against (src/policy/fingerprint.ts). */
  fingerprint(candidate: C): string;
  /** Names of the passes run (a decisions file records them). */
  passes: string[];
}

const ms = (value: number) => (value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2));
const keyOf = (graph: string, layer: string, pass: string) => `${graph}/${layer}/${pass}`;

/**
 * Decides every candidate of the dry run (timing those that need it) and returns the keep hook
 * for the real run plus the report.
 */
export async function decidePolicy<C>(subject: PolicySubject<C>, options: PolicyOptions): Promise<{ keep: KeepHookOf<C>; report: PolicyReport }> {
  const name = options.backend.name;
  // webgl/webgpu: the candidates are timed in one headless browser page, unless a timer is given.
  const given = typeof options.timer === 'function' || options.timer?.[name] !== undefined;
  if (isBrowserBackend(name) && !given && !options.dryRun && options.mode !== 'always' && !options.decisions) {
    return withBrowser(name, {}, (session) => decidePolicy(subject, {
      ...options, backend: { ...options.backend, device: session.device }, timer: pageProbeTimer(session),
    }));
  }
  const mode = options.mode ?? 'auto';
  const backend = options.backend.name;
  const batch = options.batch ?? DEFAULT_POLICY_BATCH;
  const timer = timerFor(options.timer, backend);
  const decisions: PolicyDecision[] = [];
  // Clean-up passes (quiet about refusals) only remove view layers: they are not judged.
  const candidates = subject.candidates.filter((candidate) => !subject.describe(candidate).quiet);
  const ids = candidates.map((c) => {
    const { layer, graph, pass } = subject.describe(c);
    return { layer, graph, pass, fingerprint: subject.fingerprint(c) };
  });
  const replayed = options.decisions && replayDecisions(options.decisions, ids, subject.passes, backend);
  for (const [i, candidate] of candidates.entries()) {
    const where = ids[i];
    const facts = subject.describe(candidate);
    const entry = replayed?.get(replayKey(where));
    // Correctness beats speed (and beats a replayed decision): a layer the original computes wrong here is rewritten.
    const finding = options.findings?.find((f) => f.layer === facts.layer && f.graph === facts.graph);
    const decision = finding
      ? { decision: 'rewrite' as const, evidence: 'correctness' as const, reason: `${finding.summary}; correctness beats speed: the rewrite (verified against float64) is kept whatever its timing` }
      : entry && !facts.forced && mode !== 'always'
      ? replayedDecision(entry, options.decisions!.source)
      : await decideOne(subject, candidate, facts, { mode, backend, batch, timer, dryRun: options.dryRun === true });
    decisions.push({ ...where, ...decision });
    options.log?.(`policy: ${facts.graph}/${facts.layer}: ${decision.decision}: ${decision.reason}`);
  }
  const kept = new Map(decisions.filter((d) => d.decision !== 'rewrite').map((d) => [keyOf(d.graph, d.layer, d.pass), d.reason]));
  const judged = new Set(decisions.map((d) => keyOf(d.graph, d.layer, d.pass)));
  const keep: KeepHookOf<C> = (candidate) => {
    const facts = subject.describe(candidate);
    if (facts.forced || facts.quiet || mode === 'always') return null;
    const key = keyOf(facts.graph, facts.layer, facts.pass);
    // A candidate that only appears once others are rewritten was never judged: keep it.
    if (!judged.has(key)) return 'not judged by the policy (it appeared during rewriting); force it with --passes';
    return kept.get(key) ?? null;
  };
  return { keep, report: { mode, backend, device: options.backend.device, batch, minSpeedup: MIN_SPEEDUP, decisions } };
}

type Verdict = Omit<PolicyDecision, 'layer' | 'graph' | 'pass' | 'fingerprint'>;

async function decideOne<C>(
  subject: PolicySubject<C>, candidate: C, facts: PolicyCandidate,
  o: { mode: PolicyMode; backend: string; batch: number; timer: ReturnType<typeof timerFor>; dryRun: boolean },
): Promise<Verdict> {
  if (facts.forced) return { decision: 'rewrite', evidence: 'forced', reason: 'asked for by name (--passes): the policy does not judge it' };
  if (o.mode === 'always') return { decision: 'rewrite', evidence: 'always', reason: '--policy always: every correct match is rewritten' };
  const cutOuts = await subject.cutOuts(candidate);
  if (typeof cutOuts === 'string') return { decision: 'keep', evidence: 'unmeasured', reason: `cannot be timed alone: ${cutOuts}` };
  const table = o.mode === 'auto' ? subject.facts(candidate, cutOuts) : undefined;
  const entry = table ? tableEntryFor(table, o.backend) : undefined;
  if (entry) return { decision: entry.verdict ?? 'rewrite', evidence: 'table', reason: `table: ${entry.source}` };
  if (o.dryRun) {
    return { decision: 'pending', evidence: 'unmeasured', reason: `optimize would time it on ${o.backend} at batch ${o.batch} (the conv alone vs its replacement alone) and rewrite it only if >= ${MIN_SPEEDUP}x faster; inspect touches no tensors` };
  }
  // Later rounds time each cut-out at the batch its first round used, so the samples pool.
  const batches = cutOuts.map(() => o.batch);
  let first = true;
  const round = async () => {
    const timings = [];
    for (const [i, cutOut] of cutOuts.entries()) {
      const timing = await o.timer(cutOut, batches[i], o.backend);
      if (first) batches[i] = timing.batch ?? o.batch;
      timings.push({ calls: cutOut.calls, timing });
    }
    first = false;
    return timings;
  };
  let timed: Awaited<ReturnType<typeof timeUntilSettled>>;
  try {
    timed = await timeUntilSettled(round, MIN_SPEEDUP);
  } catch (error) {
    return { decision: 'keep', evidence: 'unmeasured', reason: `could not time it on ${o.backend}: ${(error as Error).message.split('\n')[0]}` };
  }
  const used = [...new Set(batches)];
  const at = used.length === 1 && used[0] === o.batch ? `batch ${o.batch}` : `batch ${used.join('/')} (${o.batch} asked; the timer keeps a run within its budget)`;
  const cut = cutOuts.find((c) => c.cutOutOf);
  const where = cut ? ` on a [${cut.shape.join(',')}] cut-out of its [${cut.cutOutOf!.join(',')}] input (a conv is the same work everywhere; timing the whole volume would take as long as running it)` : '';
  const evidence = `measured here: ${ms(timed.originalMs)} ms -> ${ms(timed.rewrittenMs)} ms (${describeInterval(timed)}) on ${o.backend} at ${at}${where}`;
  const { decision, originalMs, rewrittenMs, speedup, interval, rounds } = timed;
  return { decision, evidence: 'measured', originalMs, rewrittenMs, speedup, ...(interval ? { interval, rounds } : {}), reason: `${evidence}; ${describeVerdict(timed, MIN_SPEEDUP)}` };
}

/** Human lines for the optimize/inspect report: one per judged candidate. */
export function formatPolicy(report: PolicyReport): string {
  const replayed = report.decisions.find((d) => d.replayed)?.replayed;
  const from = replayed ? `, decisions replayed from ${replayed} (nothing timed)` : '';
  const lines = [`policy ${report.mode} on ${report.backend} (${report.device}), batch ${report.batch}, a timed rewrite must be >= ${report.minSpeedup}x${from}:`];
  const word = { rewrite: 'rewritten', keep: 'KEPT', pending: 'not decided' };
  for (const d of report.decisions) lines.push(`  ${d.graph}/${d.layer} [${d.pass}]: ${word[d.decision]}: ${d.reason}`);
  return lines.join('\n');
}
