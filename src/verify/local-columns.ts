/**
 * The local check's column form (issue 18), for a fully convolutional model whose receptive reach
 * makes the corner form (local.ts) too long: that form runs the ORIGINAL on corner sub-volumes
 * as wide as the reach, and brainchop's MeshNets reach 155 positions per side, two 171^3 corners
 * of wasm's scalar Conv3D (~0.13 G multiply-adds/s here): well over an hour each.
 *
 * The column form never runs the original model. It runs the rewritten model as written, once,
 * at its size, and while tfjs computes it (before tfjs frees each tensor, so nothing more stays
 * alive) keeps thin columns of every rewritten conv's input and output: the whole first spatial
 * axis (the depth the sliding rewrite chunks and splits into pieces: every seam) by COLUMN_EDGE
 * positions on the other axes, at the low corner, the middle and the high corner (both borders'
 * padding). Then:
 *  - each rewritten conv, as written, on its columns against float64 of the input it read there,
 *    and the original conv (a stock layer with its weights) on the same input on this backend:
 *    the LayerCheck gate of the whole check;
 *  - each link: the original's layers between two convs (position-wise: planLocal admits
 *    nothing else), applied to the upstream conv's output column, against the column the
 *    downstream conv read; the model outputs likewise from the last conv's column. A wiring
 *    fault (a piece in the wrong place, an activation missed or applied twice) fails a link.
 * What it does not measure is how rounding compounds across the stack end to end (the corner
 * form does); docs/accuracy.md.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { reportStage } from '../core/stage';
import { InputError, exitedWorker } from '../errors';
import { disposeModel, instantiate } from '../formats/load';
import { runTaskInFreshThread } from '../workers/pool';
import { yieldToEventLoop } from '../yield';
import { MetricsAccumulator } from './compare';
import { runExactChecks } from './exact';
import { openInputs } from './inputs';
import { LocalPlan, notRunnableReport } from './local';
import { onCpu } from './original-check';
import { LayerProbe, ProbeModel, RewrittenLayer, inferRewrittenLayers, planProbes } from './probes';
import { ConvSpec } from './reference';
import { threadData } from './shards';
import { DEFAULT_ACCURACY_FACTOR, LayerCheck, LayersVerifyOptions, Target, VerificationReport, runHeader, runSettings, targetTolerance } from './verify';

/** Positions of each column across the axes after the first (at most the axis). */
export const COLUMN_EDGE = 4;
/**
 * Multiply-adds of the original's two corner runs above which `local` checks in columns: 2^34,
 * about two minutes of wasm's Conv3D on this machine (a MeshNet at 256^3 needs 7.6e11).
 */
export const LOCAL_CORNER_MAX_MACS = 2 ** 34;

/** How a note (or the fresh thread's error) starts when the column form cannot run. */
export const NO_COLUMNS = 'no check in columns: ';

/** [begin, end) per spatial axis inside the volume, and the zeros beyond it [before, after]. */
interface Window {
  begin: number[];
  end: number[];
  pad: [number, number][];
}

/** A tensor of the rewritten model, or the depth pieces holding one; `whole`: its row shape. */
interface Holder {
  tensors: tf.SymbolicTensor[];
  /** Positions of the first axis in each piece. */
  depths: number[];
  whole: number[];
}

const product = (dims: number[]) => dims.reduce((a, b) => a * b, 1);
const sizes = (w: Window) => w.begin.map((b, a) => w.end[a] - b);
const keyOf = (w: Window) => JSON.stringify(w);

/** The columns: the whole first axis by COLUMN_EDGE on the others, at the low corner, the middle and the high corner. */
export function columnWindows(volume: number[]): Window[] {
  const windows = new Map<string, Window>();
  for (const at of ['low', 'middle', 'high'] as const) {
    const begin = volume.map((size, a) => {
      const edge = Math.min(COLUMN_EDGE, size);
      return a === 0 ? 0 : at === 'low' ? 0 : at === 'middle' ? Math.floor((size - edge) / 2) : size - edge;
    });
    const w: Window = { begin, end: begin.map((b, a) => (a === 0 ? volume[0] : b + Math.min(COLUMN_EDGE, volume[a]))), pad: volume.map(() => [0, 0]) };
    windows.set(keyOf(w), w);
  }
  return [...windows.values()];
}

