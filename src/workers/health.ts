/**
 * Whether this thread's tfjs is still to be trusted. A WebAssembly trap (wasm's 4 GB heap
 * exhausted, an out-of-bounds access) can leave tfjs-backend-wasm's heap and its kernel caches
 * inconsistent, and a pooled worker lives on to run the next call: a worker that saw one retires
 * after its reply (src/worker.ts), and the pool starts a fresh one.
 */
let trapped = false;

/** Records `error` if it is a WebAssembly trap (callers that turn such an error into a report call this). */
export function noteWasmTrap(error: unknown): void {
  // (The project's TypeScript libs do not declare the WebAssembly global.)
  const RuntimeError = (globalThis as { WebAssembly?: { RuntimeError: abstract new () => Error } }).WebAssembly?.RuntimeError;
  if (RuntimeError && error instanceof RuntimeError) trapped = true;
}

/** Whether a trap was recorded since the last call (and forgets it). */
export function takeWasmTrap(): boolean {
  const seen = trapped;
  trapped = false;
  return seen;
}
