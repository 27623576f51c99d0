/**
 * Entry point of a pool worker (src/workers/pool.ts): runs one library call in this thread's own
 * tfjs and replies with plain data. Callbacks of the caller become events on the task's port;
 * rewritten weights travel back as transferred buffers, never copied.
 */
import { silenceTfjsNodeBanner } from './quiet';
import './backend/tfjs';
import type { io } from '@tensorflow/tfjs';
import { InputError } from './errors';
import { OriginalModelError } from './backend/select';
import type { TaskError, TaskReply, TaskRequest } from './workers/pool';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { inspect, inspectGraphModel, optimize, optimizeGraphModel, verify, verifyGraphModels } from './pipeline';
import { isGraphModelJson } from './graphdef/ir';
import { benchModel } from './pipeline/bench';
import { EVENT_OPTIONS, OffThreadEvent } from './workers/events';
import { setStageListener } from './core/stage';
import { noteWasmTrap, takeWasmTrap } from './workers/health';

silenceTfjsNodeBanner();
// A worker's stdout is the process's: keep it clean for a CLI's --json (tfjs logs through console.log).
console.log = (...parts: unknown[]) => process.stderr.write(`${parts.map(String).join(' ')}\n`);

type Emit = (event: OffThreadEvent) => void;

/** The caller's callback options, rebuilt as functions that post events. */
function withEvents(options: Record<string, unknown> | undefined, emit: Emit): Record<string, unknown> {
  const rebuilt: Record<string, unknown> = { ...(options ?? {}) };
  for (const name of (options?.offThreadEvents as string[] | undefined) ?? []) {
    if (EVENT_OPTIONS.includes(name)) rebuilt[name] = (data: unknown) => emit({ option: name, data });
  }
  // Stages come from deep inside the run (src/stage.ts), not through the options.
  if (typeof rebuilt.onStage === 'function') setStageListener(rebuilt.onStage as (stage: string) => void);
  delete rebuilt.offThreadEvents;
  return rebuilt;
}

function weightBuffers(artifacts: io.ModelArtifacts): ArrayBuffer[] {
  const data = artifacts.weightData;
  return data === undefined ? [] : Array.isArray(data) ? data : [data];
}

/** An optimize result as data: the report, the format, and the artifacts with their buffers moved. */
function optimizeReply(result: { report: unknown; artifacts: io.ModelArtifacts }, format: 'layers' | 'graph') {
  const artifacts = result.artifacts;
  const buffers = weightBuffers(artifacts);
  // Distinct buffers only: a transfer list may not name one twice.
  return { value: { format, report: result.report, artifacts }, transfer: [...new Set(buffers)] };
}

type Task = (args: unknown[], emit: Emit) => Promise<{ value: unknown; transfer?: ArrayBuffer[] }>;

/* eslint-disable @typescript-eslint/no-explicit-any */
const TASKS: Record<string, Task> = {
  optimize: async ([source, options], emit) => {
    const result = await optimize(source as any, withEvents(options as any, emit));
    return optimizeReply(result, isGraphModelJson(result.artifacts) ? 'graph' : 'layers');
  },
  optimizeGraphModel: async ([source, options], emit) => optimizeReply(await optimizeGraphModel(source as any, withEvents(options as any, emit)), 'graph'),
  inspect: async ([source, options], emit) => ({ value: await inspect(source as any, withEvents(options as any, emit)) }),
  inspectGraphModel: async ([source, options], emit) => ({ value: await inspectGraphModel(source as any, withEvents(options as any, emit)) }),
  verify: async ([a, b, options], emit) => ({ value: await verify(a as any, b as any, withEvents(options as any, emit)) }),
  verifyGraphModels: async ([a, b, options], emit) => ({ value: await verifyGraphModels(a as any, b as any, withEvents(options as any, emit)) }),
  // One row shard of a long verification (src/verify/shards.ts): its accumulators, as data.
  verifyShard: async ([a, b, options], emit) => ({ value: (await verify(a as any, b as any, withEvents(options as any, emit)) as any).shard }),
  benchModel: async ([source, options], emit) => ({ value: await benchModel(source as any, withEvents(options as any, emit)) }),
};
/* eslint-enable @typescript-eslint/no-explicit-any */

function taskError(error: unknown): TaskError {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof OriginalModelError) return { kind: 'original-model', message, backend: error.backend, reason: error.reason };
  if (error instanceof InputError) return { kind: 'input', message, name: error.name };
  return { kind: 'other', message, name: (error as Error)?.name, stack: (error as Error)?.stack };
}

/** Piscina calls this once per task. */
export default async function runRequest({ task, args, port }: TaskRequest): Promise<TaskReply> {
  const run = TASKS[task];
  const emit: Emit = (event) => port.postMessage(event);
  try {
    if (!run) throw new Error(`unknown worker task "${task}"`);
    const { value, transfer } = await run(args, emit);
    return transfer?.length ? moved({ value }, transfer) : { value };
  } catch (error) {
    noteWasmTrap(error);
    return { error: taskError(error) };
  } finally {
    setStageListener(null);
    port.close();
    // After a WebAssembly trap this thread's wasm heap is suspect: leave once the reply is out
    // (piscina replaces an exited worker; only a task handed to this one meanwhile would fail).
    if (takeWasmTrap()) setImmediate(() => process.exit(0));
  }
}

/** A reply whose buffers piscina moves to the caller instead of copying them. */
function moved(reply: TaskReply, transfer: ArrayBuffer[]): TaskReply {
  return move({ [transferableSymbol]: transfer, [valueSymbol]: reply } as never) as never;
}
