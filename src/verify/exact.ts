/**
 * The exact check: a tolerance-free test of each rewritten conv on the target backend, for both
 * model formats.
 *
 * The conv alone (its cut-out, src/formats/cutout.ts) and the same after the passes are built
 * with a small-integer kernel and bias instead of the real weights and fed small-integer rows.
 * Every product and partial sum is then an integer of magnitude <= P*a*b + c (P = kernel values
 * per filter, a/b/c = largest |input|, |kernel|, |bias|), chosen below 2^24 (float32) or 2^11
 * (float16 devices), so every summation order is exact and a correct rewrite gives bitwise-equal
 * outputs. A kernel row in the wrong place, a wrong crop or permutation shows as a nonzero
 * difference, on any backend. Each format says how to put integers in its cut-out
 * (src/layers/cutout.ts, src/graphdef/cutout.ts).
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import type { RewriteRecord } from '../core/rule';
import type { CutOut } from '../formats/cutout';
import type { BrowserSession } from '../browser/session';
import { disposeModel, instantiate } from '../formats/load';
import { RunResult, differences, integers, magnitudesFor, mulberry32, runInNode, runInPage } from './integer-probes';
import { convReference, convSpecOf } from './reference';

export { magnitudesFor } from './integer-probes';

/** Which weight of the conv a filled value stands for. */
export type WeightRole = 'kernel' | 'bias';

/** A rewritten conv, captured before the passes ran (its weights are replaced, never read). */
export interface ExactSubject {
  layer: string;
  /** Path of the graph holding the unit, as in the records. */
  graph: string;
  pass: string;
  /** Kernel values per filter (P), or why the conv cannot be checked. */
  patch: number | string;
  hasBias: boolean;
  /** The cut-outs with every weight's values from `fill` (and a linear activation). */
  cutOuts(fill: (role: WeightRole, count: number) => Float32Array): Promise<CutOut[] | string>;
}

export interface ExactCheck {
  layer: string;
  /** Path of the model holding the layer. */
  graph: string;
  /** true: bitwise equal; false: some element differs; null: could not be checked (see reason). */
  exact: boolean | null;
  /** Input shape (no batch) of the probed call, rows fed, elements compared, how many differ. */
  shape?: number[];
  rows?: number;
  elements?: number;
  mismatches?: number;
  maxAbsDiff?: number;
  /** Largest |input|, |kernel|, |bias| drawn, and the bound P*a*b + c on every partial sum. */
  magnitudes?: { input: number; kernel: number; bias: number; bound: number; limit: number };
  reason?: string;
  /**
   * Set when original and rewrite differed and float64 was asked which is right: the rewrite
   * equals float64 exactly and the original is off by this much (it computes wrong here).
   */
  originalMaxAbsDiff?: number;
}

/** Keeps the subjects whose rewrite actually happened (a policy may have kept some convs). */
export function rewrittenSubjects(subjects: ExactSubject[], records: RewriteRecord[]): ExactSubject[] {
  return subjects.filter((subject) => records.some((r) => r.layer === subject.layer && r.graph === subject.graph && r.pass === subject.pass));
}

interface IntegerCutOut {
  cutOut: CutOut;
  input: { data: Float32Array; shape: number[] };
  magnitudes: NonNullable<ExactCheck['magnitudes']>;
}

/** Integer-weight cut-outs of one subject (one per distinct input shape), or why there are none. */
export async function integerCutOuts(subject: ExactSubject, limit: number, rows = 2, seed = 97): Promise<IntegerCutOut[] | string> {
  if (typeof subject.patch === 'string') return subject.patch;
  const patch = subject.patch;
  const m = magnitudesFor(patch, limit);
  if (!m) return `a patch of ${patch} values cannot keep every partial sum below ${limit} with nonzero integers`;
  const rand = mulberry32(seed);
  const cutOuts = await subject.cutOuts((role, count) => integers(count, role === 'kernel' ? m.kernel : m.bias, rand));
  if (typeof cutOuts === 'string') return cutOuts;
  const bias = subject.hasBias ? m.bias : 0;
  return cutOuts.map((cutOut) => {
    const shape = [rows, ...cutOut.shape];
    return {
      cutOut,
      input: { data: integers(shape.reduce((a, b) => a * b, 1), m.input, rand), shape },
      magnitudes: { ...m, bias, bound: patch * m.input * m.kernel + bias, limit },
    };
  });
}

