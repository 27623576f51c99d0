/**
 * Local verification (issue 19.1): a cost that does not grow with the volume, for fully
 * convolutional models (every layer local and size-preserving: 'same' stride-1 convs,
 * activations, normalization, merges) whose whole check would be long.
 *
 * Convs and their rewrites are local, so:
 *  - each rewritten conv is checked on crops of its REAL input: the original model is rebuilt at
 *    a sub-volume size and run on two corner sub-volumes of the first input row (the volume's
 *    first and last corner, so both borders' padding is exercised); its own tensors at the conv's
 *    input are cropped to the conv's cut-out size (src/formats/cutout.ts: the rule re-applied to
 *    the conv alone at that size), and the original conv and the replacement are both compared
 *    with a float64 conv of the crop (the same gate as the whole check: LayerCheck);
 *  - the end-to-end comparison runs the REWRITTEN MODEL AS WRITTEN (its full size) on the first
 *    row, and compares its outputs with the original's on the two corner regions where a
 *    sub-volume run equals the whole-volume run (the sub-volume minus the receptive reach of
 *    every conv on the far side): budget 1 row, the region sizes in the report;
 *  - the integer probe (src/verify/exact.ts) runs as always, on the same crop-sized cut-outs.
 * docs/accuracy.md says what this guarantees and why it is the guarantee of the whole check.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { reportStage } from '../core/stage';
import { oneLine } from '../errors';
import { disposeModel, instantiate, loadRunnable } from '../formats/load';
import { yieldToEventLoop } from '../yield';
import { noteWasmTrap } from '../workers/health';
import { maxAbsDifference, ulpPerturbed, ulpWeights, withNoiseFloor } from './noise-floor';
import { MetricsAccumulator } from './compare';
import { runExactChecks } from './exact';
import { openInputs } from './inputs';
import { onCpu } from './original-check';
import { ProbeModel } from './probes';
import { convSpecOf } from './reference';
import { DEFAULT_ACCURACY_FACTOR, LayerCheck, LayersVerifyOptions, LocalCutOuts, Target, VerificationReport, runHeader, runSettings, targetTolerance, usesNoiseFloor } from './verify';

/** Multiply-adds per row (all convs, full size) above which `local: 'auto'` checks locally. */
export const LOCAL_MIN_MACS = 2 ** 29;
/** Edge of each corner region compared end to end (positions per spatial axis, at most the volume). */
export const LOCAL_EDGE = 16;

/** Where a local check runs: the plan, from the original model alone. */
export interface LocalPlan {
  /** Spatial sizes of the model input (one row), and of the sub-volume the original runs on. */
  volume: number[];
  subVolume: number[];
  /** Per axis: positions a conv stack reaches below / above an output (sums over every conv). */
  reach: { low: number[]; high: number[] };
  /** Edge of the corner regions compared end to end. */
  region: number[];
  /** Multiply-adds per row of every conv at full size. */
  macs: number;
  /** Multiply-adds of the original's two corner runs (the corner form's cost). */
  cornerMacs: number;
}

/** Layers that compute each position from a window around it (or the position alone). */
const POINTWISE = new Set([
  'InputLayer', 'Activation', 'ReLU', 'LeakyReLU', 'ELU', 'ThresholdedReLU', 'Dropout', 'SpatialDropout1D', 'SpatialDropout2D',
  'SpatialDropout3D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout', 'Add', 'Subtract', 'Multiply', 'Average', 'Maximum', 'Minimum',
]);
const CONVS: Record<string, number> = { Conv1D: 1, Conv2D: 2, Conv3D: 3 };

const product = (dims: number[]) => dims.reduce((a, b) => a * b, 1);
const tuple = (value: unknown, rank: number): number[] => (typeof value === 'number' ? new Array(rank).fill(value) : (value as number[]));

/**
 * The cut-outs a local check can run: those on a crop of the conv's input (the rule re-applied at
 * a smaller size, `cutOutOf`); a rule that builds only the whole-size replacement has none.
 */
