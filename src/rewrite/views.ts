/**
 * Layers that only move data (Reshape, Flatten, Permute): helpers for the clean-up passes that
 * collapse, drop or fold them. All pure: configs and shapes in, answers out.
 */
import type { Shape } from '../layers/shapes';
import type { LayerNode } from '../layers/types';
import { transposeValues } from './transpose';

/**
 * Reshape, Permute, and Flatten as tfjs runs it by default. A channels_first Flatten transposes
 * its input first (channels last) before flattening, so it is not a plain reshape: left out.
 */
export function isReshape(layer: LayerNode): boolean {
  return layer.className === 'Reshape' || (layer.className === 'Flatten' && layer.config.data_format !== 'channels_first');
}

export function isView(layer: LayerNode): boolean {
  return isReshape(layer) || layer.className === 'Permute';
}

export const isStatic = (shape: Shape): shape is [null | number, ...number[]] => shape.slice(1).every((dim) => dim !== null);

/**
 * The feature order a chain of views produces: for a tensor of non-batch shape `shape`, the
 * flat index (into the chain's input) of each flat position of the chain's output.
 */
export function viewPermutation(shape: number[], chain: LayerNode[]): Int32Array {
  let order = Int32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i);
  let current = shape;
  for (const layer of chain) {
    if (layer.className === 'Permute') {
      const dims = (layer.config.dims as number[]).map((d) => d - 1);
      order = transposeValues(order, current, dims);
      current = dims.map((d) => current[d]);
    } else if (layer.className === 'Flatten') {
      current = [order.length];
    } else {
      const target = layer.config.target_shape as number[];
      const known = target.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
      current = target.map((d) => (d === -1 ? order.length / known : d));
    }
  }
  return order;
}
