/**
 * Stable timed decisions. One round of medians flips on a loaded machine (a 1.13x reads 1.07x on
 * the next run), so a timed candidate is decided on a bootstrap interval of its speedup, not on
 * a point estimate: while the interval holds the margin, the candidate is timed again (its
 * samples pooled) up to MAX_ROUNDS or RETIME_BUDGET_MS; if it still holds it, the original is
 * kept. The speedup is the ratio of the summed lower quartiles of the run times: load on a shared
 * machine only ever adds time, so a low quantile tracks the cost of the code better than the
 * median (tools/flip-rate.ts measured 3/40 flipped runs against 6/40 with medians, docs/policy.md).
 * The bootstrap is seeded (mulberry32), so the interval is a function of the samples alone.
 */
import type { CandidateTiming } from './timer';

/**
 * Rounds of timing a candidate gets at most, the first included; and the time after which an
 * unsure candidate gets no further round. Small probes (ms per run) get every round, so their
 * interval narrows; a probe that takes seconds per run stops at the budget.
 */
export const MAX_ROUNDS = 8;
export const RETIME_BUDGET_MS = 4000;
export const CONFIDENCE = 0.95;
/** The quantile of each side's run times the speedup compares (0.5 would be the median). */
export const QUANTILE = 0.25;
const RESAMPLES = 1000;
const SEED = 0x5eed;

/** A real PRNG (not an LCG's low bits): the bootstrap's resampling indices. */
export function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every sample of one probe (one input shape of the candidate) over the rounds so far. */
export interface ProbeSamples {
  /** Calls of the layer that see this shape: its times count this many times. */
  calls: number;
  original: number[];
  rewritten: number[];
}

export interface SpeedupInterval {
  low: number;
  high: number;
  confidence: number;
}

/** QUANTILE of sorted values, interpolated. */
function quantileOf(sorted: ArrayLike<number>): number {
  const at = (sorted.length - 1) * QUANTILE;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
}

/** Summed lower quartiles, each probe weighted by its calls. */
export function totals(probes: ProbeSamples[]): { originalMs: number; rewrittenMs: number } {
  let originalMs = 0;
  let rewrittenMs = 0;
  for (const p of probes) {
    originalMs += p.calls * quantileOf(Float64Array.from(p.original).sort());
    rewrittenMs += p.calls * quantileOf(Float64Array.from(p.rewritten).sort());
  }
  return { originalMs, rewrittenMs };
}

/**
 * Percentile bootstrap of the speedup (summed quantiles, original / rewritten), `RESAMPLES` times. The timers interleave
 * (A B A B ...), so original[i] and rewritten[i] ran back to back under the same machine load:
 * they are resampled as pairs (one index draw for both sides), which keeps that shared load in
 * the ratio instead of counting it twice as noise. Unpaired extras (a side with more runs) are
 * resampled on their own.
 */
export function speedupInterval(probes: ProbeSamples[], confidence = CONFIDENCE, resamples = RESAMPLES, seed = SEED): SpeedupInterval {
  const random = mulberry32(seed);
  // A typed array sorts numerically without a comparator: the bootstrap's hot loop.
  const statistic = (drawn: Float64Array) => quantileOf(drawn.sort());
  const ratios = new Array<number>(resamples);
  const buffers = probes.map((p) => [new Float64Array(p.original.length), new Float64Array(p.rewritten.length)]);
  for (let r = 0; r < resamples; r++) {
    let original = 0;
    let rewritten = 0;
    for (const [k, p] of probes.entries()) {
      const [a, b] = buffers[k];
      const paired = Math.min(a.length, b.length);
      for (let i = 0; i < paired; i++) {
        const at = Math.floor(random() * paired);
        a[i] = p.original[at];
        b[i] = p.rewritten[at];
      }
      for (let i = paired; i < a.length; i++) a[i] = p.original[Math.floor(random() * a.length)];
      for (let i = paired; i < b.length; i++) b[i] = p.rewritten[Math.floor(random() * b.length)];
      original += p.calls * statistic(a);
      rewritten += p.calls * statistic(b);
    }
    ratios[r] = original / rewritten;
  }
  ratios.sort((a, b) => a - b);
  const tail = (1 - confidence) / 2;
  const at = (q: number) => ratios[Math.min(resamples - 1, Math.max(0, Math.round(q * (resamples - 1))))];
  return { low: at(tail), high: at(1 - tail), confidence };
}

