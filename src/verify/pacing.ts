/**
 * Rows per forward pass during verification. Signals and aborts are handled only between
 * synchronous steps (a forward pass, a float64 reference), so a step must stay short for Ctrl-C
 * to be honoured within a second, whatever the model: a 512-row pass of a Qwen3-VL patch embed's
 * Conv3D on wasm takes ~4 s on a quiet machine, ~50 s on a loaded one. The pacer starts with a few
 * rows, measures the slowest step per row, and sizes the next pass so its slowest step takes about
 * TARGET_MS, never above the user's --batch-size. Results do not depend on the pass sizes (the
 * accumulators are exact across splits), only the number of passes does.
 */
export const TARGET_MS = 200;
const FIRST_ROWS = 8;

export class RowPacer {
  private msPerRow: number | undefined;

  constructor(private readonly cap: number, private readonly targetMs = TARGET_MS) {}

  /** Rows for the next pass, out of `remaining`. */
  next(remaining: number): number {
    const fit = this.msPerRow === undefined ? FIRST_ROWS : Math.max(1, Math.floor(this.targetMs / this.msPerRow));
    return Math.max(1, Math.min(this.cap, fit, remaining));
  }

  /** After a pass of `rows` rows whose slowest synchronous step took `slowestMs`. */
  record(rows: number, slowestMs: number): void {
    this.msPerRow = Math.max(slowestMs, 1e-3) / rows;
  }
}

/** Times synchronous steps and keeps the slowest. */
export class StepTimer {
  slowest = 0;
  private started = performance.now();

  /** Ends the current step (call right before yielding) and starts the next after the yield. */
  lap(): void {
    this.slowest = Math.max(this.slowest, performance.now() - this.started);
  }

  restart(): void {
    this.started = performance.now();
  }
}
