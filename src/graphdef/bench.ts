/**
 * Wall-clock comparison of two graph models on the same seeded input: runs interleaved (the
 * order alternating each round) so drift in machine load hits both alike; medians reported.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { BackendRequest, selectBackend } from '../backend/select';
import { summarizeSamples } from '../bench/stats';
import { DEFAULT_POLICY_BATCH } from '../policy/policy';
import type { VerifyInput } from '../verify/inputs';
import { loadGraph, openGraphInputs, runGraph } from './verify';
import { yieldToEventLoop } from '../yield';
import { BrowserSession, isBrowserBackend, withBrowser } from '../browser/session';
import { timeGraphsInPage } from '../bench/page';

export interface GraphBenchmark {
  backend: string;
  device: string;
  batch: number;
  runs: number;
  originalMs: number[];
  rewrittenMs: number[];
  medianOriginalMs: number;
  medianRewrittenMs: number;
  /** medianOriginalMs / medianRewrittenMs. */
  speedup: number;
}

export async function benchmarkGraphArtifacts(
  original: io.ModelArtifacts, rewritten: io.ModelArtifacts,
  options: { backend?: BackendRequest; batch?: number; runs?: number; warmup?: number; seed?: number; inputs?: VerifyInput[] } = {},
): Promise<GraphBenchmark> {
  const request = options.backend ?? 'auto';
  if (isBrowserBackend(request)) return withBrowser(request, {}, (session) => benchInPage(session, original, rewritten, options));
  const backend = await selectBackend(request);
  // Same default as the layers bench and `bench --help` (16 rows), not a 256-row batch that takes minutes on cpu.
  const batch = options.batch ?? DEFAULT_POLICY_BATCH;
  const runs = options.runs ?? 7;
  const models = [await loadGraph(original, 'original'), await loadGraph(rewritten, 'rewritten')];
  // The user's rows (`bench --inputs`, all of them: their leading dimension is the batch) or seeded ones.
  const rows = openGraphInputs(models[0], options.inputs, { batch, seed: options.seed ?? 1234 });
  const feed: tf.NamedTensorMap = {};
  rows.batch(0, rows.rows).forEach((t, i) => (feed[models[0].inputs[i].name] = t));
  rows.close();
  const times: number[][] = [[], []];
  try {
    const once = async (m: number) => {
      await yieldToEventLoop(); // signals (Ctrl-C) get their turn, outside the timed region
      const start = performance.now();
      const outputs = await runGraph(models[m], feed, models[m].outputNodes);
      await Promise.all(outputs.map((t) => t.data()));
      const elapsed = performance.now() - start;
      tf.dispose(outputs);
      return elapsed;
    };
    for (let i = 0; i < (options.warmup ?? 2); i++) for (const m of [0, 1]) await once(m);
    for (let r = 0; r < runs; r++) {
      for (const m of r % 2 ? [1, 0] : [0, 1]) times[m].push(await once(m));
    }
  } finally {
    tf.dispose(Object.values(feed));
    models.forEach((model) => model.dispose());
  }
  return summary(backend, rows.rows, runs, times);
}

function summary(backend: { name: string; device: string }, batch: number, runs: number, times: number[][]): GraphBenchmark {
  const [a, b] = times.map((ms) => summarizeSamples(ms).median);
  return {
    backend: backend.name, device: backend.device, batch, runs,
    originalMs: times[0], rewrittenMs: times[1], medianOriginalMs: a, medianRewrittenMs: b, speedup: a / b,
  };
}

/** The same comparison timed in a browser page; the Node copy of the original gives the signature. */
async function benchInPage(
  session: BrowserSession, original: io.ModelArtifacts, rewritten: io.ModelArtifacts,
  options: { batch?: number; runs?: number; warmup?: number; seed?: number; inputs?: VerifyInput[] },
): Promise<GraphBenchmark> {
  const runs = options.runs ?? 7;
  const model = await loadGraph(original, 'original');
  let feed: tf.Tensor[] = [];
  try {
    const rows = openGraphInputs(model, options.inputs, { batch: options.batch ?? DEFAULT_POLICY_BATCH, seed: options.seed ?? 1234 });
    feed = rows.batch(0, rows.rows);
    rows.close();
    const times = await timeGraphsInPage(session, original, rewritten, feed, runs, options.warmup ?? 2);
    return summary({ name: session.backend, device: session.device }, feed[0].shape[0], runs, times);
  } finally {
    tf.dispose(feed);
    model.dispose();
  }
}
