/** The Keras layers format adapter (src/pipeline/adapter.ts). */
import * as tf from '@tensorflow/tfjs';
import { passesByName, registeredPasses } from '../../../passes';
import { disposeModel, instantiate } from '../../formats/load';
import { summarize } from '../../formats/summary';
import { writeModelFiles } from '../../io/files';
import { artifactsFromIR, artifactsMetaOfIR, weightChunksOfIR } from '../../io/ir';
import { ModelSource, loadChecked } from '../../io/source';
import { layersExactSubject, probesFor } from '../../layers/cutout';
import { Candidate, runPasses } from '../../layers/driver';
import type { ModelIR } from '../../layers/types';
import type { Pass } from '../../pass';
import { layersCandidateFingerprint } from '../../policy/fingerprint';
import { layersSubjects, originalFindings } from '../../verify/original-check';
import { verifyLayersArtifacts } from '../../verify/layers';
import type { FormatAdapter } from '../adapter';

export const layersAdapter: FormatAdapter<ModelIR, Pass, Candidate, tf.LayersModel> = {
  format: 'layers',
  read: (source) => loadChecked(source as ModelSource),
  rules(chosen) {
    if (!chosen) return { passes: registeredPasses(), forced: new Set(), notes: [] };
    const byName = passesByName(chosen.filter((p): p is string => typeof p === 'string'));
    const passes = chosen.map((p) => (typeof p === 'string' ? byName.find((pass) => pass.name === p)! : p));
    return { passes, forced: new Set(passes.map((pass) => pass.name)), notes: [] };
  },
  run: (ir, passes, options) => runPasses(ir, passes, options),
  cutOuts: (candidate, passes) => probesFor(candidate, passes),
  // The table reads the conv's class, work and replacement classes off its cut-outs.
  facts: (_candidate, cutOuts) => cutOuts.map((c) => ({ className: c.className, macsPerItem: (c as { macsPerItem?: number }).macsPerItem ?? 0, replacement: c.replacement, pass: c.pass })),
  fingerprint: layersCandidateFingerprint,
  decisionsFormat: 'layers-model',
  exactSubject: layersExactSubject,
  summarize,
  reportExtra: (ir) => (ir.converted ? { converted: ir.converted } : {}),
  // A Keras 3 topology read as Keras 2 must be written in the new form, rewritten or not.
  mustWrite: (ir) => ir.converted !== undefined,
  reusesWeights: true,
  writer(ir) {
    // The one-buffer artifacts are a copy of every weight: built only when something needs them
    // (verification, load, a caller); saving writes the IR's weight views directly.
    let packed: ReturnType<typeof artifactsFromIR> | undefined;
    return {
      artifacts: () => (packed ??= artifactsFromIR(ir)),
      save: (dir, options) => writeModelFiles(artifactsMetaOfIR(ir), dir, options, weightChunksOfIR(ir)),
    };
  },
  load: (artifacts) => tf.loadLayersModel(tf.io.fromMemory(artifacts)),
  checkLoads: async (artifacts) => disposeModel(await instantiate(artifacts, 'original')),
  originalFindings: (ir, target, browser) => originalFindings(layersSubjects(ir), target, browser),
  verify: verifyLayersArtifacts,
};
