/**
 * Where a non-sliding conv rewrite pays by default. Conv3D always does on wasm (its kernel is
 * scalar loops; the Dense is XNNPACK) and never loses elsewhere, so it is always rewritten.
 * Conv1D/Conv2D already run on fast kernels on most backends, so they are rewritten by default
 * only where we measured a clear gain; `--passes` forces them anywhere.
 */

/** Speedup of rewritten over original, measured on patch-embed shapes (see README). */
export const MEASURED_SPEEDUP: Record<string, Record<string, number>> = {
  Conv2D: { wasm: 1.1, cpu: 1.1 },
  Conv1D: { wasm: 1.8, cpu: 0.96 },
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
