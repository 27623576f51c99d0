/**
 * Numerical check of a rewrite, for both formats. Both models are instantiated by stock tfjs
 * from their artifacts and run batch by batch on the same rows (the user's, or seeded ones) on
 * the selected backend (the loop: rows.ts; each format's pair of models: layers.ts,
 * graphdef.ts). This module holds what they share: options, settings, targets, the backend
 * loop and the per-layer float64 check. Two questions are answered:
 *  - do they agree? every output compared elementwise within atol + rtol*|a|;
 *  - did the rewrite make accuracy worse? for each rewritten layer, the original conv and its
 *    replacement are each compared with a float64 conv of the input the conv received; the
 *    replacement fails if its mean error exceeds DEFAULT_ACCURACY_FACTOR times the original's.
 */
import { InputError, oneLine } from '../errors';
import { BackendInfo, BackendRequest, ModuleLoader, OriginalModelError, TargetName, onBackend, selectBackend } from '../backend/select';
import { BrowserOptions, BrowserSession, isBrowserBackend } from '../browser/session';
import type { OutputMetrics } from './compare';
import { InputSet, InputShapes, VerifyInput, rowsOfShapes } from './inputs';
import type { LayerProbe, RewrittenLayer } from './probes';
import { ErrorAccumulator, ErrorStats, convReference } from './reference';
import type { ExactCheck, ExactSubject } from './exact';
import type { Finding } from './original-check';
import type { CutOut } from '../formats/cutout';

export { makeInputs } from './inputs';
export type { InputShapes, VerifyInput } from './inputs';
export type { RewrittenLayer } from './probes';

/** Options of a verification, either format. */
export interface VerifyOptions {
  backend?: BackendRequest;
  /** Defaults: see DEFAULT_TOLERANCE. */
  atol?: number;
  rtol?: number;
  /**
   * Judge elements outside the tolerance against the original's measured float32 noise floor
   * (src/verify/noise-floor.ts). Default: only with the default tolerance (a tolerance you set is
   * enforced as set).
   */
  noiseFloor?: boolean;
  /** One per model input, in order; default: `batch` seeded uniform rows. */
  inputs?: VerifyInput[];
  /** Rows of the generated inputs (default 2: catches batch-mixing bugs). Ignored with `inputs`. */
  batch?: number;
  /**
   * Shapes of generated inputs by input name, batch first (CLI `--input-shape name=1x224x224x3`),
   * for inputs whose declared shape has unknown sizes or rank. Ignored with `inputs`.
   */
  inputShapes?: InputShapes;
  seed?: number;
  /** Rows per forward pass; bounds memory for large inputs (default 512). */
  batchSize?: number;
  /** Fail when a replacement's mean error vs float64 exceeds this times the original's (default 4). */
  accuracyFactor?: number;
  /** Which layers were rewritten into what (optimize passes its records); else inferred by name. */
  rewrittenLayers?: RewrittenLayer[];
  /**
   * Layers the original computes wrong on the target (original-check.ts): when any was rewritten,
   * the end-to-end reference is the original run on tfjs's cpu backend instead.
   */
  originalFindings?: Finding[];
  /** The rewritten convs to check exactly on integer data (optimize passes them; see exact.ts). */
  exactSubjects?: ExactSubject[];
  /** Called after every batch. */
  onProgress?: (progress: { backend: string; done: number; total: number }) => void;
  /**
   * What a long run is doing now ("policy: ...", "verifying on wasm: rows 1-2 of 2, the original
   * model"), for progress lines (src/core/stage.ts).
   */
  onStage?: (stage: string) => void;
  /** Test hook: module loader for the tensorflow backend (default `require`). */
  moduleLoader?: ModuleLoader;
  /** Stops the run between forward passes (rejects with the signal's reason). */
  signal?: AbortSignal;
  /** Browser backends only: e.g. simulate a GPU without float32 textures (see src/browser). */
  browser?: BrowserOptions;
  /**
   * Spread the rows of a long run over every core (default true; src/verify/shards.ts). The
   * report is the same up to float64 rounding of its sums.
   */
  shards?: boolean;
  /** Internal: the rows [start, end) one shard runs; its reply is its accumulators. */
  rowRange?: [number, number];
  /**
   * Check a fully convolutional layers model locally (src/verify/local.ts): true whenever the
   * model allows, false never; default: when a row costs more than LOCAL_MIN_MACS multiply-adds.
   */
  local?: boolean;
  /**
   * The local check's form: 'corners' runs the original on corner sub-volumes as wide as the
   * receptive reach; 'columns' never runs the original model (src/verify/local-columns.ts).
   * Default: columns when the corner runs would cost more than LOCAL_CORNER_MAX_MACS.
   */
  localForm?: 'corners' | 'columns';
  /** Internal: this thread is the fresh one the column form runs in (local-columns.ts, columnsInFreshThread). */
  localHere?: boolean;
  /** The rewritten convs' crop-sized cut-outs with their real weights (optimize passes them). */
  localCutOuts?: LocalCutOuts[];
}

