/**
 * The one analysis behind conv3d-to-conv2d-slices in both dialects, on a format-free geometry:
 * a sliding Conv3D is a sum over kernel depth of Conv2Ds on depth slices,
 *
 *   out[b, d] = sum_i conv2d(xpad[b, d*sd + i*dd], K[i])      i < kd, d < Do
 *
 * (sd depth stride, dd depth dilation, K[i] = [kh, kw, C, F] with the conv's H/W strides and
 * dilation, xpad the input padded in depth as the conv pads it), then bias and activation once.
 * Each dialect reads its conv into a `SlidingSpec`; the guards and the padding arithmetic here
 * are shared, so both formats get the same rewrite or the same refusal. The dialects differ in
 * how they run "a Conv2D over every depth slice at once" (graph: depth merged into the batch;
 * layers: depth folded into rows with zero separators, see sliding-conv-layers.ts).
 */
import { fmt } from './conv-analysis';

export interface SlidingSpec {
  /** [kd, kh, kw]. */
  kernel: number[];
  strides: number[];
  dilation: number[];
  padding: string;
  groups: number;
  filters: number;
  /** Input [D, H, W] and C, channels last or first as the conv reads them; null when unknown. */
  spatial: (number | null)[];
  channels: number | null;
  kernelWeight: { shape: number[]; dtype: string } | undefined;
  bias: { shape: number[] } | 'missing' | null;
  owner: string;
}

/** One spatial axis: input size, kernel, stride, dilation, output size and the conv's padding. */
export interface SlidingAxis {
  size: number;
  kernel: number;
  stride: number;
  dilation: number;
  /** (kernel - 1) * dilation + 1: the input rows one output reads. */
  extent: number;
  out: number;
  /** Zeros before and after, as TF pads: 'same' puts the odd one after (floor(total / 2) before). */
  pad: [number, number];
}

export interface SlidingGeometry {
  /** D, H, W. */
  axes: [SlidingAxis, SlidingAxis, SlidingAxis];
  channels: number;
  filters: number;
}

/** One axis as TF's conv computes it (tensorflow/core/framework/kernel_shape_util.cc). */
export function convAxis(size: number, kernel: number, stride: number, dilation: number, padding: 'valid' | 'same'): SlidingAxis {
  const extent = (kernel - 1) * dilation + 1;
  if (padding === 'valid') return { size, kernel, stride, dilation, extent, out: Math.floor((size - extent) / stride) + 1, pad: [0, 0] };
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + extent - size, 0);
  return { size, kernel, stride, dilation, extent, out, pad: [Math.floor(total / 2), total - Math.floor(total / 2)] };
}

/**
 * The shared guards (window first, then shapes and weights), and the geometry. Every refusal
 * names the failing value.
 */
export function planSliding(spec: SlidingSpec): SlidingGeometry | { refusal: string } {
  const refuse = (refusal: string) => ({ refusal });
  // A grouped conv would need one Conv2D per group; tfjs's Conv3D has no groups anyway.
  if (spec.groups !== 1) return refuse(`groups ${spec.groups} != 1`);
  if (spec.kernel.length !== 3 || spec.kernel.some((k) => !Number.isInteger(k) || k < 1)) return refuse(`kernel_size ${fmt(spec.kernel)} is not 3 positive integers`);
  if (spec.strides.some((s) => !Number.isInteger(s) || s < 1) || spec.dilation.some((d) => !Number.isInteger(d) || d < 1)) {
    return refuse(`strides ${fmt(spec.strides)} or dilation_rate ${fmt(spec.dilation)} is not positive integers`);
  }
  if (spec.padding !== 'valid' && spec.padding !== 'same') return refuse(`padding '${spec.padding}' is not 'valid' or 'same'`);
  const padding = spec.padding;
  const names = ['D', 'H', 'W'];
  // Reshapes need static sizes; only the batch may be dynamic.
  if (spec.channels === null || spec.spatial.some((s) => s === null)) return refuse(`input sizes ${fmt(spec.spatial)} x ${spec.channels} channels are not static beyond the batch`);
  const axes = spec.spatial.map((size, a) => convAxis(size!, spec.kernel[a], spec.strides[a], spec.dilation[a], padding)) as SlidingGeometry['axes'];
  for (const [a, axis] of axes.entries()) {
    if (axis.out < 1) return refuse(`input ${names[a]}=${axis.size} is smaller than the dilated kernel ${axis.extent}`);
    // TF pads max(0, total); tfjs 4.22's conv3d (get3DPadAndOutInfo) does not clamp, so with a
    // stride beyond the window it starts reading -total/2 rows in: the original then computes
    // another function than TF's, and a rewrite would have to copy that bug or change the output.
    const total = (axis.out - 1) * axis.stride + axis.extent - axis.size;
    if (padding === 'same' && total < 0) {
      return refuse(`padding 'same' with stride ${axis.stride} on ${names[a]}=${axis.size} needs ${total} padding: tfjs's Conv3D does not clamp it to 0 as TF does (it reads from ${names[a]}=${-Math.ceil(total / 2)}), so the original differs from TF there`);
    }
  }
  const expected = [...spec.kernel, spec.channels, spec.filters];
  if (!spec.kernelWeight) return refuse(`no weight "${spec.owner}/kernel" in the manifest`);
  if (fmt(spec.kernelWeight.shape) !== fmt(expected)) return refuse(`kernel shape ${fmt(spec.kernelWeight.shape)} != ${fmt(expected)}`);
  if (spec.kernelWeight.dtype !== 'float32') return refuse(`kernel dtype ${spec.kernelWeight.dtype} is not float32`);
  if (spec.bias !== null && (spec.bias === 'missing' || fmt(spec.bias.shape) !== fmt([spec.filters]))) return refuse(`no bias of shape [${spec.filters}] for "${spec.owner}"`);
  return { axes, channels: spec.channels, filters: spec.filters };
}