export function cropped(cutOuts: LocalCutOuts[]): LocalCutOuts[] {
  return cutOuts.map(({ layer, cutOuts: list }) => ({ layer, cutOuts: list.filter((c) => c.cutOutOf !== undefined) })).filter((c) => c.cutOuts.length > 0);
}

/** Why the model cannot be checked locally, or its plan. */
export function planLocal(model: tf.LayersModel, given: LocalCutOuts[]): LocalPlan | string {
  const cutOuts = cropped(given);
  if (model.inputs.length !== 1) return `${model.inputs.length} model inputs`;
  const shape = model.inputs[0].shape;
  const rank = shape.length - 2;
  if (rank < 1 || shape.slice(1).some((d) => d === null)) return `input shape ${JSON.stringify(shape)} is not a static volume`;
  const volume = shape.slice(1, -1) as number[];
  const low = new Array(rank).fill(0);
  const high = new Array(rank).fill(0);
  let macs = 0;
  for (const layer of model.layers) {
    const className = layer.getClassName();
    const config = layer.getConfig() as Record<string, unknown>;
    const axisLast = (axis: unknown) => axis === -1 || axis === undefined || (Array.isArray(axis) && axis.length === 1 && axis[0] === -1) || axis === rank + 1;
    if (POINTWISE.has(className)) continue;
    if (['BatchNormalization', 'Softmax', 'Concatenate', 'LayerNormalization'].includes(className) && axisLast(config.axis)) continue;
    if (!(className in CONVS)) return `layer ${layer.name} (${className}) is not local`;
    const kernel = tuple(config.kernelSize, rank);
    // A 1x1 kernel reads no neighbour: 'valid' is 'same' there.
    const same = config.padding === 'same' || kernel.every((k) => k === 1);
    if (CONVS[className] !== rank || !same || tuple(config.strides, rank).some((s) => s !== 1) || (config.dataFormat ?? 'channelsLast') !== 'channelsLast') {
      return `layer ${layer.name} is not a 'same' stride-1 channels-last ${rank}-D conv`;
    }
    const dilation = tuple(config.dilationRate ?? 1, rank);
    kernel.forEach((k, a) => {
      const span = dilation[a] * (k - 1);
      low[a] += Math.floor(span / 2);
      high[a] += span - Math.floor(span / 2);
    });
    const kernelWeights = layer.weights.find((w) => /kernel$/.test(w.originalName));
    macs += product(volume) * (kernelWeights ? product(kernelWeights.shape as number[]) : 0);
  }
  for (const output of model.outputs) {
    if (output.shape.length !== rank + 2 || output.shape.slice(1, -1).join() !== volume.join()) return `output ${output.name} ${JSON.stringify(output.shape)} is not aligned with the input volume`;
  }
  // The sub-volume holds the largest crop and a compared region beyond the far reach.
  const crop = (a: number) => Math.max(0, ...cutOuts.flatMap((c) => c.cutOuts.map((cutOut) => cutOut.shape[a])));
  const reachMax = volume.map((_, a) => Math.max(low[a], high[a]));
  const subVolume = volume.map((size, a) => Math.min(size, Math.max(reachMax[a] + LOCAL_EDGE, crop(a))));
  const region = volume.map((size, a) => Math.min(size, subVolume[a] === size ? size : subVolume[a] - reachMax[a]));
  return { volume, subVolume, reach: { low, high }, region, macs, cornerMacs: (2 * macs * product(subVolume)) / product(volume) };
}

/** The artifacts with the model input's spatial sizes set to `spatial` (a fully convolutional model loads at any size). */
export function resized(artifacts: io.ModelArtifacts, spatial: number[]): io.ModelArtifacts {
  const topology = JSON.parse(JSON.stringify(artifacts.modelTopology));
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (node === null || typeof node !== 'object') return;
    for (const [key, value] of Object.entries(node)) {
      if ((key === 'batch_input_shape' || key === 'batch_shape') && Array.isArray(value) && value.length === spatial.length + 2) {
        (node as Record<string, unknown>)[key] = [value[0], ...spatial, value[value.length - 1]];
      } else visit(value);
    }
  };
  visit(topology);
  return { ...artifacts, modelTopology: topology };
}

