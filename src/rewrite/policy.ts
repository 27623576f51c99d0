/**
 * Where a non-sliding conv rewrite pays by default. Conv3D always does on wasm (its kernel is
 * scalar loops; the Dense is XNNPACK) and never loses elsewhere, so it is always rewritten.
 * Conv1D/Conv2D already run on fast kernels on most backends, so they are rewritten by default
 * only where we measured a clear gain; `--passes` forces them anywhere.
 */

/**
 * Speedup of rewritten over original from `npm run bench` (README, Benchmarks; 2026-11-25, 2-core
 * EPYC, tfjs 4.22): Conv2D on the ViT-B/16 patch embed, Conv1D on a 400-sample audio frontend.
 * The bench prints a `policy ...` line per entry saying whether a fresh run still agrees.
 */
export const MEASURED_SPEEDUP: Record<string, Record<string, number>> = {
  Conv2D: { wasm: 0.96, cpu: 0.98 },
  Conv1D: { wasm: 1.56, cpu: 1.08 },
};

/** Below this a rewrite is not worth a changed graph: timing noise on 2 cores is ~10%. */
export const MIN_SPEEDUP = 1.25;

export function paysOn(className: string): (backend: string | undefined) => true | string {
  return (backend) => {
    const speedup = backend === undefined ? undefined : MEASURED_SPEEDUP[className]?.[backend];
    if (speedup === undefined) return `no measured gain for ${className} on backend ${backend ?? '(none)'}; force it with --passes`;
    if (speedup < MIN_SPEEDUP) return `${className} on ${backend} measured ${speedup}x < ${MIN_SPEEDUP}x; force it with --passes`;
    return true;
  };
}
