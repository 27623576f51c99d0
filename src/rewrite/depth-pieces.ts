/**
 * A volume that arrives in depth pieces: a Conv3D's input made by a Concatenate along depth of
 * rank-4 views [n, H, W*C] (the chunk outputs of an upstream conv3d-to-conv2d-slices), a Reshape
 * to [D, H, W, C] and elementwise layers (the upstream conv's activation). A chunked sliding
 * rewrite of the Conv3D can read each Conv2D input from the pieces and absorb the rest: the
 * whole volume is then never one tensor between two rewritten convs (sliding-conv-layers.ts
 * says why).
 */
import { isUnknown, layerOutputShape } from '../layers/shapes';
import type { LayersShapes } from '../layers/shapes';
import type { Graph, JsonObject, LayerNode, TensorRef } from '../layers/types';
import { consumerCount } from './upstream';

export interface DepthPieces {
  /** In depth order: the tensor and its depth range [lo, hi) of the volume. */
  pieces: { ref: TensorRef; lo: number; hi: number }[];
  /** Every piece's shape after its depth: [H, W*C]. */
  view: [number, number];
  /** The elementwise layers between the Reshape and the conv, in order (applied per piece). */
  elementwise: LayerNode[];
  /** Concatenate, Reshape, then the elementwise layers: dead once the conv reads the pieces. */
  absorbed: string[];
}

/** Activations whose value at a position depends on that element alone (not softmax's axis). */
const ELEMENTWISE = new Set(['ReLU', 'LeakyReLU', 'ELU', 'ThresholdedReLU']);
const isElementwise = (layer: LayerNode) =>
  ELEMENTWISE.has(layer.className) ||
  (layer.className === 'Activation' && typeof layer.config.activation === 'string' && !/softmax/.test(layer.config.activation));

/** The one single-call producer of `ref` in `graph` that nothing else reads, if any. */
function soleProducer(graph: Graph, ref: TensorRef): LayerNode | undefined {
  const layer = graph.layers.find((l) => l.name === ref.layer);
  if (!layer || layer.graph || layer.calls.length !== 1 || ref.node !== 0 || ref.tensor !== 0) return undefined;
  return consumerCount(graph, layer) === 1 ? layer : undefined;
}

/**
 * The non-batch shape of `ref`: from the shapes of this sweep, or, for layers a rewrite made
 * in it (their shapes are not inferred yet), from a Reshape's target or a Cropping2D of one.
 */
function shapeOf(graph: Graph, ref: TensorRef, shapes: LayersShapes, depth = 0): number[] | undefined {
  const layer = graph.layers.find((l) => l.name === ref.layer);
  if (!layer || layer.graph || ref.tensor !== 0 || depth > 8) return undefined;
  const inputs = shapes.callInputs.get(layer.name)?.[ref.node];
  if (inputs && !isUnknown(inputs)) {
    try {
      const [out] = layerOutputShape(layer, inputs);
      return out.slice(1).every((d) => typeof d === 'number') ? (out.slice(1) as number[]) : undefined;
    } catch {
      return undefined;
    }
  }
  if (layer.className === 'Reshape') {
    const target = layer.config.target_shape;
    return Array.isArray(target) && target.every((d) => typeof d === 'number' && d > 0) ? (target as number[]) : undefined;
  }
  if (layer.className === 'Cropping2D' && layer.config.data_format !== 'channels_first') {
    const input = layer.calls[ref.node]?.inputs;
    const crop = layer.config.cropping as number[][];
    const inner = input?.length === 1 ? shapeOf(graph, input[0], shapes, depth + 1) : undefined;
    if (!inner || inner.length !== 3 || !Array.isArray(crop) || crop.length !== 2) return undefined;
    return [inner[0] - crop[0][0] - crop[0][1], inner[1] - crop[1][0] - crop[1][1], inner[2]];
  }
  return undefined;
}

/**
 * The depth pieces `conv`'s input (non-batch shape `dims` = [D, H, W, C], channels_last) is
 * assembled from, when it is a chain the conv can absorb: every link single-call and read only
 * by the next; the Concatenate along depth of >= 2 rank-4 views [n, H, W*C].
 */
export function depthPiecesOf(graph: Graph, conv: LayerNode, dims: number[], shapes: LayersShapes): DepthPieces | undefined {
  if (graph.kind !== 'functional' || conv.calls.length !== 1 || conv.calls[0].inputs.length !== 1) return undefined;
  const [D, H, W, C] = dims;
  const elementwise: LayerNode[] = [];
  let layer = soleProducer(graph, conv.calls[0].inputs[0]);
  while (layer && isElementwise(layer) && layer.calls[0].inputs.length === 1) {
    elementwise.unshift(layer);
    layer = soleProducer(graph, layer.calls[0].inputs[0]);
  }
  const target = layer?.className === 'Reshape' ? layer.config.target_shape : undefined;
  if (!layer || !Array.isArray(target) || JSON.stringify(target) !== JSON.stringify(dims) || layer.calls[0].inputs.length !== 1) return undefined;
  const reshape = layer;
  const concat = soleProducer(graph, reshape.calls[0].inputs[0]);
  const inputs = concat?.calls[0].inputs ?? [];
  if (!concat || concat.className !== 'Concatenate' || concat.config.axis !== 1 || inputs.length < 2) return undefined;
  if (graph.outputs.some((ref) => [concat, reshape, ...elementwise].some((l) => l.name === ref.layer))) return undefined;
  const pieces: DepthPieces['pieces'] = [];
  let lo = 0;
  for (const ref of inputs) {
    const shape = shapeOf(graph, ref, shapes);
    if (!shape || shape.length !== 3 || shape[0] < 1 || shape[1] !== H || shape[2] !== W * C) return undefined;
    pieces.push({ ref, lo, hi: lo + shape[0] });
    lo += shape[0];
  }
  if (lo !== D) return undefined;
  return { pieces, view: [H, W * C], elementwise, absorbed: [concat.name, reshape.name, ...elementwise.map((l) => l.name)] };
}

/**
 * The absorbed elementwise layers applied per piece, one shared layer each (`addShared` adds a
 * layer called once per input, returning its outputs): the pieces that then hold the conv's
 * input, and, per absorbed layer, the tensors holding its output (RewriteRecord.pieces).
 */
export function elementwisePieces(
  p: DepthPieces, addShared: (className: string, config: JsonObject, inputs: TensorRef[], name: string) => TensorRef[], freshName: (base: string) => string,
): { pieces: TensorRef[]; held: Record<string, TensorRef[]> } {
  let pieces = p.pieces.map((piece) => piece.ref);
  // absorbed: Concatenate and Reshape (both held by the raw pieces), then the elementwise layers.
  const held: Record<string, TensorRef[]> = Object.fromEntries(p.absorbed.slice(0, 2).map((name) => [name, pieces]));
  for (const layer of p.elementwise) {
    const { name: _, ...config } = layer.config;
    pieces = addShared(layer.className, config, pieces, freshName(`${layer.name}_pieces`));
    held[layer.name] = pieces;
  }
  return { pieces, held };
}
