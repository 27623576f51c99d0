/**
 * The whole pipeline on seeded random conv models (issue 10): each model is built with stock
 * tfjs, optimized through the library with the conv passes forced, and compared with the
 * original on stock tfjs (cpu). Every case must: raise no error, give the same refusals from
 * inspect as from optimize, pass the library's own verification, load with stock tfjs and agree
 * with the original within atol 1e-5 + rtol 1e-4, rewrite the conv (or refuse it with the reason
 * its geometry calls for), and leak no tensor. The drawn distribution is printed once.
 *
 * Replay one case: PROPTEST_ONLY=<id> npx jest test/pipeline-property.test.ts
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { inspect, optimize } from '../src';
import { UNCHANGED } from '../src/pipeline';
import { mulberry32 } from '../fixtures/models';
import { layerCalls, useBackendForFile } from './helpers/tf';
import { CONV_PASSES, ConvCase, MUST_STAY, buildCase, convName, distribution, drawCases, inputShape } from './helpers/conv-cases';

const CASES = 320;
const ATOL = 1e-5;
const RTOL = 1e-4;

const cases = drawCases(CASES).filter((c) => !process.env.PROPTEST_ONLY || c.id === Number(process.env.PROPTEST_ONLY));
useBackendForFile('cpu');

beforeAll(() => {
  console.info(`pipeline property test: ${cases.length} seeded cases (mulberry32), drawn:\n${distribution(cases)}`);
});

async function artifactsOf(model: tf.LayersModel): Promise<io.ModelArtifacts> {
  let saved: io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    saved = artifacts;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  return saved!;
}

/**
 * tfjs's Conv1D does not save data_format; a Keras-written channels_first Conv1D has it, so the
 * case writes it back into the JSON (the model tfjs then loads is the one the optimizer sees).
 */
function withConv1dChannelsFirst(artifacts: io.ModelArtifacts, name: string): io.ModelArtifacts {
  const topology = JSON.parse(JSON.stringify(artifacts.modelTopology)) as { config: { layers: { config: Record<string, unknown> }[] } };
  const conv = topology.config.layers.find((layer) => layer.config.name === name)!;
  conv.config.data_format = 'channels_first';
  return { ...artifacts, modelTopology: topology };
}

function seededInput(c: ConvCase): tf.Tensor {
  const shape = [c.batch, ...inputShape(c)];
  const rand = mulberry32(c.seed ^ 0x5eed);
  return tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rand() * 2 - 1), shape);
}

/** Largest |a - b| - (atol + rtol |a|) over all elements: <= 0 means they agree. */
function excess(expected: tf.Tensor, actual: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.sub(tf.abs(tf.sub(actual, expected)), tf.add(ATOL, tf.mul(RTOL, tf.abs(expected))))).dataSync()[0]);
}

const describeCase = (c: ConvCase) =>
  `#${c.id} Conv${c.rank}D ${c.channelsFirst ? 'cf' : 'cl'} in ${JSON.stringify(inputShape(c))} k${JSON.stringify(c.kernel)} s${JSON.stringify(c.strides)} ` +
  `F${c.filters} ${c.padding} ${c.useBias ? 'bias' : 'nobias'} ${c.activation} -> ${c.consumer} ${c.functional ? 'functional' : 'sequential'} batch ${c.batch}${c.stay ? ` (stays: ${c.stay})` : ''}`;

test.each(cases.map((c) => [describeCase(c), c] as const))('%s', async (_, c) => {
  const tensorsAtStart = tf.memory().numTensors;
  const built = buildCase(c);
  let source: io.ModelArtifacts | tf.LayersModel = built;
  let original = built;
  if (c.stay === 'conv1d-first') {
    source = withConv1dChannelsFirst(await artifactsOf(built), convName(c));
    original = await tf.loadLayersModel(tf.io.fromMemory(source));
    built.dispose();
  }
  const tensorsWithModel = tf.memory().numTensors;

  const options = { passes: CONV_PASSES, backend: 'cpu' as const, atol: ATOL, rtol: RTOL, batch: c.batch };
  const result = await optimize(source, options);
  const inspected = await inspect(source, { passes: CONV_PASSES, backend: 'cpu' });
  expect(tf.memory().numTensors).toBe(tensorsWithModel);

  const { report } = result;
  const verdicts = (r: typeof inspected) => [r.rewritten.map((x) => `${x.layer} ${x.pass}`), r.skipped.map((x) => `${x.layer}: ${x.reason}`)];
  expect(verdicts(inspected)).toEqual(verdicts(report));
  const pass = `conv${c.rank}d-to-dense`;
  if (c.stay) {
    expect(report.rewritten.filter((r) => r.layer === convName(c))).toEqual([]);
    expect(report.skipped.filter((s) => s.layer === convName(c)).map((s) => s.reason)).toEqual([expect.stringContaining(MUST_STAY[c.stay])]);
  } else {
    expect(report.rewritten.filter((r) => r.layer === convName(c)).map((r) => r.pass)).toEqual([pass]);
    expect(report.skipped.filter((s) => s.layer === convName(c))).toEqual([]);
  }
  // The pointwise consumer never slides: it must go too.
  if (c.consumer === 'conv' && c.stay !== 'conv1d-first') expect(report.rewritten.map((r) => r.layer)).toContain(`case${c.id}_pointwise`);
  // Nothing rewritten: written through unchanged, with nothing to verify (the check below still runs).
  if (report.rewritten.length === 0) expect(report.notes).toContain(UNCHANGED);
  else expect(report.verification?.passed).toBe(true);

  // Our own check, independent of the library's verifier: stock tfjs loads the written model.
  const rewritten = await tf.loadLayersModel(tf.io.fromMemory(result.artifacts));
  if (!c.stay) expect(rewritten.layers.map((l) => l.getClassName())).not.toContain(`Conv${c.rank}D`);
  // WebGL/WebGPU transposes stop at rank 6; tfjs-layers' Dense biasAdd at rank 5.
  expect(layerCalls(rewritten).filter((call) => Math.max(...call.ranks) > 6 || (call.className === 'Dense' && call.ranks[0] > 5))).toEqual([]);
  const x = seededInput(c);
  const [expected, actual] = [original.predict(x) as tf.Tensor, rewritten.predict(x) as tf.Tensor];
  expect(actual.shape).toEqual(expected.shape);
  expect(excess(expected, actual)).toBeLessThanOrEqual(0);
  tf.dispose([x, expected, actual]);
  rewritten.dispose();
  original.dispose();
  expect(tf.memory().numTensors).toBe(tensorsAtStart);
});
