/**
 * What a long run is doing now ("policy: timing conv_3", "verifying: float64 reference of conv_3"),
 * for progress lines. One listener per thread: a pool worker runs one task at a time and forwards
 * stages to its caller (src/worker.ts); in the caller's own thread nobody listens unless set.
 */
let listener: ((stage: string) => void) | null = null;

export function setStageListener(next: ((stage: string) => void) | null): void {
  listener = next;
}

export function reportStage(stage: string): void {
  listener?.(stage);
}
