/** Which layer a manifest weight belongs to, by the tfjs/Keras naming `<...>/<layer>/<suffix>`. */

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