/** The input window a stride-1 'same' conv reads for output window `w`: clipped to the volume, zeros beyond. */
function expanded(w: Window, spec: ConvSpec, volume: number[]): Window {
  const lows = spec.kernelSize.map((k, a) => Math.floor((spec.dilation[a] * (k - 1)) / 2));
  const highs = spec.kernelSize.map((k, a) => spec.dilation[a] * (k - 1) - lows[a]);
  const begin = w.begin.map((b, a) => b - lows[a]);
  const end = w.end.map((e, a) => e + highs[a]);
  return {
    begin: begin.map((b) => Math.max(0, b)),
    end: end.map((e, a) => Math.min(volume[a], e)),
    pad: begin.map((b, a) => [Math.max(0, -b), Math.max(0, end[a] - volume[a])]),
  };
}

/** `data` (C order, `shape`) cut to [begin, begin + size) on every axis. */
export function cut(data: ArrayLike<number>, shape: number[], begin: number[], size: number[]): Float32Array {
  const out = new Float32Array(product(size));
  if (out.length === 0) return out;
  const strides = shape.map((_, a) => product(shape.slice(a + 1)));
  const last = shape.length - 1;
  let at = 0;
  // Every index of `size` but the last axis, whose run is contiguous.
  const index = new Array<number>(last).fill(0);
  for (;;) {
    let offset = begin[last];
    for (let a = 0; a < last; a++) offset += (begin[a] + index[a]) * strides[a];
    for (let k = 0; k < size[last]; k++) out[at++] = data[offset + k];
    let a = last - 1;
    while (a >= 0 && ++index[a] === size[a]) index[a--] = 0;
    if (a < 0) return out;
  }
}

/** Column values of the holders, cut while tfjs computes the rewritten model. */
class ColumnCollector {
  private readonly entries = new Map<string, { holder: Holder; windows: Window[]; parts: Float32Array[][] }>();
  private readonly byTensor = new Map<number, { key: string; piece: number }[]>();

  request(holder: Holder, w: Window): void {
    const key = holder.tensors.map((t) => t.id).join();
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { holder, windows: [], parts: [] };
      this.entries.set(key, entry);
      holder.tensors.forEach((t, piece) => this.byTensor.set(t.id, [...(this.byTensor.get(t.id) ?? []), { key, piece }]));
    }
    if (entry.windows.some((x) => keyOf(x) === keyOf(w))) return;
    entry.windows.push(w);
    entry.parts.push(holder.tensors.map(() => new Float32Array(0)));
  }

  wanted(): Set<number> {
    return new Set(this.byTensor.keys());
  }

  /** `value`: the computed tensor `symbolic` (a row of batch 1). */
  take(symbolic: tf.SymbolicTensor, value: tf.Tensor): void {
    for (const { key, piece } of this.byTensor.get(symbolic.id) ?? []) {
      const { holder, windows, parts } = this.entries.get(key)!;
      const from = holder.depths.slice(0, piece).reduce((a, b) => a + b, 0);
      const depth = holder.depths[piece];
      const rest = holder.whole.slice(1);
      if (value.size !== depth * product(rest)) throw new Error(`column tap ${symbolic.name}: ${value.size} values for ${depth}x${rest.join('x')}`);
      // Read once, cut in JS: wasm's slice reads its whole input out of the heap on every call.
      const all = value.dataSync() as Float32Array;
      windows.forEach((w, i) => {
        const d0 = Math.max(w.begin[0], from);
        const d1 = Math.min(w.end[0], from + depth);
        if (d0 >= d1) return;
        parts[i][piece] = cut(all, [depth, ...rest], [d0 - from, ...w.begin.slice(1), 0], [d1 - d0, ...sizes(w).slice(1), rest.at(-1)!]);
      });
    }
  }

  /** Values of `holder` on `w` ([1, ...sizes, C], C order), with the window's zeros added. */
  column(holder: Holder, w: Window): { data: Float32Array; shape: number[] } {
    const entry = this.entries.get(holder.tensors.map((t) => t.id).join())!;
    const parts = entry.parts[entry.windows.findIndex((x) => keyOf(x) === keyOf(w))];
    const data = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      data.set(p, at);
      at += p.length;
    }
    const shape = [1, ...sizes(w), holder.whole.at(-1)!];
    if (data.length !== product(shape)) throw new Error(`column of ${holder.tensors[0].name}: ${data.length} values for ${shape.join('x')}`);
    if (w.pad.every(([b, e]) => b === 0 && e === 0)) return { data, shape };
    return tf.tidy(() => {
      const padded = tf.pad(tf.tensor(data, shape), [[0, 0], ...w.pad, [0, 0]]);
      return { data: new Float32Array(padded.dataSync() as Float32Array), shape: padded.shape };
    });
  }
}

