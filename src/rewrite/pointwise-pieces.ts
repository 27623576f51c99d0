/**
 * conv3d-to-dense on a 1x1x1 Conv3D whose input arrives in depth pieces (depth-pieces.ts: a
 * MeshNet's classifier after chunked sliding convs): one Dense, shared, per piece, the outputs
 * concatenated along depth, so the whole input volume is never one tensor (the point of the
 * pieces: wasm's 4 GB heap). Rank 4 around the Dense ([n*H, W, C]): WebGPU computes a rank-5
 * BiasAdd wrong. The absorbed elementwise layers run per piece first, one shared layer each.
 */
import type { MatchContext, Replacement } from '../pass';
import type { JsonObject, LayerNode, TensorRef, Weight } from '../layers/types';
import { DENSE_FROM_CONV_KEYS, pick } from './config';
import { DepthPieces, elementwisePieces } from './depth-pieces';
import { keptEncodingNotes, renameWeight } from './weights';

export function rewritePointwiseOnPieces(
  layer: LayerNode, weights: { kernel: Weight; bias?: Weight; filters: number }, p: DepthPieces, context: MatchContext,
): Replacement {
  const layers: LayerNode[] = [];
  const passThrough = pick(layer.config, ['trainable', 'dtype']);
  const add = (className: string, config: JsonObject, calls: TensorRef[][], name = context.freshName(`${layer.name}_${className.toLowerCase()}`)) => {
    layers.push({ name, className, config: { name, ...passThrough, ...config }, calls: calls.map((inputs) => ({ inputs })), extra: {} });
    return calls.map((_, i): TensorRef => ({ layer: name, node: i, tensor: 0, kwargs: {} }));
  };
  const { pieces, held } = elementwisePieces(p, (cls, config, inputs, name) => add(cls, config, inputs.map((x) => [x]), name), context.freshName);
  const [H, WC] = p.view;
  const C = weights.kernel.shape[weights.kernel.shape.length - 2];
  const F = weights.filters;
  // One Reshape per distinct piece depth: [n, H, W*C] -> [n*H, W, C].
  const depths = [...new Set(p.pieces.map((piece) => piece.hi - piece.lo))];
  const reshaped: TensorRef[] = new Array(pieces.length);
  for (const n of depths) {
    const members = p.pieces.flatMap((piece, j) => (piece.hi - piece.lo === n ? [j] : []));
    add('Reshape', { target_shape: [n * H, WC / C, C] }, members.map((j) => [pieces[j]])).forEach((out, k) => (reshaped[members[k]] = out));
  }
  const denseName = context.freshName(`${layer.name}_dense`);
  const dense = add('Dense', {
    units: F, activation: typeof layer.config.activation === 'string' ? layer.config.activation : 'linear', use_bias: weights.bias !== undefined,
    // As the whole-volume Dense takes them (non-sliding-conv.ts).
    ...pick(layer.config, DENSE_FROM_CONV_KEYS),
  }, reshaped.map((piece) => [piece]), denseName);
  const joined = add('Concatenate', { axis: 1 }, [dense]);
  const D = p.pieces[p.pieces.length - 1].hi;
  const out = add('Reshape', { target_shape: [D, H, WC / C, F] }, [joined], layer.name);
  // A 1x1x1 kernel [1, 1, 1, C, F] is the Dense kernel [C, F], the same elements: a quantized kernel keeps its encoding.
  const addWeights: Weight[] = [{ ...weights.kernel, name: renameWeight(weights.kernel, layer.name, denseName), shape: [C, F] }];
  if (weights.bias) addWeights.push({ ...weights.bias, name: renameWeight(weights.bias, layer.name, denseName) });
  return {
    layers,
    outputs: [{ layer: out[0].layer, call: 0 }],
    absorbed: p.absorbed,
    pieces: held,
    removeWeights: [weights.kernel.name, ...(weights.bias ? [weights.bias.name] : [])],
    addWeights,
    notes: keptEncodingNotes(layer.name, weights.kernel),
  };
}
