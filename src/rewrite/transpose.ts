/** Transposes a dense row-major array; returns the input itself when `perm` is the identity. */
export function transposeValues<T extends Float32Array | Int32Array | Uint8Array>(
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