/** A rewritten conv's cut-outs at crop size, with the real weights (the pipeline builds them). */
export interface LocalCutOuts {
  layer: string;
  cutOuts: CutOut[];
}

export interface LayersVerifyOptions extends Omit<VerifyOptions, 'backend'> {
  /** A backend, or 'all' to run on every backend present and report a matrix. */
  backend?: BackendRequest | 'all';
}

/**
 * Defaults for |a-b| <= atol + rtol*|a|. A float32 dot product of length K has a rounding error of
 * order sqrt(K)*u*(partial sums) (u = 2^-24 = 6e-8; worst case K*u*sum|w_k x_k|), and two summation
 * orders differ by about that much. Measured on the Qwen3-VL patch embed (K = 1536) over 24,168
 * real image patches on wasm: maxAbsDiff 8.8e-6 over 27.8M outputs, the tightest element at 34% of
 * its tolerance (README). A permuted kernel row or wrong crop misses by O(1e-2..1). For K well above
 * ~2k, raise atol with sqrt(K).
 */
export const DEFAULT_TOLERANCE = { atol: 1e-5, rtol: 1e-4 };

/**
 * The gate on rewritten layers, on mean |error vs float64| (stable, unlike the max). Both layers
 * compute the same float32 dot products in different summation orders; we measure ratios
 * replacement/original of 0.2-0.7 on cpu (its matMul accumulates in float64) and 1.8-3.9 on wasm
 * (XNNPACK's GEMM vs a naive conv loop), while zeroing the low 4 of the kernel's 24 mantissa bits
 * gives 4.5-5, 6 bits 18, 8 bits 75 (README). 4 = "worse by two bits or more".
 */
export const DEFAULT_ACCURACY_FACTOR = 4;
export const DEFAULT_BATCH_SIZE = 512;

/** Float32 unit roundoff: an error below u*|largest output| is the rounding of the store itself. */
const U32 = 2 ** -24;

/**
 * On a device with float16 textures (WebGL without float32 render targets) every value a kernel
 * stores is rounded to 11 significant bits (u = 2^-11 = 4.9e-4), so two correct models that
 * store their results in different places differ by a few u times the value: we allow 4 u
 * relative (each side rounding its conv output and one later store) and the same absolute for
 * values near zero. The float64 accuracy gate still decides whether the rewrite made things worse.
 */
export const FLOAT16_TOLERANCE = { atol: 4 * 2 ** -11, rtol: 4 * 2 ** -11 };

/** Where a check runs: tfjs in this process, or a page of a headless browser. */
export interface Target {
  info: BackendInfo;
  /** Set for webgl/webgpu. */
  session?: BrowserSession;
}

/** Selects a Node backend or opens a browser on `request`; close it with closeTarget. */
export async function openTarget(request: BackendRequest, options: Pick<VerifyOptions, 'moduleLoader' | 'browser'> = {}): Promise<Target> {
  if (!isBrowserBackend(request)) return { info: await selectBackend(request, options.moduleLoader ?? require) };
  const session = await BrowserSession.open(request, options.browser);
  return { info: { name: request, device: session.device, fallbacks: [] }, session };
}

export async function withTarget<T>(request: BackendRequest, options: Pick<VerifyOptions, 'moduleLoader' | 'browser'>, body: (target: Target) => Promise<T>): Promise<T> {
  const target = await openTarget(request, options);
  try {
    return await body(target);
  } finally {
    await target.session?.close();
  }
}