/**
 * `model.predict` of one model input, handing every tensor in `wanted` to `onTensor` as tfjs
 * computes it (stock executor, its order and freeing): each layer's `apply` is wrapped for the
 * run, and the node it computes is told apart by the symbolic tensors its concrete inputs stand
 * for. A concrete tensor no layer produced is the model input (predict feeds a batch slice of it).
 */
export function executeWithTaps(
  model: tf.LayersModel, input: tf.Tensor, wanted: Set<number>, onTensor: (symbolic: tf.SymbolicTensor, value: tf.Tensor) => void,
): tf.Tensor[] {
  if (model.inputs.length !== 1) throw new Error(`executeWithTaps: ${model.inputs.length} model inputs`);
  // A concrete tensor may stand for several symbolic ones: a linear activation or an empty crop returns its input.
  const known = new Map<number, Set<number>>();
  const wrapped: tf.layers.Layer[] = [];
  try {
    for (const layer of model.layers) {
      const apply = layer.apply;
      wrapped.push(layer);
      layer.apply = function (this: tf.layers.Layer, x: tf.Tensor | tf.Tensor[], kwargs?: Record<string, unknown>) {
        const xs = (Array.isArray(x) ? x : [x]) as tf.Tensor[];
        const symbols = xs.map((t) => known.get(t.id) ?? new Set([model.inputs[0].id]));
        // A layer may be called twice on the same input (one crop read by two chunks): those nodes compute the same values.
        const nodes = layer.inboundNodes.filter((n) => n.inputTensors.length === xs.length && n.inputTensors.every((t, i) => symbols[i].has(t.id)));
        const out = apply.call(layer, x, kwargs);
        for (const node of nodes) {
          (Array.isArray(out) ? out : [out]).forEach((y, i) => {
            const symbolic = node.outputTensors[i];
            const id = (y as tf.Tensor).id;
            known.set(id, (known.get(id) ?? new Set<number>()).add(symbolic.id));
            if (wanted.has(symbolic.id)) onTensor(symbolic, y as tf.Tensor);
          });
        }
        return out;
      } as typeof layer.apply;
    }
    const out = model.predict(input, { batchSize: input.shape[0] }) as tf.Tensor | tf.Tensor[];
    return Array.isArray(out) ? out : [out];
  } finally {
    // The instance property hid the prototype's method: deleting it restores that.
    for (const layer of wrapped) delete (layer as { apply?: unknown }).apply;
  }
}

/** The original's position-wise layers from a source tensor to a target, and where the source is in the rewritten model. */
interface Link {
  name: string;
  source: Holder;
  layers: tf.layers.Layer[];
  target: Holder;
  /** Model output index when the target is one. */
  output?: number;
}

interface ColumnPlan {
  probes: { probe: LayerProbe; conv: tf.layers.Layer; input: Holder; output: Holder }[];
  links: Link[];
}

const single = (value: tf.SymbolicTensor | tf.SymbolicTensor[]) => (Array.isArray(value) ? value[0] : value);

