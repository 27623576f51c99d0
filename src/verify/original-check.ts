/**
 * Is the ORIGINAL model right on its target backend? Correctness beats speed: tfjs 4.22 has
 * backends that compute some convs wrong (wasm conv3dTranspose with any stride > 1; WebGPU's
 * rank-5 BiasAdd), and a model deployed there is wrong whether or not we rewrite it.
 *
 * Each conv-family layer of the original (Conv1D/2D/3D, Conv2DTranspose, Conv3DTranspose) is cut
 * out alone behind an Input whose spatial sizes are cropped small (the bugs above show at 2x4x4),
 * given small-integer weights, bias and input (linear activation), and run on the target. Every
 * partial sum is then an integer below 2^24 (2^11 on float16 devices), so a right backend matches
 * the float64 reference (reference.ts) exactly, and any difference is a finding: which layer, on
 * which backend, how far off. Cost: one tiny forward pass per distinct layer config.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { artifactsFromIR } from '../io/ir';
import { inferShapes, isUnknown } from '../layers/shapes';
import type { LayersShapes } from '../layers/shapes';
import type { Graph, LayerNode, ModelIR } from '../layers/types';
import { probeIR } from '../layers/cutout';
import { BrowserOptions, BrowserSession, isBrowserBackend, withBrowser } from '../browser/session';
import { float64Of, magnitudesFor } from './exact';
import { disposeModel, instantiate } from '../formats/load';

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

const mulberry32 = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const integers = (count: number, m: number, rand: () => number) => Float32Array.from({ length: count }, () => Math.floor(rand() * (2 * m + 1)) - m);
const tuple = (value: unknown, rank: number, fallback: number): number[] =>
  (value === undefined || value === null ? new Array(rank).fill(fallback) : typeof value === 'number' ? new Array(rank).fill(value) : (value as number[]));

/** The layer's input shape with spatial sizes cropped to what still exercises every tap and stride. */
function croppedShape(layer: LayerNode, shape: number[]): number[] {
  const c = layer.config;
  const rank = shape.length - 1;
  const channelsFirst = c.data_format === 'channels_first';
  const kernel = tuple(c.kernel_size, rank, 1);
  const strides = tuple(c.strides, rank, 1);
  const dilation = tuple(c.dilation_rate, rank, 1);
  const transposed = /Transpose$/.test(layer.className);
  const cap = (a: number) => {
    if (transposed) return 4;
    const extent = (kernel[a] - 1) * dilation[a] + 1;
    return c.padding === 'valid' ? extent + strides[a] : Math.max(4, 2 * strides[a]);
  };
  return shape.map((size, i) => {
    const a = channelsFirst ? i - 1 : i;
    return a < 0 || a >= rank ? size : Math.min(size, cap(a));
  });
}

interface Subject {
  layer: LayerNode;
  graph: string;
  shape: number[];
  weights: ModelIR['weights'];
}

/** Every conv-family layer with a static input (one entry per layer: its first call's shape). */
function subjectsOf(ir: ModelIR): Subject[] {
  const out: Subject[] = [];
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
      out.push({ layer, graph: path, shape: croppedShape(layer, dims as number[]), weights: owned });
    }
  };
  walk(ir.graph, inferShapes(ir.graph), ir.graph.name);
  return out;
}

async function runOn(artifacts: io.ModelArtifacts, input: { data: Float32Array; shape: number[] }, session?: BrowserSession): Promise<ArrayLike<number>> {
  const x = tf.tensor(input.data, input.shape, 'float32');
  try {
    if (session) {
      const staged = await session.stage([x]);
      const id = await session.load('layers', artifacts, 'original-check probe');
      try {
        return (await session.run(id, staged))[0].data;
      } finally {
        await session.dispose(id);
        await session.dispose(staged);
      }
    }
    const model = await instantiate(artifacts, 'original-check probe');
    try {
      const y = model.predict(x) as tf.Tensor;
      try {
        return await y.data();
      } finally {
        y.dispose();
      }
    } finally {
      disposeModel(model);
    }
  } finally {
    x.dispose();
  }
}