/**
 * The report when the rewritten model as written cannot run on this target (wasm's heap is 4 GB):
 * it must not be written. After such a failure tfjs's wasm heap may be unusable.
 */
export function notRunnableReport(
  target: Target, settings: ReturnType<typeof runSettings>, rows: ReturnType<typeof openInputs>, factor: number, plan: LocalPlan, error: unknown,
): VerificationReport {
  noteWasmTrap(error);
  const backend = target.info.name;
  const { volume, subVolume, region, reach } = plan;
  return {
    passed: false, ...runHeader(target, settings, rows), rows: 1, accuracyFactor: factor, outputs: [], layers: [],
    local: { rows: 0, of: rows.rows, volume, subVolume, region, reach },
    notes: [`the rewritten model does not run on ${backend} at its size ${volume.join('x')}: ${oneLine(error)}` +
      (backend === 'wasm' ? " (tfjs's wasm heap holds at most 4 GB: a backend with more memory, tensorflow or webgl, or a smaller volume; docs/workers.md)" : '')],
  };
}

/** `x` ([1, ...spatial, C]) cut to [begin, begin + size) on the spatial axes. */
const cut = (x: tf.Tensor, begin: number[], size: number[]) => tf.slice(x, [0, ...begin, 0], [1, ...size, -1]);

/**
 * The local check on one Node target. `plan` comes from planLocal; `cutOuts` are the rewritten
 * convs' cut-outs (their own crop sizes, the real weights).
 */
