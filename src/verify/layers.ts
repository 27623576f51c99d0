/**
 * The layers pair of the one verification loop (src/verify/rows.ts): both LayersModels
 * instantiated by stock tfjs from their artifacts, each as a probe model (src/verify/probes.ts)
 * whose extra outputs are the taps of the per-layer float64 check: the input and output of every
 * call of a rewritten conv in the original, the tensors holding the conv's outputs in the
 * rewritten model. In a browser, the Node copies plan the taps and the page computes.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { OriginalModelError, TargetName } from '../backend/select';
import { InputError, oneLine } from '../errors';
import { disposeModel, instantiate } from '../formats/load';
import { openInputs } from './inputs';
import { onCpu } from './original-check';
import { PageProbeModel, ProbeModel, inferRewrittenLayers, planProbes } from './probes';
import { OpenPair, RowBatch, verifyPair } from './rows';
import { ulpWeights } from './noise-floor';
import { localPlanFor, verifyLocal } from './local';
import { LOCAL_CORNER_MAX_MACS, NO_COLUMNS, columnsInFreshThread, verifyColumns } from './local-columns';
import { canRunApart } from './shards';
import { LayerCheck, LayersVerifyOptions, Target, VerificationReport, onBackends, runSettings } from './verify';

export async function verifyLayersArtifacts(
  original: io.ModelArtifacts, rewritten: io.ModelArtifacts, options: LayersVerifyOptions = {},
): Promise<VerificationReport> {
  return onBackends(options, async (target) => {
    // A long row of a fully convolutional model: checked locally (src/verify/local.ts), in Node.
    const { plan, note } = target.session ? { plan: null } : await localPlanFor(original, options);
    if (plan) {
      const wanted = options.localForm === 'columns' || (options.localForm === undefined && plan.cornerMacs > LOCAL_CORNER_MAX_MACS);
      // In a fresh thread where one can be had (its wasm heap unfragmented), else here.
      const columns = !wanted ? null : options.localHere || !canRunApart(options, false)
        ? await verifyColumns(target, plan, original, rewritten, options) : await columnsInFreshThread(target, original, rewritten, options);
      if (columns && typeof columns !== 'string') return columns;
      // In the fresh thread, the caller takes the corner form itself (with the cut-outs it holds).
      if (typeof columns === 'string' && options.localHere) throw new InputError(`${NO_COLUMNS}${columns}`);
      const report = await verifyLocal(target, plan, original, rewritten, options.localCutOuts ?? [], options);
      return typeof columns === 'string' ? { ...report, notes: [...(report.notes ?? []), `${NO_COLUMNS}${columns}`] } : report;
    }
    const report = await verifyPair(target, options, () => openLayersPair(target, original, rewritten, options), [original, rewritten]);
    return note ? { ...report, notes: [...(report.notes ?? []), note] } : report;
  });
}

/** The layers pair for the row loop: both LayersModels with their taps, in Node or in a page. */
async function openLayersPair(target: Target, original: io.ModelArtifacts, rewritten: io.ModelArtifacts, options: LayersVerifyOptions): Promise<OpenPair> {
  const { session } = target;
  const { batch, seed } = runSettings(options);
  const models: tf.LayersModel[] = [];
  const pageIds: string[] = [];
  const close = async () => {
    models.forEach(disposeModel);
    for (const id of pageIds) await session!.dispose(id);
  };
  try {
    // In a browser, the Node copies only plan the taps (and give the conv weights); the page computes.
    models.push(await instantiate(original, 'original'));
    models.push(await instantiate(rewritten, 'rewritten'));
    const [before, after] = models;
    if (before.inputs.length !== after.inputs.length || before.outputs.length !== after.outputs.length) {
      throw new InputError(`the models differ in inputs/outputs (${before.inputs.length}/${before.outputs.length} vs ${after.inputs.length}/${after.outputs.length})`);
    }
    if (session) {
      pageIds.push(await session.load('layers', original, 'original'));
      pageIds.push(await session.load('layers', rewritten, 'rewritten'));
    }
    // Original and rewrite apart because the original is wrong here: compare with the original where it is right.
    const rewrittenNames = new Set((options.rewrittenLayers ?? []).map((r) => r.layer));
    const wrong = (options.originalFindings ?? []).filter((f) => rewrittenNames.has(f.layer));
    const referenceOnCpu = wrong.length > 0 && target.info.name !== 'cpu';
    const probeA = session && !referenceOnCpu ? new PageProbeModel(before, session, pageIds[0]) : new ProbeModel(before);
    const probeB = session ? new PageProbeModel(after, session, pageIds[1]) : new ProbeModel(after);
    const { probes, notes } = planProbes(options.rewrittenLayers ?? inferRewrittenLayers(before, after), probeA, probeB);
    if (referenceOnCpu) {
      notes.push(`the original computes wrong on ${target.info.name} (${wrong.map((f) => `${f.layer}: off by up to ${f.maxAbsDiff} vs float64`).join('; ')}): ` +
        `outputs are compared with the original run on tfjs's cpu backend, the rewrite with float64 per layer`);
    }
    const rows = openInputs(before, options.inputs, { batch, seed, shapes: options.inputShapes });
    return {
      rows,
      outputNames: before.outputs.map((_, o) => before.outputNames[o] ?? `output_${o}`),
      outputs: [probeA.outputs, probeB.outputs],
      checks: probes.map((probe) => new LayerCheck(probe)),
      notes,
      original: async ({ xs, staged }) => {
        try {
          return referenceOnCpu ? await onCpu(() => probeA.values(xs)) : await probeA.values(staged ?? xs);
        } catch (error) {
          // The original model as given cannot run here (a config tfjs accepts but cannot
          // execute, an op or dtype this backend lacks): the model's problem, never ours.
          throw new OriginalModelError(target.info.name as TargetName, oneLine(error));
        }
      },
      rewritten: ({ xs, staged }) => probeB.values(staged ?? xs),
      // In Node, the noise floor moves the original's weights too (ulpWeights).
      ...(session || referenceOnCpu ? {} : { originalMoved: ({ xs }: RowBatch, _count: number, seed: number) => ulpWeights(before, seed, () => probeA.values(xs)) }),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
