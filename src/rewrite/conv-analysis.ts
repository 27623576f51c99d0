/**
 * The one analysis behind the conv-to-dense rules of both dialects, on a format-free conv
 * geometry: each dialect reads its conv (a Keras layer config, a GraphDef node's attrs and
 * filter Const) into a `ConvSpec`, and the guards here decide, with the same refusal text for
 * both formats, whether the conv slides; if it does not, they choose the patch layout (row order,
 * Reshape/Permute/crop steps, see patch-plan.ts) that each dialect then lowers in its own ops.
 *
 * A conv whose kernel equals its strides, that pads nothing and is not dilated never slides:
 * each output is the dot product of one non-overlapping patch with the kernel, i.e. a Dense /
 * MatMul over patch rows.
 */
import { ConvGeometry, PatchPlan, RowOrder, chooseRowOrder } from './patch-plan';

/** One input of one call: its shape (batch included, null for unknown sizes) or why it is unknown. */
export type CallInput = { shape: (number | null)[] } | { unknown: string };

export interface ConvSpec {
  /** Spatial kernel sizes (D, H, W / H, W / L). */
  kernel: number[];
  strides: number[];
  dilation: number[];
  /** Keras spelling: 'valid', 'same', 'causal', 'explicit'... */
  padding: string;
  groups: number;
  channelsFirst: boolean;
  filters: number;
  /** One entry per call of the conv (a GraphDef node has one). */
  calls: CallInput[];
  /** The kernel weight as stored, or undefined when there is none (the dialect says why). */
  kernelWeight: { shape: number[]; dtype: string } | undefined;
  /** Whether the conv adds a bias, and the bias weight's shape if found. */
  bias: { shape: number[] } | 'missing' | null;
  /** How the dialect names the conv in "no weight ... " refusals. */
  owner: string;
}

export interface ConvAnalysis {
  geometry: Omit<ConvGeometry, 'spatial'>;
  filters: number;
  order: RowOrder;
  /** Calls grouped by input shape: each group gets its own view steps; all share the Dense. */
  groups: { calls: number[]; plan: PatchPlan }[];
}

export const fmt = (value: unknown) => (JSON.stringify(value) ?? 'nothing').replace(/,/g, ', ');

/** Axis names in refusals: L for rank 1, else the trailing ones of D, H, W. */
export const axisNames = (rank: number) => (rank === 1 ? ['L'] : ['D', 'H', 'W'].slice(3 - rank));

/**
 * The window guards, which need no shapes: they say whether this conv can be a patch-wise
 * Dense at all. Run first, so a sliding conv is refused for sliding whatever else is wrong.
 */
export function checkWindow(spec: Pick<ConvSpec, 'kernel' | 'strides' | 'dilation' | 'padding' | 'groups'>): string | null {
  // A grouped conv is block-diagonal across channel groups, not one Dense.
  if (spec.groups !== 1) return `groups ${spec.groups} != 1`;
  // Strides other than the kernel make windows overlap (or skip input): the conv slides.
  if (spec.strides.some((s, i) => s !== spec.kernel[i])) return `strides ${fmt(spec.strides)} != kernel_size ${fmt(spec.kernel)}`;
  // Dilation spreads a patch over the input; it only matters where the kernel is > 1.
  if (spec.dilation.some((d, i) => d !== 1 && spec.kernel[i] !== 1)) return `dilation_rate ${fmt(spec.dilation)} != 1`;
  if (spec.padding !== 'valid' && spec.padding !== 'same') return `padding '${spec.padding}' is not 'valid'`;
  return null;
}

/** The shape and weight guards, then the layout plan: a plan or the refusal. */
export function planConv(spec: ConvSpec): ConvAnalysis | { refusal: string } {
  const refuse = (refusal: string) => ({ refusal });
  const rank = spec.kernel.length;
  const names = axisNames(rank);
  if (spec.calls.length === 0) return refuse('the layer is never called, so its input shape is unknown');
  const geometries: ConvGeometry[] = [];
  for (const [i, call] of spec.calls.entries()) {
    const where = spec.calls.length > 1 ? ` in call ${i}` : '';
    if ('unknown' in call) return refuse(`input shape${where} is unknown: ${call.unknown}`);
    const shape = call.shape;
    if (shape.length !== rank + 2) return refuse(`input shape ${fmt(shape)}${where} is not rank ${rank + 2}`);
    const dims = shape.slice(1);
    const channels = spec.channelsFirst ? dims[0] : dims[rank];
    const spatial = spec.channelsFirst ? dims.slice(1) : dims.slice(0, rank);
    // Reshape needs static sizes; only the batch may be dynamic.
    if (channels === null || spatial.some((s) => s === null)) return refuse(`input shape ${fmt(shape)}${where} is not static beyond the batch`);
    for (let a = 0; a < rank; a++) {
      const size = spatial[a]!;
      if (size < spec.kernel[a]) return refuse(`input ${names[a]}=${size}${where} is smaller than kernel ${spec.kernel[a]}`);
      // 'same' pads (kernel - size % kernel) when the size is not a multiple; then it is a different conv.
      if (spec.padding === 'same' && size % spec.kernel[a] !== 0) return refuse(`padding 'same' pads ${names[a]} (${size} % ${spec.kernel[a]} != 0)`);
    }
    geometries.push({ spatial: spatial as number[], channels, kernel: spec.kernel, channelsFirst: spec.channelsFirst });
  }

  const expectedKernel = [...spec.kernel, geometries[0].channels, spec.filters];
  if (!spec.kernelWeight) return refuse(`no weight "${spec.owner}/kernel" in the manifest`);
  if (fmt(spec.kernelWeight.shape) !== fmt(expectedKernel)) return refuse(`kernel shape ${fmt(spec.kernelWeight.shape)} != ${fmt(expectedKernel)}`);
  if (spec.kernelWeight.dtype !== 'float32') return refuse(`kernel dtype ${spec.kernelWeight.dtype} is not float32`);
  if (spec.bias !== null && (spec.bias === 'missing' || fmt(spec.bias.shape) !== fmt([spec.filters]))) return refuse(`no bias of shape [${spec.filters}] for "${spec.owner}"`);
  if (geometries.some((g) => g.channels !== geometries[0].channels)) return refuse('calls disagree on the channel count');

  const byShape = new Map<string, number[]>();
  geometries.forEach((g, i) => byShape.set(fmt(g.spatial), [...(byShape.get(fmt(g.spatial)) ?? []), i]));
  const distinct = [...byShape.values()].map((calls) => geometries[calls[0]]);
  const chosen = chooseRowOrder(distinct);
  if (!chosen) return refuse('no layout plan within rank 6 was found');
  return {
    geometry: { channels: geometries[0].channels, kernel: spec.kernel, channelsFirst: spec.channelsFirst },
    filters: spec.filters,
    order: chosen.order,
    groups: [...byShape.values()].map((calls, g) => ({ calls, plan: chosen.plans[g] })),
  };
}

/**
 * The conv kernel's axes in Dense row order: rows follow the plan's row order (kernel axes
 * 'k0'.. and 'c'), filters last. With the kernel's own order the bytes are unchanged.
 */
export function kernelAxes(order: RowOrder, spatialRank: number): number[] {
  return order.map((name) => (name === 'c' ? spatialRank : Number(name.slice(1))));
}
