import type { Weight } from '../layers/types';

export { ownerOf, findWeight } from '../layers/weights';

/** `weight`'s name with its owner segment `from` replaced by `to` (same scope prefix). */
export function renameWeight(weight: Weight, from: string, to: string): string {
  const parts = weight.name.split('/');
  if (parts[parts.length - 2] === from) parts[parts.length - 2] = to;
  return parts.join('/');
}

/** The report line for a quantized kernel whose rows a rewrite reordered in its stored encoding. */
export function keptEncodingNotes(layer: string, kernel: Weight): string[] {
  return kernel.quantization
    ? [`${layer}: the ${kernel.quantization.dtype}-quantized kernel keeps its encoding (stored elements reordered: exact, same size)`]
    : [];
}
