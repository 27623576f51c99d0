/**
 * `tfjs-rewrite bench <model.json>` and `benchModel`: times exactly the model optimize with the
 * same flags would write (same passes, same policy on the same backend) against the original,
 * plus each rewritten conv's cut-out alone and, for layers models, the bare matMul+bias they
 * reduce to. Either format, through the one pipeline (`--policy always`: every correct rewrite,
 * the per-rewrite table).
 */
import * as tf from '@tensorflow/tfjs';
import { BackendRequest, selectBackend } from '../backend/select';
import { Measurement, Prepared, load, measure } from '../bench/measure';
import { measureInPage } from '../bench/page';
import { markdownTable } from '../bench/report';
import type { InterleaveOptions } from '../bench/stats';
import { BrowserSession, isBrowserBackend, withBrowser } from '../browser/session';
import type { RewriteRecord, SkipRecord } from '../core/rule';
import { InputError } from '../errors';
import { Runnable, loadRunnable } from '../formats/load';
import { readNpy } from '../io/npy';
import { planDecisions } from '../policy/decisions';
import { DEFAULT_POLICY_BATCH, PolicyReport } from '../policy/policy';
import { makeInputs } from '../verify/inputs';
import type { SomeAdapter } from './adapter';
import { AnyModelSource, OptimizeOptions, adapterFor, rewrite } from './index';

/** What bench takes of optimize's options: the rules and the policy (nothing is verified). */
export type BenchRewriteOptions = Pick<OptimizeOptions, 'passes' | 'policy' | 'policyBatch' | 'policyTimer' | 'policyLog' | 'decisions'> & { backend?: BackendRequest };

/**
 * Both models, what was rewritten, and a cut-out per rewritten conv and input shape. The policy
 * defaults to 'always' here (the dev harness in tools/bench measures the rewrite itself);
 * benchModel defaults to optimize's.
 */
export async function prepare(given: AnyModelSource, options: BenchRewriteOptions = {}): Promise<Prepared & { policy: PolicyReport; kept: SkipRecord[] }> {
  const { adapter, source } = await adapterFor(given);
  return prepareWith(adapter, source, { policy: 'always', ...options });
}

async function prepareWith(adapter: SomeAdapter, source: unknown, options: BenchRewriteOptions) {
  // A decisions file is replayed as optimize would (bench never records one).
  const { replay } = planDecisions(options.decisions, adapter.decisionsFormat, false);
  const run = await rewrite(adapter, source, { ...options, verify: false, cutOuts: true, replay });
  const rewritten = run.rewritten.length || adapter.mustWrite(run.ir) ? adapter.writer(run.ir).artifacts() : run.original;
  const probes: Prepared['probes'] = [];
  const unprobed: string[] = [];
  for (const { layer, cutOuts } of await run.rewrittenCutOuts()) {
    if (typeof cutOuts === 'string') unprobed.push(`${layer}: ${cutOuts}`);
    else probes.push(...cutOuts);
  }
  return { format: adapter.format, original: run.original, rewritten, records: run.rewritten, probes, unprobed, policy: run.policy, kept: run.kept };
}

export interface ModelBenchOptions extends BenchRewriteOptions {
  /** One .npy per model input; their leading dimension is the batch. */
  inputs?: string[];
  /** Batch of the generated inputs when no --inputs (default 16). */
  batch?: number;
  timing?: InterleaveOptions;
}

export interface ModelBenchReport {
  backend: string;
  device: string;
  rewritten: RewriteRecord[];
  /** Correct matches the policy kept, with its reason (as optimize reports them). */
  kept: SkipRecord[];
  policy: PolicyReport;
  /** Rewritten convs whose replacement could not be timed alone (no subgraph column for them). */
  unprobed: string[];
  measurement: Measurement;
}

export const MODEL_BENCH_TIMING: InterleaveOptions = { warmup: 1, minReps: 3, maxReps: 15, budgetMs: 3000 };

