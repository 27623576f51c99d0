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

/** One line, no stack: what a user sees for bad input. */
export function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s*\n\s*/g, ' ').trim();
}
