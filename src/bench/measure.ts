/**
 * One measurement row: the original model, the rewritten model, the rewritten subgraphs alone
 * (each rewritten conv's replacement behind an Input, see probe.ts) and the bare matMul+bias
 * those subgraphs reduce to, interleaved on the current backend.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { passesByName, registeredPasses } from '../../passes';
import { loadChecked, ModelSource } from '../io/source';
import type { RewriteRecord } from '../layers/driver';
import { optimize } from '../optimize';
import { PolicyMode, findCandidates } from '../policy/policy';
import { Probe, probesFor } from '../policy/probe';
import { InterleaveOptions, Runner, Samples, interleave } from './stats';
import { bareOperands, bareRunner, predictRunner } from './timing';
import { makeInputs } from '../verify/inputs';
import { disposeModel, instantiate } from '../verify/models';

/** Both models as artifacts, what was rewritten, and a probe per rewritten conv and input shape. */
export interface Prepared {
  original: io.ModelArtifacts;
  rewritten: io.ModelArtifacts;
  records: RewriteRecord[];
  probes: Probe[];
  /** Why some rewritten conv has no subgraph probe (the column is then left out). */
  unprobed: string[];
}

/**
 * `passes` names the pipeline as `optimize({passes})` does. The policy defaults to 'always': a
 * bench row measures what the rewrite itself does, including the losses the default policy
 * would refuse.
 */
export async function prepare(source: ModelSource, passes?: string[], policy: PolicyMode = 'always'): Promise<Prepared> {
  const { artifacts, ir } = await loadChecked(source);
  // In the named order, as optimize runs them, so the probes see the same pipeline.
  const pipeline = passes ? passes.map((name) => passesByName([name])[0]) : registeredPasses();
  const candidates = findCandidates(ir, pipeline, undefined, passes ? new Set(passes) : undefined);
  const result = await optimize(artifacts, { verify: false, passes, policy });
  const records = result.report.rewritten;
  const probes: Probe[] = [];
  const unprobed: string[] = [];
  for (const candidate of candidates) {
    // Subgraphs are the conv rewrites; clean-ups of existing view layers are not one.
    if (candidate.pass.reportRefusals === false) continue;
    if (!records.some((r) => r.layer === candidate.layer.name && r.graph === candidate.graph)) continue;
    const found = await probesFor(candidate, pipeline);
    if (typeof found === 'string') unprobed.push(`${candidate.layer.name}: ${found}`);
    else probes.push(...found);
  }
  return { original: artifacts, rewritten: result.artifacts, records, probes, unprobed };
}

export interface Measurement {
  batch: number;
  original: Samples | null;
  rewritten: Samples;
  subgraph: Samples | null;
  bare: Samples | null;
  /** original / rewritten (medians). */
  speedup: number | null;
  /** rewritten / bare and subgraph / bare (medians): the price of everything around the matMul. */
  overhead: number | null;
  subgraphOverhead: number | null;
  notes: string[];
}

/** The models of a Prepared, instantiated on the current backend. */
export interface Loaded {
  original: tf.LayersModel;
  rewritten: tf.LayersModel;
  subgraphs: { model: tf.LayersModel; calls: number }[];
  dispose(): void;
}

export async function load(prepared: Prepared): Promise<Loaded> {
  const models: tf.LayersModel[] = [];
  const fromMemory = async (artifacts: io.ModelArtifacts) => {
    const model = await instantiate(artifacts, 'benchmark');
    models.push(model);
    return model;
  };
  try {
    const original = await fromMemory(prepared.original);
    const rewritten = await fromMemory(prepared.rewritten);
    const subgraphs = [];
    for (const probe of prepared.probes) subgraphs.push({ model: await fromMemory(probe.rewritten), calls: probe.calls });
    return { original, rewritten, subgraphs, dispose: () => models.forEach(disposeModel) };
  } catch (error) {
    models.forEach(disposeModel);
    throw error;
  }
}

export interface MeasureOptions {
  timing: InterleaveOptions;
  /** Leave the original out (too slow at this size); the note says why. */
  skipOriginal?: string;
  /** Time the original without warm-up and with `timing.minReps` (it takes seconds per run). */
  slowOriginal?: boolean;
}

/** A runner that runs several runners back to back and reports their summed time. */
function sequence(name: string, parts: Runner[]): Runner {
  return {
    name,
    async run() {
      let total = 0;
      for (const part of parts) total += await part.run();
      return total;
    },
  };
}

/** True when the rewritten model has exactly the layers of its single subgraph probe. */
function sameLayers(loaded: Loaded): boolean {
  if (loaded.subgraphs.length !== 1 || loaded.subgraphs[0].calls !== 1) return false;
  const classes = (model: tf.LayersModel) => model.layers.map((layer) => layer.getClassName()).join(',');
  return classes(loaded.rewritten) === classes(loaded.subgraphs[0].model);
}

const ratio = (a: Samples | null, b: Samples | null) => (a && b && b.median > 0 ? a.median / b.median : null);

/** Times the loaded models on `inputs` (their batch is the row's batch); disposes what it makes. */
export async function measure(loaded: Loaded, records: RewriteRecord[], inputs: tf.Tensor[], options: MeasureOptions): Promise<Measurement> {
  const batch = inputs[0].shape[0];
  const notes: string[] = [];
  const denseNames = [...new Set(records.flatMap((record) => record.replacement))];
  const operands = bareOperands(loaded.rewritten, denseNames, batch);
  const subgraphInputs = loaded.subgraphs.map(({ model }) => makeInputs(model, batch));
  try {
    const runners: Runner[] = [predictRunner('rewritten', loaded.rewritten, inputs)];
    // A model that is nothing but the conv (a patch embed) is its own subgraph: time it once.
    const same = sameLayers(loaded);
    if (loaded.subgraphs.length && !same) {
      runners.push(sequence('subgraph', loaded.subgraphs.flatMap(({ model, calls }, i) =>
        new Array<Runner>(calls).fill(predictRunner('part', model, subgraphInputs[i])))));
    }
    if (operands.length) runners.push(bareRunner('bare', operands));
    if (options.skipOriginal) {
      notes.push(options.skipOriginal);
    } else if (options.slowOriginal) {
      // Seconds per run: a warm-up would cost a whole rep, and first-run effects are milliseconds.
      runners.unshift({ ...predictRunner('original', loaded.original, inputs, options.timing.minReps), warmup: 0 });
      notes.push(`original: ${options.timing.minReps} reps, no warm-up (seconds per run)`);
    } else {
      runners.unshift(predictRunner('original', loaded.original, inputs));
    }
    const samples = await interleave(runners, options.timing);
    const original = samples.get('original') ?? null;
    const rewritten = samples.get('rewritten')!;
    const subgraph = samples.get('subgraph') ?? (same ? rewritten : null);
    const bare = samples.get('bare') ?? null;
    return {
      batch,
      original,
      rewritten,
      subgraph,
      bare,
      speedup: ratio(original, rewritten),
      overhead: ratio(rewritten, bare),
      subgraphOverhead: ratio(subgraph, bare),
      notes,
    };
  } finally {
    tf.dispose(operands.map((operand) => operand.rows));
    tf.dispose(subgraphInputs.flat());
  }
}
