/**
 * Numerical check of a graph-model rewrite: both models are loaded by stock tfjs
 * (tf.loadGraphModel(tf.io.fromMemory(...))), fed the same rows (the user's, or seeded ones)
 * on the selected backend a batch at a time, and every output compared with compareOutputs.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { InputError, oneLine } from '../errors';
import type { BrowserSession } from '../browser/session';
import { OriginalModelError, TargetName } from '../backend/select';
import { loadGraph, runGraph } from '../formats/load';
import { MetricsAccumulator, OutputMetrics } from './compare';
import { InputSet, InputShapes, openInputs } from './inputs';
import {
  DEFAULT_ACCURACY_FACTOR, LayerCheck, LayersVerifyOptions, Target, onBackends, runHeader, runSettings, targetTolerance, VerificationReport, VerifyOptions,
} from './verify';
import { GraphDefTaps, planGraphDefTaps } from './graphdef-taps';
import { runExactChecks } from './exact';
import { yieldToEventLoop } from '../yield';
import { RowPacer, StepTimer } from './pacing';

/** An output that does not keep the rows on axis 0, so passes cannot be stitched. */
class BatchAxisError extends InputError {}

/**
 * The input rows for a graph model, through the layers verifier's reader (.npy files, arrays,
 * tensors or seeded rows). That reader looks only at each input's name, shape and dtype, which
 * a graph model's signature gives too (with -1, not null, for unknown sizes).
 */
export function openGraphInputs(
  model: tf.GraphModel, inputs: VerifyOptions['inputs'], generated: { batch: number; seed: number; shapes?: InputShapes },
): InputSet {
  // Unknown rank stays null: user rows of any rank feed it, generated ones need --input-shape.
  const signature = model.inputs.map((input) => ({ name: input.name, dtype: input.dtype, shape: input.shape?.map((d) => (d < 0 ? null : d)) ?? null }));
  return openInputs({ inputs: signature } as unknown as tf.LayersModel, inputs, generated);
}

type Values = { data: Float32Array; shape: number[] }[];

/** A graph model in this process, or also loaded in a browser page (`page` = its id there). */
interface Loaded {
  model: tf.GraphModel;
  page?: { session: BrowserSession; id: string };
}

/**
 * Runs `model` on rows [start, start + count): every output, then the extra `taps`. A tfjs error
 * while running the ORIGINAL model (`original` set) is the model's problem on that backend.
 */
async function runRows(loaded: Loaded, rows: InputSet, start: number, count: number, taps: string[], original?: TargetName): Promise<Values> {
  const { model, page } = loaded;
  const tensors = rows.batch(start, count);
  const feed: tf.NamedTensorMap = {};
  model.inputs.forEach((input, i) => (feed[input.name] = tensors[i]));
  let outputs: tf.Tensor[] = [];
  let staged: string | undefined;
  try {
    let values: { shape: number[]; data: ArrayLike<number> }[];
    try {
      if (page) {
        staged = await page.session.stage(tensors);
        values = await page.session.run(page.id, staged, undefined, [...model.outputNodes, ...taps]);
      } else {
        outputs = await runGraph(model, feed, [...model.outputNodes, ...taps]);
        values = await Promise.all(outputs.map(async (t) => ({ shape: t.shape, data: await t.data() })));
      }
    } catch (error) {
      // A browser page's errors are left as they are (the page itself may have failed).
      if (original === undefined || page) throw error;
      throw new OriginalModelError(original, oneLine(error));
    }
    return values.map((t, o) => {
      // Batches are stitched along axis 0: an output without the batch there cannot be.
      if (o < model.outputNodes.length && count !== rows.rows && t.shape[0] !== count) {
        throw new BatchAxisError(`output ${model.outputNodes[o]} has shape ${JSON.stringify(t.shape)}, not ${count} rows first; use a batch size >= ${rows.rows}`);
      }
      return { shape: t.shape, data: t.data instanceof Float32Array ? t.data : Float32Array.from(t.data) };
    });
  } finally {
    tf.dispose([...tensors, ...outputs]);
    if (staged) await page!.session.dispose(staged);
  }
}

/**
 * The graph-model run of the one verification (src/verify/verify.ts): the same settings, backend
 * loop (`backend: 'all'`), end-to-end metrics and per-layer float64 check (LayerCheck), with
 * tf.loadGraphModel in place of tf.loadLayersModel and node names as taps.
 */
export async function verifyGraphArtifacts(
  original: io.ModelArtifacts, rewritten: io.ModelArtifacts, options: LayersVerifyOptions = {},
): Promise<VerificationReport> {
  // Planned once, from the artifacts: the same taps on every backend.
  const { probes, notes } = planGraphDefTaps(original, rewritten, options.rewrittenLayers);
  return onBackends(options, (target) => runOn(target, original, rewritten, options, probes, notes));
}

