/**
 * One measurement row: the original model, the rewritten model, the rewritten subgraphs alone
 * (each rewritten conv's cut-out, src/formats/cutout.ts) and, for layers models, the bare
 * matMul+bias those subgraphs reduce to, interleaved on the current backend. Either format:
 * the pipeline (src/pipeline/bench.ts) prepares what is timed.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import type { RewriteRecord } from '../core/rule';
import type { CutOut } from '../formats/cutout';
import { FormatName, Runnable, loadRunnable } from '../formats/load';
import { InterleaveOptions, Runner, Samples, interleave } from './stats';
import { bareOperands, bareRunner, runnableRunner } from './timing';

/** Both models as artifacts, what was rewritten, and a cut-out per rewritten conv and input shape. */
export interface Prepared {
  format: FormatName;
  original: io.ModelArtifacts;
  rewritten: io.ModelArtifacts;
  records: RewriteRecord[];
  probes: CutOut[];
  /** Why some rewritten conv has no cut-out (the subgraph column then leaves it out). */
  unprobed: string[];
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
  original: Runnable;
  rewritten: Runnable;
  subgraphs: { model: Runnable; calls: number; shape: number[] }[];
  dispose(): void;
}

export async function load(prepared: Prepared): Promise<Loaded> {
  const models: Runnable[] = [];
  const fromMemory = async (artifacts: io.ModelArtifacts) => {
    const model = await loadRunnable(prepared.format, artifacts, 'benchmark');
    models.push(model);
    return model;
  };
  try {
    const original = await fromMemory(prepared.original);
    const rewritten = await fromMemory(prepared.rewritten);
    const subgraphs = [];
    for (const probe of prepared.probes) subgraphs.push({ model: await fromMemory(probe.rewritten), calls: probe.calls, shape: probe.shape });
    return { original, rewritten, subgraphs, dispose: () => models.forEach((model) => model.dispose()) };
  } catch (error) {
    models.forEach((model) => model.dispose());
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

/** True when the rewritten layers model has exactly the layers of its single cut-out. */
function sameLayers(loaded: Loaded): boolean {
  if (loaded.subgraphs.length !== 1 || loaded.subgraphs[0].calls !== 1) return false;
  const classes = (model: Runnable) => model.layersModel?.layers.map((layer) => layer.getClassName()).join(',');
  return classes(loaded.rewritten) !== undefined && classes(loaded.rewritten) === classes(loaded.subgraphs[0].model);
}

const ratio = (a: Samples | null, b: Samples | null) => (a && b && b.median > 0 ? a.median / b.median : null);

/** Times the loaded models on `inputs` (their batch is the row's batch); disposes what it makes. */
export async function measure(loaded: Loaded, records: RewriteRecord[], inputs: tf.Tensor[], options: MeasureOptions): Promise<Measurement> {
  const batch = inputs[0].shape[0];
  const notes: string[] = [];
  const denseNames = [...new Set(records.flatMap((record) => record.replacement))];
  // The bare column reads Dense layers: layers models only.
  const operands = loaded.rewritten.layersModel ? bareOperands(loaded.rewritten.layersModel, denseNames, batch) : [];
  const subgraphInputs = loaded.subgraphs.map(({ shape }) => [tf.randomUniform([batch, ...shape], -1, 1, 'float32', 7)]);
  try {
    const runners: Runner[] = [runnableRunner('rewritten', loaded.rewritten, inputs)];
    // A model that is nothing but the conv (a patch embed) is its own subgraph: time it once.
    const same = sameLayers(loaded);
    if (loaded.subgraphs.length && !same) {
      runners.push(sequence('subgraph', loaded.subgraphs.flatMap(({ model, calls }, i) =>
        new Array<Runner>(calls).fill(runnableRunner('part', model, subgraphInputs[i])))));
    }
    if (operands.length) runners.push(bareRunner('bare', operands));
    if (options.skipOriginal) {
      notes.push(options.skipOriginal);
    } else if (options.slowOriginal) {
      // Seconds per run: a warm-up would cost a whole rep, and first-run effects are milliseconds.
      runners.unshift({ ...runnableRunner('original', loaded.original, inputs, options.timing.minReps), warmup: 0 });
      notes.push(`original: ${options.timing.minReps} reps, no warm-up (seconds per run)`);
    } else {
      runners.unshift(runnableRunner('original', loaded.original, inputs));
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
