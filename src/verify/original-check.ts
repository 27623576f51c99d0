/**
 * Is the ORIGINAL model right on its target backend? Correctness beats speed: tfjs 4.22 has
 * backends that compute some convs wrong (wasm conv3dTranspose with any stride > 1; WebGPU's
 * rank-5 BiasAdd), and a model deployed there is wrong whether or not we rewrite it.
 *
 * Each conv-family layer of the original (Conv1D/2D/3D, Conv2DTranspose, Conv3DTranspose; for
 * graph models each conv-family op, original-check-graphdef.ts) is cut out alone behind an input
 * whose spatial sizes are cropped small (the bugs above show at 2x4x4), given small-integer
 * weights, bias and input (linear activation), and run on the target. Every partial sum is then
 * an integer below 2^24 (2^11 on float16 devices), so a right backend matches the float64
 * reference (reference.ts) exactly, and any difference is a finding: which conv, on which
 * backend, how far off. Cost: one tiny forward pass per distinct conv config.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { artifactsFromIR } from '../io/ir';
import { inferShapes, isUnknown } from '../layers/shapes';
import type { LayersShapes } from '../layers/shapes';
import type { Graph, LayerNode, ModelIR } from '../layers/types';
import { probeIR } from '../layers/cutout';
import { BrowserOptions, BrowserSession, isBrowserBackend, withBrowser } from '../browser/session';
import type { FormatName } from '../formats/load';
import { float64Of } from './exact';
import { differences, integers, magnitudesFor, mulberry32, runInNode, runInPage } from './integer-probes';

export interface Finding {
  layer: string;
  /** Path of the model holding the layer. */
  graph: string;
  className: string;
  backend: string;
  device: string;
  /** The probe's input shape (no batch): the layer's own, spatial sizes cropped small. */
  shape: number[];
  rows: number;
  /** Largest |original - float64| on the integer probe (0 on a right backend), and how many differ. */
  maxAbsDiff: number;
  mismatches: number;
  elements: number;
  /** One line for reports and policy decisions. */
  summary: string;
}

export const CONV_FAMILY = new Set(['Conv1D', 'Conv2D', 'Conv3D', 'Conv2DTranspose', 'Conv3DTranspose']);

/** The probe of one conv: its cut-out with the weights `fill` gave, and its float64 reference. */
export interface OriginalProbe {
  format: FormatName;
  artifacts: io.ModelArtifacts;
  /** The conv in float64 on `input` (rows first), or null when there is no reference for it. */
  float64(input: { data: Float32Array; shape: number[] }): Promise<Float64Array | null>;
}

/** A conv of the original, as each format finds it (layers below; graph models: original-check-graphdef.ts). */
export interface OriginalSubject {
  layer: string;
  /** Path of the model holding the conv. */
  graph: string;
  className: string;
  /** The probe's input shape (no batch): the conv's own, spatial sizes cropped small. */
  shape: number[];
  /** Subjects with the same key compute the same function: checked once. */
  key: string;
  /** Kernel values summed into one output (P): sets the integer magnitudes. */
  patch: number;
  /** The probe with integer weights, fed `rows` rows (null when the conv cannot be cut out alone). */
  probe(fill: (role: 'kernel' | 'bias', count: number) => Float32Array, rows: number): OriginalProbe | null;
}

const tuple = (value: unknown, rank: number, fallback: number): number[] =>
  (value === undefined || value === null ? new Array(rank).fill(fallback) : typeof value === 'number' ? new Array(rank).fill(value) : (value as number[]));

/**
 * Spatial sizes cropped to what still exercises every tap and stride (the bugs above show at
 * 2x4x4), keeping the size's remainder over the stride: 'same' pads by it, and TF's padding
 * clamps at 0 where it would be negative (tfjs-backend-wasm 4.22's Conv2D gets that case wrong,
 * and only that: a crop with another remainder would find a bug the model does not have).
 */
