/**
 * Jest matcher for users' own tests:
 *
 *   import 'tfjs-rewrite/jest';
 *   await expect(rewritten).toComputeLike(original, { inputs: ['patches.npy'], atol: 1e-5, rtol: 1e-4 });
 *
 * Both sides are anything verify() takes (a model.json path, a tf.LayersModel, ModelArtifacts).
 * It runs the same check as `tfjs-rewrite verify` and, on failure, names the output, its worst
 * element and the tolerance (or the rewritten layer that lost accuracy).
 */
import './backend/tfjs';
import { verify } from './pipeline';
import type { ModelSource } from './io/source';
import type { LayersVerifyOptions, VerificationReport } from './verify/verify';

export type ComputeLikeOptions = Omit<LayersVerifyOptions, 'onProgress' | 'moduleLoader'>;

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace jest {
    interface Matchers<R> {
      /** Verifies the received (rewritten) model against `original`; await it. */
      toComputeLike(original: ModelSource, options?: ComputeLikeOptions): Promise<R>;
    }
  }
}

const g = (n: number) => (Number.isNaN(n) ? 'NaN' : n === 0 ? '0' : Math.abs(n) >= 1e-3 && Math.abs(n) < 1e4 ? String(Number(n.toPrecision(6))) : n.toExponential(3));

/** The failure (or, for .not, success) explanation: one line per finding. */
export function describeVerification(report: VerificationReport): string {
  const lines = [`on backend ${report.backend} (${report.device}), ${report.rows ?? report.batch} rows of ${report.inputs ?? 'seeded inputs'}, ` +
    `tolerance |a-b| <= ${report.atol} + ${report.rtol}*|a|:`];
  for (const o of report.outputs) {
    const w = o.worst;
    const size = o.shape.reduce((a, b) => a * b, 1);
    const where = `worst at [${w.index.join(', ')}]: expected ${g(w.expected)}, got ${g(w.actual)} (|diff| ${g(Math.abs(w.expected - w.actual))} vs tolerance ${g(w.tolerance)})`;
    lines.push(o.passed
      ? `  output ${o.name}: all ${size} elements within tolerance (maxAbsDiff ${g(o.maxAbsDiff)}, cosine ${o.cosine.toFixed(9)}); ${where}`
      : `  output ${o.name}: ${o.outsideTolerance} of ${size} elements outside tolerance (maxAbsDiff ${g(o.maxAbsDiff)}, maxRelDiff ${g(o.maxRelDiff)}, cosine ${o.cosine.toFixed(9)}); ${where}`);
  }
  for (const l of report.layers ?? []) {
    lines.push(`  layer ${l.layer} vs float64: replacement max error ${g(l.rewritten.maxAbsError)} (mean ${g(l.rewritten.meanAbsError)}), ` +
      `original ${g(l.original.maxAbsError)} (mean ${g(l.original.meanAbsError)}): mean ratio ${g(l.ratio)} ${l.passed ? '<=' : '>'} limit ${g(l.limit)}`);
  }
  for (const e of report.exact ?? []) {
    if (e.exact === false) lines.push(`  layer ${e.layer} is not exact on integer data: ${e.mismatches} of ${e.elements} elements differ (max ${g(e.maxAbsDiff ?? NaN)})`);
  }
  for (const note of report.notes ?? []) lines.push(`  note: ${note}`);
  return lines.join('\n');
}

const matchers = {
  async toComputeLike(this: jest.MatcherContext, received: ModelSource, original: ModelSource, options: ComputeLikeOptions = {}) {
    const report = await verify(original, received, options);
    const head = `expect(rewritten)${this.isNot ? '.not' : ''}.toComputeLike(original)`;
    return {
      pass: report.passed,
      message: () => `${head}: the models ${report.passed ? 'agree' : 'differ'} ${describeVerification(report)}`,
    };
  },
};

const jestExpect = (globalThis as { expect?: { extend(m: object): void } }).expect;
if (!jestExpect || typeof jestExpect.extend !== 'function') {
  throw new Error("tfjs-rewrite/jest must be imported inside a jest test run (no global 'expect' found)");
}
jestExpect.extend(matchers);
