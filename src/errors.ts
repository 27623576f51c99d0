/**
 * Errors the CLI maps to exit code 2 with a one-line message: the input (files, model, flags)
 * is at fault, not the tool.
 */
export class InputError extends Error {
  override name = 'InputError';

  // Messages from tfjs span lines; ours must stay one line wherever they are printed.
  constructor(message: string) {
    super(oneLine(message));
  }
}

/**
 * The run needed more memory than its thread has: the worker ended without a reply (tfjs's wasm
 * backend aborts its thread when its 4 GB heap is exhausted). The model's size, not a bug.
 */
export class OutOfMemoryError extends InputError {
  override name = 'OutOfMemoryError';
}

/**
 * Piscina's error for a worker that ended mid-task, as an OutOfMemoryError (`what`: the work it
 * ran); undefined for any other error. Only a trap that kills the thread (wasm's abort) does that.
 */
export function exitedWorker(error: unknown, what: string): OutOfMemoryError | undefined {
  if (!/^worker exited with code/.test(oneLine(error))) return undefined;
  return new OutOfMemoryError(`the worker thread running ${what} ended without a reply (${oneLine(error)}): tfjs's wasm backend ends its ` +
    'thread when its 4 GB heap is exhausted, so the model at this size needs a backend with more memory (tensorflow, webgl) or a smaller input (docs/workers.md)');
}

/** One line, no stack: what a user sees for bad input. */
export function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s*\n\s*/g, ' ').trim();
}