/**
 * Checks every conv-family layer of `ir` on the current Node backend (which must be `backend`),
 * or in `session`; returns the layers that compute wrong there. Never throws for a layer it
 * cannot check (no reference, a patch too large for exact integers): those are simply not findings.
 */
export async function checkOriginal(ir: ModelIR, backend: { name: string; device: string }, options: { session?: BrowserSession } = {}): Promise<Finding[]> {
  const limit = options.session?.float16 ? 2 ** 11 : 2 ** 24;
  const findings: Finding[] = [];
  const done = new Map<string, Omit<Finding, 'layer' | 'graph' | 'summary'> | null>();
  for (const subject of subjectsOf(ir)) {
    const { name: _name, ...config } = subject.layer.config;
    const key = JSON.stringify([subject.layer.className, config, subject.shape]);
    // A layer the check cannot cut out or run alone is no finding: the end-to-end comparison still runs the model.
    if (!done.has(key)) done.set(key, await checkOne(subject, backend, limit, options.session).catch(() => null));
    const result = done.get(key);
    if (!result) continue;
    const where = `${subject.layer.className} ${subject.graph}/${subject.layer.name}`;
    findings.push({
      layer: subject.layer.name, graph: subject.graph, ...result,
      summary: `the original computes wrong on ${backend.name}: ${where} is off by up to ${result.maxAbsDiff} vs float64 ` +
        `(${result.mismatches} of ${result.elements} outputs) on an integer probe of shape [${subject.shape.join(', ')}]`,
    });
  }
  return findings;
}

async function checkOne(subject: Subject, backend: { name: string; device: string }, limit: number, session?: BrowserSession): Promise<Omit<Finding, 'layer' | 'graph' | 'summary'> | null> {
  const { layer, shape } = subject;
  const kernel = subject.weights.find((w) => w.name.endsWith('/kernel'));
  if (!kernel) return null;
  const transposed = /Transpose$/.test(layer.className);
  const rank = kernel.shape.length - 2;
  const filters = kernel.shape[transposed ? rank : rank + 1];
  const patch = kernel.values.length / filters;
  const m = magnitudesFor(patch, limit);
  if (!m) return null;
  const rand = mulberry32(4099);
  const weights = subject.weights.map(({ quantization: _q, ...w }) => ({
    ...w, dtype: 'float32' as const, values: integers(w.values.length, w.name.endsWith('/kernel') ? m.kernel : m.bias, rand),
  }));
  // Linear: integer sums stay exact; the bias stays (WebGPU's rank-5 BiasAdd is one of the bugs).
  const probe = probeIR({ weights } as Pick<ModelIR, 'weights'> as ModelIR, { ...layer, config: { ...layer.config, activation: 'linear' } }, shape);
  const artifacts = artifactsFromIR(probe);
  const rows = 2;
  const input = { data: integers(rows * shape.reduce((a, b) => a * b, 1), m.input, rand), shape: [rows, ...shape] };
  const reference = await float64Of(artifacts, layer.name, input);
  if (!reference) return null;
  const actual = await runOn(artifacts, input, session);
  let mismatches = 0;
  let maxAbsDiff = 0;
  for (let i = 0; i < reference.length; i++) {
    const diff = Math.abs(actual[i] - reference[i]);
    if (!(diff === 0)) {
      mismatches++;
      maxAbsDiff = Math.max(maxAbsDiff, Number.isNaN(diff) ? Infinity : diff);
    }
  }
  if (actual.length !== reference.length) mismatches = reference.length;
  if (mismatches === 0) return null;
  return { className: layer.className, backend: backend.name, device: backend.device, shape, rows, maxAbsDiff, mismatches, elements: reference.length };
}

/**
 * checkOriginal on the target as optimize resolved it: the Node backend set by backend selection
 * (set again if something switched it), or a headless browser page for webgl/webgpu.
 */
export async function originalFindings(ir: ModelIR, target: { name: string; device: string }, browser: BrowserOptions = {}): Promise<Finding[]> {
  if (isBrowserBackend(target.name)) {
    return withBrowser(target.name, browser, (session) => checkOriginal(ir, { name: target.name, device: session.device }, { session }));
  }
  if (tf.getBackend() !== target.name) await tf.setBackend(target.name);
  return checkOriginal(ir, target);
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
