/**
 * StridedSlice's output shape (and values, for a vector) with TF's semantics
 * (tensorflow/core/util/strided_slice_op.cc): the sparse spec (begin/end/strides with
 * ellipsis, new-axis and shrink masks) is expanded to one dense spec per input axis, then each
 * axis is canonicalized (negative indices, clamping, masks) to a size.
 */

/** null marks an unknown size (the batch, usually). */
export type Dims = (number | null)[];

export interface StridedSliceSpec {
  begin: (number | null)[];
  end: (number | null)[];
  strides: (number | null)[];
  beginMask: number;
  endMask: number;
  ellipsisMask: number;
  newAxisMask: number;
  shrinkAxisMask: number;
}

export interface DenseAxis {
  /** The input axis, or 'new' (inserted size 1). */
  axis: number | 'new';
  begin: number | null;
  end: number | null;
  stride: number | null;
  beginMasked: boolean;
  endMasked: boolean;
  shrink: boolean;
}

const bit = (mask: number, i: number) => (mask & (1 << i)) !== 0;

/** The dense spec, one entry per input axis plus the new axes, in output order; or why not. */
export function denseSpec(rank: number, spec: StridedSliceSpec): DenseAxis[] | string {
  const n = spec.begin.length;
  if (spec.end.length !== n || spec.strides.length !== n) return 'begin, end and strides differ in length';
  let ellipsisMask = spec.ellipsisMask;
  let sparse = n;
  // No ellipsis: TF puts an implicit one after the last sparse entry.
  if (!ellipsisMask) {
    ellipsisMask = 1 << n;
    sparse = n + 1;
  }
  const ellipsisAt = [...Array(sparse).keys()].find((i) => bit(ellipsisMask, i))!;
  let newAfter = 0;
  for (let i = ellipsisAt + 1; i < sparse; i++) if (bit(spec.newAxisMask, i)) newAfter++;
  const out: DenseAxis[] = [];
  let full = 0;
  for (let i = 0; i < sparse; i++) {
    if (bit(ellipsisMask, i)) {
      const next = Math.min(rank - (sparse - i) + 1 + newAfter, rank);
      for (; full < next; full++) out.push({ axis: full, begin: 0, end: 0, stride: 1, beginMasked: true, endMasked: true, shrink: false });
    } else if (bit(spec.newAxisMask, i)) {
      out.push({ axis: 'new', begin: 0, end: 1, stride: 1, beginMasked: false, endMasked: false, shrink: false });
    } else {
      if (full >= rank) return `index ${i} slices past rank ${rank}`;
      out.push({
        axis: full++, begin: spec.begin[i], end: spec.end[i], stride: spec.strides[i],
        beginMasked: bit(spec.beginMask, i), endMasked: bit(spec.endMask, i), shrink: bit(spec.shrinkAxisMask, i),
      });
    }
  }
  // Axes not reached are taken whole.
  for (; full < rank; full++) out.push({ axis: full, begin: 0, end: 0, stride: 1, beginMasked: true, endMasked: true, shrink: false });
  return out;
}

/** [begin, end) and stride on an axis of `size`, canonical; null when not known. */
export function axisRange(a: DenseAxis, size: number | null): { begin: number; end: number; stride: number } | null | string {
  if (a.stride === 0) return 'a stride is 0';
  if (a.stride === null || size === null) return null;
  const stride = a.stride;
  if (a.shrink) {
    if (a.begin === null) return null;
    const begin = a.begin < 0 ? size + a.begin : a.begin;
    if (begin < 0 || begin >= size) return `index ${a.begin} is out of bounds for size ${size}`;
    return { begin, end: begin + 1, stride: 1 };
  }
  const range = stride > 0 ? [0, size] : [-1, size - 1];
  const canonical = (x: number | null, c: 0 | 1, masked: boolean): number | null => {
    if (masked) return stride > 0 ? range[c] : range[(c + 1) & 1];
    if (x === null) return null;
    const forward = x < 0 ? size + x : x;
    return Math.min(Math.max(forward, range[0]), range[1]);
  };
  const begin = canonical(a.begin, 0, a.beginMasked);
  const end = canonical(a.end, 1, a.endMasked);
  if (begin === null || end === null) return null;
  return { begin, end, stride };
}

export function rangeLength(r: { begin: number; end: number; stride: number }): number {
  const interval = r.end - r.begin;
  if (interval === 0 || interval > 0 !== r.stride > 0) return 0;
  return Math.ceil(interval / r.stride);
}

/** Output dims of StridedSlice on `dims`; or why it cannot be. */
export function stridedSliceDims(dims: Dims, spec: StridedSliceSpec): Dims | string {
  const dense = denseSpec(dims.length, spec);
  if (typeof dense === 'string') return dense;
  const out: Dims = [];
  for (const a of dense) {
    if (a.axis === 'new') {
      out.push(1);
      continue;
    }
    const range = axisRange(a, dims[a.axis]);
    if (typeof range === 'string') return range;
    if (a.shrink) continue;
    out.push(range === null ? null : rangeLength(range));
  }
  return out;
}

/** The values of StridedSlice on a vector of `values` (rank 1), when its spec is known. */
export function stridedSliceValues(values: (number | null)[], spec: StridedSliceSpec): (number | null)[] | undefined {
  const dense = denseSpec(1, spec);
  if (typeof dense === 'string') return undefined;
  const axis = dense.find((a) => a.axis === 0);
  if (!axis || dense.some((a) => a.axis === 'new')) return undefined;
  const range = axisRange(axis, values.length);
  if (range === null || typeof range === 'string') return undefined;
  const picked: (number | null)[] = [];
  for (let i = range.begin; range.stride > 0 ? i < range.end : i > range.end; i += range.stride) picked.push(values[i]);
  return picked;
}
