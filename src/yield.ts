/**
 * Long loops (verification batches, timed runs) await this between steps. tfjs on cpu/wasm
 * computes synchronously, so without it a 20,000-row verification never returns to the event
 * loop and Ctrl-C (a signal handler is an event) waits for the whole run. It also honours an
 * AbortSignal, for library callers that want to stop a run.
 */
export function yieldToEventLoop(signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => setImmediate(() => {
    if (signal?.aborted) reject(signal.reason ?? new Error('aborted'));
    else resolve();
  }));
}
