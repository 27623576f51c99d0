/**
 * Quantized weights keep their encoding through optimize, in both formats: untouched weights
 * byte for byte with their manifest entries, rewritten kernels as their stored elements
 * reordered (per-tensor affine uint8/uint16 and float16 commute with any reordering).
 * The fixtures are quantized in code the way tensorflowjs_converter does it (fixtures/quantize.ts).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { fixture, fillDeterministic, mulberry32 } from '../fixtures/models';
import { graphFixture } from '../fixtures/graph-models';
import { QuantizationDtype, affineQuantize, float16Bits, quantizeArtifacts } from '../fixtures/quantize';
import { optimize } from '../src';
import { UNCHANGED } from '../src/pipeline';
import { optimizeGraphModel } from '../src/pipeline';
import { artifactsOfModel, writeModelFiles } from '../src/io/files';
import { irFromArtifacts } from '../src/io/ir';
import { checkedIR } from '../src/io/source';
import { InputError } from '../src/errors';
import { disposeModel, expectNoLeaks, tempDir } from './helpers/tf';

// 'always': these tests are about encodings, so every correct match is rewritten whatever it would cost.
const TIGHT = { atol: 1e-5, rtol: 1e-4, backend: 'cpu' as const, policy: 'always' as const };
/** The negatives fixtures hold convs conv-to-dense refuses; the sliding rule rewrites some of them. */
const WITHOUT_SLICES = ['conv3d-to-dense', 'conv2d-to-dense', 'conv1d-to-dense', 'fold-views-into-dense', 'collapse-reshapes', 'drop-identity-views'];
const DTYPES: QuantizationDtype[] = ['uint8', 'uint16', 'float16'];

beforeAll(() => tf.setBackend('cpu'));

const weightBytes = (artifacts: io.ModelArtifacts) => {
  const data = artifacts.weightData ?? new ArrayBuffer(0);
  return Buffer.from(tf.io.concatenateArrayBuffers(Array.isArray(data) ? data : [data]));
};

/** Bytes of every file in a model folder; the concatenated shards. */
function folder(modelJson: string): { total: number; shards: Buffer; json: { weightsManifest: { weights: io.WeightsManifestEntry[] }[] } } {
  const dir = path.dirname(modelJson);
  const json = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
  const shards = Buffer.concat(json.weightsManifest[0].paths.map((p: string) => fs.readFileSync(path.join(dir, p))));
  const total = fs.readdirSync(dir).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
  return { total, shards, json };
}

async function layersArtifacts(build: () => tf.LayersModel): Promise<io.ModelArtifacts> {
  const model = build();
  try {
    return await artifactsOfModel(model);
  } finally {
    disposeModel(model);
  }
}

/** A video tubelet embed big enough that topology JSON is small next to the weights (196,608 kernel elements). */
function tubelet(): tf.LayersModel {
  const input = tf.input({ shape: [4, 32, 32, 3], name: 'clip' });
  let x = tf.layers.conv3d({ name: 'tubelet', filters: 128, kernelSize: [2, 16, 16], strides: [2, 16, 16], padding: 'valid', dataFormat: 'channelsLast' })
    .apply(input) as tf.SymbolicTensor;
  x = tf.layers.reshape({ targetShape: [8, 128], name: 'tokens' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ units: 8, name: 'head' }).apply(x) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: x, name: 'tubelet_q' });
  fillDeterministic(model, 11);
  return model;
}

describe('the fixture quantizer matches tfjs decoding', () => {
  test('float16Bits: nearest half, ties to even, Inf/NaN/subnormals, as tf.io.decodeWeights reads them', () => {
    const rand = mulberry32(5);
    const values = Float32Array.from({ length: 2000 }, (_, i) => (rand() * 2 - 1) * 10 ** ((i % 14) - 8));
    const edges = [0, -0, 1, -2.5, 65504, 65519, 65520, 1e6, -1e6, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 2 ** -14, 1 + 2 ** -11, 1 + 3 * 2 ** -11, NaN, Infinity];
    const all = Float32Array.from([...values, ...edges]);
    const bits = Uint16Array.from(all, float16Bits);
    const decoded = tf.io.decodeWeights(bits.buffer, [{ name: 'w', shape: [all.length], dtype: 'float32', quantization: { dtype: 'float16' } }]);
    const got = decoded.w.dataSync();
    tf.dispose(decoded);
    console.log(`float16Bits: ${all.length} values, magnitudes 1e-8..1e5 plus ${edges.length} edge cases`);
    all.forEach((v, i) => {
      if (Number.isNaN(v)) return expect(Number.isNaN(got[i])).toBe(true);
      if (Math.abs(v) >= 65520) return expect(got[i]).toBe(Math.sign(v) * Infinity);
      // Within half a unit in the last place of a half (relative 2^-11), or of the subnormal step 2^-24.
      expect(Math.abs(got[i] - v)).toBeLessThanOrEqual(Math.max(Math.abs(v) * 2 ** -11, 2 ** -25));
    });
    // Ties go to the even half: 1 + 2^-11 -> 1; 1 + 3*2^-11 -> 1 + 2^-9; 2^-25 -> 0; 3*2^-26 -> 2^-24.
    expect(Array.from(got.slice(values.length + 9, values.length + 15))).toEqual([2 ** -24, 0, 2 ** -24, 2 ** -14, 1, 1 + 2 ** -9]);
  });

  test.each(['uint8', 'uint16'] as const)('affineQuantize %s: 0 exact, every value within scale/2, as tfjs dequantizes', (dtype) => {
    const rand = mulberry32(dtype === 'uint8' ? 1 : 2);
    const values = Float32Array.from({ length: 999 }, () => rand() * 3 - 1);
    values[17] = 0;
    const { stored, scale, min } = affineQuantize(values, dtype);
    const decoded = tf.io.decodeWeights(stored.buffer, [{ name: 'w', shape: [values.length], dtype: 'float32', quantization: { dtype, scale, min } }]);
    const got = decoded.w.dataSync();
    tf.dispose(decoded);
    expect(got[17]).toBeCloseTo(0, 6);
    values.forEach((v, i) => expect(Math.abs(got[i] - v)).toBeLessThanOrEqual(scale / 2 + 1e-6));
  });
});

