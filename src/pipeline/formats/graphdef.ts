/** The GraphDef (converter graph model) format adapter (src/pipeline/adapter.ts). */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { graphDefPassesByName, registeredGraphDefPasses, withoutLowering } from '../../../passes';
import { InputError } from '../../errors';
import { loadGraph } from '../../formats/load';
import { writeModelFiles } from '../../io/files';
import { modelJsonPath } from '../../io/source';
import { graphDefCutOut, graphDefExactSubject } from '../../graphdef/cutout';
import { GraphDefCandidate, runGraphDefPasses } from '../../graphdef/driver';
import { readGraphModelFiles } from '../../graphdef/files';
import { learnUnknownShapes } from '../../graphdef/learned-shapes';
import { GraphModelIR, artifactsFromGraphIR, graphIRFromArtifacts, isGraphModelJson } from '../../graphdef/ir';
import type { GraphDefPass } from '../../graphdef/pass';
import { summarizeGraph } from '../../graphdef/summary';
import { graphCandidateFingerprint } from '../../policy/fingerprint';
import type { TableFacts } from '../../policy/policy';
import type { ConvAnalysis } from '../../rewrite/conv-analysis';
import type { Step } from '../../rewrite/patch-plan';
import type { SlidingGeometry } from '../../rewrite/sliding-conv';
import type { CutOut } from '../../formats/cutout';
import { verifyGraphArtifacts } from '../../verify/graphdef';
import { originalFindings } from '../../verify/original-check';
import { graphDefSubjects } from '../../verify/original-check-graphdef';
import type { FormatAdapter } from '../adapter';

const CONV_CLASS: Record<number, string> = { 1: 'Conv1D', 2: 'Conv2D', 3: 'Conv3D' };
const STEP_CLASS: Record<Step['kind'], string> = { reshape: 'Reshape', permute: 'Permute', crop: 'Cropping2D' };

/** The table's facts from a conv rule's plan: its class, work and view steps (as layer classes). */
export function planFacts(plan: ConvAnalysis & { spatial?: number[] }): TableFacts | undefined {
  const kernel = plan.geometry?.kernel;
  if (!kernel || !plan.spatial || !plan.groups) return undefined;
  const positions = plan.spatial.reduce((n, size, a) => n * Math.floor(size / kernel[a]), 1);
  const macsPerItem = positions * kernel.reduce((a, b) => a * b, 1) * plan.geometry.channels * plan.filters;
  const steps = plan.groups.flatMap((group) => [...group.plan.before, ...group.plan.after]);
  return { className: CONV_CLASS[kernel.length], macsPerItem, replacement: ['Dense', ...steps.map((step) => STEP_CLASS[step.kind])] };
}

/** The graph form's ops as the table's layer classes (an op not listed keeps its name, so no table entry holds it). */
const SLIDING_OP_CLASS: Record<string, string> = {
  Reshape: 'Reshape', Conv2D: 'Conv2D', StridedSlice: 'Cropping2D', Pad: 'ZeroPadding2D', AddN: 'Add', Transpose: 'Permute',
};

/** The table's facts for conv3d-to-conv2d-slices' plan: the work of the whole input, whatever the cut-out's size. */
function slidingFacts(plan: { geometry?: SlidingGeometry }, pass: string, cutOuts: CutOut[]): TableFacts | undefined {
  const axes = plan.geometry?.axes;
  if (!axes || axes.length !== 3) return undefined;
  const macsPerItem = axes.reduce((n, a) => n * a.out * a.kernel, 1) * plan.geometry!.channels * plan.geometry!.filters;
  const replacement = cutOuts.flatMap((c) => c.replacement).map((op) => SLIDING_OP_CLASS[op] ?? op);
  return { pass, className: 'Conv3D', macsPerItem, replacement };
}

/** A model.json path (or its folder), or graph-model artifacts already in memory. */
async function graphArtifactsOf(source: unknown): Promise<io.ModelArtifacts> {
  if (typeof source === 'string') return readGraphModelFiles(modelJsonPath(source));
  const artifacts = source as io.ModelArtifacts;
  if (artifacts && typeof artifacts === 'object' && isGraphModelJson({ format: artifacts.format, modelTopology: artifacts.modelTopology })) return artifacts;
  throw new InputError('expected a graph-model model.json path or graph-model ModelArtifacts');
}

export const graphDefAdapter: FormatAdapter<GraphModelIR, GraphDefPass, GraphDefCandidate, tf.GraphModel> = {
  format: 'graphdef',
  async read(source, options = {}) {
    const artifacts = await graphArtifactsOf(source);
    // The IR copies the weight bytes: passes edit it in place, the artifacts stay as read.
    const ir = graphIRFromArtifacts(artifacts);
    // Sizes static inference cannot tell are learned by one run of the model on zeros.
    ir.notes.push(...await learnUnknownShapes(ir, { inputShapes: options.inputShapes }));
    return { artifacts, ir };
  },
  rules(chosen) {
    if (!chosen) return { passes: registeredGraphDefPasses(), forced: new Set(), notes: [] };
    const names = chosen.filter((p): p is string => typeof p === 'string');
    const byName = graphDefPassesByName(names);
    const passes = chosen.flatMap((p) => (typeof p === 'string' ? byName.filter((pass) => pass.name === p) : [p]));
    const missing = withoutLowering(names, 'graphdef');
    const notes = missing.length ? [`${missing.join(', ')}: no graph-model lowering; not applied`] : [];
    return { passes, forced: new Set(passes.map((pass) => pass.name)), notes };
  },
  run: (ir, passes, options) => runGraphDefPasses(ir, passes, options),
  cutOuts: async (candidate, passes) => {
    const cut = graphDefCutOut(candidate, passes);
    return typeof cut === 'string' ? cut : [cut];
  },
  facts: (candidate, cutOuts) => {
    const sliding = slidingFacts(candidate.plan as { geometry?: SlidingGeometry }, candidate.pass.name, cutOuts);
    if (sliding) return [sliding];
    const facts = planFacts(candidate.plan as ConvAnalysis & { spatial?: number[] });
    return facts && [facts];
  },
  fingerprint: graphCandidateFingerprint,
  decisionsFormat: 'graph-model',
  exactSubject: graphDefExactSubject,
  summarize: summarizeGraph,
  reportExtra: () => ({}),
  mustWrite: () => false,
  reusesWeights: false,
  writer(ir) {
    let artifacts: io.ModelArtifacts | undefined;
    const built = () => (artifacts ??= artifactsFromGraphIR(ir));
    return { artifacts: built, save: (dir, options) => writeModelFiles(built(), dir, options) };
  },
  load: (artifacts) => tf.loadGraphModel(tf.io.fromMemory(artifacts)),
  checkLoads: async (artifacts) => (await loadGraph(artifacts, 'original')).dispose(),
  originalFindings: (ir, target, browser) => originalFindings(graphDefSubjects(ir), target, browser),
  verify: verifyGraphArtifacts,
};
