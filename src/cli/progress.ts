/**
 * Progress on stderr for anything long (stdout stays clean for --json). Verification rows are
 * shown at most once a second, from the first second on (or always, the last, with --inputs);
 * and whatever the run is doing, a line comes at least every 10 s: the stage (policy timing,
 * verification rows, a layer's float64 check), the time elapsed and, when rows are counted, an
 * estimate of what is left. The heavy work runs in a worker, so this thread's timer is on time.
 */
export interface RowProgress {
  backend: string;
  done: number;
  total: number;
}

/**
 * A line after this much silence: the promise is 10 s, and the check runs once a second in a
 * process that took ~0.5 s to start (measured: a 10 s heartbeat left a 10.5 s gap at launch).
 */
export const HEARTBEAT_MS = 8_000;

export class ProgressLines {
  private readonly started = Date.now();
  private lastLine = Date.now();
  private lastRows = Date.now();
  private rowsShown: boolean;
  private stage = 'reading the model';
  private rows: { done: number; total: number; firstAt: number; firstDone: number } | null = null;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly command: string, alwaysShowLastRow: boolean,
    private readonly write: (line: string) => void = (line) => process.stderr.write(`${line}\n`), heartbeatMs = HEARTBEAT_MS,
  ) {
    this.rowsShown = alwaysShowLastRow;
    // Checked every second; never keeps the process alive.
    this.timer = setInterval(() => {
      if (Date.now() - this.lastLine >= heartbeatMs - 500) this.line(`${this.command}: ${this.stage}${this.timing()}`);
    }, Math.min(1000, heartbeatMs / 4));
    this.timer.unref();
  }

  /** The row callback of a verification (LayersVerifyOptions.onProgress). */
  readonly onProgress = ({ backend, done, total }: RowProgress): void => {
    const now = Date.now();
    if (!this.rows || this.rows.total !== total || done < this.rows.done) this.rows = { done, total, firstAt: now, firstDone: done };
    this.rows.done = done;
    this.stage = `verifying on ${backend}: ${done}/${total} rows`;
    if (done === total ? !this.rowsShown : now - this.lastRows < 1000) return;
    this.rowsShown = true;
    this.lastRows = now;
    this.line(`verifying on ${backend}: ${done}/${total} rows${this.timing()}`);
  };

  /** A stage of the run (src/stage.ts), shown by the next heartbeat. */
  readonly onStage = (stage: string): void => {
    this.stage = stage;
    this.rows = null;
  };

  stop(): void {
    clearInterval(this.timer);
  }

  private line(text: string): void {
    this.lastLine = Date.now();
    this.write(`tfjs-rewrite: ${text}`);
  }

  /** ", 42 s elapsed, ~1 min 10 s left" (the estimate from the rows' rate, when rows are counted). */
  private timing(): string {
    const elapsed = Date.now() - this.started;
    if (elapsed < 1000) return '';
    let text = `, ${duration(elapsed)} elapsed`;
    const rows = this.rows;
    if (rows && rows.done > rows.firstDone && rows.done < rows.total) {
      const rate = (rows.done - rows.firstDone) / (Date.now() - rows.firstAt);
      text += `, ~${duration((rows.total - rows.done) / rate)} left`;
    }
    return text;
  }
}

export function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}
