/** Transposes a dense row-major array; returns the input itself when `perm` is the identity. */
export function transposeValues<T extends Float32Array | Int32Array | Uint8Array | Uint16Array>(
  values: T, shape: number[], perm: number[],
): T {
  if (perm.every((axis, i) => axis === i)) return values;
  const rank = shape.length;
  const outShape = perm.map((axis) => shape[axis]);
  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, stride = 1; i >= 0; stride *= shape[i], i--) inStrides[i] = stride;
  // Stride in the input of each output axis, so the inner loop is a strided walk.
  const walk = perm.map((axis) => inStrides[axis]);
  const out = new (values.constructor as new (n: number) => T)(values.length);
  const index = new Array<number>(rank).fill(0);
  let source = 0;
  for (let o = 0; o < out.length; o++) {
    out[o] = values[source];
    for (let axis = rank - 1; axis >= 0; axis--) {
      source += walk[axis];
      if (++index[axis] < outShape[axis]) break;
      source -= walk[axis] * outShape[axis];
      index[axis] = 0;
    }
  }
  return out;
}

/**
 * Reorders the rows (of `rowSize` values) of a row-major matrix so that row r becomes old row
 * source[r]. With `inPlace`, the input array itself is permuted by following cycles with one
 * spare row (no second copy of a large kernel); otherwise a new array is returned. Any element
 * type: quantized kernels are reordered in their stored encoding.
 */
export function permuteRows<T extends Float32Array | Int32Array | Uint8Array | Uint16Array>(
  values: T, rowSize: number, source: ArrayLike<number>, inPlace = false,
): T {
  const Typed = values.constructor as new (n: number) => T;
  const rows = source.length;
  if (!inPlace) {
    const out = new Typed(values.length);
    for (let r = 0; r < rows; r++) out.set(values.subarray(source[r] * rowSize, (source[r] + 1) * rowSize), r * rowSize);
    return out;
  }
  const done = new Uint8Array(rows);
  const spare = new Typed(rowSize);
  for (let start = 0; start < rows; start++) {
    if (done[start] || source[start] === start) continue;
    // Walk the cycle start <- source[start] <- source[source[start]] ... back to start.
    spare.set(values.subarray(start * rowSize, (start + 1) * rowSize));
    let r = start;
    while (source[r] !== start) {
      values.copyWithin(r * rowSize, source[r] * rowSize, (source[r] + 1) * rowSize);
      done[r] = 1;
      r = source[r];
    }
    values.set(spare, r * rowSize);
    done[r] = 1;
  }
  return values;
}
