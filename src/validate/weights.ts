/**
 * Weight specs against the layers that use them, before tfjs: its strict loader refuses an
 * unowned weight ("no target variable") or a missing one ("N of M weights are not set") without
 * naming the layer, and a wrong shape only when it assigns values. Checked statically here:
 * - every weight name has a layer name as one of its scopes (conservatively: any name found
 *   anywhere in a layer config counts, so wrapped and cell layers are covered);
 * - the layer classes below have each weight they need, with the shape their config and input
 *   shape imply (dims that cannot be known are not compared). Other classes are left to tfjs.
 */
import { InputError } from '../errors';
import { LayersShapes, Shape, isUnknown } from '../layers/shapes';
import type { Graph, Json, JsonObject } from '../layers/types';
import { findWeight } from '../layers/weights';

export interface SpecLike {
  name: string;
  shape: number[];
}

type Dims = (number | null)[];
interface Needed {
  suffix: string;
  shape: Dims;
}

const int = (value: Json | undefined): number | null =>
  typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : null;
const times = (a: number | null, b: number | null) => (a === null || b === null ? null : a * b);

function tuple(value: Json | undefined, rank: number): Dims {
  if (Array.isArray(value) && value.length === rank) return value.map(int);
  return new Array(rank).fill(int(value as Json));
}

/** The input's channel (or normalized-axis) size, or null when unknown. */
function axisSize(input: Shape | undefined, axis: number): number | null {
  if (!input) return null;
  const dim = input[axis < 0 ? input.length + axis : axis];
  return typeof dim === 'number' ? dim : null;
}

const channels = (c: JsonObject, input: Shape | undefined) =>
  axisSize(input, c.data_format === 'channels_first' ? 1 : -1);
const bias = (c: JsonObject, size: number | null): Needed[] => (c.use_bias === false ? [] : [{ suffix: 'bias', shape: [size] }]);

function conv(rank: number, transpose = false) {
  return (c: JsonObject, input: Shape | undefined): Needed[] => {
    const io = transpose ? [int(c.filters), channels(c, input)] : [channels(c, input), int(c.filters)];
    return [{ suffix: 'kernel', shape: [...tuple(c.kernel_size, rank), ...io] }, ...bias(c, int(c.filters))];
  };
}

function separable(rank: number) {
  return (c: JsonObject, input: Shape | undefined): Needed[] => {
    const inner = times(channels(c, input), int(c.depth_multiplier ?? 1));
    return [
      { suffix: 'depthwise_kernel', shape: [...tuple(c.kernel_size, rank), channels(c, input), int(c.depth_multiplier ?? 1)] },
      { suffix: 'pointwise_kernel', shape: [...new Array(rank).fill(1), inner, int(c.filters)] },
      ...bias(c, int(c.filters)),
    ];
  };
}

function normalization(moving: boolean) {
  return (c: JsonObject, input: Shape | undefined): Needed[] => {
    const axis = Array.isArray(c.axis) && c.axis.length === 1 ? c.axis[0] : c.axis ?? -1;
    // Several normalized axes give a multi-dim parameter whose layout we leave to tfjs.
    if (typeof axis !== 'number') return [];
    const size = axisSize(input, axis);
    const needed: Needed[] = [];
    if (c.scale !== false) needed.push({ suffix: 'gamma', shape: [size] });
    if (c.center !== false) needed.push({ suffix: 'beta', shape: [size] });
    if (moving) needed.push({ suffix: 'moving_mean', shape: [size] }, { suffix: 'moving_variance', shape: [size] });
    return needed;
  };
}

const NEEDS: Record<string, (config: JsonObject, input: Shape | undefined) => Needed[]> = {
  Dense: (c, input) => [{ suffix: 'kernel', shape: [axisSize(input, -1), int(c.units)] }, ...bias(c, int(c.units))],
  Conv1D: conv(1),
  Conv2D: conv(2),
  Conv3D: conv(3),
  Conv2DTranspose: conv(2, true),
  Conv3DTranspose: conv(3, true),
  DepthwiseConv2D: (c, input) => [
    { suffix: 'depthwise_kernel', shape: [...tuple(c.kernel_size, 2), channels(c, input), int(c.depth_multiplier ?? 1)] },
    ...bias(c, times(channels(c, input), int(c.depth_multiplier ?? 1))),
  ],
  SeparableConv1D: separable(1),
  SeparableConv2D: separable(2),
  BatchNormalization: normalization(true),
  LayerNormalization: normalization(false),
  Embedding: (c) => [{ suffix: 'embeddings', shape: [int(c.input_dim), int(c.output_dim)] }],
};

/** Every string under a `name` key, at any depth: layer names, wrapped layers, RNN cells. */
function collectNames(value: Json, into: Set<string>): void {
  if (Array.isArray(value)) value.forEach((item) => collectNames(item, into));
  else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (key === 'name' && typeof item === 'string') into.add(item);
      else collectNames(item, into);
    }
  }
}

function layerNames(graph: Graph, into = new Set<string>()): Set<string> {
  for (const layer of graph.layers) {
    into.add(layer.name);
    collectNames(layer.config, into);
    if (layer.graph) layerNames(layer.graph, into);
  }
  return into;
}

const fmt = (dims: Dims) => `[${dims.map((d) => (d === null ? '?' : d)).join(', ')}]`;

/** Keras 3 "dense/0" style names give positions, not roles; only ownership can be checked. */
function positionalNames(specs: SpecLike[]): boolean {
  return specs.length > 0 && !Number.isNaN(parseInt(specs[0].name.split('/').pop()!, 10));
}

/** Throws an InputError naming the first weight no layer owns, or a layer's missing / misshapen weight. */
export function checkWeightsAgainstLayers(graph: Graph, shapes: LayersShapes, specs: SpecLike[]): void {
  const names = layerNames(graph);
  for (const spec of specs) {
    const scopes = spec.name.split('/').slice(0, -1);
    if (!scopes.some((scope) => names.has(scope))) {
      throw new InputError(`weight "${spec.name}" belongs to no layer: the model has no layer named ` +
        `${scopes.length ? scopes.map((s) => `"${s}"`).join(' or ') : `(the name has no "<layer>/" scope)`}`);
    }
  }
  if (!positionalNames(specs)) checkNeeded(graph, shapes, specs, graph.name);
}

function checkNeeded(graph: Graph, shapes: LayersShapes, specs: SpecLike[], where: string): void {
  for (const layer of graph.layers) {
    if (layer.graph) {
      const nested = shapes.nested.get(layer.name);
      if (nested) checkNeeded(layer.graph, nested, specs, `${where}/${layer.name}`);
      continue;
    }
    const needs = NEEDS[layer.className];
    if (!needs) continue;
    const calls = shapes.callInputs.get(layer.name) ?? [];
    const known = calls.find((call) => !isUnknown(call) && call.length === 1);
    const input = known && !isUnknown(known) ? known[0] : undefined;
    for (const need of needs(layer.config, input)) {
      const spec = findWeight(specs, layer.name, need.suffix);
      const label = `${where}/${layer.name} (${layer.className})`;
      if (!spec) throw new InputError(`${label} needs weight "${layer.name}/${need.suffix}", which the manifest does not list`);
      const matches = spec.shape.length === need.shape.length && need.shape.every((d, i) => d === null || d === spec.shape[i]);
      if (!matches) {
        throw new InputError(`weight "${spec.name}" has shape [${spec.shape.join(', ')}], but ${label} needs ${fmt(need.shape)}`);
      }
    }
  }
}
