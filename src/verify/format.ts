/** Human-readable lines for what src/report/format.ts does not show: the float64 layer check. */
import type { VerificationReport } from './verify';

const sci = (n: number) => (Number.isNaN(n) ? 'NaN' : n === 0 ? '0' : n.toExponential(2));

export function formatLayerAccuracy(v: VerificationReport): string {
  const lines: string[] = [];
  if (v.layers?.length) {
    lines.push(`  rewritten layers vs float64 (fail when mean error ratio > limit, factor ${v.accuracyFactor}):`);
    for (const l of v.layers) {
      lines.push(`    ${l.layer}${l.backend ? ` [${l.backend}]` : ''}: original max ${sci(l.original.maxAbsError)} mean ${sci(l.original.meanAbsError)}, ` +
        `replacement max ${sci(l.rewritten.maxAbsError)} mean ${sci(l.rewritten.meanAbsError)}, ratio ${l.ratio.toFixed(2)} ` +
        `(limit ${l.limit.toFixed(2)}) ${l.passed ? 'ok' : 'LESS ACCURATE'}`);
    }
  }
  if (v.exact?.length) {
    lines.push('  exact check (integer kernel, bias and rows; no tolerance: a correct rewrite is bitwise equal):');
    for (const e of v.exact) {
      const where = `    ${e.layer}${e.backend ? ` [${e.backend}]` : ''}${e.shape ? ` input [${e.shape.join(', ')}]` : ''}`;
      if (e.exact === null) lines.push(`${where}: not checked (${e.reason})`);
      else lines.push(`${where}: ${e.exact ? 'exact' : `NOT EXACT, ${e.mismatches} of ${e.elements} elements differ (max ${sci(e.maxAbsDiff ?? NaN)})`}, ` +
        `|x| <= ${e.magnitudes!.input}, |k| <= ${e.magnitudes!.kernel}, |b| <= ${e.magnitudes!.bias}, sums <= ${e.magnitudes!.bound} < ${e.magnitudes!.limit}`);
    }
  }
  for (const run of v.backends ?? []) {
    lines.push('skipped' in run ? `  ${run.backend}: skipped (${run.skipped})` : `  ${run.backend}: ${run.passed ? 'passed' : 'FAILED'} on ${run.device}`);
  }
  for (const note of v.notes ?? []) lines.push(`  note: ${note}`);
  return lines.join('\n');
}