/** Multiply-adds of the conv per batch item: output positions x kernel volume x C x F. */
export function slidingMacs(g: SlidingGeometry): number {
  return g.axes.reduce((n, axis) => n * axis.out * axis.kernel, 1) * g.channels * g.filters;
}

/**
 * Term i of the depth sum, restricted to the output depths whose input slice is real (not
 * depth padding): outputs [lo, hi) read input slices first, first + sd, ... A term reading only
 * padding is all zeros (n = 0) and is left out; with a large depth dilation that is most of the
 * padded volume, so no Conv2D ever runs on a zero slice.
 */
export interface DepthTerm {
  /** Kernel depth index i. */
  i: number;
  lo: number;
  hi: number;
  /** Input depth of output lo (may be < 0 or >= D only when a dialect extends the range). */
  first: number;
}

export function depthTerms(g: SlidingGeometry): DepthTerm[] {
  const ad = g.axes[0];
  const terms: DepthTerm[] = [];
  for (let i = 0; i < ad.kernel; i++) {
    const offset = i * ad.dilation - ad.pad[0];
    const lo = Math.max(0, Math.ceil(-offset / ad.stride));
    const hi = Math.min(ad.out, Math.floor((ad.size - 1 - offset) / ad.stride) + 1);
    if (hi > lo) terms.push({ i, lo, hi, first: lo * ad.stride + offset });
  }
  return terms;
}

/**
 * Output depths [a, b) of the conv as a conv of their own: the input slices they read, [r0, r1)
 * (real ones only), and a geometry whose depth axis is that slab with the zero slices beyond the
 * volume as its padding and b - a outputs. A rule that runs a big volume in depth chunks (each
 * chunk's Conv2Ds see a bounded image) lowers each chunk with this geometry.
 */
export interface DepthChunk {
  a: number;
  b: number;
  r0: number;
  r1: number;
  geometry: SlidingGeometry;
}

export function depthChunk(g: SlidingGeometry, a: number, b: number): DepthChunk {
  const ad = g.axes[0];
  const start = a * ad.stride - ad.pad[0];
  const end = (b - 1) * ad.stride + ad.extent - ad.pad[0];
  const r0 = Math.max(0, start);
  const r1 = Math.min(ad.size, end);
  const axis: SlidingAxis = { ...ad, size: r1 - r0, out: b - a, pad: [r0 - start, end - r1] };
  return { a, b, r0, r1, geometry: { ...g, axes: [axis, g.axes[1], g.axes[2]] } };
}

/** `count` chunks of as equal a number of output depths as `out` allows, in order. */
export function splitDepths(out: number, count: number): [number, number][] {
  const n = Math.ceil(out / Math.max(1, Math.min(count, out)));
  const ranges: [number, number][] = [];
  for (let a = 0; a < out; a += n) ranges.push([a, Math.min(out, a + n)]);
  return ranges;
}

/**
 * The Conv2D filter of all kernel depths side by side: [kd, kh, kw, C, F] -> [kh, kw, C, kd*F]
 * (filters of depth i at i*F..), as the axis permutation of the stored elements.
 */
export const STACKED_KERNEL_PERM = [1, 2, 3, 0, 4];
