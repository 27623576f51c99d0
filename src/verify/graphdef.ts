/**
 * The GraphDef pair of the one verification loop (src/verify/rows.ts): both graph models loaded
 * by stock tfjs (tf.loadGraphModel(tf.io.fromMemory(...))), with node names as taps.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { OriginalModelError, TargetName } from '../backend/select';
import type { BrowserSession } from '../browser/session';
import { InputError, oneLine } from '../errors';
import { loadGraph, runGraph } from '../formats/load';
import { GraphDefTaps, planGraphDefTaps } from './graphdef-taps';
import { InputSet, InputShapes, openInputs } from './inputs';
import { BatchAxisError, OpenPair, RowBatch, Values, verifyPair } from './rows';
import { LayerCheck, LayersVerifyOptions, Target, VerificationReport, VerifyOptions, onBackends, runSettings } from './verify';

/**
 * The input rows for a graph model, through the layers verifier's reader (.npy files, arrays,
 * tensors or seeded rows). That reader looks only at each input's name, shape and dtype, which
 * a graph model's signature gives too (with -1, not null, for unknown sizes).
 */
export function openGraphInputs(
  model: tf.GraphModel, inputs: VerifyOptions['inputs'], generated: { batch: number; seed: number; shapes?: InputShapes },
): InputSet {
  // Unknown rank stays null: user rows of any rank feed it, generated ones need --input-shape.
  const signature = model.inputs.map((input) => ({ name: input.name, dtype: input.dtype, shape: input.shape?.map((d) => (d < 0 ? null : d)) ?? null }));
  return openInputs({ inputs: signature } as unknown as tf.LayersModel, inputs, generated);
}

/** A graph model in this process, or also loaded in a browser page (`page` = its id there). */
interface Loaded {
  model: tf.GraphModel;
  page?: { session: BrowserSession; id: string };
}

export async function verifyGraphArtifacts(
  original: io.ModelArtifacts, rewritten: io.ModelArtifacts, options: LayersVerifyOptions = {},
): Promise<VerificationReport> {
  // Planned once, from the artifacts: the same taps on every backend.
  const { probes, notes } = planGraphDefTaps(original, rewritten, options.rewrittenLayers);
  return onBackends(options, (target) => verifyPair(target, options, () => openGraphPair(target, original, rewritten, options, probes, notes), [original, rewritten]));
}

async function openGraphPair(
  target: Target, original: io.ModelArtifacts, rewritten: io.ModelArtifacts, options: LayersVerifyOptions,
  probes: GraphDefTaps[], notes: string[],
): Promise<OpenPair> {
  const { session } = target;
  const { batch, seed } = runSettings(options);
  const loaded: Loaded[] = [];
  const close = async () => {
    for (const { model, page } of loaded) {
      model.dispose();
      if (page) await page.session.dispose(page.id);
    }
  };
  try {
    // In a browser the Node copies give the signature; the page computes.
    for (const [i, artifacts] of [original, rewritten].entries()) {
      const model = await loadGraph(artifacts, i ? 'rewritten' : 'original');
      loaded.push({ model, page: session ? { session, id: await session.load('graph', artifacts, i ? 'rewritten' : 'original') } : undefined });
    }
    const [before, after] = loaded.map((l) => l.model);
    const names = (m: tf.GraphModel) => `inputs [${m.inputNodes.join(', ')}], outputs [${m.outputNodes.join(', ')}]`;
    if (names(before) !== names(after)) throw new InputError(`the models differ: ${names(before)} vs ${names(after)}`);
    const rows = openGraphInputs(before, options.inputs, { batch, seed, shapes: options.inputShapes });
    const n = before.outputNodes.length;
    const outputs = before.outputNodes.map((_, o) => o);
    // Original taps: [input, output] per probe after the outputs; rewritten: the output per probe,
    // then the conv's input there where the rewritten graph keeps that node.
    const tapsA = probes.flatMap((p) => [p.input, p.output]);
    const tapsB = [...probes.map((p) => p.output), ...probes.flatMap((p) => (p.rewrittenInput ? [p.rewrittenInput] : []))];
    const ownInput = new Map(probes.filter((p) => p.rewrittenInput).map((p, k) => [p, n + probes.length + k]));
    return {
      rows,
      outputNames: before.outputNodes,
      outputs: [outputs, outputs],
      checks: probes.map((p, i) => new LayerCheck({
        ...p.probe, original: [{ input: n + 2 * i, output: n + 2 * i + 1 }], rewritten: [n + i], ...(ownInput.has(p) ? { rewrittenInputs: [ownInput.get(p)!] } : {}),
      })),
      notes,
      original: async (rowBatch, count) => {
        try {
          return await runBatch(loaded[0], rowBatch, count, rows.rows, tapsA);
        } catch (error) {
          // A browser page's errors are left as they are (the page itself may have failed).
          if (error instanceof InputError || loaded[0].page) throw error;
          // The original model as given cannot run here (an op tfjs loads but has no kernel for,
          // e.g. a _FusedConv2D with a fused Tanh): the model's problem, not ours.
          throw new OriginalModelError(target.info.name as TargetName, oneLine(error));
        }
      },
      rewritten: (rowBatch, count) => runBatch(loaded[1], rowBatch, count, rows.rows, tapsB),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Runs one batch: every output, then the extra `taps`. */
async function runBatch(loaded: Loaded, { xs }: RowBatch, count: number, total: number, taps: string[]): Promise<Values> {
  const { model, page } = loaded;
  let values: { shape: number[]; data: ArrayLike<number> }[];
  let outputs: tf.Tensor[] = [];
  // Each side feeds its own handles (in Node and in the page): a tap on a model input comes back
  // as the fed tensor itself, and disposing the outputs would dispose the other side's rows.
  const own = page ? [] : xs.map((x) => x.clone());
  let staged: string | undefined;
  try {
    if (page) {
      staged = await page.session.stage(xs);
      values = await page.session.run(page.id, staged, undefined, [...model.outputNodes, ...taps]);
    } else {
      const feed: tf.NamedTensorMap = {};
      model.inputs.forEach((input, i) => (feed[input.name] = own[i]));
      outputs = await runGraph(model, feed, [...model.outputNodes, ...taps]);
      values = await Promise.all(outputs.map(async (t) => ({ shape: t.shape, data: await t.data() })));
    }
  } finally {
    tf.dispose([...outputs, ...own]);
    if (staged) await page!.session.dispose(staged);
  }
  return values.map((t, o) => {
    // Batches are stitched along axis 0: an output without the batch there cannot be.
    if (o < model.outputNodes.length && count !== total && t.shape[0] !== count) {
      throw new BatchAxisError(`output ${model.outputNodes[o]} has shape ${JSON.stringify(t.shape)}, not ${count} rows first; use a batch size >= ${total}`);
    }
    return { shape: t.shape, data: t.data instanceof Float32Array ? t.data : Float32Array.from(t.data) };
  });
}
