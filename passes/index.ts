/**
 * The pass registry. Order is priority: the driver tries passes in this order on each layer.
 * Conv rewrites come first (they create the Dense and views the clean-ups then simplify);
 * fold-views-into-dense before collapse-reshapes, so a view chain is folded whole rather than
 * first merged into a shape the fold would have to undo.
 */
import { InputError } from '../src/errors';
import type { Pass } from '../src/pass';
import { collapseReshapes } from './collapse-reshapes';
import { conv1dToDense } from './conv1d-to-dense';
import { conv2dToDense } from './conv2d-to-dense';
import { conv3dToDense } from './conv3d-to-dense';
import { dropIdentityViews } from './drop-identity-views';
import { foldViewsIntoDense } from './fold-views-into-dense';

export const BUILTIN_PASSES: Pass[] = [
  conv3dToDense,
  conv2dToDense,
  conv1dToDense,
  foldViewsIntoDense,
  collapseReshapes,
  dropIdentityViews,
] as Pass[];

const registry = new Map<string, Pass>(BUILTIN_PASSES.map((pass) => [pass.name, pass]));

/** Makes a user pass available by name and part of the default pipeline (after the built-ins). */
export function registerPass(pass: Pass): void {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(pass.name)) throw new InputError(`pass name "${pass.name}" must be kebab-case`);
  if (registry.has(pass.name)) throw new InputError(`a pass named "${pass.name}" is already registered`);
  registry.set(pass.name, pass);
}

/** Every registered pass, in priority order: the default pipeline. */
export function registeredPasses(): Pass[] {
  return [...registry.values()];
}

/** The passes named, in the registry's priority order; unknown names are an error. */
export function passesByName(names: string[]): Pass[] {
  const unknown = names.filter((name) => !registry.has(name));
  if (unknown.length) throw new InputError(`unknown pass ${unknown.map((n) => `"${n}"`).join(', ')} (available: ${[...registry.keys()].join(', ')})`);
  return registeredPasses().filter((pass) => names.includes(pass.name));
}