export function croppedSpatial(spatial: number[], conv: { kernel: number[]; strides: number[]; dilation: number[]; padding: string; transposed: boolean }): number[] {
  return spatial.map((size, a) => {
    const extent = (conv.kernel[a] - 1) * conv.dilation[a] + 1;
    const cap = conv.transposed ? 4 : conv.padding === 'same' ? Math.max(4, 2 * conv.strides[a]) : extent + conv.strides[a];
    return size <= cap || conv.transposed ? Math.min(size, cap) : cap + ((size - cap) % conv.strides[a]);
  });
}

/** The layer's input shape with spatial sizes cropped small (croppedSpatial). */
function croppedShape(layer: LayerNode, shape: number[]): number[] {
  const c = layer.config;
  const rank = shape.length - 1;
  const channelsFirst = c.data_format === 'channels_first';
  const spatial = croppedSpatial(channelsFirst ? shape.slice(1) : shape.slice(0, rank), {
    kernel: tuple(c.kernel_size, rank, 1), strides: tuple(c.strides, rank, 1), dilation: tuple(c.dilation_rate, rank, 1),
    padding: String(c.padding ?? 'valid'), transposed: /Transpose$/.test(layer.className),
  });
  return channelsFirst ? [shape[0], ...spatial] : [...spatial, shape[rank]];
}

/** Every conv-family layer of a layers model with a static input (one per layer: its first call's shape). */
export function layersSubjects(ir: ModelIR): OriginalSubject[] {
  const out: OriginalSubject[] = [];
  const walk = (graph: Graph, shapes: LayersShapes, path: string) => {
    for (const layer of graph.layers) {
      if (layer.graph) walk(layer.graph, shapes.nested.get(layer.name) ?? inferShapes(layer.graph), `${path}/${layer.name}`);
      if (!CONV_FAMILY.has(layer.className)) continue;
      // tfjs-layers' Conv1D returns a channels_first output channels last on every backend (against
      // its own declared shape): a tfjs-layers quirk the rules refuse, not a backend computing wrong.
      if (layer.className === 'Conv1D' && layer.config.data_format === 'channels_first') continue;
      const first = shapes.callInputs.get(layer.name)?.[0];
      if (!first || isUnknown(first) || first.length !== 1) continue;
      const dims = first[0].slice(1);
      if (dims.some((d) => d === null)) continue;
      const owned = ir.weights.filter((w) => w.name.split('/').slice(-2, -1)[0] === layer.name);
      const kernel = owned.find((w) => w.name.endsWith('/kernel'));
      if (!kernel) continue;
      const transposed = /Transpose$/.test(layer.className);
      const rank = kernel.shape.length - 2;
      const shape = croppedShape(layer, dims as number[]);
      const { name: _name, ...config } = layer.config;
      out.push({
        layer: layer.name, graph: `${path}`, className: layer.className, shape,
        key: JSON.stringify([layer.className, config, shape]),
        patch: kernel.values.length / kernel.shape[transposed ? rank : rank + 1],
        probe: (fill) => {
          const weights = owned.map(({ quantization: _q, ...w }) => ({
            ...w, dtype: 'float32' as const, values: fill(w.name.endsWith('/kernel') ? 'kernel' : 'bias', w.values.length),
          }));
          // Linear: integer sums stay exact; the bias stays (WebGPU's rank-5 BiasAdd is one of the bugs).
          const probe = probeIR({ weights } as Pick<ModelIR, 'weights'> as ModelIR, { ...layer, config: { ...layer.config, activation: 'linear' } }, shape);
          const artifacts = artifactsFromIR(probe);
          return { format: 'layers', artifacts, float64: (input) => float64Of(artifacts, layer.name, input) };
        },
      });
    }
  };
  walk(ir.graph, inferShapes(ir.graph), ir.graph.name);
  return out;
}