describe.each(DTYPES)('layers model, %s', (dtype) => {
  test('the IR holds the stored elements and their manifest entry; NaN halves are refused', async () => {
    const artifacts = quantizeArtifacts(await layersArtifacts(fixture('video-tubelet').build), dtype);
    const ir = irFromArtifacts(artifacts);
    const kernel = ir.weights.find((w) => w.name.endsWith('tubelet_embed/kernel'))!;
    expect(kernel.values).toBeInstanceOf(dtype === 'uint8' ? Uint8Array : Uint16Array);
    expect(kernel.quantization).toEqual(artifacts.weightSpecs!.find((s) => s.name === kernel.name)!.quantization);
    expect(ir.notes.join('\n')).toContain(`stored quantized (${dtype} x${artifacts.weightSpecs!.length})`);
    if (dtype === 'float16') {
      // Every weight is float16 here: 2 bytes an element. Element 7 of the kernel becomes +Inf.
      const specs = artifacts.weightSpecs!;
      const at = specs.slice(0, specs.findIndex((s) => s.name === kernel.name)).reduce((n, s) => n + 2 * s.shape.reduce((a, b) => a * b, 1), 0);
      const broken = new Uint8Array(weightBytes(artifacts));
      new DataView(broken.buffer).setUint16(at + 2 * 7, 0x7c00, true);
      expect(() => checkedIR({ ...artifacts, weightData: broken.buffer }))
        .toThrow(new InputError(`weight "${kernel.name}" has 1 NaN/Inf value(s) (first at flat index 7)`));
    }
  });

  test('nothing to rewrite: written through unchanged, byte-identical weights, within 1% of the size', async () => {
    const dir = tempDir();
    const input = writeModelFiles(quantizeArtifacts(await layersArtifacts(fixture('negatives').build), dtype), path.join(dir, 'in'));
    // conv3d-to-conv2d-slices rewrites two of these sliding convs (its quantized case is in conv3d-slices.test.ts).
    const result = await expectNoLeaks(() => optimize(input, { ...TIGHT, passes: WITHOUT_SLICES }));
    expect(result.report.rewritten).toEqual([]);
    expect(result.report.verification).toBeNull();
    expect(result.report.notes).toContain(UNCHANGED);
    const out = result.save(path.join(dir, 'out'));
    const [a, b] = [folder(input), folder(out)];
    expect(b.shards.equals(a.shards)).toBe(true);
    expect(b.json.weightsManifest[0].weights).toEqual(a.json.weightsManifest[0].weights);
    expect(Math.abs(b.total / a.total - 1)).toBeLessThanOrEqual(0.01);
  });

  test('a rewritten conv: kernel reordered in its encoding (== quantizing the float rewrite), verified, within 5% of the size', async () => {
    const dir = tempDir();
    const float = await layersArtifacts(tubelet);
    const input = writeModelFiles(quantizeArtifacts(float, dtype), path.join(dir, 'in'));
    const result = await expectNoLeaks(() => optimize(input, TIGHT));
    expect(result.report.rewritten.map((r) => r.layer)).toContain('tubelet');
    expect(result.report.verification!.passed).toBe(true);
    expect(result.report.notes.join('\n')).toContain(`tubelet: the ${dtype}-quantized kernel keeps its encoding`);
    // Quantization commutes with the rewrite: rewrite(quantize(M)) == quantize(rewrite(M)), bit for bit.
    const floatResult = await optimize(float, { ...TIGHT, verify: false });
    const expected = quantizeArtifacts(floatResult.artifacts, dtype);
    expect(result.artifacts.weightSpecs).toEqual(expected.weightSpecs);
    expect(weightBytes(result.artifacts).equals(weightBytes(expected))).toBe(true);

    const out = result.save(path.join(dir, 'out'));
    const [a, b] = [folder(input), folder(out)];
    expect(b.shards.byteLength).toBe(a.shards.byteLength);
    console.log(`layers ${dtype}: ${a.total} -> ${b.total} bytes (${((b.total / a.total - 1) * 100).toFixed(2)}%)`);
    expect(Math.abs(b.total / a.total - 1)).toBeLessThanOrEqual(0.05);
  });

  test.each(['channels-first-gelu', 'shared-two-input', 'nested-sequential', 'video-swin-remainder'])(
    '%s: rewrite and quantization commute; verification passes', async (name) => {
      const spec = fixture(name);
      const float = await layersArtifacts(spec.build);
      const result = await expectNoLeaks(() => optimize(quantizeArtifacts(float, dtype), { ...TIGHT, passes: spec.passes }));
      expect(result.report.rewritten.length).toBeGreaterThan(0);
      expect(result.report.verification!.passed).toBe(true);
      const expected = quantizeArtifacts((await optimize(float, { ...TIGHT, passes: spec.passes, verify: false })).artifacts, dtype);
      expect(result.artifacts.weightSpecs).toEqual(expected.weightSpecs);
      expect(weightBytes(result.artifacts).equals(weightBytes(expected))).toBe(true);
    });

  test('channels-first rows really move: the stored kernel differs from the original order', async () => {
    const float = await layersArtifacts(fixture('channels-first-gelu').build);
    const quantized = quantizeArtifacts(float, dtype);
    const result = await optimize(quantized, { ...TIGHT, verify: false });
    // The Dense standing in for embed_cf may carry a derived name (embed_cf_dense).
    const kernelOf = (artifacts: io.ModelArtifacts) => irFromArtifacts(artifacts).weights.filter((w) => /(^|\/)embed_cf(_dense\d*)?\/kernel$/.test(w.name));
    const [before] = kernelOf(quantized);
    const rewritten = kernelOf(result.artifacts);
    expect(rewritten.map((w) => w.shape)).toEqual([[before.values.length / 16, 16]]);
    const [after] = rewritten;
    expect(after.quantization).toEqual(before.quantization);
    expect(Array.from(after.values)).not.toEqual(Array.from(before.values));
    expect(Array.from(after.values).sort((x, y) => x - y)).toEqual(Array.from(before.values).sort((x, y) => x - y));
  });
});