/** The column plan, or why the model cannot be checked in columns. */
function planColumns(before: tf.LayersModel, after: tf.LayersModel, records: RewrittenLayer[]): ColumnPlan | string {
  const probeB = new ProbeModel(after);
  const { probes, notes } = planProbes(records, new ProbeModel(before), probeB);
  const tapped = (tap: number | number[]) => (typeof tap === 'number' ? [tap] : tap).map((i) => probeB.tensors[i]);
  const holder = (tensors: tf.SymbolicTensor[], like: tf.SymbolicTensor): Holder | string => {
    const whole = like.shape.slice(1) as number[];
    const perDepth = product(whole.slice(1));
    const depths = tensors.map((t) => product(t.shape.slice(1) as number[]) / perDepth);
    if (depths.some((d) => !Number.isInteger(d)) || depths.reduce((a, b) => a + b, 0) !== whole[0]) {
      return `the tensors holding ${like.name} (${tensors.map((t) => JSON.stringify(t.shape)).join(', ')}) do not hold its ${JSON.stringify(like.shape)} by depth`;
    }
    return { tensors, depths, whole };
  };
  const planned: ColumnPlan['probes'] = [];
  for (const conv of before.layers.filter((l) => /^Conv[123]D$/.test(l.getClassName()))) {
    const probe = probes.find((p) => p.layer === conv.name);
    // planProbes' note, without its list of the replacement's layers.
    if (!probe) return `conv ${conv.name} has no per-layer probe in the rewritten model (${notes.find((n) => n.includes(`for ${conv.name}:`))?.replace(/ among .*/, '') ?? 'it was kept'})`;
    if (probe.original.length !== 1 || !probe.rewrittenInputs) return `conv ${conv.name}: the input its replacement reads is not found in the rewritten model`;
    const input = holder(tapped(probe.rewrittenInputs[0]), single(conv.getInputAt(0) as tf.SymbolicTensor));
    const output = holder(tapped(probe.rewritten[0]), single(conv.getOutputAt(0) as tf.SymbolicTensor));
    if (typeof input === 'string') return input;
    if (typeof output === 'string') return output;
    planned.push({ probe, conv, input, output });
  }
  // Walks back from an original tensor through single-input layers to a conv output or a model input.
  const linkTo = (start: tf.SymbolicTensor, target: Holder, name: string, output?: number): Link | string => {
    const layers: tf.layers.Layer[] = [];
    let t = start;
    for (;;) {
      const from = planned.find((p) => single(p.conv.getOutputAt(0) as tf.SymbolicTensor).id === t.id);
      if (from) return { name: `${from.conv.name} -> ${name}`, source: from.output, layers, target, ...(output === undefined ? {} : { output }) };
      const input = before.inputs.findIndex((x) => x.id === t.id);
      if (input >= 0) {
        const source = holder([after.inputs[input]], t);
        return typeof source === 'string' ? source : { name: `${before.inputNames[input]} -> ${name}`, source, layers, target, ...(output === undefined ? {} : { output }) };
      }
      const inputs = t.sourceLayer.getInputAt(t.nodeIndex);
      if (Array.isArray(inputs) && inputs.length !== 1) return `layer ${t.sourceLayer.name} (${t.sourceLayer.getClassName()}) merges ${inputs.length} tensors on the way to ${name}`;
      layers.unshift(t.sourceLayer);
      t = single(inputs);
    }
  };
  const links: Link[] = [];
  for (const p of planned) {
    const link = linkTo(single(p.conv.getInputAt(0) as tf.SymbolicTensor), p.input, p.conv.name);
    if (typeof link === 'string') return link;
    links.push(link);
  }
  for (let o = 0; o < before.outputs.length; o++) {
    const target = holder(tapped(probeB.outputs[o]), before.outputs[o]);
    if (typeof target === 'string') return target;
    const link = linkTo(before.outputs[o], target, after.outputNames[o] ?? `output ${o}`, o);
    if (typeof link === 'string') return link;
    links.push(link);
  }
  return { probes: planned, links };
}

/** The original conv, a stock layer with its weights but 'valid', on an input the window's zeros already pad. */
function originalConvValid(conv: tf.layers.Layer, x: tf.Tensor): tf.Tensor {
  const config = conv.getConfig() as Record<string, unknown>;
  const make = { Conv1D: tf.layers.conv1d, Conv2D: tf.layers.conv2d, Conv3D: tf.layers.conv3d }[conv.getClassName() as 'Conv3D'];
  const copy = make({
    filters: config.filters as number, kernelSize: config.kernelSize as [number, number, number], dilationRate: config.dilationRate as [number, number, number],
    padding: 'valid', activation: config.activation as 'linear', useBias: config.useBias as boolean,
  });
  try {
    copy.build(x.shape);
    copy.setWeights(conv.getWeights());
    return copy.apply(x) as tf.Tensor;
  } finally {
    // Layer.dispose refuses a layer never called on a symbolic tensor: free its variables.
    copy.weights.forEach((w) => w.dispose());
  }
}

/**
 * The column form on one Node target, or why it cannot run (the caller then uses the corner form).
 * `plan` comes from planLocal (the volume, the reach).
 */
