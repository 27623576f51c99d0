/**
 * The public entry points as a guest: each call runs in a pool worker (src/workers/pool.ts) with
 * its own tfjs, so the caller's tfjs (backend, memory, predictions it is serving) is never touched,
 * concurrent calls run on separate cores, and aborting a call stops it within a second even inside
 * one long op. Models cross as ModelArtifacts; results come back as data, and `load()` builds the
 * rewritten model in the caller's own tfjs.
 *
 * A call stays in this thread, as before (its backend restored afterwards), when the worker
 * cannot take it: a browser backend (its Chromium must be closed by this process), functions in
 * the options other than the progress callbacks (a custom timer, pass objects, a module loader),
 * or TFJS_REWRITE_THREADS=0.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { asGuest } from './backend/guest';
import { OriginalModelError, TargetName } from './backend/select';
import { InputError, exitedWorker } from './errors';
import { artifactsOfModel, writeModelFiles } from './io/files';
import { isLayersModelObject } from './io/source';
import { isBrowserBackend } from './browser/session';
import { TaskError, runTask } from './workers/pool';
import { EVENT_OPTIONS, OffThreadEvent } from './workers/events';
import { setStageListener } from './core/stage';
import * as here from './pipeline';
import { benchModel as benchModelHere } from './pipeline/bench';
import { BUILTIN_GRAPHDEF_PASSES, BUILTIN_PASSES, registeredGraphDefPasses, registeredPasses } from '../passes';

/** A tf.GraphModel of this or another tfjs copy (duck-typed: `instanceof` fails across copies). */
function isGraphModelObject(source: unknown): source is tf.GraphModel {
  const model = source as tf.GraphModel;
  return source instanceof tf.GraphModel || (typeof model?.executeAsync === 'function' && Array.isArray(model.outputNodes) && typeof model.save === 'function');
}

/** An in-memory model as artifacts (weights read once, in the caller's tfjs); anything else as is. */
async function portable(source: unknown): Promise<unknown> {
  if (isLayersModelObject(source)) return artifactsOfModel(source);
  if (isGraphModelObject(source)) {
    let captured: io.ModelArtifacts | undefined;
    await source.save(tf.io.withSaveHandler(async (artifacts) => {
      captured = artifacts;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }));
    return captured!;
  }
  return source;
}

type Options = Record<string, unknown> & { signal?: AbortSignal; backend?: string; passes?: unknown[] };

function threadsOff(): boolean {
  return process.env.TFJS_REWRITE_THREADS === '0';
}

/** A function anywhere inside plain objects and arrays (a per-backend timer map, pass objects). */
function holdsFunction(value: unknown, depth = 0): boolean {
  if (typeof value === 'function') return true;
  if (value === null || typeof value !== 'object' || depth > 4 || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return false;
  return Object.values(value).some((inner) => holdsFunction(inner, depth + 1));
}

/** Why this call must stay in this thread, or null when a worker can take it. */
export function stayReason(options: Options | undefined): string | null {
  if (threadsOff()) return 'TFJS_REWRITE_THREADS=0';
  if (customPassesRegistered()) return 'passes registered in this thread';
  if (!options) return null;
  const backend = options.backend;
  if (backend === 'all' || (typeof backend === 'string' && isBrowserBackend(backend as TargetName))) return `backend ${backend}`;
  for (const [key, value] of Object.entries(options)) {
    if (key === 'signal' || EVENT_OPTIONS.includes(key)) continue;
    if (holdsFunction(value)) return `option ${key} holds a function`;
  }
  if ((options.passes ?? []).some((pass) => typeof pass !== 'string')) return 'pass objects';
  return null;
}

/** Passes the caller registered (registerPass) exist in the caller's registry only. */
function customPassesRegistered(): boolean {
  const builtin = new Set([...BUILTIN_PASSES, ...BUILTIN_GRAPHDEF_PASSES].map((pass) => pass.name));
  return [...registeredPasses(), ...registeredGraphDefPasses()].some((pass) => !builtin.has(pass.name));
}

/** A tensor given as verification input, as its data (read in the caller's tfjs); files and arrays as they are. */
function asData(input: unknown): unknown {
  if (!(input instanceof tf.Tensor)) return input;
  return { dtype: input.dtype, shape: input.shape, data: input.dataSync() };
}

/** The options as data: callbacks named (the worker posts their calls back), the signal kept here. */
function dataOptions(options: Options | undefined): { data: Options | undefined; onEvent: (event: unknown) => void } {
  if (!options) return { data: undefined, onEvent: () => undefined };
  const data: Options = {};
  const events: string[] = [];
  for (const [key, value] of Object.entries(options)) {
    if (key === 'signal') continue;
    if (typeof value === 'function') events.push(key);
    else if (key === 'inputs' && Array.isArray(value)) data[key] = value.map(asData);
    else data[key] = value;
  }
  if (events.length) data.offThreadEvents = events;
  const onEvent = (event: unknown) => {
    const { option, data: argument } = event as OffThreadEvent;
    (options[option] as ((value: unknown) => void) | undefined)?.(argument);
  };
  return { data, onEvent };
}

/** The worker did not know a layer class that the caller's tfjs has registered. */
function registeredHere(error: TaskError): boolean {
  const match = /unknown layer class "([^"]+)"/.exec(error.message);
  return match !== null && match[1] in tf.serialization.SerializationMap.getMap().classNameMap;
}

