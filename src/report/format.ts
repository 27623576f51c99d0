/** The human-readable report: a short before/after table in the spirit of onnx-simplifier. */
import type { Report } from '../pipeline';
import type { VerificationReport } from '../verify/verify';

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  return rows.map((row) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ').trimEnd()).join('\n');
}

const count = (n: number) => n.toLocaleString('en-US');
const bytes = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`);
const sci = (n: number) => (Number.isNaN(n) ? 'NaN' : n === 0 ? '0' : n.toExponential(2));

export function formatReport(report: Report, title: string): string {
  const classes = [...new Set([...Object.keys(report.before.layers), ...Object.keys(report.after.layers)])].sort();
  const changed = classes.filter((name) => (report.before.layers[name] ?? 0) !== (report.after.layers[name] ?? 0));
  const rows = [['layer class', 'before', 'after']];
  for (const name of changed) rows.push([name, count(report.before.layers[name] ?? 0), count(report.after.layers[name] ?? 0)]);
  const unchanged = classes.length - changed.length;
  if (unchanged) rows.push([`(${unchanged} other classes)`, '=', '=']);
  rows.push(['params', count(report.before.params), count(report.after.params)]);
  rows.push(['weights', bytes(report.before.weightBytes), bytes(report.after.weightBytes)]);

  const lines = [title, '', table(rows), ''];
  lines.push(`rewritten: ${report.rewritten.length}`);
  // A chunked sliding conv is replaced by thousands of layers (mindgrab at 256^3: 540 KB of names): the report keeps six.
  const listed = (names: string[]) => (names.length <= 6 ? names.join(', ') : `${names.slice(0, 6).join(', ')} and ${names.length - 6} more (--json lists all)`);
  for (const r of report.rewritten) lines.push(`  ${r.graph}/${r.layer} [${r.pass}] -> ${listed(r.replacement)}`);
  lines.push(`left alone: ${report.skipped.length}`);
  for (const s of report.skipped) lines.push(`  ${s.graph}/${s.layer} [${s.pass}]: ${s.reason}`);
  for (const note of report.notes) lines.push(`note: ${note}`);
  if (report.findings?.length) {
    lines.push(`findings: ${report.findings.length} (the ORIGINAL computes wrong on its target; float64 decides, see docs/accuracy.md)`);
    const rows = [['layer', 'class', 'backend', 'max |diff| vs float64', 'wrong outputs', 'probe']];
    for (const f of report.findings) rows.push([`${f.graph}/${f.layer}`, f.className, f.backend, String(f.maxAbsDiff), `${f.mismatches}/${f.elements}`, `[${f.shape.join(', ')}] x${f.rows}`]);
    lines.push(...table(rows).split('\n').map((line) => `  ${line}`));
  }
  if (report.verification) lines.push('', formatVerification(report.verification));
  return lines.join('\n');
}

/** What was fed, as run: the user's files/arrays or the seeded rows, and the rows per pass. */
export function inputsUsed(v: VerificationReport): string {
  const rows = v.rows ?? v.batch;
  const perPass = v.batchSize !== undefined && v.batchSize < rows ? `, ${v.batchSize} per pass` : '';
  const source = v.inputs ?? `${v.batch} seeded uniform rows (seed ${v.seed})`;
  // Seeded sources already say how many rows; files and arrays do not.
  return /seeded/.test(source) ? `${source}${perPass}` : `${rows} rows of ${source}${perPass}`;
}

export function formatVerification(v: VerificationReport): string {
  const head = `verification ${v.passed ? 'PASSED' : 'FAILED'} on backend ${v.backend}, ${v.device}${v.precision === 'float16' ? ', float16 textures' : ''} ` +
    `(${inputsUsed(v)}, |a-b| <= ${v.atol} + ${v.rtol}*|a|)`;
  const rows = [['output', 'maxAbsDiff', 'maxRelDiff', 'cosine', 'outside tol']];
  for (const o of v.outputs) {
    rows.push([o.name, sci(o.maxAbsDiff), sci(o.maxRelDiff), o.cosine.toFixed(9), `${o.outsideTolerance}`]);
  }
  const lines = [head, ...table(rows).split('\n').map((line) => `  ${line}`)];
  for (const o of v.outputs.filter((output) => !output.passed)) {
    lines.push(`  worst in ${o.name} at [${o.worst.index.join(', ')}]: expected ${o.worst.expected}, got ${o.worst.actual} (tolerance ${sci(o.worst.tolerance)})`);
  }
  for (const reason of v.fallbacks) lines.push(`  (passed over: ${reason})`);
  return lines.join('\n');
}