function npyInputs(model: Runnable, files: string[]): tf.Tensor[] {
  if (files.length !== model.inputs.length) throw new InputError(`the model has ${model.inputs.length} input(s) but ${files.length} .npy file(s) were given`);
  const tensors = files.map((file) => {
    const array = readNpy(file);
    return tf.tensor(array.data, array.shape, array.dtype);
  });
  if (new Set(tensors.map((t) => t.shape[0])).size !== 1) {
    tf.dispose(tensors);
    throw new InputError('the .npy inputs disagree on their leading (batch) dimension');
  }
  return tensors;
}

/** The user's .npy rows, or seeded ones at the bench batch. */
function benchInputs(model: Runnable, options: ModelBenchOptions): tf.Tensor[] {
  if (options.inputs) return npyInputs(model, options.inputs);
  const signature = { inputs: model.inputs, inputNames: model.inputs.map((input) => input.name) } as unknown as tf.LayersModel;
  return makeInputs(signature, options.batch ?? DEFAULT_POLICY_BATCH);
}

export async function benchModel(given: AnyModelSource, options: ModelBenchOptions = {}): Promise<ModelBenchReport> {
  const { adapter, source } = await adapterFor(given);
  const prepared = await prepareWith(adapter, source, options);
  const request = options.backend ?? 'auto';
  if (isBrowserBackend(request)) return withBrowser(request, {}, (session) => benchInPage(session, prepared, options));
  const backend = await selectBackend(request);
  const loaded = await load(prepared);
  let inputs: tf.Tensor[] = [];
  try {
    inputs = benchInputs(loaded.original, options);
    const measurement = await measure(loaded, prepared.records, inputs, { timing: options.timing ?? MODEL_BENCH_TIMING });
    return report(backend, prepared, measurement);
  } finally {
    tf.dispose(inputs);
    loaded.dispose();
  }
}

function report(backend: { name: string; device: string }, prepared: Awaited<ReturnType<typeof prepareWith>>, measurement: Measurement): ModelBenchReport {
  if (prepared.records.length === 0) measurement.notes.push('nothing was rewritten: both columns are the same model');
  const { records: rewritten, kept, policy, unprobed } = prepared;
  return { backend: backend.name, device: backend.device, rewritten, kept, policy, unprobed, measurement };
}

/** The same report with the runs timed in a browser page (webgl/webgpu). */
async function benchInPage(session: BrowserSession, prepared: Awaited<ReturnType<typeof prepareWith>>, options: ModelBenchOptions): Promise<ModelBenchReport> {
  // The Node copy of the original only gives the input signature (and reads the .npy files).
  const original = await loadRunnable(prepared.format, prepared.original, 'original');
  let inputs: tf.Tensor[] = [];
  try {
    inputs = benchInputs(original, options);
    const measurement = await measureInPage(session, prepared, inputs, options.timing ?? MODEL_BENCH_TIMING);
    return report({ name: session.backend, device: session.device }, prepared, measurement);
  } finally {
    tf.dispose(inputs);
    original.dispose();
  }
}

export function formatModelBench(report: ModelBenchReport, name: string): string {
  const lines = [
    `bench ${name} on ${report.backend}, ${report.device} (policy ${report.policy.mode})`,
    `rewritten: ${report.rewritten.map((r) => `${r.layer} (${r.pass})`).join(', ') || '(nothing)'}`,
    ...(report.kept.length ? [`kept by the policy: ${report.kept.map((k) => k.layer).join(', ')} (--policy always times every correct rewrite)`] : []),
    '',
    markdownTable([{ case: name, backend: report.backend, unit: 'rows', measurement: report.measurement }]),
  ];
  for (const line of report.unprobed) lines.push(`- no subgraph timing for ${line}`);
  lines.push('', 'ms: median ±half-range of interleaved runs after a warm-up; bare = matMul+bias of the rewritten Dense layers on rows of their shape (layers models).');
  return lines.join('\n');
}
