/** The bench's markdown table (the shipped `bench` command and the dev harness in tools/bench). */
import type { Measurement } from './measure';
import { formatMs } from './stats';

export interface Row {
  case: string;
  backend: string;
  unit: string;
  measurement: Measurement;
}

export const x = (value: number | null, digits = 2) => (value === null ? 'n/a' : `${value.toFixed(digits)}x`);

export function markdownTable(rows: Row[]): string {
  const head = ['case', 'backend', 'batch', 'original ms', 'rewritten ms', 'subgraph ms', 'bare ms', 'speedup', 'rewritten/bare', 'subgraph/bare'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`];
  for (const { case: name, backend, unit, measurement: m } of rows) {
    lines.push(`| ${[
      name, backend, `${m.batch} ${unit}`, formatMs(m.original ?? undefined), formatMs(m.rewritten), formatMs(m.subgraph ?? undefined),
      formatMs(m.bare ?? undefined), x(m.speedup, 1), x(m.overhead), x(m.subgraphOverhead),
    ].join(' | ')} |`);
  }
  const notes = rows.flatMap((row) => row.measurement.notes.map((note) => `- ${row.case} / ${row.backend} / ${row.measurement.batch}: ${note}`));
  return [...lines, ...(notes.length ? ['', ...notes] : [])].join('\n');
}
