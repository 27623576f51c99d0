/**
 * Where a rule's conv is timed and probed on part of its input: running a conv on a whole
 * 256^3 volume takes as long as the run being optimized (minutes on wasm), and its exact check
 * on two such rows does not fit wasm's 4 GB heap. A conv is the same work at every position, so
 * its speed ratio and its layout hold on a smaller input cut the way the rule needs.
 */

/** Positions per spatial axis a cut-out keeps (at least). */
export const CUT_OUT_SIZE = 48;

/** Sliding convs: each axis cut to max(CUT_OUT_SIZE, 2 x the dilated kernel), never grown (keeps the window's reach on each side). */
export function cutOutSpatial(spatial: number[], kernel: number[], dilation: number[]): number[] {
  return spatial.map((size, a) => Math.min(size, Math.max(CUT_OUT_SIZE, 2 * ((kernel[a] - 1) * dilation[a] + 1))));
}

/** Input elements per row above which a conv that does not slide is cut (smaller inputs are timed whole). */
export const PATCH_CUT_OUT_MIN_ELEMENTS = 2 ** 24;

/**
 * Convs that do not slide (kernel == strides): each axis cut to whole patches, about
 * CUT_OUT_SIZE positions, plus the input's remainder over the patch size, so the rewrite of the
 * cut-out crops that remainder as the real one does.
 */
export function patchCutOut(spatial: number[], kernel: number[], channels: number): number[] {
  if (spatial.reduce((a, b) => a * b, channels) <= PATCH_CUT_OUT_MIN_ELEMENTS) return spatial;
  return spatial.map((size, a) => Math.min(size, Math.max(1, Math.floor(CUT_OUT_SIZE / kernel[a])) * kernel[a] + (size % kernel[a])));
}
