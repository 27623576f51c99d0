/** `npm run bench`: every case on every backend present; each row times every correct rewrite (--policy always). */
import * as os from 'os';
import * as tf from '@tensorflow/tfjs';
import { BackendInfo, BackendName, selectBackend } from '../../src/backend/select';
import { artifactsOfModel } from '../../src/io/files';
import { optimize } from '../../src/pipeline';
import { BENCH_CASES, BenchCase } from './cases';
import { Measurement, load, measure } from '../../src/bench/measure';
import { prepare } from '../../src/pipeline/bench';
import type { Row } from '../../src/bench/report';
import type { InterleaveOptions } from '../../src/bench/stats';
import { makeInputs } from '../../src/verify/inputs';


export interface SuiteOptions {
  backends: BackendName[];
  /** Case names to run (default: all). */
  cases?: string[];
  /** Also run what is skipped by default for time (originals and rows estimated > skipAboveMs). */
  full: boolean;
  /** Smoke run: batches capped at quickBatch, cheap cases only. */
  quick: boolean;
  timing: InterleaveOptions;
  log(line: string): void;
}

/** A run (original or rewritten) estimated slower than this is skipped unless --full: keeps the default run to minutes. */
export const SKIP_ABOVE_MS = 10_000;
/** Above this, the original runs without warm-up and with minReps. */
const SLOW_MS = 3_000;
const QUICK_BATCH = 8;
const QUICK_CASES = ['qwen3vl-patch-embed', 'downsample-1x2x2'];

/** Whether `optimize --backend <backend>` with default settings returns the very model a case's rows time. */
export interface DefaultCheck {
  case: string;
  backend: string;
  same: boolean;
  decisions: string[];
}

export interface SuiteResult {
  rows: Row[];
  defaults: DefaultCheck[];
  backends: BackendInfo[];
  skipped: string[];
}

/** Backends present on this machine, in the order of preference of `auto`. */
export async function presentBackends(): Promise<BackendInfo[]> {
  const found: BackendInfo[] = [];
  for (const name of ['tensorflow', 'wasm', 'cpu'] as BackendName[]) {
    try {
      found.push(await selectBackend(name));
    } catch {
      // not installed: not a row
    }
  }
  return found;
}

/** Linear in the batch, from the previous (smaller) batch of the same case and backend. */
const scaled = (samples: { median: number } | null | undefined, from: number, to: number) =>
  (samples ? samples.median * (to / from) : undefined);

export async function runSuite(options: SuiteOptions): Promise<SuiteResult> {
  const result: SuiteResult = { rows: [], defaults: [], backends: [], skipped: [] };
  let cases = BENCH_CASES.filter((c) => !options.cases || options.cases.includes(c.name));
  if (options.quick) cases = cases.filter((c) => QUICK_CASES.includes(c.name)).map((c) => ({ ...c, batches: [Math.min(QUICK_BATCH, c.batches[0])] }));
  for (const benchCase of cases) {
    await tf.setBackend('cpu');
    options.log(`building ${benchCase.name}`);
    const model = benchCase.build();
    const artifacts = await artifactsOfModel(model);
    model.dispose();
    const prepared = await prepare(artifacts, { passes: benchCase.passes });
    if (benchCase.passes && prepared.records.length === 0) throw new Error(`${benchCase.name}: the passes ${benchCase.passes.join(', ')} rewrote nothing`);
    for (const backendName of options.backends) {
      if (!options.full && benchCase.fullOnlyOn?.includes(backendName)) {
        result.skipped.push(`${benchCase.name} / ${backendName}: runs only with --full`);
        continue;
      }
      const backend = await selectBackend(backendName);
      if (!result.backends.some((b) => b.name === backend.name)) result.backends.push(backend);
      await runCase(benchCase, prepared, backend.name, options, result);
      if (benchCase.checkDefaultOn?.includes(backend.name)) result.defaults.push(await defaultCheck(benchCase, artifacts, prepared.rewritten, backend.name));
    }
  }
  return result;
}

/** The target rows are stated for optimize with default settings: check they time its output. */
async function defaultCheck(benchCase: BenchCase, artifacts: Parameters<typeof optimize>[0], timed: { modelTopology?: unknown }, backend: BackendName): Promise<DefaultCheck> {
  const result = await optimize(artifacts, { backend, verify: false });
  const same = JSON.stringify(result.artifacts.modelTopology) === JSON.stringify(timed.modelTopology);
  return { case: benchCase.name, backend, same, decisions: (result.report.policy?.decisions ?? []).map((d) => `${d.layer}: ${d.decision}: ${d.reason}`) };
}

async function runCase(benchCase: BenchCase, prepared: Awaited<ReturnType<typeof prepare>>, backend: BackendName, options: SuiteOptions, result: SuiteResult) {
  const loaded = await load(prepared);
  let previous: Measurement | undefined;
  const batches = (!options.full && benchCase.batchesOn?.[backend]) || benchCase.batches;
  if (batches !== benchCase.batches) {
    result.skipped.push(`${benchCase.name} / ${backend}: batch ${batches.join(', ')} instead of ${benchCase.batches.join(', ')} (time); --full runs ${benchCase.batches.join(', ')}`);
  }
  try {
    for (const batch of batches) {
      const where = `${benchCase.name} / ${backend} / ${batch} ${benchCase.unit}`;
      const rewrittenEstimate = previous ? scaled(previous.rewritten, previous.batch, batch) : undefined;
      if (!options.full && rewrittenEstimate !== undefined && rewrittenEstimate > SKIP_ABOVE_MS) {
        result.skipped.push(`${where}: skipped, the rewritten model alone is ~${(rewrittenEstimate / 1000).toFixed(0)} s per run (scaled from batch ${previous!.batch}); --full runs it`);
        continue;
      }
      // An original skipped at the previous batch is skipped again (Infinity), unless --full.
      const originalEstimate = previous ? scaled(previous.original, previous.batch, batch) ?? Infinity : undefined;
      const skipOriginal = !options.full && originalEstimate !== undefined && originalEstimate > SKIP_ABOVE_MS
        ? `original skipped: ~${Number.isFinite(originalEstimate) ? (originalEstimate / 1000).toFixed(0) : `>${SKIP_ABOVE_MS / 1000}`} s per run (scaled from batch ${previous!.batch}); --full runs it`
        : undefined;
      options.log(`timing ${where}`);
      const inputs = makeInputs(loaded.original.layersModel!, batch);
      try {
        const measurement = await measure(loaded, prepared.records, inputs, {
          timing: options.timing,
          skipOriginal,
          slowOriginal: originalEstimate !== undefined && originalEstimate > SLOW_MS,
        });
        result.rows.push({ case: benchCase.name, backend, unit: benchCase.unit, measurement });
        previous = measurement;
      } finally {
        tf.dispose(inputs);
      }
    }
  } finally {
    loaded.dispose();
  }
}

/** The machine, for the README and the JSON. */
export function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
    platform: `${os.platform()} ${os.release()}`,
    node: process.version,
    tfjs: tf.version.tfjs,
    loadavg: os.loadavg().map((n) => n.toFixed(2)).join(' '),
  };
}