export async function verifyLocal(
  target: Target, plan: LocalPlan, original: io.ModelArtifacts, rewritten: io.ModelArtifacts, given: LocalCutOuts[], options: LayersVerifyOptions,
): Promise<VerificationReport> {
  const cutOuts = cropped(given);
  const backend = target.info.name;
  const settings = runSettings(options);
  const { atol, rtol } = targetTolerance(target, settings);
  const factor = options.accuracyFactor ?? DEFAULT_ACCURACY_FACTOR;
  const { volume, subVolume, region, reach } = plan;
  const rewrittenNames = new Set((options.rewrittenLayers ?? []).map((r) => r.layer));
  const wrong = (options.originalFindings ?? []).filter((f) => rewrittenNames.has(f.layer));
  // The original is wrong on this backend for a rewritten conv: its side runs on tfjs's cpu.
  const onReference = <T>(fn: () => Promise<T>) => (wrong.length && backend !== 'cpu' ? onCpu(fn) : fn());
  reportStage(`verifying on ${backend} locally: loading the original at ${subVolume.join('x')} and the rewritten model`);
  const models: tf.LayersModel[] = [];
  // After a failed allocation, tfjs's wasm heap may be left unusable: freeing can fail too.
  let failed = false;
  const close = () => {
    try {
      models.forEach(disposeModel);
    } catch (error) {
      if (!failed) throw error;
    }
  };
  try {
    models.push(await instantiate(resized(original, subVolume), 'original (sub-volume)'));
    models.push(await instantiate(rewritten, 'rewritten'));
    const [sub, after] = models;
    const rows = openInputs(after, options.inputs, { batch: settings.batch, seed: settings.seed, shapes: options.inputShapes });
    try {
      // Taps of the sub-volume original: its outputs, then each rewritten conv's input.
      const probe = new ProbeModel(sub);
      const checked = cutOuts.flatMap(({ layer, cutOuts: list }) => {
        const conv = sub.layers.find((l) => l.name === layer);
        if (!conv) return [];
        const spec = convSpecOf(conv);
        if ('unavailable' in spec) return [];
        return [{ layer, list, spec, tap: probe.tap(conv.getInputAt(0) as tf.SymbolicTensor) }];
      });
      const outputNames = after.outputs.map((_, o) => after.outputNames[o] ?? `output_${o}`);
      const accumulators = outputNames.map((name, o) => new MetricsAccumulator(name, [...region, after.outputs[o].shape.at(-1) as number], { atol, rtol }));
      const starts = { low: volume.map(() => 0), high: volume.map((size, a) => size - subVolume[a]) };
      const notes: string[] = [];
      const row = rows.batch(0, 1);
      const taps: { low: tf.Tensor[]; high: tf.Tensor[] } = { low: [], high: [] };
      try {
        reportStage(`verifying on ${backend} locally: row 1 of ${rows.rows}, the rewritten model at ${volume.join('x')}`);
        await yieldToEventLoop(options.signal);
        let full: tf.Tensor | tf.Tensor[];
        try {
          full = after.predict(row[0], { batchSize: 1 }) as tf.Tensor | tf.Tensor[];
        } catch (error) {
          failed = true;
          return notRunnableReport(target, settings, rows, factor, plan, error);
        }
        const fullOutputs = Array.isArray(full) ? full : [full];
        try {
          for (const corner of ['low', 'high'] as const) {
            reportStage(`verifying on ${backend} locally: row 1, the original on the ${corner === 'low' ? 'first' : 'last'} ${subVolume.join('x')} corner`);
            await yieldToEventLoop(options.signal);
            const x = cut(row[0], starts[corner], subVolume);
            try {
              taps[corner] = await onReference(async () => probe.run([x]));
            } finally {
              x.dispose();
            }
            // The compared region: the corner of the volume, where the sub-volume run equals the whole.
            const inSub = corner === 'low' ? volume.map(() => 0) : subVolume.map((s, a) => s - region[a]);
            const inFull = corner === 'low' ? volume.map(() => 0) : volume.map((size, a) => size - region[a]);
            for (let o = 0; o < outputNames.length; o++) {
              const expected = cut(taps[corner][probe.outputs[o]], inSub, region);
              const actual = cut(fullOutputs[o], inFull, region);
              accumulators[o].add(await expected.data(), await actual.data());
              tf.dispose([expected, actual]);
            }
          }
        } finally {
          tf.dispose(fullOutputs);
        }
        options.onProgress?.({ backend, done: 1, total: 1 });
        // Each rewritten conv on crops of its real input: the first corner's first crop, the last corner's last.
        const layers = [];
        for (const { layer, list, spec, tap } of checked) {
          const check = new LayerCheck({ layer, replacement: list[0].replacement, spec, original: [{ input: 0, output: 1 }], rewritten: [0] });
          for (const cutOut of list) {
            reportStage(`verifying on ${backend} locally: ${layer} on crops ${cutOut.shape.slice(0, -1).join('x')} of its input, against float64`);
            await yieldToEventLoop(options.signal);
            const size = cutOut.shape.slice(0, -1);
            const crops = tf.concat([cut(taps.low[tap], size.map(() => 0), size), cut(taps.high[tap], subVolume.map((s, a) => s - size[a]), size)]);
            const [a, b] = [await loadRunnable('layers', cutOut.original, 'cut-out'), await loadRunnable('layers', cutOut.rewritten, 'cut-out')];
            try {
              const [ya] = await onReference(() => a.predict([crops]));
              const [yb] = await b.predict([crops]);
              const input = { data: await crops.data(), shape: crops.shape };
              check.add([input, { data: await ya.data(), shape: ya.shape }], [{ data: await yb.data(), shape: yb.shape }]);
              tf.dispose([ya, yb]);
            } finally {
              a.dispose();
              b.dispose();
              crops.dispose();
            }
          }
          layers.push(check.result(factor));
        }
        const unchecked = [...rewrittenNames].filter((name) => cutOuts.every((c) => c.layer !== name) && (sub.layers.find((l) => l.name === name)?.getClassName() ?? '') in CONVS);
        if (unchecked.length) {
          notes.push(`${unchecked.join(', ')}: no crop-sized replacement (the rule builds the whole-size one only): checked end to end and by the integer probe, not against float64`);
        }
        let outputs = accumulators.map((acc) => acc.result());
        if (usesNoiseFloor(options) && outputs.some((o) => !o.passed)) {
          // How far float32 rounding moves the original here: the first corner, its input and weights moved by 2^-23 relative.
          reportStage(`verifying on ${backend} locally: the original on the first corner with its input and weights moved by one or two ulps (the float32 noise floor)`);
          await yieldToEventLoop(options.signal);
          const x = cut(row[0], starts.low, subVolume);
          const [moved] = ulpPerturbed([x], settings.seed);
          try {
            // On cpu for a wrong original (onReference), its weights stay where they are: input only.
            const runMoved = wrong.length && backend !== 'cpu' ? async () => probe.run([moved]) : () => ulpWeights(sub, settings.seed + 1, async () => probe.run([moved]));
            const [ta, tb] = [await onReference(async () => probe.run([x])), await onReference(runMoved)];
            const floors = [];
            for (const o of probe.outputs) {
              const [e, f] = [cut(ta[o], volume.map(() => 0), region), cut(tb[o], volume.map(() => 0), region)];
              floors.push(maxAbsDifference(await e.data(), await f.data()));
              tf.dispose([e, f]);
            }
            tf.dispose([...ta, ...tb]);
            const judged = withNoiseFloor(outputs, floors, factor);
            outputs = judged.outputs;
            notes.push(...judged.notes);
          } finally {
            tf.dispose([x, moved]);
          }
        }
        if (options.exactSubjects?.length) reportStage(`verifying on ${backend}: exact integer check of ${options.exactSubjects.length} rewritten conv(s)`);
        const exact = options.exactSubjects ? await runExactChecks(options.exactSubjects, { float16: false }) : undefined;
        notes.unshift(
          `local check (${product(volume).toLocaleString('en-US')} positions per row, ${plan.macs.toExponential(2)} multiply-adds): ` +
          `end to end on row 1 of ${rows.rows} (the budget), the rewritten model at its size against the original run on the first and last ` +
          `${subVolume.join('x')} corners of the volume, compared on the ${region.join('x')} corner regions where that equals the whole ` +
          `(receptive reach ${reach.low.join('x')} below, ${reach.high.join('x')} above); each rewritten conv on two crops of its real input ` +
          'against float64 (docs/accuracy.md)',
        );
        if (wrong.length) notes.push(`the original computes wrong on ${backend} (${wrong.map((f) => f.layer).join(', ')}): its side ran on tfjs's cpu backend`);
        return {
          passed: outputs.every((o) => o.passed) && layers.every((l) => l.passed) && (exact ?? []).every((e) => e.exact !== false),
          ...runHeader(target, settings, rows),
          rows: 1,
          accuracyFactor: factor,
          outputs,
          layers,
          ...(exact ? { exact } : {}),
          local: { form: 'corners', rows: 1, of: rows.rows, volume, subVolume, region, reach },
          notes,
        };
      } finally {
        if (!failed) tf.dispose([...row, ...taps.low, ...taps.high]);
      }
    } finally {
      if (!failed) rows.close();
    }
  } finally {
    close();
  }
}

/**
 * The local plan for this verification, or null for the whole check: `local` true asks for it
 * whenever the model allows (else a note says why not), undefined when a row is long (LOCAL_MIN_MACS).
 */
export async function localPlanFor(original: io.ModelArtifacts, options: LayersVerifyOptions): Promise<{ plan: LocalPlan | null; note?: string }> {
  if (options.local === false) return { plan: null };
  const model = await instantiate(original, 'original');
  try {
    const planned = planLocal(model, options.localCutOuts ?? []);
    // The corner form needs a sub-volume smaller than the volume; the column form runs no sub-volume.
    const plan = typeof planned !== 'string' && options.localForm !== 'columns' && planned.subVolume.every((s, a) => s === planned.volume[a])
      ? `the sub-volume a local check needs (${planned.subVolume.join('x')}) is the whole volume` : planned;
    if (typeof plan === 'string') return { plan: null, ...(options.local ? { note: `no local check: ${plan}; the whole volume was checked` } : {}) };
    return { plan: options.local || plan.macs >= LOCAL_MIN_MACS ? plan : null };
  } finally {
    disposeModel(model);
  }
}
