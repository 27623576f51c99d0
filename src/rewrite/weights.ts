import type { Weight } from '../layers/types';

/**
 * The layer a manifest weight belongs to: the path segment before the weight's own name
 * ("patch_embed/kernel", "outer/patch_embed/kernel" -> patch_embed), as tfjs and Keras name them.
 */
export function ownerOf(weightName: string): string | undefined {
  const parts = weightName.split('/');
  return parts.length >= 2 ? parts[parts.length - 2] : undefined;
}

/** The manifest weight `<...>/<layer>/<suffix>`, if any. */
export function findWeight<W extends { name: string }>(weights: W[], layer: string, suffix: string): W | undefined {
  return weights.find((weight) => ownerOf(weight.name) === layer && weight.name.endsWith(`/${suffix}`));
}

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
