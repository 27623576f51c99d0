/**
 * The worker-thread pool (piscina) that tensor work runs in. Each worker loads its own tfjs, so
 * its engine (backend, memory, kernels) is not the caller's: a run never switches the app's
 * backend or competes with its predictions. A run is one task; aborting it terminates its worker,
 * which stops even one long op (a 256^3 Conv3D) at once, and independent tasks use every core.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { MessageChannel, MessagePort } from 'worker_threads';
import Piscina from 'piscina';

/** What the worker entry (src/worker.ts) receives: a named task, its arguments, a port for events. */
export interface TaskRequest {
  task: string;
  args: unknown[];
  port: MessagePort;
}

/** An error crossing the thread boundary (structured clone drops classes): rebuilt by the caller. */
export interface TaskError {
  kind: 'input' | 'original-model' | 'other';
  message: string;
  name?: string;
  backend?: string;
  reason?: string;
  stack?: string;
}

export type TaskReply = { value: unknown } | { error: TaskError };

/** The compiled worker entry: beside this folder in dist/, or dist/ of the repo under ts-jest. */
export function workerScript(): string {
  const compiled = path.join(__dirname, '..', 'worker.js');
  if (fs.existsSync(compiled)) return compiled;
  const repo = path.resolve(__dirname, '..', '..', 'dist', 'src', 'worker.js');
  if (fs.existsSync(repo)) return repo;
  throw new Error(`the worker script is missing (looked for ${compiled} and ${repo}); build with tsc`);
}

/** Worker threads to use: one per core (tfjs on wasm/cpu is single-threaded per engine). */
export function poolSize(): number {
  const env = Number(process.env.TFJS_REWRITE_THREADS);
  if (Number.isInteger(env) && env >= 1) return env;
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

let pool: Piscina | undefined;

function thePool(): Piscina {
  pool ??= new Piscina({
    filename: workerScript(),
    // One thread stays (idle, unref'd: it never keeps the process alive); piscina 4 can stall with 0.
    minThreads: 1,
    maxThreads: poolSize(),
    // A worker keeps its loaded tfjs for the next task for a while (tfjs + wasm take ~1 s to start).
    idleTimeout: 10_000,
    // Tasks queue beyond the threads: concurrent optimize() calls wait their turn, none fails.
    maxQueue: Infinity,
    // Between tasks a worker waits on its event loop (not Atomics.wait), so async cleanups finish.
    useAtomics: false,
  });
  return pool;
}

/** Ends the pool's workers (tests; a CLI exits anyway). */
export async function closePool(): Promise<void> {
  const closing = pool;
  pool = undefined;
  await closing?.destroy();
}

export interface RunOptions {
  /** Events the task posts on its port (progress, log lines). */
  onEvent?: (event: unknown) => void;
  /** Aborting terminates the worker running the task (or drops it from the queue). */
  signal?: AbortSignal;
  /** Buffers moved to the worker instead of copied (the caller must not use them after). */
  transfer?: ArrayBuffer[];
}

/** Runs `task` in a worker; resolves with its reply (a value or a transported error). */
export async function runTask(task: string, args: unknown[], options: RunOptions = {}): Promise<TaskReply> {
  return runOn(thePool(), task, args, options);
}

/**
 * Runs `task` in a thread of its own, started for it and ended after it: its wasm heap starts
 * empty (a pooled worker's never shrinks, and holds what its last tasks left where they left it).
 */
export async function runTaskInFreshThread(task: string, args: unknown[], options: RunOptions = {}): Promise<TaskReply> {
  const fresh = new Piscina({ filename: workerScript(), minThreads: 1, maxThreads: 1, maxQueue: Infinity, useAtomics: false });
  try {
    return await runOn(fresh, task, args, options);
  } finally {
    await fresh.destroy();
  }
}

async function runOn(on: Piscina, task: string, args: unknown[], options: RunOptions): Promise<TaskReply> {
  const { port1, port2 } = new MessageChannel();
  if (options.onEvent) port1.on('message', options.onEvent);
  const request: TaskRequest = { task, args, port: port2 };
  try {
    return await on.run(request, { transferList: [port2, ...(options.transfer ?? [])] as never, signal: options.signal as never });
  } finally {
    // Events posted just before the reply are still queued on port1: let them arrive first.
    await new Promise((resolve) => setImmediate(resolve));
    port1.close();
  }
}