async function runOn(probe: OriginalProbe, input: { data: Float32Array; shape: number[] }, session?: BrowserSession): Promise<ArrayLike<number>> {
  const x = tf.tensor(input.data, input.shape, 'float32');
  try {
    if (!session) return (await runInNode(probe.format, probe.artifacts, x, 'original-check probe')).data;
    const staged = await session.stage([x]);
    try {
      return (await runInPage(session, probe.format, probe.artifacts, staged, 'original-check probe')).data;
    } finally {
      await session.dispose(staged);
    }
  } finally {
    x.dispose();
  }
}

/**
 * Checks every subject on the current Node backend (which must be `backend`), or in `session`;
 * returns those that compute wrong there. Never throws for a conv it cannot check (no
 * reference, a patch too large for exact integers, an op the backend cannot run): those are
 * simply not findings (the end-to-end comparison still runs the model).
 */
export async function checkSubjects(subjects: OriginalSubject[], backend: { name: string; device: string }, options: { session?: BrowserSession } = {}): Promise<Finding[]> {
  const limit = options.session?.float16 ? 2 ** 11 : 2 ** 24;
  const findings: Finding[] = [];
  const done = new Map<string, Omit<Finding, 'layer' | 'graph' | 'summary'> | null>();
  for (const subject of subjects) {
    if (!done.has(subject.key)) done.set(subject.key, await checkOne(subject, backend, limit, options.session).catch(() => null));
    const result = done.get(subject.key);
    if (!result) continue;
    const where = `${subject.className} ${subject.graph}/${subject.layer}`;
    findings.push({
      layer: subject.layer, graph: subject.graph, ...result,
      summary: `the original computes wrong on ${backend.name}: ${where} is off by up to ${result.maxAbsDiff} vs float64 ` +
        `(${result.mismatches} of ${result.elements} outputs) on an integer probe of shape [${subject.shape.join(', ')}]`,
    });
  }
  return findings;
}

async function checkOne(subject: OriginalSubject, backend: { name: string; device: string }, limit: number, session?: BrowserSession): Promise<Omit<Finding, 'layer' | 'graph' | 'summary'> | null> {
  const m = magnitudesFor(subject.patch, limit);
  if (!m) return null;
  const rand = mulberry32(4099);
  const rows = 2;
  const probe = subject.probe((role, count) => integers(count, m[role], rand), rows);
  if (!probe) return null;
  const input = { data: integers(rows * subject.shape.reduce((a, b) => a * b, 1), m.input, rand), shape: [rows, ...subject.shape] };
  const reference = await probe.float64(input);
  if (!reference) return null;
  const actual = await runOn(probe, input, session);
  const { mismatches, maxAbsDiff } = differences(actual, reference);
  if (mismatches === 0) return null;
  return { className: subject.className, backend: backend.name, device: backend.device, shape: subject.shape, rows, maxAbsDiff, mismatches, elements: reference.length };
}

/** Every conv-family layer of a layers model, checked (checkSubjects). */
export function checkOriginal(ir: ModelIR, backend: { name: string; device: string }, options: { session?: BrowserSession } = {}): Promise<Finding[]> {
  return checkSubjects(layersSubjects(ir), backend, options);
}

/**
 * checkSubjects on the target as optimize resolved it: the Node backend set by backend selection
 * (set again if something switched it), or a headless browser page for webgl/webgpu.
 */
export async function originalFindings(subjects: OriginalSubject[], target: { name: string; device: string }, browser: BrowserOptions = {}): Promise<Finding[]> {
  if (subjects.length === 0) return [];
  if (isBrowserBackend(target.name)) {
    return withBrowser(target.name, browser, (session) => checkSubjects(subjects, { name: target.name, device: session.device }, { session }));
  }
  if (tf.getBackend() !== target.name) await tf.setBackend(target.name);
  return checkSubjects(subjects, target);
}

/** Runs `fn` on tfjs's cpu backend (the reference backend) and switches back. */
export async function onCpu<T>(fn: () => Promise<T>): Promise<T> {
  const before = tf.getBackend();
  if (before === 'cpu') return fn();
  await tf.setBackend('cpu');
  try {
    return await fn();
  } finally {
    await tf.setBackend(before);
  }
}