/** The tolerance a run uses: the caller's, widened to float16 rounding on float16 devices. */
export function targetTolerance(target: Target, tolerance: { atol: number; rtol: number }): { atol: number; rtol: number; note?: string } {
  if (!target.session?.float16) return tolerance;
  const atol = Math.max(tolerance.atol, FLOAT16_TOLERANCE.atol);
  const rtol = Math.max(tolerance.rtol, FLOAT16_TOLERANCE.rtol);
  return { atol, rtol, note: `${target.info.name} stores float16 textures on this device: tolerance widened to |a-b| <= ${atol.toPrecision(3)} + ${rtol.toPrecision(3)}*|a| (4 float16 unit roundoffs, 4 * 2^-11)` };
}

export interface LayerAccuracy {
  layer: string;
  replacement: string[];
  /** Elements compared (all calls, all rows). */
  elements: number;
  /** The original conv vs float64. */
  original: ErrorStats;
  /** The replacement vs float64. */
  rewritten: ErrorStats;
  /** rewritten.meanAbsError / max(original.meanAbsError, u/2 * meanAbsReference): the gated number. */
  ratio: number;
  /** accuracyFactor, widened by the sampling spread of `ratio` when few elements were compared. */
  limit: number;
  passed: boolean;
  /** With backend 'all': the backend this (worst) entry comes from. */
  backend?: string;
}

export interface SkippedBackend {
  backend: TargetName;
  skipped: string;
}

export interface VerificationReport {
  /** End-to-end within tolerance and no rewritten layer measurably less accurate. */
  passed: boolean;
  backend: string;
  device: string;
  /** Storage precision of the device: 'float16' on WebGL without float32 textures (tolerance widened). */
  precision?: 'float32' | 'float16';
  fallbacks: string[];
  atol: number;
  rtol: number;
  /** Rows of the generated inputs (when no `inputs`). */
  batch: number;
  seed: number;
  outputs: (OutputMetrics & { backend?: string })[];
  // Set by every verification run (src/verify/rows.ts), either format:
  /** What was fed: the files/arrays, or the seeded rows. */
  inputs?: string;
  rows?: number;
  batchSize?: number;
  accuracyFactor?: number;
  /** Float64 reference check of each rewritten layer (see LayerAccuracy). */
  layers?: LayerAccuracy[];
  /** Integer-data check of each rewritten conv, no tolerance (see exact.ts); a false fails. */
  exact?: (ExactCheck & { backend?: string })[];
  notes?: string[];
  /**
   * Set when the check was local (src/verify/local.ts): end to end on `rows` of `of` rows, the
   * original run on corner sub-volumes, outputs compared on the corner regions `region`.
   */
  local?: {
    /** corners: the original on corner sub-volumes; columns: the rewritten convs and the links between them on columns (local-columns.ts). */
    form?: 'corners' | 'columns';
    rows: number; of: number; volume: number[]; subVolume: number[]; region: number[]; reach: { low: number[]; high: number[] };
  };
  /** With backend 'all': one entry per backend; outputs/layers above then hold the worst of them. */
  backends?: (VerificationReport | SkippedBackend)[];
}

type Values = { data: ArrayLike<number>; shape: number[] }[];

/** What a row shard hands back for one probe. */
export interface LayerCheckState {
  original: ErrorAccumulator;
  rewritten: ErrorAccumulator;
  elements: number;
}

/**
 * Depth pieces [B, n_j, ...] joined along axis 1, in the shape `whole` when it holds as many
 * elements (a piece is a rank-4 view of a rank-5 volume); else in the joined shape.
 */
function joinDepth(parts: Values, whole: number[]): Values[number] {
  const batch = parts[0].shape[0];
  const per = parts.map((p) => p.data.length / batch);
  const row = per.reduce((x, y) => x + y, 0);
  const data = new Float32Array(batch * row);
  for (let b = 0; b < batch; b++) {
    let at = b * row;
    parts.forEach((p, j) => {
      for (let k = b * per[j]; k < (b + 1) * per[j]; k++) data[at++] = p.data[k];
    });
  }
  const joined = [batch, parts.reduce((n, p) => n + p.shape[1], 0), ...parts[0].shape.slice(2)];
  return { data, shape: whole.reduce((x, y) => x * y, 1) === data.length && whole[0] === batch ? whole : joined };
}

/** Per-layer float64 accounting for one probe across batches (layers and graph models alike). */
export class LayerCheck {
  readonly original = new ErrorAccumulator();
  readonly rewritten = new ErrorAccumulator();
  elements = 0;
  /** Call of the conv each replacement output belongs to; fixed on the first batch. */
  private callOf: number[] | null = null;

