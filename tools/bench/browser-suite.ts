/**
 * The webgl/webgpu rows of `npm run bench`: the same cases, timed in a headless browser page
 * (bench/page.ts), plus what `--policy measure` decides there. One browser per backend for all
 * cases. Batches are smaller than in Node where the browser renders on the CPU (SwiftShader):
 * the Qwen3-VL original takes ~10 s per run at 256 patches there.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendInfo } from '../../src/backend/select';
import { BrowserBackend, BrowserSession, withBrowser } from '../../src/browser/session';
import { artifactsOfModel } from '../../src/io/files';
import { BENCH_CASES } from './cases';
import { prepare } from '../../src/pipeline/bench';
import { measureInPage, pageProbeTimer } from '../../src/bench/page';
import type { PolicyDecision } from '../../src/policy/policy';
import type { Row } from '../../src/bench/report';
import type { InterleaveOptions } from '../../src/bench/stats';
import { makeInputs } from '../../src/verify/inputs';
import { disposeModel, instantiate } from '../../src/formats/load';

/** Case -> batch in the browser (CPU-rendered on machines without a GPU: keep rows to seconds). */
export const BROWSER_BATCHES: Record<string, number> = {
  'qwen3vl-patch-embed': 256,
  'videomae-tubelet': 1,
  'video-swin-remainder': 1,
  'downsample-1x2x2': 4,
  'audio-conv1d-frontend': 8,
};
const QUICK = ['downsample-1x2x2'];

export interface PolicyRow {
  case: string;
  backend: string;
  batch: number;
  decisions: PolicyDecision[];
}

export interface BrowserSuiteResult {
  rows: Row[];
  policy: PolicyRow[];
  backends: BackendInfo[];
}

export async function runBrowserSuite(
  backends: BrowserBackend[], options: { cases?: string[]; quick: boolean; timing: InterleaveOptions; log(line: string): void },
): Promise<BrowserSuiteResult> {
  const result: BrowserSuiteResult = { rows: [], policy: [], backends: [] };
  const cases = BENCH_CASES.filter((c) => c.name in BROWSER_BATCHES && (!options.cases || options.cases.includes(c.name)) && (!options.quick || QUICK.includes(c.name)));
  for (const backend of backends) {
    await withBrowser(backend, {}, async (session) => {
      result.backends.push({ name: backend, device: session.device, fallbacks: [] });
      for (const benchCase of cases) {
        const batch = options.quick ? Math.min(8, BROWSER_BATCHES[benchCase.name]) : BROWSER_BATCHES[benchCase.name];
        const model = benchCase.build();
        const artifacts = await artifactsOfModel(model);
        model.dispose();
        const prepared = await prepare(artifacts, { passes: benchCase.passes });
        options.log(`timing ${benchCase.name} / ${backend} / ${batch} ${benchCase.unit}`);
        result.rows.push({ case: benchCase.name, backend, unit: benchCase.unit, measurement: await measureCase(session, prepared, batch, options.timing) });
        if (benchCase.name === 'downsample-1x2x2' || benchCase.name === 'qwen3vl-patch-embed') {
          options.log(`policy ${benchCase.name} / ${backend} / batch ${batch}`);
          const { policy } = await prepare(artifacts, { policy: 'measure', backend, policyBatch: batch, policyTimer: pageProbeTimer(session) });
          result.policy.push({ case: benchCase.name, backend, batch, decisions: policy.decisions });
        }
      }
    });
  }
  return result;
}

async function measureCase(session: BrowserSession, prepared: Awaited<ReturnType<typeof prepare>>, batch: number, timing: InterleaveOptions) {
  const original = await instantiate(prepared.original, 'original');
  const inputs = makeInputs(original, batch);
  try {
    return await measureInPage(session, prepared, inputs, timing);
  } finally {
    tf.dispose(inputs);
    disposeModel(original);
  }
}
