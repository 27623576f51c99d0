/**
 * The layout math of a non-sliding convolution (kernel == strides, no padding applied), for any
 * spatial rank: which Reshape / Permute / Cropping2D steps turn the conv's input into one row per
 * patch, so that a Dense over the rows computes the conv. Pure: shapes in, steps out.
 *
 * A patch row may list its elements in any order, as long as the Dense kernel rows follow the
 * same order. That freedom is what keeps every plan at one transpose of the input: e.g. for
 * channels-last [d,kd,h,kh,w,kw,C] the row order (kw,C,kd,kh) needs a single rank-6 transpose,
 * while the conv kernel's own order (kd,kh,kw,C) would need a rank-8 one (or two transposes).
 * When an order with the kernel's own byte layout costs no more, it is chosen.
 *
 * Backend limits kept: every tensor rank <= 6 including batch (WebGL/WebGPU transposes), the
 * Dense input at rank spatial+2 <= 5 (Dense's biasAdd), and crops use Cropping2D only.
 */

/** Steps between the conv's input and the Dense, and after the Dense; shapes exclude batch. */
export type Step =
  | { kind: 'reshape'; targetShape: number[] }
  | { kind: 'permute'; dims: number[] } // 1-based, as Keras Permute
  | { kind: 'crop'; cropping: [[number, number], [number, number]] }; // Cropping2D, channels_first

export interface ConvGeometry {
  /** Spatial sizes of the conv input, in order (D, H, W for Conv3D). */
  spatial: number[];
  channels: number;
  kernel: number[];
  channelsFirst: boolean;
}

export interface PatchPlan {
  before: Step[];
  after: Step[];
  transposes: number;
}

/** Names of the axes a patch row is made of: 'k0'..'k{n-1}' (kernel axes) and 'c'. */
export type RowOrder = string[];

interface Axis {
  name: string;
  size: number;
}

const MAX_RANK_WITHOUT_BATCH = 5;

const product = (sizes: number[]) => sizes.reduce((a, b) => a * b, 1);

export function canonicalRowOrder(spatialRank: number): RowOrder {
  return [...Array.from({ length: spatialRank }, (_, i) => `k${i}`), 'c'];
}