export async function verifyColumns(
  target: Target, plan: LocalPlan, original: io.ModelArtifacts, rewritten: io.ModelArtifacts, options: LayersVerifyOptions,
): Promise<VerificationReport | string> {
  const backend = target.info.name;
  const settings = runSettings(options);
  const { atol, rtol } = targetTolerance(target, settings);
  const factor = options.accuracyFactor ?? DEFAULT_ACCURACY_FACTOR;
  const { volume } = plan;
  const rewrittenNames = new Set((options.rewrittenLayers ?? []).map((r) => r.layer));
  const wrong = (options.originalFindings ?? []).filter((f) => rewrittenNames.has(f.layer));
  const onReference = <T>(fn: () => Promise<T>) => (wrong.length && backend !== 'cpu' ? onCpu(fn) : fn());
  const models: tf.LayersModel[] = [];
  let failed = false;
  try {
    models.push(await instantiate(original, 'original'));
    models.push(await instantiate(rewritten, 'rewritten'));
    const [before, after] = models;
    const columnPlan = planColumns(before, after, options.rewrittenLayers ?? inferRewrittenLayers(before, after));
    if (typeof columnPlan === 'string') return columnPlan;
    const windows = columnWindows(volume);
    const collector = new ColumnCollector();
    for (const w of windows) {
      for (const p of columnPlan.probes) {
        collector.request(p.input, expanded(w, p.probe.spec, volume));
        collector.request(p.output, w);
      }
      for (const link of columnPlan.links) {
        collector.request(link.source, w);
        collector.request(link.target, w);
      }
    }
    const rows = openInputs(after, options.inputs, { batch: settings.batch, seed: settings.seed, shapes: options.inputShapes });
    const row = rows.batch(0, 1);
    try {
      reportStage(`verifying on ${backend} locally in columns: row 1 of ${rows.rows}, the rewritten model at ${volume.join('x')}, keeping ${windows.length} columns of each rewritten conv's input and output`);
      await yieldToEventLoop(options.signal);
      const wanted = collector.wanted();
      // Model inputs are fed, never computed by a layer.
      after.inputs.forEach((x, i) => wanted.has(x.id) && collector.take(x, row[i]));
      try {
        tf.dispose(executeWithTaps(after, row[0], wanted, (symbolic, value) => collector.take(symbolic, value)));
      } catch (error) {
        failed = true;
        return notRunnableReport(target, settings, rows, factor, plan, error);
      }
      options.onProgress?.({ backend, done: 1, total: 1 });
      const layers = [];
      for (const { probe, conv, input, output } of columnPlan.probes) {
        reportStage(`verifying on ${backend} locally in columns: ${conv.name} on ${windows.length} columns of its input, against float64 and the original conv`);
        await yieldToEventLoop(options.signal);
        // The input already holds the window's zeros; one call, so the replacement's output pairs with the float64 conv of that input.
        const spec: ConvSpec = { ...probe.spec, padding: 'valid' };
        const check = new LayerCheck({ layer: probe.layer, replacement: probe.replacement, spec, original: [{ input: 0, output: 1 }], rewritten: [0] });
        for (const w of windows) {
          const x = collector.column(input, expanded(w, probe.spec, volume));
          const y = collector.column(output, w);
          const ya = await onReference(async () => {
            const t = tf.tensor(x.data, x.shape);
            try {
              const out = originalConvValid(conv, t);
              const values = { data: new Float32Array(await out.data() as Float32Array), shape: out.shape };
              out.dispose();
              return values;
            } finally {
              t.dispose();
            }
          });
          check.add([x, ya], [y]);
        }
        layers.push(check.result(factor));
      }
      // Links: the original's layers between, on the upstream column, against the downstream column.
      const outputs = after.outputs.map((t, o) => new MetricsAccumulator(after.outputNames[o] ?? `output_${o}`, [...sizes(windows[0]), t.shape.at(-1) as number], { atol, rtol }));
      const inner: { name: string; metrics: ReturnType<MetricsAccumulator['result']> }[] = [];
      for (const link of columnPlan.links) {
        await yieldToEventLoop(options.signal);
        const accumulator = link.output !== undefined ? outputs[link.output] : new MetricsAccumulator(link.name, [...sizes(windows[0]), link.target.whole.at(-1)!], { atol, rtol });
        for (const w of windows) {
          const source = collector.column(link.source, w);
          const expected = await onReference(async () => {
            const y = tf.tidy(() => link.layers.reduce((t, layer) => layer.apply(t) as tf.Tensor, tf.tensor(source.data, source.shape) as tf.Tensor));
            const data = await y.data();
            y.dispose();
            return data;
          });
          accumulator.add(expected, collector.column(link.target, w).data);
        }
        if (link.output === undefined) inner.push({ name: link.name, metrics: accumulator.result() });
      }
      const outputMetrics = outputs.map((acc) => acc.result());
      if (options.exactSubjects?.length) reportStage(`verifying on ${backend}: exact integer check of ${options.exactSubjects.length} rewritten conv(s)`);
      const exact = options.exactSubjects ? await runExactChecks(options.exactSubjects, { float16: false }) : undefined;
      const brokenLinks = inner.filter((l) => !l.metrics.passed);
      const worstLink = Math.max(0, ...inner.map((l) => l.metrics.maxAbsDiff));
      const column = `${volume[0]}${sizes(windows[0]).slice(1).map((s) => `x${s}`).join('')}`;
      const notes = [
        `local check in columns (${product(volume).toLocaleString('en-US')} positions per row; the original's two ${plan.subVolume.join('x')} corner runs ` +
        `would cost ${plan.cornerMacs.toExponential(2)} multiply-adds, receptive reach ${plan.reach.low.join('x')} below): row 1 of ${rows.rows} (the budget) ` +
        `through the rewritten model at its size; each rewritten conv as written on ${windows.length} ${column} columns of the input it read ` +
        '(the low corner, the middle, the high corner) against float64 and the original conv on the same input; ' +
        `${inner.length + outputMetrics.length} links (the original's layers between two convs, and to the outputs, on the upstream column against ` +
        `the downstream one: worst |diff| ${worstLink.toPrecision(3)} between convs); the model was not compared end to end with the original (docs/accuracy.md)`,
        ...brokenLinks.map((l) => `link ${l.name}: ${l.metrics.outsideTolerance} values outside tolerance (max |diff| ${l.metrics.maxAbsDiff.toPrecision(3)}): the rewritten model is wired wrong there`),
      ];
      if (wrong.length) notes.push(`the original computes wrong on ${backend} (${wrong.map((f) => f.layer).join(', ')}): its side ran on tfjs's cpu backend`);
      return {
        passed: outputMetrics.every((o) => o.passed) && brokenLinks.length === 0 && layers.every((l) => l.passed) && (exact ?? []).every((e) => e.exact !== false),
        ...runHeader(target, settings, rows),
        rows: 1,
        accuracyFactor: factor,
        outputs: outputMetrics,
        layers,
        ...(exact ? { exact } : {}),
        local: { form: 'columns', rows: 1, of: rows.rows, volume, subVolume: plan.subVolume, region: sizes(windows[0]), reach: plan.reach },
        notes,
      };
    } finally {
      if (!failed) {
        tf.dispose(row);
        rows.close();
      }
    }
  } finally {
    try {
      models.forEach(disposeModel);
    } catch (error) {
      if (!failed) throw error;
    }
  }
}

