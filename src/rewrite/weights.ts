import type { Weight } from '../graph/types';

/** The manifest weight `<...>/<layer>/<suffix>`, if any. */
export function findWeight(weights: Weight[], layer: string, suffix: string): Weight | undefined {
  return weights.find((weight) => {
    const parts = weight.name.split('/');
    return parts.length >= 2 && parts[parts.length - 1] === suffix && parts[parts.length - 2] === layer;
  });
}

/** `weight`'s name with its owner segment `from` replaced by `to` (same scope prefix). */
export function renameWeight(weight: Weight, from: string, to: string): string {
  const parts = weight.name.split('/');
  if (parts[parts.length - 2] === from) parts[parts.length - 2] = to;
  return parts.join('/');
}