describe.each(DTYPES)('graph model, %s', (dtype) => {
  test('a rewritten Conv3D: MatMul kernel keeps the encoding (== quantizing the float rewrite); verified; same weight bytes', async () => {
    for (const name of ['graph-patch-embed-mini', 'graph-tubelet-remainder']) {
      const float = graphFixture(name).build();
      const quantized = quantizeArtifacts(float, dtype);
      const result = await expectNoLeaks(() => optimizeGraphModel(quantized, TIGHT));
      expect(result.report.rewritten.length).toBeGreaterThan(0);
      expect(result.report.verification!.passed).toBe(true);
      expect(result.report.notes.join('\n')).toContain(`${dtype}-quantized filter keeps its encoding`);
      const expected = quantizeArtifacts((await optimizeGraphModel(float, { ...TIGHT, verify: false })).artifacts, dtype);
      expect(result.artifacts.weightSpecs).toEqual(expected.weightSpecs);
      expect(weightBytes(result.artifacts).equals(weightBytes(expected))).toBe(true);
      // Dropped filters and added int32 shape constants aside, the weight bytes stay the same size.
      const int32Bytes = (a: io.ModelArtifacts) => a.weightSpecs!.filter((s) => s.dtype === 'int32').reduce((n, s) => n + 4 * s.shape.reduce((x, y) => x * y, 1), 0);
      expect(weightBytes(result.artifacts).byteLength - int32Bytes(result.artifacts)).toBe(weightBytes(quantized).byteLength - int32Bytes(quantized));
    }
  });

  test('nothing to rewrite: the artifacts go out as they came in', async () => {
    const quantized = quantizeArtifacts(graphFixture('graph-negatives').build(), dtype);
    const result = await expectNoLeaks(() => optimizeGraphModel(quantized, { ...TIGHT, passes: WITHOUT_SLICES }));
    expect(result.report.rewritten).toEqual([]);
    expect(result.report.verification).toBeNull();
    expect(result.report.notes).toContain(UNCHANGED);
    const out = result.save(path.join(tempDir(), 'out'));
    const json = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(json.weightsManifest[0].weights).toEqual(quantized.weightSpecs);
    expect(folder(out).shards.equals(weightBytes(quantized))).toBe(true);
  });
});