  constructor(readonly probe: LayerProbe) {}

  /** `a`/`b`: tap values of the original/rewritten probe models for one batch. */
  add(a: Values, b: Values): void {
    const { spec } = this.probe;
    const references = this.probe.original.map((tap) => {
      const input = a[tap.input];
      return convReference(spec, input.data, input.shape.slice(1), input.shape[0]).data;
    });
    this.probe.original.forEach((tap, call) => {
      this.original.add(references[call], a[tap.output].data);
      this.elements += references[call].length;
    });
    const originalTap = (i: number) => this.probe.original[Math.min(i, this.probe.original.length - 1)];
    const originalInput = (i: number) => a[originalTap(i).input];
    // A tap list is the depth pieces of one tensor (probes.ts), shaped as the original's.
    const valuesOf = (tap: number | number[], like: number[]) => (typeof tap === 'number' ? b[tap] : joinDepth(tap.map((t) => b[t]), like));
    const outputs = this.probe.rewritten.map((tap, i) => valuesOf(tap, a[originalTap(i).output].shape).data);
    const own = this.probe.rewrittenInputs?.map((tap, i) => valuesOf(tap, originalInput(i).shape));
    // The rewritten model's copy of the input, when it has the original's shape (else the original's).
    if (own && own.every((input, i) => input.shape.join() === originalInput(i).shape.join())) {
      // Each replacement against the float64 conv of the input it reads in the rewritten model:
      // its own rounding only, not what upstream rewritten layers changed in its input.
      own.forEach((input, i) => this.rewritten.add(convReference(spec, input.data, input.shape.slice(1), input.shape[0]).data, outputs[i]));
      return;
    }
    // A shared conv has one replacement output per call; pair them by closeness (a misordered
    // pairing would be off by O(1), a right one by float32 rounding).
    this.callOf ??= outputs.map((output) => {
      const distance = references.map((ref) => meanAbsDiff(ref, output));
      return distance.indexOf(Math.min(...distance));
    });
    outputs.forEach((output, i) => this.rewritten.add(references[this.callOf![i]], output));
  }

  /** Adds a row shard's accounting of the same probe (see shards.ts; given as its structured clone). */
  merge(shard: LayerCheckState): void {
    this.original.merge(Object.assign(new ErrorAccumulator(), shard.original));
    this.rewritten.merge(Object.assign(new ErrorAccumulator(), shard.rewritten));
    this.elements += shard.elements;
  }

  state(): LayerCheckState {
    return { original: this.original, rewritten: this.rewritten, elements: this.elements };
  }

  result(factor: number): LayerAccuracy {
    const original = this.original.result();
    const rewritten = this.rewritten.result();
    // Rounding the exact result to float32 once costs ~u/2*|x| on average: no layer does better.
    const floor = (U32 / 2) * original.meanAbsReference;
    const ratio = rewritten.meanAbsError / Math.max(original.meanAbsError, floor, Number.MIN_VALUE);
    // A ratio of two means of n |errors| has a relative spread of ~1.07/sqrt(n) (half-normal
    // errors): allow three of those, which matters only for tiny samples (n = 64: +40%).
    const limit = factor * (1 + 3.2 / Math.sqrt(Math.max(this.elements, 1)));
    return {
      layer: this.probe.layer,
      replacement: this.probe.replacement,
      elements: this.elements,
      original,
      rewritten,
      ratio,
      limit,
      passed: ratio <= limit, // NaN fails
    };
  }
}

function meanAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
}


/** The run settings every verification (layers or graph) reports, with their defaults. */
export function runSettings(options: Pick<VerifyOptions, 'atol' | 'rtol' | 'batch' | 'seed' | 'batchSize' | 'inputShapes'>): { atol: number; rtol: number; batch: number; seed: number; batchSize: number } {
  return {
    atol: options.atol ?? DEFAULT_TOLERANCE.atol,
    rtol: options.rtol ?? DEFAULT_TOLERANCE.rtol,
    batch: options.batch ?? rowsOfShapes(options.inputShapes) ?? 2,
    seed: options.seed ?? 1234,
    batchSize: options.batchSize ?? DEFAULT_BATCH_SIZE,
  };
}