async function runOn(
  target: Target, original: io.ModelArtifacts, rewritten: io.ModelArtifacts, options: LayersVerifyOptions,
  probes: GraphDefTaps[], planNotes: string[],
): Promise<VerificationReport> {
  const backend = target.info;
  const { session } = target;
  const settings = runSettings(options);
  const { batch, seed, batchSize } = settings;
  const { atol, rtol, note } = targetTolerance(target, settings);
  const factor = options.accuracyFactor ?? DEFAULT_ACCURACY_FACTOR;
  const models: tf.GraphModel[] = [];
  const loaded: Loaded[] = [];
  let rows: InputSet | undefined;
  try {
    // In a browser the Node copies give the signature; the page computes.
    models.push(await loadGraph(original, 'original'));
    models.push(await loadGraph(rewritten, 'rewritten'));
    const [before, after] = models;
    for (const [i, artifacts] of [original, rewritten].entries()) {
      loaded.push({ model: models[i], page: session ? { session, id: await session.load('graph', artifacts, i ? 'rewritten' : 'original') } : undefined });
    }
    const names = (m: tf.GraphModel) => `inputs [${m.inputNodes.join(', ')}], outputs [${m.outputNodes.join(', ')}]`;
    if (names(before) !== names(after)) throw new InputError(`the models differ: ${names(before)} vs ${names(after)}`);
    rows = openGraphInputs(before, options.inputs, { batch, seed, shapes: options.inputShapes });
    const n = before.outputNodes.length;
    // Original taps: [input, output] per probe after the outputs; rewritten: the output per probe.
    const checks = probes.map((p, i) => new LayerCheck({ ...p.probe, original: [{ input: n + 2 * i, output: n + 2 * i + 1 }], rewritten: [n + i] }));
    const tapsA = probes.flatMap((p) => [p.input, p.output]);
    const tapsB = probes.map((p) => p.output);
    // Compared batch by batch as they come (memory bounded by --batch-size, as for layers).
    let accumulators: MetricsAccumulator[] = [];
    /** Outputs of the original with a nonzero value somewhere (a backend bug can zero one). */
    const nonZero = new Set<number>();
    const pacer = new RowPacer(batchSize);
    let whole = false;
    for (let start = 0, count = 0; start < rows.rows; start += count) {
      count = whole ? rows.rows : pacer.next(rows.rows - start);
      // Between forward passes, signals (Ctrl-C) and aborts get their turn (see src/yield.ts);
      // the pacer keeps each synchronous step short enough for that to be within a second.
      await yieldToEventLoop(options.signal);
      const timer = new StepTimer();
      let expected: Awaited<ReturnType<typeof runRows>>;
      try {
        expected = await runRows(loaded[0], rows, start, count, tapsA, backend.name);
      } catch (error) {
        // An output without the batch axis first cannot be split into passes: all rows in one
        // pass, when --batch-size allows it.
        if (!(error instanceof BatchAxisError)) {
          // The original model as given cannot run in this process (an op tfjs loads but has no
          // kernel for, e.g. a _FusedConv2D with a fused Tanh): the model's problem, not ours.
          // A browser page's errors are left as they are (the page itself may have failed).
          if (error instanceof InputError || loaded[0].page) throw error;
          throw new InputError(`stock tfjs cannot run the original graph model: ${oneLine(error)}`);
        }
        if (start !== 0 || whole || batchSize < rows.rows) throw error;
        whole = true;
        count = 0;
        continue;
      }
      timer.lap();
      await yieldToEventLoop(options.signal);
      timer.restart();
      const actual = await runRows(loaded[1], rows, start, count, tapsB);
      if (start === 0) accumulators = expected.slice(0, n).map((e, o) => new MetricsAccumulator(before.outputNodes[o], e.shape.slice(1), { atol, rtol }));
      for (let o = 0; o < n; o++) {
        const [e, a] = [expected[o], actual[o]];
        if (e.shape.join() !== a.shape.join()) {
          throw new InputError(`output ${before.outputNodes[o]}: shape ${JSON.stringify(e.shape)} vs ${JSON.stringify(a.shape)}`);
        }
        accumulators[o].add(e.data, a.data);
        if (e.data.some((v) => v !== 0)) nonZero.add(o);
      }
      for (const check of checks) {
        timer.lap();
        await yieldToEventLoop(options.signal);
        timer.restart();
        check.add(expected, actual); // a float64 conv per rewritten op: as long as a forward pass
      }
      timer.lap();
      pacer.record(count, timer.slowest);
      options.onProgress?.({ backend: backend.name, done: start + count, total: rows.rows });
    }
    const outputs: OutputMetrics[] = accumulators.map((accumulator) => accumulator.result());
    const layers = checks.map((check) => check.result(factor));
    const zeroed = outputs.filter((o, i) => !o.passed && !nonZero.has(i)).map((o) => o.name);
    const notes = [
      ...(note ? [note] : []),
      // Seen with tfjs 4.22's WebGPU backend: BiasAdd on a rank-5 tensor (a converted Conv3D) fails
      // to compile its shader (WGSL has no vec5) and returns zeros; the rewrite's 2-D ops do not.
      ...(zeroed.length ? [`the original model returns only zeros for ${zeroed.join(', ')} on ${backend.name}: the original, not the rewrite, is wrong there${backend.name === 'webgpu' ? ' (tfjs 4.22 WebGPU: BiasAdd on rank-5 tensors, WGSL vec5)' : ''}`] : []),
      ...planNotes,
    ];
    const exact = options.exactSubjects ? await runExactChecks(options.exactSubjects, { float16: session?.float16 ?? false, session }) : undefined;
    if (!exact && probes.length) notes.push('exact integer check not run: it re-applies the passes to each conv, which optimize does (verify compares two given models)');
    return {
      passed: outputs.every((output) => output.passed) && layers.every((l) => l.passed) && (exact ?? []).every((e) => e.exact !== false),
      ...runHeader(target, settings, rows),
      accuracyFactor: factor,
      outputs,
      layers,
      ...(exact ? { exact } : {}),
      notes,
    };
  } finally {
    rows?.close();
    models.forEach((model) => model.dispose());
    for (const { page } of loaded) if (page) await page.session.dispose(page.id);
  }
}