/** 'unsure' while the interval holds the margin. */
export function verdictOf(interval: SpeedupInterval, margin: number): 'rewrite' | 'keep' | 'unsure' {
  if (interval.low >= margin) return 'rewrite';
  if (interval.high < margin) return 'keep';
  return 'unsure';
}

/** One round: the timing of each probe of a candidate, with the calls it stands for. */
export type Round = () => Promise<{ calls: number; timing: CandidateTiming }[]>;

export interface StableTiming {
  decision: 'rewrite' | 'keep';
  originalMs: number;
  rewrittenMs: number;
  speedup: number;
  /** Absent when the timer gave medians only (an injected timer): then the point estimate decides. */
  interval?: SpeedupInterval;
  rounds: number;
  /** false: the interval still held the margin after the last round, so the original is kept. */
  settled: boolean;
  /** Batches the timer used (it may time a smaller one than asked to stay within its budget). */
  batches: number[];
}

/**
 * Times a candidate until its interval clears the margin (either side) or the rounds run out.
 * A timer that returns no samples is taken at its word: one round, its medians decide.
 */
export async function timeUntilSettled(round: Round, margin: number, maxRounds = MAX_ROUNDS, budgetMs = RETIME_BUDGET_MS): Promise<StableTiming> {
  const pooled: ProbeSamples[] = [];
  const started = performance.now();
  const batches = new Set<number>();
  for (let rounds = 1; ; rounds++) {
    const timings = await round();
    for (const [i, { calls, timing }] of timings.entries()) {
      if (!(timing.originalMs > 0 && timing.rewrittenMs > 0)) throw new Error(`the timer returned ${JSON.stringify({ originalMs: timing.originalMs, rewrittenMs: timing.rewrittenMs })}`);
      if (timing.batch !== undefined) batches.add(timing.batch);
      const original = timing.samples?.original ?? [timing.originalMs];
      const rewritten = timing.samples?.rewritten ?? [timing.rewrittenMs];
      if (!timing.samples || original.length === 0 || rewritten.length === 0) {
        // Medians only: nothing to build an interval from.
        const total = totals(timings.map((t) => ({ calls: t.calls, original: [t.timing.originalMs], rewritten: [t.timing.rewrittenMs] })));
        const speedup = total.originalMs / total.rewrittenMs;
        return { ...total, speedup, decision: speedup >= margin ? 'rewrite' : 'keep', rounds, settled: true, batches: [...batches] };
      }
      pooled[i] ??= { calls, original: [], rewritten: [] };
      // Only a round's pairs are pooled, so original[i] and rewritten[i] stay back-to-back runs.
      const paired = Math.min(original.length, rewritten.length);
      pooled[i].original.push(...original.slice(0, paired));
      pooled[i].rewritten.push(...rewritten.slice(0, paired));
    }
    const interval = speedupInterval(pooled);
    const verdict = verdictOf(interval, margin);
    if (verdict !== 'unsure' || rounds >= maxRounds || performance.now() - started > budgetMs) {
      const total = totals(pooled);
      return {
        ...total, speedup: total.originalMs / total.rewrittenMs, interval, rounds,
        decision: verdict === 'rewrite' ? 'rewrite' : 'keep', settled: verdict !== 'unsure', batches: [...batches],
      };
    }
  }
}

const x = (value: number) => `${value.toFixed(2)}x`;

/** "1.15x, 95% interval 1.12x-1.19x over 2 rounds" */
export function describeInterval(t: Pick<StableTiming, 'speedup' | 'interval' | 'rounds'>): string {
  if (!t.interval) return x(t.speedup);
  const rounds = t.rounds === 1 ? '1 round' : `${t.rounds} rounds`;
  return `${x(t.speedup)}, ${Math.round(t.interval.confidence * 100)}% interval ${x(t.interval.low)}-${x(t.interval.high)} over ${rounds}`;
}

/** The verdict's words for a reason line. */
export function describeVerdict(t: Pick<StableTiming, 'decision' | 'settled' | 'interval' | 'rounds'>, margin: number): string {
  if (!t.settled) return `the interval still holds the ${margin}x margin after ${t.rounds} round${t.rounds === 1 ? '' : 's'}: kept (too close to call)`;
  if (t.decision === 'rewrite') return `>= ${margin}x`;
  return `below the ${margin}x margin`;
}
