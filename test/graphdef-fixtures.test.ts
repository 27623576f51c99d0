/** Graph-model fixtures: committed files are current, load and run in stock tfjs, round-trip. */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { GRAPH_FIXTURES } from '../fixtures/graph-models';
import { writeModelFiles } from '../src/io/files';
import { isGraphModelFile, readGraphModelFiles } from '../src/graphdef/files';
import { artifactsFromGraphIR, graphIRFromArtifacts } from '../src/graphdef/ir';
import { runGraph } from '../src/formats/load';
import { REPO, committedModel, expectNoLeaks, snapshotDir, tempDir } from './helpers/tf';

const SMALL = GRAPH_FIXTURES.filter((spec) => spec.small);
const committed = (name: string) => path.join(REPO, 'fixtures', 'graph-models', name, 'model.json');
const bytes = (data: tf.io.WeightData | undefined) =>
  Buffer.from(tf.io.concatenateArrayBuffers(Array.isArray(data) ? data : data ? [data] : []));

beforeAll(() => tf.setBackend('cpu'));

test('committed graph fixtures are byte-identical to a fresh build, and small', () => {
  const dir = tempDir();
  let total = 0;
  for (const spec of SMALL) {
    writeModelFiles(spec.build(), path.join(dir, spec.name));
    const fresh = snapshotDir(path.join(dir, spec.name));
    expect(snapshotDir(path.dirname(committed(spec.name)))).toEqual(fresh);
    for (const file of fresh.keys()) total += fs.statSync(path.join(dir, spec.name, file)).size;
  }
  expect(total).toBeLessThan(300 * 1024);
});

describe.each(SMALL.map((spec) => [spec.name, spec] as const))('%s', (name, spec) => {
  test('loads from disk and runs in stock tfjs with a dynamic batch', async () => {
    const artifacts = await readGraphModelFiles(committed(name));
    await expectNoLeaks(async () => {
      const model = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
      try {
        for (const batch of [1, 3]) {
          const feed: tf.NamedTensorMap = {};
          model.inputs.forEach((input, i) => {
            feed[input.name] = tf.randomUniform(input.shape!.map((d) => (d < 0 ? batch : d)), -1, 1, 'float32', i);
          });
          const outputs = await runGraph(model, feed, model.outputNodes);
          expect(outputs.map((t) => t.shape)).toEqual(spec.outputShapes(batch));
          for (const t of outputs) expect(tf.tidy(() => tf.all(tf.isFinite(t)).dataSync()[0])).toBe(1);
          tf.dispose([...outputs, ...Object.values(feed)]);
        }
      } finally {
        model.dispose();
      }
    });
  });

  test('round-trips through the graph IR unchanged', async () => {
    const artifacts = await readGraphModelFiles(committed(name));
    const back = artifactsFromGraphIR(graphIRFromArtifacts(artifacts));
    expect(back.modelTopology).toEqual(artifacts.modelTopology);
    expect(back.weightSpecs).toEqual(artifacts.weightSpecs);
    expect(back.signature).toEqual(artifacts.signature);
    expect(back.format).toBe('graph-model');
    expect(bytes(back.weightData).equals(bytes(artifacts.weightData))).toBe(true);
  });
});

test('format detection tells graph models from layers models', () => {
  expect(isGraphModelFile(committed('graph-patch-embed-mini'))).toBe(true);
  expect(isGraphModelFile(path.dirname(committed('graph-patch-embed-mini')))).toBe(true);
  expect(isGraphModelFile(committedModel('qwen3vl-patch-embed-mini'))).toBe(false);
});
