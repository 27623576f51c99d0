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
  /**
   * Set when elements fell outside the tolerance: max |f(x) - f'(x')| of the original over this
   * output on its first rows, x' (and f's weights, in Node) moved by 2^-23 relative (noise-floor.ts).
   */
  noiseFloor?: number;
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

/**
 * Streams the comparison over batches: `add` takes consecutive chunks along the first axis, so
 * a run in batches visits the elements in the same order as one pass and yields identical
 * metrics (the float64 sums are taken in the same order).
 */
export class MetricsAccumulator {
  private count = 0;
  private maxAbs = 0;
  private maxRel = 0;
  private sumAbs = 0;
  private dot = 0;
  private normA = 0;
  private normB = 0;
  private outside = 0;
  private worstExcess = -Infinity;
  private worst = { flat: 0, expected: NaN, actual: NaN, tolerance: NaN };

  constructor(
    readonly name: string,
    /** Shape of one row (everything after the batch axis). */
    private readonly rowShape: number[],
    private readonly tolerance: { atol: number; rtol: number },
  ) {}

  add(expected: ArrayLike<number>, actual: ArrayLike<number>): void {
    if (expected.length !== actual.length) {
      throw new Error(`output ${this.name}: ${expected.length} elements vs ${actual.length}`);
    }
    const { atol, rtol } = this.tolerance;
    for (let i = 0; i < expected.length; i++) {
      const a = expected[i];
      const b = actual[i];
      const diff = Math.abs(a - b);
      const allowed = atol + rtol * Math.abs(a);
      if (!(diff <= allowed)) this.outside++;
      // NaN compares false everywhere: make it the worst element explicitly.
      const excess = Number.isNaN(diff) ? Infinity : diff - allowed;
      if (excess > this.worstExcess) {
        this.worstExcess = excess;
        this.worst = { flat: this.count + i, expected: a, actual: b, tolerance: allowed };
      }
      if (Number.isNaN(diff)) this.maxAbs = NaN;
      else if (diff > this.maxAbs) this.maxAbs = diff; // stays NaN once NaN
      if (Math.abs(a) > atol) this.maxRel = Math.max(this.maxRel, diff / Math.abs(a));
      this.sumAbs += diff;
      this.dot += a * b;
      this.normA += a * a;
      this.normB += b * b;
    }
    this.count += expected.length;
  }

  /**
   * Appends the state of an accumulator that saw the rows right after these (a row shard run in
   * another thread; given as its structured clone). Maxima and counts are exact; the float64 sums
   * differ from one pass's by float64 rounding only.
   */
  append(next: MetricsAccumulator): void {
    if (next.worstExcess > this.worstExcess) {
      this.worstExcess = next.worstExcess;
      this.worst = { ...next.worst, flat: this.count + next.worst.flat };
    }
    this.maxAbs = Number.isNaN(this.maxAbs) || Number.isNaN(next.maxAbs) ? NaN : Math.max(this.maxAbs, next.maxAbs);
    this.maxRel = Math.max(this.maxRel, next.maxRel);
    this.sumAbs += next.sumAbs;
    this.dot += next.dot;
    this.normA += next.normA;
    this.normB += next.normB;
    this.outside += next.outside;
    this.count += next.count;
  }

  result(): OutputMetrics {
    const rowSize = this.rowShape.reduce((a, b) => a * b, 1);
    const rows = rowSize === 0 ? 0 : this.count / rowSize;
    const shape = [rows, ...this.rowShape];
    return {
      name: this.name,
      shape,
      maxAbsDiff: this.maxAbs,
      maxRelDiff: this.maxRel,
      meanAbsDiff: this.count ? this.sumAbs / this.count : 0,
      // Clamped: float64 rounding of the sums can put identical vectors at 1 + 1e-12.
      cosine: this.normA === 0 && this.normB === 0 ? 1 : Math.min(1, Math.max(-1, this.dot / Math.sqrt(this.normA * this.normB))),
      outsideTolerance: this.outside,
      worst: { index: unravel(this.worst.flat, shape), expected: this.worst.expected, actual: this.worst.actual, tolerance: this.worst.tolerance },
      passed: this.outside === 0,
    };
  }
}

/** One-shot comparison of whole tensors' data; `shape` includes the batch axis. */
export function compareOutputs(
  name: string, shape: number[], expected: ArrayLike<number>, actual: ArrayLike<number>,
  tolerance: { atol: number; rtol: number },
): OutputMetrics {
  const accumulator = new MetricsAccumulator(name, shape.slice(1), tolerance);
  accumulator.add(expected, actual);
  return { ...accumulator.result(), shape };
}