function rebuilt(error: TaskError): Error {
  if (error.kind === 'original-model') return new OriginalModelError(error.backend as TargetName, error.reason ?? error.message);
  if (error.kind === 'input') return new InputError(error.message);
  const rebuiltError = new Error(error.message);
  if (error.name) rebuiltError.name = error.name;
  if (error.stack) rebuiltError.stack = error.stack;
  return rebuiltError;
}

/**
 * `here` run in a worker as task `task`: sources (positions `sources`) cross as artifacts, the
 * last argument is the options; `decode` turns the worker's data into the caller's result.
 */
function offThread<A extends unknown[], R>(
  task: string, hereFn: (...args: A) => Promise<R>, sources: number, decode: (value: unknown) => R = (value) => value as R,
): (...args: A) => Promise<R> {
  const guest = asGuest(hereFn);
  // In this thread, stages reach the caller's onStage through the thread's listener.
  const inThisThread = async (...args: A): Promise<R> => {
    const onStage = (args[sources] as Options | undefined)?.onStage;
    if (typeof onStage !== 'function') return guest(...args);
    setStageListener(onStage as (stage: string) => void);
    try {
      return await guest(...args);
    } finally {
      setStageListener(null);
    }
  };
  return async (...args: A): Promise<R> => {
    const options = args[sources] as Options | undefined;
    if (stayReason(options) !== null) return inThisThread(...args);
    const moved = await Promise.all(args.slice(0, sources).map(portable));
    const { data, onEvent } = dataOptions(options);
    const signal = options?.signal;
    let reply;
    try {
      reply = await runTask(task, [...moved, data], { onEvent, signal });
    } catch (error) {
      // Piscina's AbortError: the caller sees its own reason, as from an in-thread run.
      if (signal?.aborted) throw signal.reason ?? error;
      throw exitedWorker(error, task) ?? error;
    }
    if ('error' in reply) {
      // A custom layer class the caller registered (tf.serialization.registerClass) exists only
      // in the caller's tfjs: such a model runs in this thread, as before.
      if (registeredHere(reply.error)) return inThisThread(...args);
      throw rebuilt(reply.error);
    }
    return decode(reply.value);
  };
}

interface OptimizeReply {
  format: 'layers' | 'graph';
  report: here.Report;
  artifacts: io.ModelArtifacts;
}

/**
 * Artifacts made of this realm's objects. A message arrives in Node's main realm; a caller inside
 * a vm context (jest) has other Array/ArrayBuffer classes, and tfjs's `instanceof` checks fail on
 * foreign ones. Rebuilt only then: the topology through JSON, the weights copied.
 */
function inThisRealm(artifacts: io.ModelArtifacts): io.ModelArtifacts {
  if (artifacts.modelTopology instanceof Object) return artifacts;
  const json = JSON.parse(JSON.stringify({ ...artifacts, weightData: undefined }));
  const copy = (buffer: ArrayBuffer) => new Uint8Array(new Uint8Array(buffer)).buffer as ArrayBuffer;
  const data = artifacts.weightData;
  return { ...json, ...(data === undefined ? {} : { weightData: Array.isArray(data) ? Array.from(data, copy) : copy(data) }) };
}

/** An optimize result from the worker's data: load() instantiates in the caller's tfjs. */
function optimizeResult(value: unknown): here.OptimizeResult & here.GraphOptimizeResult {
  const { format, report } = value as OptimizeReply;
  const artifacts = inThisRealm((value as OptimizeReply).artifacts);
  return {
    report,
    artifacts,
    load: (() => (format === 'graph' ? tf.loadGraphModel(tf.io.fromMemory(artifacts)) : tf.loadLayersModel(tf.io.fromMemory(artifacts)))) as never,
    save: (dir, options) => writeModelFiles(artifacts, dir, options),
  };
}

export const optimize = offThread('optimize', here.optimize as (source: here.AnyModelSource, options?: here.OptimizeOptions) => Promise<unknown>, 1, optimizeResult) as typeof here.optimize;
export const inspect = offThread('inspect', here.inspect, 1);
export const verify = offThread('verify', here.verify, 2);
export const optimizeGraphModel = offThread('optimizeGraphModel', here.optimizeGraphModel, 1, optimizeResult) as typeof here.optimizeGraphModel;
export const inspectGraphModel = offThread('inspectGraphModel', here.inspectGraphModel, 1);
export const verifyGraphModels = offThread('verifyGraphModels', here.verifyGraphModels, 2);
export const benchModel = offThread('benchModel', benchModelHere, 1);