export function allRowOrders(spatialRank: number): RowOrder[] {
  const permutations = (items: string[]): string[][] =>
    items.length <= 1 ? [items] : items.flatMap((item, i) =>
      permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
  return permutations(canonicalRowOrder(spatialRank));
}

/** Rows in the conv kernel's own byte order (ignoring size-1 axes, which do not move bytes). */
export function keepsKernelBytes(order: RowOrder, geometry: ConvGeometry): boolean {
  const size = (name: string) => (name === 'c' ? geometry.channels : geometry.kernel[Number(name.slice(1))]);
  const moving = (names: string[]) => names.filter((name) => size(name) > 1).join(',');
  return moving(order) === moving(canonicalRowOrder(geometry.kernel.length));
}

/**
 * Crops the remainder of each spatial axis with Cropping2D (tfjs has no Cropping1D/3D): two axes
 * at a time, viewing the tensor as [outer, R, C'] where each cropped axis is the outermost one of
 * its merged group, so cropping whole rows of the group crops exactly that axis.
 */
function cropSteps(layout: Axis[], targets: Map<string, number>): { steps: Step[]; layout: Axis[]; shape: number[] } {
  const steps: Step[] = [];
  let current = layout.map((axis) => ({ ...axis }));
  let shape = current.map((axis) => axis.size); // the tensor's actual shape after the steps
  const toCrop = current.map((axis, i) => i).filter((i) => targets.has(current[i].name) && targets.get(current[i].name)! < current[i].size);
  for (let p = 0; p < toCrop.length; p += 2) {
    const i = toCrop[p];
    const j = p + 1 < toCrop.length ? toCrop[p + 1] : current.length;
    const sizes = current.map((axis) => axis.size);
    // A lone axis is cropped as the columns of [outer, 1, size*inner], so the slice copies runs of
    // target*inner elements; as the rows of [outer, size*inner, 1] it copied one element per run.
    const alone = j === current.length;
    const removed = (k: number) => sizes[k] - targets.get(current[k].name)!;
    const rows = alone ? 1 : product(sizes.slice(i, j));
    const cols = alone ? product(sizes.slice(i)) : product(sizes.slice(j));
    const cropRows = alone ? 0 : removed(i) * product(sizes.slice(i + 1, j));
    const cropCols = alone ? removed(i) * product(sizes.slice(i + 1)) : removed(j) * product(sizes.slice(j + 1));
    steps.push({ kind: 'reshape', targetShape: [product(sizes.slice(0, i)), rows, cols] });
    steps.push({ kind: 'crop', cropping: [[0, cropRows], [0, cropCols]] });
    shape = [product(sizes.slice(0, i)), rows - cropRows, cols - cropCols];
    current = current.map((axis, k) => (k === i || k === j ? { ...axis, size: targets.get(axis.name)! } : axis));
  }
  return { steps, layout: current, shape };
}

/** Maximal runs of `target` axes that are also consecutive, in order, in `source`. */
function mergeRuns(source: string[], target: string[]): string[][] {
  const runs: string[][] = [];
  for (const name of target) {
    const last = runs[runs.length - 1];
    if (last && source.indexOf(name) === source.indexOf(last[last.length - 1]) + 1) last.push(name);
    else runs.push([name]);
  }
  return runs;
}

/**
 * Steps that reorder `layout` into `target` (axis names; size-1 axes may be absent from either)
 * with at most one transpose, ending in the shape `finalShape`; null if a single transpose of
 * rank <= 6 cannot do it. `currentShape` is the tensor's actual shape (layout, unsplit).
 */
function reorderSteps(
  layout: Axis[], currentShape: number[], target: Axis[], finalShape: number[],
): { steps: Step[]; transposes: number } | null {
  const sizeOf = new Map(layout.map((axis) => [axis.name, axis.size]));
  const source = layout.filter((axis) => axis.size > 1).map((axis) => axis.name);
  const wanted = target.filter((axis) => axis.size > 1).map((axis) => axis.name);
  const reshapeTo = (shape: number[]): Step[] => (sameShape(shape, currentShape) ? [] : [{ kind: 'reshape', targetShape: shape }]);

  const runs = mergeRuns(source, wanted);
  const runSize = (run: string[]) => product(run.map((name) => sizeOf.get(name)!));
  const bySourcePosition = [...runs].sort((a, b) => source.indexOf(a[0]) - source.indexOf(b[0]));
  const isIdentity = runs.every((run, i) => run === bySourcePosition[i]);
  if (isIdentity) return { steps: reshapeTo(finalShape), transposes: 0 };
  if (runs.length > MAX_RANK_WITHOUT_BATCH) return null;
  const grouped = bySourcePosition.map(runSize);
  const dims = runs.map((run) => bySourcePosition.indexOf(run) + 1);
  const permuted = runs.map(runSize);
  const steps: Step[] = [...reshapeTo(grouped), { kind: 'permute', dims }];
  if (!sameShape(permuted, finalShape)) steps.push({ kind: 'reshape', targetShape: finalShape });
  return { steps, transposes: 1 };
}

/**
 * Plans the steps for one input shape and one row order, or null when no plan keeps to one
 * transpose before the Dense (besides the channels-first to channels-last move, if needed).
 */
export function planPatches(geometry: ConvGeometry, order: RowOrder): PatchPlan | null {
  const n = geometry.kernel.length;
  const counts = geometry.spatial.map((size, i) => Math.floor(size / geometry.kernel[i]));
  const inputLayout: Axis[] = geometry.spatial.map((size, i) => ({ name: `s${i}`, size }));
  if (geometry.channelsFirst) inputLayout.unshift({ name: 'c', size: geometry.channels });
  else inputLayout.push({ name: 'c', size: geometry.channels });

  const cropTargets = new Map(counts.map((count, i) => [`s${i}`, count * geometry.kernel[i]]));
  const cropped = cropSteps(inputLayout, cropTargets);

  // Split each spatial axis s_i into (p_i, k_i): patch index, then offset inside the patch.
  const split = (layout: Axis[]): Axis[] => layout.flatMap((axis) => {
    if (axis.name === 'c') return [axis];
    const i = Number(axis.name.slice(1));
    return [{ name: `p${i}`, size: counts[i] }, { name: `k${i}`, size: geometry.kernel[i] }];
  });
  const sizeOf = new Map(split(cropped.layout).map((axis) => [axis.name, axis.size]));
  const target: Axis[] = [...counts.map((_, i) => `p${i}`), ...order].map((name) => ({ name, size: sizeOf.get(name)! }));
  const rowLength = product(order.map((name) => sizeOf.get(name)!));
  // One patch per sample: a rank-2 Dense input. On rank > 2, tfjs-layers' dot transposes the
  // kernel by the identity and wasm's identity copies it, every call (~10 ms for 1536x1152).
  const onePatch = counts.every((count) => count === 1);
  const denseInput = onePatch ? [rowLength] : [...counts, rowLength];

  // Dense gives [p..., F]; channels-first convs give [F, p...]: a transpose unless every p is 1.
  // The -1 stands for the filter count, filled in by withFilters.
  const after: Step[] = [];
  if (onePatch && !geometry.channelsFirst) after.push({ kind: 'reshape', targetShape: [...counts, -1] });
  if (geometry.channelsFirst) {
    after.push(counts.every((count) => count === 1)
      ? { kind: 'reshape', targetShape: [-1, ...counts] }
      : { kind: 'permute', dims: [n + 1, ...counts.map((_, i) => i + 1)] });
  }

  const shapeOf = (layout: Axis[]) => layout.map((axis) => axis.size);
  const direct = reorderSteps(split(cropped.layout), cropped.shape, target, denseInput);
  if (direct) {
    return { before: [...cropped.steps, ...direct.steps], after, transposes: direct.transposes + countTransposes(after) };
  }
  if (!geometry.channelsFirst) return null;
  // Channels-first with real patches needs C moved last first: one extra transpose.
  const lastLayout = [...cropped.layout.slice(1), cropped.layout[0]];
  const unflatten = sameShape(cropped.shape, shapeOf(cropped.layout)) ? [] : [{ kind: 'reshape', targetShape: shapeOf(cropped.layout) } as Step];
  const toLast: Step = { kind: 'permute', dims: [...cropped.layout.slice(1).map((_, i) => i + 2), 1] };
  const afterMove = reorderSteps(split(lastLayout), shapeOf(lastLayout), target, denseInput);
  if (!afterMove) return null;
  return {
    before: [...cropped.steps, ...unflatten, toLast, ...afterMove.steps],
    after,
    transposes: 1 + afterMove.transposes + countTransposes(after),
  };
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}

function countTransposes(steps: Step[]): number {
  return steps.filter((step) => step.kind === 'permute').length;
}

/** Replaces the -1 placeholder of the output reshape with the filter count. */
export function withFilters(steps: Step[], filters: number): Step[] {
  return steps.map((step) =>
    step.kind === 'reshape' ? { ...step, targetShape: step.targetShape.map((n) => (n === -1 ? filters : n)) } : step);
}

/**
 * Picks one row order for all input shapes a (possibly shared) conv sees, so one Dense kernel
 * serves every call: fewest transposes in total, then the kernel's own byte order.
 */
export function chooseRowOrder(geometries: ConvGeometry[]): { order: RowOrder; plans: PatchPlan[] } | null {
  let best: { order: RowOrder; plans: PatchPlan[]; cost: number; keeps: boolean } | null = null;
  for (const order of allRowOrders(geometries[0].kernel.length)) {
    const plans = geometries.map((geometry) => planPatches(geometry, order));
    if (plans.some((plan) => plan === null)) continue;
    const cost = plans.reduce((sum, plan) => sum + plan!.transposes, 0);
    const keeps = keepsKernelBytes(order, geometries[0]);
    if (!best || cost < best.cost || (cost === best.cost && keeps && !best.keeps)) {
      best = { order, plans: plans as PatchPlan[], cost, keeps };
    }
  }
  return best && { order: best.order, plans: best.plans };
}
