/**
 * Elementwise comparison of a reference output `expected` with `actual`, accumulated in float64
 * so the metrics themselves add no float32 error. An element passes when
 * |actual - expected| <= atol + rtol * |expected| (numpy.allclose semantics); NaN never passes.
 */
export interface OutputMetrics {
  name: string;
  shape: number[];
  maxAbsDiff: number;
  /** max |a-b| / |a| over elements with |a| > atol (smaller ones are judged by atol alone). */
  maxRelDiff: number;
  meanAbsDiff: number;
  cosine: number;
  /** Elements outside atol + rtol*|expected|. */
  outsideTolerance: number;
  /** The element furthest beyond its tolerance (or closest to it, when all pass). */
  worst: { index: number[]; expected: number; actual: number; tolerance: number };
  passed: boolean;
}

function unravel(flat: number, shape: number[]): number[] {
  const index = new Array<number>(shape.length);
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    index[axis] = flat % shape[axis];
    flat = Math.floor(flat / shape[axis]);
  }
  return index;
}

export function compareOutputs(
  name: string, shape: number[], expected: ArrayLike<number>, actual: ArrayLike<number>,
  tolerance: { atol: number; rtol: number },
): OutputMetrics {
  if (expected.length !== actual.length) {
    throw new Error(`output ${name}: ${expected.length} elements vs ${actual.length}`);
  }
  let maxAbs = 0;
  let maxRel = 0;
  let sumAbs = 0;
  let dot = 0;
  let normA = 0;
  let normB = 0;
  let outside = 0;
  let worstExcess = -Infinity;
  let worstAt = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = expected[i];
    const b = actual[i];
    const diff = Math.abs(a - b);
    const allowed = tolerance.atol + tolerance.rtol * Math.abs(a);
    if (!(diff <= allowed)) outside++;
    // NaN compares false everywhere: make it the worst element explicitly.
    const excess = Number.isNaN(diff) ? Infinity : diff - allowed;
    if (excess > worstExcess) {
      worstExcess = excess;
      worstAt = i;
    }
    if (Number.isNaN(diff)) maxAbs = NaN;
    else if (diff > maxAbs) maxAbs = diff; // stays NaN once NaN
    if (Math.abs(a) > tolerance.atol) maxRel = Math.max(maxRel, diff / Math.abs(a));
    sumAbs += diff;
    dot += a * b;
    normA += a * a;
    normB += b * b;
  }
  const cosine = normA === 0 && normB === 0 ? 1 : dot / Math.sqrt(normA * normB);
  return {
    name,
    shape,
    maxAbsDiff: maxAbs,
    maxRelDiff: maxRel,
    meanAbsDiff: expected.length ? sumAbs / expected.length : 0,
    cosine,
    outsideTolerance: outside,
    worst: {
      index: unravel(worstAt, shape),
      expected: expected[worstAt] ?? NaN,
      actual: actual[worstAt] ?? NaN,
      tolerance: tolerance.atol + tolerance.rtol * Math.abs(expected[worstAt] ?? 0),
    },
    passed: outside === 0,
  };
}