/** The report fields shared by every verification run. */
export function runHeader(target: Target, settings: ReturnType<typeof runSettings>, inputs: InputSet) {
  const backend = target.info;
  return {
    backend: backend.name, device: backend.device, fallbacks: backend.fallbacks,
    ...(target.session ? { precision: target.session.float16 ? 'float16' as const : 'float32' as const } : {}),
    ...settings,
    atol: targetTolerance(target, settings).atol,
    rtol: targetTolerance(target, settings).rtol,
    inputs: inputs.source, rows: inputs.rows,
  };
}

const ALL_BACKENDS: TargetName[] = ['tensorflow', 'wasm', 'cpu', 'webgl', 'webgpu'];

/** NaN-aware "a is worse than b". */
const worse = (a: number, b: number) => Number.isNaN(a) || (!Number.isNaN(b) && a > b);

/** The matrix of --backend all: per output and per layer, the entry of the backend where it was worst. */
function mergeRuns(runs: (VerificationReport | SkippedBackend)[]): VerificationReport {
  const done = runs.filter((r): r is VerificationReport => !('skipped' in r));
  if (done.length === 0) throw new InputError(`no backend could run: ${runs.map((r) => `${r.backend}: ${(r as SkippedBackend).skipped}`).join('; ')}`);
  const [first] = done;
  const outputs = first.outputs.map((_, o) => {
    const candidates = done.map((r) => ({ ...r.outputs[o], backend: r.backend }));
    return candidates.reduce((w, c) => (!c.passed && w.passed) || (c.passed === w.passed && worse(c.maxAbsDiff, w.maxAbsDiff)) ? c : w);
  });
  const layers = (first.layers ?? []).map((_, l) => {
    const candidates = done.map((r) => ({ ...r.layers![l], backend: r.backend }));
    return candidates.reduce((w, c) => (worse(c.ratio, w.ratio) ? c : w));
  });
  // Per exact check, the backend where it went worst (false, then not checked, then true).
  const rank = (e: ExactCheck) => (e.exact === false ? 2 : e.exact === null ? 1 : 0);
  const exact = first.exact?.map((_, i) => done.map((r) => ({ ...r.exact![i], backend: r.backend })).reduce((w, c) => (rank(c) > rank(w) ? c : w)));
  return {
    ...first,
    ...(exact ? { exact } : {}),
    passed: done.every((r) => r.passed),
    backend: 'all',
    device: done.map((r) => `${r.backend}: ${r.device}`).join('; '),
    fallbacks: runs.filter((r): r is SkippedBackend => 'skipped' in r).map((r) => `${r.backend}: ${r.skipped}`),
    outputs,
    layers,
    notes: [...new Set(done.flatMap((r) => r.notes ?? []))],
    backends: runs,
  };
}

/**
 * Runs one verification on the requested backend, or with 'all' on every backend present, merged
 * into the matrix report: the same for layers and graph models (`runOn` is the format's run).
 */
export async function onBackends(
  options: Pick<LayersVerifyOptions, 'backend' | 'moduleLoader' | 'browser'>, runOn: (target: Target) => Promise<VerificationReport>,
): Promise<VerificationReport> {
  // auto: a Node backend the ORIGINAL model does not run on is passed over for the next one.
  if ((options.backend ?? 'auto') === 'auto') return onBackend('auto', options.moduleLoader ?? require, (info) => runOn({ info }));
  if (options.backend !== 'all') return withTarget(options.backend!, options, runOn);
  const runs: (VerificationReport | SkippedBackend)[] = [];
  for (const name of ALL_BACKENDS) {
    let target: Target;
    try {
      target = await openTarget(name, options);
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      runs.push({ backend: name, skipped: oneLine(error) });
      continue;
    }
    try {
      runs.push(await runOn(target));
    } catch (error) {
      if (!(error instanceof OriginalModelError)) throw error;
      runs.push({ backend: name, skipped: error.message });
    } finally {
      await target.session?.close();
    }
  }
  return mergeRuns(runs);
}

/** Whether elements outside the tolerance meet the noise floor (VerifyOptions.noiseFloor). */
export function usesNoiseFloor(options: Pick<VerifyOptions, 'atol' | 'rtol' | 'noiseFloor'>): boolean {
  return options.noiseFloor ?? (options.atol === undefined && options.rtol === undefined);
}
