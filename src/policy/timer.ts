/**
 * How the policy times a candidate. A timer is given the candidate's cut-out (the conv alone and
 * its replacement alone, as stock-tfjs model artifacts of either format, see
 * src/formats/cutout.ts), a batch and the backend, and returns median times. The default times
 * them in this process on the current tfjs backend; another runtime (a browser page for webgl/webgpu) plugs in its own timer per backend.
 */
import * as tf from '@tensorflow/tfjs';
import { InterleaveOptions, interleave } from '../bench/stats';
import { runnableRunner } from '../bench/timing';
import type { CutOut } from '../formats/cutout';
import { Runnable, loadRunnable } from '../formats/load';

/** Medians in ms of one run of each subgraph. */
export interface CandidateTiming {
  originalMs: number;
  rewrittenMs: number;
  /** The batch actually timed, when the timer chose a smaller one than asked (time budget). */
  batch?: number;
  /**
   * Every timed run (ms) behind the medians. With them the policy builds an interval of the
   * speedup and times again while it holds the margin (src/policy/interval.ts); without them
   * (a timer that only knows medians) the medians decide in one round.
   */
  samples?: { original: number[]; rewritten: number[] };
}

/**
 * Times one probe at `batch` on `backend`. Must interleave the two sides (A B A B ...) and
 * return medians, so that load on the machine hits both alike. Rejecting means "could not
 * time it here": the policy then keeps the original layer and quotes the message.
 */
export type CandidateTimer = (cutOut: CutOut, batch: number, backend: string) => Promise<CandidateTiming>;

/**
 * Small on purpose: a candidate is one layer, and a model may have dozens. The warm-up run pays
 * kernel set-up and wasm heap growth outside the samples.
 */
export const PROBE_TIMING: InterleaveOptions = { warmup: 1, minReps: 5, maxReps: 15, budgetMs: 400 };
/** Sides slower than this per run get 3 samples, not minReps: the median of 3 still drops one outlier. */
const SLOW_RUN_MS = 1000;
/**
 * A run at the asked batch estimated above this is timed at a smaller batch instead (a VideoMAE
 * tubelet embed takes ~9 s per clip on wasm: 16 clips x 6 runs would be 15 minutes). Big layers
 * are compute-bound, so the ratio holds at the smaller batch; the decision says which was used.
 */
const RUN_BUDGET_MS = 500;

/** Seeded rows of a cut-out's input shape. */
export const cutOutInputs = (cutOut: CutOut, batch: number): tf.Tensor[] => [tf.randomUniform([batch, ...cutOut.shape], -1, 1, 'float32', 7)];

/** The in-process timer: both sides of the cut-out on the current tfjs backend (the policy selects it first). */
export async function tfjsTimer(cutOut: CutOut, batch: number, backend: string, options = PROBE_TIMING): Promise<CandidateTiming> {
  if (tf.getBackend() !== backend) throw new Error(`the current tfjs backend is ${tf.getBackend()}, not ${backend}`);
  const models: Runnable[] = [];
  let inputs: tf.Tensor[] = [];
  try {
    models.push(await loadRunnable(cutOut.format, cutOut.original, 'original cut-out'));
    models.push(await loadRunnable(cutOut.format, cutOut.rewritten, 'rewritten cut-out'));
    // A run of each at batch 1 estimates the cost; the first run also pays kernel set-up, so a
    // cheap one that looks over budget is run again warm before the batch is cut.
    inputs = cutOutInputs(cutOut, 1);
    const estimateOnce = async () => {
      let slowest = 0;
      for (const model of models) slowest = Math.max(slowest, await runnableRunner('estimate', model, inputs).run());
      return slowest;
    };
    let estimate = await estimateOnce();
    if (estimate * batch > RUN_BUDGET_MS && estimate < RUN_BUDGET_MS) estimate = await estimateOnce();
    const used = Math.max(1, Math.min(batch, Math.floor(RUN_BUDGET_MS / Math.max(estimate, 1e-3))));
    tf.dispose(inputs);
    inputs = cutOutInputs(cutOut, used);
    const slow = estimate * used > SLOW_RUN_MS;
    const runners = [runnableRunner('original', models[0], inputs), runnableRunner('rewritten', models[1], inputs)];
    const samples = await interleave(runners, { ...options, minReps: slow ? 3 : options.minReps, warmup: slow && used === 1 ? 0 : options.warmup });
    const [original, rewritten] = [samples.get('original')!, samples.get('rewritten')!];
    return { originalMs: original.median, rewrittenMs: rewritten.median, ...(used !== batch ? { batch: used } : {}), samples: { original: original.ms, rewritten: rewritten.ms } };
  } finally {
    tf.dispose(inputs);
    models.forEach((model) => model.dispose());
  }
}

/** One timer for every backend, or one per backend name; backends without an entry use tfjsTimer. */
export type TimerChoice = CandidateTimer | Partial<Record<string, CandidateTimer>>;

export function timerFor(choice: TimerChoice | undefined, backend: string): CandidateTimer {
  if (typeof choice === 'function') return choice;
  return choice?.[backend] ?? tfjsTimer;
}
