/**
 * The rule registry, one for both model formats: a rule name (`conv2d-to-dense`) stands for its
 * lowering in each dialect that has one (layers: src/pass.ts, GraphDef: src/graphdef/pass.ts),
 * and `--passes` names are resolved here once for either format.
 *
 * Order is priority: the driver tries rules in this order on each unit. Conv rewrites come first
 * (they create the Dense and views the clean-ups then simplify); fold-views-into-dense before
 * collapse-reshapes, so a view chain is folded whole rather than first merged into a shape the
 * fold would have to undo.
 */
import { InputError } from '../src/errors';
import type { GraphDefPass } from '../src/graphdef/pass';
import type { Pass } from '../src/pass';
import { collapseReshapes } from './collapse-reshapes';
import { conv1dToDense, conv1dToDenseGraphDef } from './conv1d-to-dense';
import { conv2dToDense, conv2dToDenseGraphDef } from './conv2d-to-dense';
import { conv3dToDense, conv3dToDenseGraphDef } from './conv3d-to-dense';
import { conv3dToConv2dSlices, conv3dToConv2dSlicesGraphDef } from './conv3d-to-conv2d-slices';
import { dropIdentityViews } from './drop-identity-views';
import { foldViewsIntoDense } from './fold-views-into-dense';
import { conv2dTransposeToDense, conv2dTransposeToDenseGraphDef, conv3dTransposeToDense } from './conv3d-transpose-to-dense';
import { conv3dTransposeByDepth } from './conv3d-transpose-by-depth';

export type Dialect = 'layers' | 'graphdef';

export const BUILTIN_PASSES: Pass[] = [
  conv3dToDense,
  // After conv3d-to-dense: a conv that does not slide is one Dense, not kd Conv2Ds.
  conv3dToConv2dSlices,
  conv2dToDense,
  conv1dToDense,
  // Transposed convs: the Dense form (kernel == strides) before the general depth decomposition.
  conv3dTransposeToDense,
  conv2dTransposeToDense,
  conv3dTransposeByDepth,
  foldViewsIntoDense,
  collapseReshapes,
  dropIdentityViews,
] as Pass[];

/** GraphDef lowerings of the same rules, under the same names. */
export const BUILTIN_GRAPHDEF_PASSES: GraphDefPass[] = [conv3dToDenseGraphDef, conv3dToConv2dSlicesGraphDef, conv2dToDenseGraphDef, conv1dToDenseGraphDef, conv2dTransposeToDenseGraphDef] as GraphDefPass[];

interface Lowerings {
  layers?: Pass;
  graphdef?: GraphDefPass;
}

/** name -> lowerings; Map order (first registration of a name) is the priority order. */
const registry = new Map<string, Lowerings>();
for (const pass of BUILTIN_PASSES) registry.set(pass.name, { layers: pass });
for (const pass of BUILTIN_GRAPHDEF_PASSES) registry.set(pass.name, { ...registry.get(pass.name), graphdef: pass });

/**
 * Makes a user rule available by name and part of the default pipeline (after the built-ins).
 * A name may get one lowering per dialect: registering the graph lowering of a layers rule
 * (or the reverse) adds it to that rule.
 */
export function registerPass(pass: Pass | GraphDefPass, dialect: Dialect = 'layers'): void {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(pass.name)) throw new InputError(`pass name "${pass.name}" must be kebab-case`);
  const entry = registry.get(pass.name) ?? {};
  if (entry[dialect]) throw new InputError(`a pass named "${pass.name}" is already registered${dialect === 'graphdef' ? ' for graph models' : ''}`);
  registry.set(pass.name, { ...entry, [dialect]: pass });
}

/** Every registered layers lowering, in priority order: the default layers pipeline. */
export function registeredPasses(): Pass[] {
  return [...registry.values()].flatMap((entry) => (entry.layers ? [entry.layers] : []));
}

/** Every registered GraphDef lowering, in priority order: the default graph pipeline. */
export function registeredGraphDefPasses(): GraphDefPass[] {
  return [...registry.values()].flatMap((entry) => (entry.graphdef ? [entry.graphdef] : []));
}

function checkNames(names: string[]): void {
  const unknown = names.filter((name) => !registry.has(name));
  if (unknown.length) throw new InputError(`unknown pass ${unknown.map((n) => `"${n}"`).join(', ')} (available: ${[...registry.keys()].join(', ')})`);
}

/** The layers lowerings of the passes named, in the registry's priority order; unknown names are an error. */
export function passesByName(names: string[]): Pass[] {
  checkNames(names);
  return registeredPasses().filter((pass) => names.includes(pass.name));
}

/** The GraphDef lowerings of the passes named, in priority order; unknown names are an error. */
export function graphDefPassesByName(names: string[]): GraphDefPass[] {
  checkNames(names);
  return registeredGraphDefPasses().filter((pass) => names.includes(pass.name));
}

/** Names that exist but have no lowering in `dialect` (reported as a note, not an error). */
export function withoutLowering(names: string[], dialect: Dialect): string[] {
  checkNames(names);
  return names.filter((name) => !registry.get(name)![dialect]);
}
