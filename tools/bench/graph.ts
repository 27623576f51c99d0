/**
 * Graph-model rows of `npm run bench`: tensorflowjs_converter-style graphs (built by the
 * deterministic generator) before and after conv3d-to-dense, timed by stock tfjs
 * GraphModel.execute, interleaved, medians.
 */
import type { io } from '@tensorflow/tfjs';
import { buildPatchEmbed, graphFixture } from '../../fixtures/graph-models';
import type { TargetName } from '../../src/backend/select';
import { benchModel } from '../../src/pipeline/bench';

export interface GraphRow {
  case: string;
  backend: TargetName;
  batch: number;
  originalMs: number;
  rewrittenMs: number;
  speedup: number;
}

const GRAPH_CASES: { name: string; batch: number; build: () => io.ModelArtifacts }[] = [
  // The converter's form of the Qwen3-VL patch embed: [N,1536] -> Conv3D 2x16x16 -> 1152, BiasAdd.
  { name: 'graph qwen3vl-patch-embed', batch: 256, build: () => buildPatchEmbed({ temporal: 2, patch: 16, filters: 1152, seed: 2002 }) },
  { name: 'graph tubelet-remainder', batch: 4, build: () => graphFixture('graph-tubelet-remainder').build() },
];

export async function runGraphCases(backends: TargetName[], log: (line: string) => void, quick = false): Promise<GraphRow[]> {
  const rows: GraphRow[] = [];
  for (const spec of GRAPH_CASES) {
    const original = spec.build();
    for (const backend of backends) {
      log(`timing ${spec.name} / ${backend} / batch ${spec.batch}`);
      // Every correct rewrite (policy always), as the layers rows: the rewrite itself is timed.
      const runs = quick ? 1 : 3;
      const { measurement: m } = await benchModel(original, { backend, batch: spec.batch, policy: 'always', timing: { warmup: 1, minReps: runs, maxReps: runs, budgetMs: 0 } });
      rows.push({ case: spec.name, backend, batch: spec.batch, originalMs: m.original!.median, rewrittenMs: m.rewritten.median, speedup: m.speedup! });
    }
  }
  return rows;
}

export function graphTable(rows: GraphRow[]): string {
  return [
    '| graph model | backend | batch | original ms | rewritten ms | speedup |',
    '|---|---|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.case} | ${r.backend} | ${r.batch} | ${r.originalMs.toFixed(1)} | ${r.rewrittenMs.toFixed(1)} | ${r.speedup.toFixed(1)}x |`),
  ].join('\n');
}
