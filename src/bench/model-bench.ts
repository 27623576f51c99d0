/** `tfjs-rewrite bench <model.json>`: the bench's columns for a user's own model, end to end. */
import * as tf from '@tensorflow/tfjs';
import { BackendRequest, selectBackend } from '../backend/select';
import { InputError } from '../errors';
import { readNpy } from '../io/npy';
import type { ModelSource } from '../io/source';
import type { RewriteRecord } from '../layers/driver';
import { Measurement, Prepared, load, measure, prepare } from './measure';
import { measureInPage } from './page';
import { BrowserSession, isBrowserBackend, withBrowser } from '../browser/session';
import { disposeModel, instantiate } from '../verify/models';
import { DEFAULT_POLICY_BATCH } from '../policy/policy';
import { markdownTable } from './report';
import type { InterleaveOptions } from './stats';
import { makeInputs } from '../verify/inputs';


export interface ModelBenchOptions {
  backend?: BackendRequest;
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
  /** Rewritten convs whose replacement could not be timed alone (no subgraph column for them). */
  unprobed: string[];
  measurement: Measurement;
}

export const MODEL_BENCH_TIMING: InterleaveOptions = { warmup: 1, minReps: 3, maxReps: 15, budgetMs: 3000 };

function npyInputs(model: tf.LayersModel, files: string[]): tf.Tensor[] {
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

export async function benchModel(source: ModelSource, options: ModelBenchOptions = {}): Promise<ModelBenchReport> {
  const prepared = await prepare(source);
  const request = options.backend ?? 'auto';
  if (isBrowserBackend(request)) return withBrowser(request, {}, (session) => benchInPage(session, prepared, options));
  const backend = await selectBackend(request);
  const loaded = await load(prepared);
  let inputs: tf.Tensor[] = [];
  try {
    inputs = options.inputs ? npyInputs(loaded.original, options.inputs) : makeInputs(loaded.original, options.batch ?? DEFAULT_POLICY_BATCH);
    const measurement = await measure(loaded, prepared.records, inputs, { timing: options.timing ?? MODEL_BENCH_TIMING });
    if (prepared.records.length === 0) measurement.notes.push('nothing was rewritten: both columns are the same model');
    return { backend: backend.name, device: backend.device, rewritten: prepared.records, unprobed: prepared.unprobed, measurement };
  } finally {
    tf.dispose(inputs);
    loaded.dispose();
  }
}

/** The same report with the runs timed in a browser page (webgl/webgpu). */
async function benchInPage(session: BrowserSession, prepared: Prepared, options: ModelBenchOptions): Promise<ModelBenchReport> {
  // The Node copy of the original only gives the input signature (and reads the .npy files).
  const original = await instantiate(prepared.original, 'original');
  let inputs: tf.Tensor[] = [];
  try {
    inputs = options.inputs ? npyInputs(original, options.inputs) : makeInputs(original, options.batch ?? DEFAULT_POLICY_BATCH);
    const measurement = await measureInPage(session, prepared, inputs, options.timing ?? MODEL_BENCH_TIMING);
    if (prepared.records.length === 0) measurement.notes.push('nothing was rewritten: both columns are the same model');
    return { backend: session.backend, device: session.device, rewritten: prepared.records, unprobed: prepared.unprobed, measurement };
  } finally {
    tf.dispose(inputs);
    disposeModel(original);
  }
}

export function formatModelBench(report: ModelBenchReport, name: string): string {
  const lines = [
    `bench ${name} on ${report.backend}, ${report.device}`,
    `rewritten: ${report.rewritten.map((r) => `${r.layer} (${r.pass})`).join(', ') || '(nothing)'}`,
    '',
    markdownTable([{ case: name, backend: report.backend, unit: 'rows', measurement: report.measurement }]),
  ];
  for (const line of report.unprobed) lines.push(`- no subgraph timing for ${line}`);
  lines.push('', 'ms: median ±half-range of interleaved runs after a warm-up; bare = matMul+bias of the rewritten Dense layers on rows of their shape.');
  return lines.join('\n');
}
