/**
 * Issue 11's promise, checked: `optimize --backend B` with default settings never hands back a
 * model slower than 0.9x the original on B. One row per case and backend: what the default
 * policy decided (with its evidence), then the original and the returned model timed
 * interleaved at batch 8. The cases are the geometries where an unconditional rewrite loses
 * (crops and transposes of a large input feeding few filters) next to ones where it wins.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import type { BackendName } from '../../src/backend/select';
import { artifactsOfModel } from '../../src/io/files';
import { optimize } from '../../src/pipeline';
import { InterleaveOptions, Samples, interleave } from '../../src/bench/stats';
import { predictRunner } from '../../src/bench/timing';
import { makeInputs } from '../../src/verify/inputs';
import { disposeModel, instantiate } from '../../src/formats/load';
import { MESHNET_38, buildMeshnet, fillDeterministic } from '../../fixtures/models';

export const MIN_RATIO = 0.9;
export const GUARANTEE_BATCH = 8;

export interface GuaranteeCase {
  name: string;
  description: string;
  /** Timed batch, when GUARANTEE_BATCH would take minutes per run (whole volumes). */
  batch?: number;
  build(): tf.LayersModel;
}

function conv3d(name: string, shape: number[], kernel: [number, number, number], filters: number, channelsFirst: boolean, seed: number): tf.LayersModel {
  const input = tf.input({ shape, name: 'clip' });
  const output = tf.layers.conv3d({
    name: 'embed', filters, kernelSize: kernel, strides: kernel, padding: 'valid', dataFormat: channelsFirst ? 'channelsFirst' : 'channelsLast',
  }).apply(input) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: output, name });
  fillDeterministic(model, seed);
  return model;
}

export const GUARANTEE_CASES: GuaranteeCase[] = [
  {
    name: 'remainder-crop',
    description: 'Conv3D 2x4x4 -> 2 on [17,66,67,2]: remainders cropped, one transpose of the whole clip, few filters',
    build: () => conv3d('remainder_crop', [17, 66, 67, 2], [2, 4, 4], 2, false, 8101),
  },
  {
    name: 'channels-first-remainder',
    description: 'Conv3D channels_first 2x4x4 -> 2 on [2,9,34,35]: crop, transposes in and out',
    build: () => conv3d('channels_first_remainder', [2, 9, 34, 35], [2, 4, 4], 2, true, 8102),
  },
  {
    name: 'channels-first',
    description: 'Conv3D channels_first 2x4x4 -> 16 on [3,8,32,32]: no remainder, transposes in and out',
    build: () => conv3d('channels_first', [3, 8, 32, 32], [2, 4, 4], 16, true, 8103),
  },
  {
    name: 'general-tubelet',
    description: 'Conv3D 2x2x2 -> 1 on [16,64,64,1]: a tubelet per 8 voxels, one transpose, one filter',
    build: () => conv3d('general_tubelet', [16, 64, 64, 1], [2, 2, 2], 1, false, 8104),
  },
  {
    name: 'table-floor',
    description: 'Conv3D 1x8x8 -> 2048 on [1,8,8,8]: Reshape + Dense at the table\'s 1M multiply-add floor (not timed by the policy)',
    build: () => conv3d('table_floor', [1, 8, 8, 8], [1, 8, 8], 2048, false, 8105),
  },
  {
    // Issue 18's target: >= 20x end to end on wasm with default settings (targets.ts).
    name: 'meshnet-38-default',
    description: 'MeshNet-shaped segmenter (fixtures MESHNET_38): [38,38,38,1], 9 sliding 3x3x3 convs dilated 1..16, 21 filters, + 1x1x1',
    batch: 1,
    build: () => buildMeshnet(MESHNET_38),
  },
];

export interface GuaranteeRow {
  case: string;
  backend: string;
  batch: number;
  /** e.g. "rewritten (measured here: ...)" or "kept (...)". */
  decision: string;
  rewritten: boolean;
  original: Samples | null;
  returned: Samples | null;
  /** original / returned medians; exactly 1 when nothing was rewritten (the same model). */
  ratio: number;
  pass: boolean;
}

async function timeBoth(original: io.ModelArtifacts, returned: io.ModelArtifacts, timing: InterleaveOptions, batch: number) {
  const models: tf.LayersModel[] = [];
  let inputs: tf.Tensor[] = [];
  try {
    models.push(await instantiate(original, 'original'), await instantiate(returned, 'returned'));
    inputs = makeInputs(models[0], batch);
    const samples = await interleave([predictRunner('original', models[0], inputs), predictRunner('returned', models[1], inputs)], timing);
    return { original: samples.get('original')!, returned: samples.get('returned')! };
  } finally {
    tf.dispose(inputs);
    models.forEach(disposeModel);
  }
}

/** Identical decisions once, with their count (a MeshNet's ten convs share one table reason). */
function summarizeDecisions(lines: string[]): string {
  const counts = new Map<string, number>();
  for (const line of lines) counts.set(line, (counts.get(line) ?? 0) + 1);
  return [...counts].map(([line, n]) => (n > 1 ? `${n}x ${line}` : line)).join('; ') || 'no candidate';
}

export async function runGuarantee(backends: BackendName[], timing: InterleaveOptions, log: (line: string) => void, names?: string[]): Promise<GuaranteeRow[]> {
  const rows: GuaranteeRow[] = [];
  for (const spec of GUARANTEE_CASES.filter((c) => !names || names.includes(c.name))) {
    await tf.setBackend('cpu');
    const model = spec.build();
    const artifacts = await artifactsOfModel(model);
    model.dispose();
    const batch = spec.batch ?? GUARANTEE_BATCH;
    for (const backend of backends) {
      log(`guarantee ${spec.name} / ${backend}: optimize with default settings`);
      const result = await optimize(artifacts, { backend, verify: false });
      const decisions = result.report.policy?.decisions ?? [];
      const rewritten = result.report.rewritten.length > 0;
      const decision = summarizeDecisions(decisions.map((d) => `${d.decision === 'rewrite' ? 'rewritten' : 'kept'} (${d.reason})`));
      if (!rewritten) {
        rows.push({ case: spec.name, backend, batch, decision, rewritten, original: null, returned: null, ratio: 1, pass: true });
        continue;
      }
      log(`guarantee ${spec.name} / ${backend}: timing original vs returned at batch ${batch}`);
      // optimize leaves the caller's backend as it found it: time on the target.
      await tf.setBackend(backend);
      const samples = await timeBoth(artifacts, result.artifacts, timing, batch);
      const ratio = samples.original.median / samples.returned.median;
      rows.push({ case: spec.name, backend, batch, decision, rewritten, ...samples, ratio, pass: ratio >= MIN_RATIO });
    }
  }
  return rows;
}

export function guaranteeTable(rows: GuaranteeRow[]): string {
  const ms = (s: Samples | null) => (s ? s.median.toFixed(s.median >= 100 ? 0 : 2) : '=');
  const lines = [
    '| case | backend | batch | original ms | returned ms | returned speed | check | default policy decided |',
    '|---|---|---:|---:|---:|---:|---|---|',
  ];
  for (const r of rows) {
    const speed = r.rewritten ? `${r.ratio.toFixed(2)}x` : '1x (same model)';
    lines.push(`| ${r.case} | ${r.backend} | ${r.batch} | ${ms(r.original)} | ${ms(r.returned)} | ${speed} | ${r.pass ? 'PASS' : 'FAIL'} | ${r.decision} |`);
  }
  return lines.join('\n');
}