/** Runs the exact check of every subject on the current Node backend, or in `session`. */
export async function runExactChecks(subjects: ExactSubject[], options: { float16: boolean; session?: BrowserSession }): Promise<ExactCheck[]> {
  const limit = options.float16 ? 2 ** 11 : 2 ** 24;
  const checks: ExactCheck[] = [];
  for (const subject of subjects) {
    const where = { layer: subject.layer, graph: subject.graph };
    const probes = await integerCutOuts(subject, limit);
    if (typeof probes === 'string') {
      checks.push({ ...where, exact: null, reason: probes });
      continue;
    }
    for (const { cutOut, input, magnitudes } of probes) {
      const x = tf.tensor(input.data, input.shape, 'float32');
      let staged: string | undefined;
      let a: RunResult;
      let b: RunResult;
      try {
        if (options.session) {
          staged = await options.session.stage([x]);
          a = await runInPage(options.session, cutOut.format, cutOut.original, staged, 'exact-check cut-out');
          b = await runInPage(options.session, cutOut.format, cutOut.rewritten, staged, 'exact-check cut-out');
        } else {
          a = await runInNode(cutOut.format, cutOut.original, x, 'exact-check cut-out');
          b = await runInNode(cutOut.format, cutOut.rewritten, x, 'exact-check cut-out');
        }
      } finally {
        x.dispose();
        if (staged) await options.session!.dispose(staged);
      }
      const sameSize = a.data.length === b.data.length;
      // (NaN counts as a difference; +0 and -0 are equal: a zero's sign depends on the order.)
      const { mismatches, maxAbsDiff } = differences(b.data, a.data);
      // Apart: float64 says which is right. A rewrite equal to it is exact; the original is then wrong here.
      // (A layers cut-out only: the float64 reference reads a LayersModel's conv layer.)
      const reference = sameSize && cutOut.format === 'layers' && mismatches > 0 ? await float64Of(cutOut.original, subject.layer, input) : null;
      if (reference && differences(b.data, reference).mismatches === 0) {
        let originalMaxAbsDiff = 0;
        for (let i = 0; i < reference.length; i++) originalMaxAbsDiff = Math.max(originalMaxAbsDiff, Math.abs(a.data[i] - reference[i]) || 0);
        checks.push({ ...where, exact: true, shape: cutOut.shape, rows: input.shape[0], elements: a.data.length, mismatches: 0, maxAbsDiff: 0, magnitudes, originalMaxAbsDiff,
          reason: `the original differs from float64 by up to ${originalMaxAbsDiff} here; the rewrite equals float64 exactly` });
        continue;
      }
      checks.push({
        ...where,
        exact: sameSize && mismatches === 0,
        shape: cutOut.shape,
        rows: input.shape[0],
        elements: a.data.length,
        mismatches: sameSize ? mismatches : a.data.length,
        maxAbsDiff,
        magnitudes,
        ...(sameSize ? {} : { reason: `output sizes differ: ${a.data.length} vs ${b.data.length}` }),
      });
    }
  }
  return checks;
}

/** The float64 result of the (single) conv layer of `artifacts` on `input`, or null without a reference. */
export async function float64Of(artifacts: io.ModelArtifacts, layerName: string, input: { data: ArrayLike<number>; shape: number[] }): Promise<Float64Array | null> {
  const model = await instantiate(artifacts, 'float64 reference');
  try {
    const spec = convSpecOf(model.getLayer(layerName));
    if ('unavailable' in spec) return null;
    return convReference(spec, input.data, input.shape.slice(1), input.shape[0]).data;
  } finally {
    disposeModel(model);
  }
}

