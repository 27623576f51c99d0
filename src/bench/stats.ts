/** Summaries of repeated timings: medians and spread, never means (one GC pause skews a mean). */
import { yieldToEventLoop } from '../yield';

export interface Samples {
  /** Milliseconds, in the order they were taken (warm-up runs excluded). */
  ms: number[];
  median: number;
  min: number;
  max: number;
  /** (max - min) / 2 / median: the half-range as a fraction of the median, 0 for one sample. */
  spread: number;
}

export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
}

export function summarizeSamples(ms: number[]): Samples {
  const sorted = [...ms].sort((a, b) => a - b);
  const median = quantile(sorted, 0.5);
  const min = sorted[0] ?? NaN;
  const max = sorted[sorted.length - 1] ?? NaN;
  return { ms, median, min, max, spread: ms.length > 1 && median > 0 ? (max - min) / 2 / median : 0 };
}

/** One variant to time: `run` performs one repetition and returns its own elapsed ms. */
export interface Runner {
  name: string;
  /** Fixed number of measured repetitions; otherwise derived from the budget. */
  reps?: number;
  /** Overrides InterleaveOptions.warmup (0 for a variant that takes seconds per run). */
  warmup?: number;
  run(): Promise<number>;
}

export interface InterleaveOptions {
  /** Untimed rounds first (kernel set-up, wasm heap growth, caches); the last one estimates cost. */
  warmup: number;
  minReps: number;
  maxReps: number;
  /** Measured time per variant to aim for: slow variants get minReps, fast ones up to maxReps. */
  budgetMs: number;
}

/** Repetitions that fit `budgetMs` at `estimateMs` each, within [minReps, maxReps]. */
export function repsFor(estimateMs: number, options: InterleaveOptions): number {
  const fit = estimateMs > 0 ? Math.floor(options.budgetMs / estimateMs) : options.maxReps;
  return Math.max(options.minReps, Math.min(options.maxReps, fit));
}

/**
 * Runs variants round-robin (A B C A B C ...), so a slow drift of the machine (thermal, other
 * processes) hits every variant alike instead of whichever ran last. A variant with fewer reps
 * drops out of later rounds.
 */
/** One timed run, after letting signals (Ctrl-C) in: outside the timed region. */
async function yieldThen(runner: Runner): Promise<number> {
  await yieldToEventLoop();
  return runner.run();
}

export async function interleave(runners: Runner[], options: InterleaveOptions): Promise<Map<string, Samples>> {
  const estimate = new Map<string, number>();
  const warmups = runners.map((runner) => runner.warmup ?? options.warmup);
  for (let round = 0; round < Math.max(0, ...warmups); round++) {
    for (let i = 0; i < runners.length; i++) if (round < warmups[i]) estimate.set(runners[i].name, await yieldThen(runners[i]));
  }
  const reps = runners.map((runner) => runner.reps ?? (estimate.has(runner.name) ? repsFor(estimate.get(runner.name)!, options) : options.minReps));
  const times = runners.map(() => [] as number[]);
  for (let round = 0; round < Math.max(0, ...reps); round++) {
    for (let i = 0; i < runners.length; i++) if (round < reps[i]) times[i].push(await yieldThen(runners[i]));
  }
  return new Map(runners.map((runner, i) => [runner.name, summarizeSamples(times[i])]));
}

/** Formats a median with its spread, e.g. "132.4 ±3%". */
export function formatMs(samples: Samples | undefined): string {
  if (!samples || samples.ms.length === 0) return 'n/a';
  const digits = samples.median >= 100 ? 0 : samples.median >= 10 ? 1 : 2;
  return `${samples.median.toFixed(digits)} ±${Math.round(samples.spread * 100)}%`;
}