/**
 * The column form in a fresh worker thread, its integer probe here. A fresh thread's wasm heap
 * is empty: the policy's timings and the cut-outs before leave this one's fragmented (it never
 * shrinks), and a model's last step needs one free run for its whole output (model18cls at
 * 256^3: 1.2 GB; its pass fit in a fresh heap, peak 3.16 GB, and ran out of heap after them).
 */
export async function columnsInFreshThread(
  target: Target, original: io.ModelArtifacts, rewritten: io.ModelArtifacts, options: LayersVerifyOptions,
): Promise<VerificationReport | string> {
  const backend = target.info.name;
  let reply;
  try {
    reply = await runTaskInFreshThread('verify', [original, rewritten, {
      ...threadData(options), backend, local: true, localForm: 'columns', localHere: true, shards: false, offThreadEvents: ['onProgress', 'onStage'],
    }], {
      signal: options.signal,
      onEvent: (event) => {
        const { option, data } = event as { option: string; data: unknown };
        if (option === 'onStage') reportStage(String(data));
        else if (option === 'onProgress') options.onProgress?.(data as Parameters<NonNullable<LayersVerifyOptions['onProgress']>>[0]);
      },
    });
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason ?? error;
    throw exitedWorker(error, `the column check on ${backend}`) ?? error;
  }
  if ('error' in reply) {
    // Not in columns there (the records give no chain of links): the caller takes the corner form.
    if (reply.error.message.startsWith(NO_COLUMNS)) return reply.error.message.slice(NO_COLUMNS.length);
    throw reply.error.kind === 'other' ? new Error(reply.error.message) : new InputError(reply.error.message);
  }
  const report = reply.value as VerificationReport;
  if (!options.exactSubjects?.length || report.local?.rows === 0) return report;
  reportStage(`verifying on ${backend}: exact integer check of ${options.exactSubjects.length} rewritten conv(s)`);
  const exact = await runExactChecks(options.exactSubjects, { float16: false });
  return { ...report, exact, passed: report.passed && exact.every((e) => e.exact !== false) };
}
