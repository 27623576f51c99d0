import * as path from 'path';
import type { io } from '@tensorflow/tfjs';
import '../src/jest';
import { optimize } from '../src';
import { REPO, committedModel } from './helpers/tf';

const MINI = committedModel('qwen3vl-patch-embed-mini');
const PATCHES = path.join(REPO, 'fixtures', 'inputs', 'jetty-patches-p4.npy');

/** The rewritten artifacts with Dense kernel row 0 scaled: wrong for one input pixel. */
function broken(artifacts: io.ModelArtifacts): io.ModelArtifacts {
  const bytes = (artifacts.weightData as ArrayBuffer).slice(0);
  let offset = 0;
  for (const spec of artifacts.weightSpecs!) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    if (spec.name.endsWith('patch_embed_dense/kernel')) {
      const row = new Float32Array(bytes, offset, spec.shape[1]);
      row.forEach((v, i) => (row[i] = v * 1.5));
    }
    offset += size * 4;
  }
  return { ...artifacts, weightData: bytes };
}

describe('toComputeLike', () => {
  let rewritten: io.ModelArtifacts;
  beforeAll(async () => {
    rewritten = (await optimize(MINI, { verify: false, policy: 'always' })).artifacts;
  });

  test('passes for the rewrite, on paths or artifacts', async () => {
    await expect(rewritten).toComputeLike(MINI, { inputs: [PATCHES], atol: 1e-5, rtol: 1e-4, backend: 'wasm' });
    await expect(broken(rewritten)).not.toComputeLike(MINI, { inputs: [PATCHES], backend: 'wasm' });
  });

  test('fails with the output, the worst element and the tolerance', async () => {
    let message = '';
    try {
      await expect(broken(rewritten)).toComputeLike(MINI, { inputs: [PATCHES], atol: 1e-5, rtol: 1e-4, backend: 'wasm' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/expect\(rewritten\)\.toComputeLike\(original\): the models differ on backend wasm/);
    expect(message).toMatch(/256 rows of .*jetty-patches-p4\.npy, tolerance \|a-b\| <= 0\.00001 \+ 0\.0001\*\|a\|/);
    expect(message).toMatch(/output flatten_embed: \d+ of 8192 elements outside tolerance .*worst at \[\d+, \d+\]: expected -?[\d.e-]+, got -?[\d.e-]+ \(\|diff\| [\d.e-]+ vs tolerance [\d.e-]+\)/);
    expect(message).toMatch(/layer patch_embed vs float64: .* > limit/);
  });

  test('.not explains why the models agree', async () => {
    let message = '';
    try {
      await expect(rewritten).not.toComputeLike(MINI, { inputs: [PATCHES], backend: 'cpu' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/\.not\.toComputeLike\(original\): the models agree on backend cpu/);
    expect(message).toMatch(/output flatten_embed: all 8192 elements within tolerance/);
  });
});
