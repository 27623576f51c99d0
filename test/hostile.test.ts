/**
 * Targeted hostile and broken models: each check of src/validate, src/layers and src/io gets a
 * case whose exact message (key path, expected vs actual) is asserted, plus the write and leak
 * guarantees of issue 5.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { InputError, inspect, optimize, writeModelFiles } from '../src';
import { describeValue } from '../src/validate/describe';
import { checkManifest } from '../src/validate/manifest';
import { writeNpy } from '../src/io/npy';
import { COMMITTED, snapshotDir, tempDir } from './helpers/tf';

/** Copies a committed fixture, applies `edit` to its model.json object; returns the model.json path. */
function fixture(name: string, edit: (json: any, dir: string) => void = () => undefined): string {
  const dir = path.join(tempDir('tfjs-rewrite-hostile-'), name);
  fs.cpSync(path.join(COMMITTED, name), dir, { recursive: true });
  const file = path.join(dir, 'model.json');
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(json, dir);
  fs.writeFileSync(file, JSON.stringify(json));
  return file;
}

const layer = (json: any, name: string) => json.modelTopology.config.layers.find((l: any) => l.name === name);
const specs = (json: any) => json.weightsManifest[0].weights;

/** inspect must fail with an InputError whose one-line message matches. */
async function rejects(file: string, pattern: RegExp): Promise<string> {
  const error = await inspect(file).then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(InputError);
  const message = (error as Error).message;
  expect(message).not.toMatch(/\n/);
  expect(message).toMatch(pattern);
  return message;
}

describe('weights manifest', () => {
  test.each([
    ['unknown dtype', (j: any) => { specs(j)[0].dtype = 'float64'; }, /weightsManifest\[0\]\.weights\[0\]\.dtype: expected one of float32, int32, bool, got "float64"/],
    ['negative dim', (j: any) => { specs(j)[1].shape = [-7]; }, /weightsManifest\[0\]\.weights\[1\]\.shape\[0\]: expected a non-negative integer, got -7/],
    ['string dims', (j: any) => { specs(j)[1].shape = '7'; }, /weights\[1\]\.shape: expected an array of non-negative integers, got "7"/],
    ['huge shape', (j: any) => { specs(j)[0].shape = [65536, 65536, 2]; }, /weights\[0\]\.shape: \[65536,65536,2\] has more than 2\^31 elements/],
    ['quantization without scale', (j: any) => { specs(j)[0].quantization = { dtype: 'uint8', min: 0 }; }, /weights\[0\]\.quantization\.scale: expected a finite number, got nothing/],
    ['duplicate weight', (j: any) => { specs(j).push({ ...specs(j)[0] }); }, /weights\[2\]\.name: weight "pointwise\/kernel" is listed twice \(first at weightsManifest\[0\]\.weights\[0\]\)/],
    ['group not an object', (j: any) => { j.weightsManifest = [7]; }, /weightsManifest\[0\]: expected \{"paths": \[\.\.\.\], "weights": \[\.\.\.\]\}, got 7/],
  ])('%s', async (_label, edit, pattern) => {
    const message = await rejects(fixture('pointwise-1x1x1', edit), pattern);
    expect(message).toMatch(/^\S*model\.json: /); // names the file first
  });

  test('graph-model dtypes are allowed where the caller asks for them', () => {
    const manifest = [{ paths: ['a.bin'], weights: [{ name: 'table', shape: [2], dtype: 'string' }] }];
    expect(() => checkManifest(manifest)).toThrow(/dtype: expected one of float32, int32, bool, got "string"/);
    expect(checkManifest(manifest, new Set(['string']))).toHaveLength(1);
  });
});

describe('weights against the layers that use them', () => {
  test('a weight no layer owns is named', () => rejects(
    fixture('pointwise-1x1x1', (j) => { specs(j)[1].name = 'ghost/bias'; }),
    /weight "ghost\/bias" belongs to no layer: the model has no layer named "ghost"/,
  ));
  test('a layer missing its weight is named', () => rejects(
    // the bias spec and its 28 bytes go: the manifest stays self-consistent, the layer does not
    fixture('pointwise-1x1x1', (j, dir) => {
      specs(j).pop();
      const shard = path.join(dir, 'group1-shard1of1.bin');
      fs.writeFileSync(shard, fs.readFileSync(shard).subarray(0, 112));
    }),
    /pointwise_1x1x1\/pointwise \(Conv3D\) needs weight "pointwise\/bias", which the manifest does not list/,
  ));
  test('a weight whose shape disagrees with its layer (same byte count)', () => rejects(
    fixture('pointwise-1x1x1', (j) => { specs(j)[0].shape = [1, 1, 1, 7, 4]; }),
    /weight "pointwise\/kernel" has shape \[1, 1, 1, 7, 4\], but pointwise_1x1x1\/pointwise \(Conv3D\) needs \[1, 1, 1, 4, 7\]/,
  ));
  test('nested models are checked with their own input shapes', () => rejects(
    fixture('nested-sequential', (j) => { specs(j)[2].shape = [96, 20]; }),
    /weight "inner_dense\/kernel" has shape \[96, 20\], but nested_sequential\/inner_encoder\/inner_dense \(Dense\) needs \[192, 10\]/,
  ));
});

describe('topology', () => {
  test('dangling reference, cycle, duplicate name, bad node index', async () => {
    await rejects(fixture('shared-two-input', (j) => { layer(j, 'sum').inbound_nodes[0][1][0] = 'gone'; }), /sum inbound node 0 references \["gone", 1, 0\], but there is no layer "gone"/);
    await rejects(fixture('shared-two-input', (j) => { layer(j, 'shared_embed').inbound_nodes[1][0] = ['sum', 0, 0, {}]; }), /cycle through layers/);
    await rejects(fixture('shared-two-input', (j) => { const b = layer(j, 'clip_b'); b.name = 'clip_a'; b.config.name = 'clip_a'; }), /layer name "clip_a" is used twice/);
    await rejects(fixture('shared-two-input', (j) => { layer(j, 'sum').inbound_nodes[0][1][1] = 2; }), /references \["shared_embed", 2, 0\], but layer "shared_embed" has node indices 0\.\.1/);
    await rejects(fixture('shared-two-input', (j) => { layer(j, 'sum').inbound_nodes[0][1][2] = 1; }), /references \["shared_embed", 1, 1\], but layer "shared_embed" \(Conv3D\) has one output tensor/);
    await rejects(fixture('shared-two-input', (j) => { delete layer(j, 'clip_a').inbound_nodes; }), /layers\[0\]\.inbound_nodes: expected an array, got nothing/);
    await rejects(fixture('shared-two-input', (j) => { layer(j, 'shared_embed').config.bias_initializer = { class_name: 'Nope', config: {} }; }), /shared_embed \(Conv3D\) config\.bias_initializer\.class_name: unknown class "Nope"/);
  });
  test('layer name and config.name must agree (tfjs names weights after the config)', () => rejects(
    fixture('pointwise-1x1x1', (j) => { layer(j, 'pointwise').config.name = 'other'; }),
    /modelTopology\.config\.layers\[1\]\.config\.name: expected "pointwise" \(the layer's "name"\), got "other"/,
  ));
  test('Keras 3 spellings are detected field by field: one in a Keras 2 file (half-converted) makes it converted', async () => {
    const bare = await inspect(fixture('pointwise-1x1x1', (j) => { j.modelTopology.config.input_layers = ['vol', 0, 0]; }));
    expect(bare.converted?.changes).toContain('a single [layer, node, tensor] input/output reference -> a list of one (1)');
    const policy = (name: string) => fixture('pointwise-1x1x1', (j) => { layer(j, 'pointwise').config.dtype = { module: 'keras', class_name: 'DTypePolicy', config: { name } }; });
    const report = await inspect(policy('float32'));
    expect(report.converted?.changes).toContain('dtype policy objects -> dtype strings (1)');
    // The conversion refuses a mixed-precision policy, but stock tfjs loads this file as it is (it
    // ignores the policy object and computes in float32): never refused, read unconverted.
    const mixed = await inspect(policy('mixed_float16'));
    expect(mixed.converted).toBeUndefined();
    expect(mixed.notes).toContain('not converted from Keras 3 (pointwise_1x1x1/pointwise (Conv3D): option dtype=DTypePolicy("mixed_float16") has no tfjs-layers equivalent (tfjs-layers computes in float32)), but stock tfjs loads the file as it is: read unconverted');
  });
  test('models nested 200 deep are refused without exhausting the stack', async () => {
    let inner: any = { class_name: 'Dense', config: { name: 'd', units: 1, batch_input_shape: [null, 1] } };
    for (let i = 0; i < 200; i++) inner = { class_name: 'Sequential', config: { name: `n${i}`, layers: [inner] } };
    await rejects(fixture('pointwise-1x1x1', (j) => { j.modelTopology = inner; }), /modelTopology: models nested more than 32 deep/);
  });
  test('config values tfjs would only fail on at run time', async () => {
    await rejects(fixture('pointwise-1x1x1', (j) => { layer(j, 'pointwise').config.strides = [1, 0, 1]; }), /pointwise \(Conv3D\) config\.strides\[1\]: expected a positive integer, got 0/);
    await rejects(fixture('pointwise-1x1x1', (j) => { layer(j, 'vol').config.batch_input_shape = [null, 3, true, 5, 4]; }), /vol \(InputLayer\) config\.batch_input_shape\[2\]: expected a positive integer or null, got true/);
    await rejects(fixture('pointwise-1x1x1', (j) => { layer(j, 'vol').config.batch_input_shape = [null, 1e6, 1e6, 5, 4]; }), /has more than 2\^31 elements per row/);
  });
});

describe('layer classes', () => {
  const withDoubler = (j: any) => {
    j.modelTopology.config.layers.push({ name: 'double', class_name: 'Doubler', config: { name: 'double' }, inbound_nodes: [[['pointwise', 0, 0, {}]]] });
    j.modelTopology.config.output_layers = [['double', 0, 0]];
  };
  test('an unknown class is named; the same class registered through the API is accepted', async () => {
    const file = fixture('pointwise-1x1x1', withDoubler);
    await rejects(file, /pointwise_1x1x1\/double: unknown layer class "Doubler" \(custom layers must be registered/);
    class Doubler extends tf.layers.Layer {
      static className = 'Doubler';
      override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
        return tf.tidy(() => tf.mul(Array.isArray(inputs) ? inputs[0] : inputs, 2));
      }
    }
    tf.serialization.registerClass(Doubler);
    const result = await optimize(file, { backend: 'cpu', policy: 'always' });
    expect(result.report.rewritten.map((r) => r.layer)).toEqual(['pointwise']);
    expect(result.report.verification?.passed).toBe(true);
  });
});

describe('numbers', () => {
  test.each([[NaN, 'NaN'], [Infinity, 'Inf'], [-Infinity, '-Inf']])('%s in a weight is reported with its position', async (value) => {
    const file = fixture('pointwise-1x1x1', (_j, dir) => {
      const shard = path.join(dir, 'group1-shard1of1.bin');
      const bytes = fs.readFileSync(shard);
      bytes.writeFloatLE(value, 4 * 30); // bias[2]: the kernel holds 28 floats
      fs.writeFileSync(shard, bytes);
    });
    await rejects(file, /weight "pointwise\/bias" has 1 NaN\/Inf value\(s\) \(first at flat index 2\)/);
  });
});

describe('numbers in verification inputs', () => {
  test.each([['array', false], ['.npy file', true]])('NaN/Inf in an %s input is refused, naming the row, without leaks', async (_label, asFile) => {
    const data = new Float32Array(3 * 3 * 5 * 5 * 4).fill(0.5);
    data[2 * 300 + 7] = Infinity; // row 2 (a row holds 3*5*5*4 = 300 values)
    const array = { data, shape: [3, 3, 5, 5, 4], dtype: 'float32' as const };
    let input: string | typeof array = array;
    if (asFile) {
      input = path.join(tempDir('tfjs-rewrite-npy-'), 'x.npy');
      writeNpy(input, array);
    }
    const base = tf.memory().numTensors;
    const error = await optimize(fixture('pointwise-1x1x1'), { backend: 'cpu', inputs: [input], policy: 'always' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toMatch(/row 2 holds Infinity; verification inputs must be finite/);
    expect(tf.memory().numTensors).toBe(base);
  });
});

describe('paths and shards', () => {
  test.each([
    ['..', '../other/group1-shard1of1.bin', /paths\[0\]: "\.\.\/other\/group1-shard1of1\.bin" points outside the model folder/],
    ['encoded ..', '%2e%2e/x.bin', /points outside the model folder/],
    ['encoded absolute', '%2Fetc%2Fpasswd', /must be a path relative to the model folder/],
    ['absolute', '/etc/passwd', /"\/etc\/passwd" must be a path relative to the model folder/],
    ['url', 'https://example.com/w.bin', /must be a path relative to the model folder/],
    ['bad escape', '%zz.bin', /"%zz\.bin" is not a valid URL-encoded file name/],
    ['nul', 'a\u0000b', /paths\[0\]: expected a relative file name/],
    ['missing', 'nope.bin', /weight file \S*nope\.bin cannot be read \(ENOENT\)/],
    ['directory', '.', /points outside the model folder|is not a regular file/],
  ])('%s', (_label, weightPath, pattern) => rejects(fixture('pointwise-1x1x1', (j) => { j.weightsManifest[0].paths = [weightPath]; }), pattern));

  test('a link inside the folder that points out is refused', () => rejects(
    fixture('pointwise-1x1x1', (j, dir) => {
      fs.symlinkSync(path.join(COMMITTED, 'pointwise-1x1x1', 'group1-shard1of1.bin'), path.join(dir, 'linked.bin'));
      j.weightsManifest[0].paths = ['linked.bin'];
    }),
    /"linked\.bin" is a link to a file outside the model folder/,
  ));
  test('truncated and oversized shards name the file and both byte counts', async () => {
    const resize = (size: number) => fixture('pointwise-1x1x1', (_j, dir) => {
      const shard = path.join(dir, 'group1-shard1of1.bin');
      const bytes = fs.readFileSync(shard);
      fs.writeFileSync(shard, size < bytes.length ? bytes.subarray(0, size) : Buffer.concat([bytes, Buffer.alloc(size - bytes.length)]));
    });
    await rejects(resize(139), /weight file \S*group1-shard1of1\.bin has 139 bytes, expected 140 for the 2 weight\(s\) of weightsManifest\[0\] \(truncated\)/);
    await rejects(resize(200), /has 200 bytes, expected 140 .*\(oversized\)/);
  });
  test('a model.json that is a FIFO is refused, not read forever', async () => {
    const file = path.join(tempDir('tfjs-rewrite-hostile-'), 'model.json');
    if (spawnSync('mkfifo', [file]).status !== 0) return; // no mkfifo here
    await rejects(file, /model\.json is not a regular file/);
  });
});

describe('in-memory artifacts', () => {
  test('weight data shorter than the specs need', async () => {
    const artifacts = { modelTopology: JSON.parse(fs.readFileSync(path.join(COMMITTED, 'pointwise-1x1x1', 'model.json'), 'utf8')).modelTopology,
      weightSpecs: [{ name: 'pointwise/kernel', shape: [1, 1, 1, 4, 7], dtype: 'float32' as const }], weightData: new ArrayBuffer(8) };
    await expect(inspect(artifacts)).rejects.toThrow(/weight data holds 8 bytes, but the 1 weight specs need 112/);
  });
});

describe('writing', () => {
  test('a failed write leaves neither output nor temp files, and a replaced output is restored', async () => {
    const { artifacts } = await optimize(fixture('pointwise-1x1x1'), { verify: false });
    const parent = tempDir('tfjs-rewrite-write-');
    const out = path.join(parent, 'out');
    writeModelFiles(artifacts, out);
    const previous = snapshotDir(out);
    // A topology JSON cannot encode fails the write after the shards are in the temp folder.
    expect(() => writeModelFiles({ ...artifacts, modelTopology: { size: BigInt(1) } as unknown as object }, out, { force: true })).toThrow(/BigInt/);
    expect(fs.readdirSync(parent)).toEqual(['out']);
    expect(snapshotDir(out)).toEqual(previous);
  });
  test('an output whose parent is a file fails with one line and leaves nothing', async () => {
    const { artifacts } = await optimize(fixture('pointwise-1x1x1'), { verify: false });
    const parent = tempDir('tfjs-rewrite-write-');
    fs.writeFileSync(path.join(parent, 'file'), '');
    expect(() => writeModelFiles(artifacts, path.join(parent, 'file', 'out'))).toThrow(/cannot write .*file\/out \((ENOTDIR|EEXIST)\); nothing was written/);
    expect(fs.readdirSync(parent)).toEqual(['file']);
  });
});

describe('no tensors leak on any path', () => {
  test('success, invalid input, and a model tfjs loads but cannot run', async () => {
    const base = tf.memory().numTensors;
    await optimize(fixture('qwen3vl-patch-embed-mini'), { backend: 'cpu' });
    expect(tf.memory().numTensors).toBe(base);
    await expect(optimize(fixture('pointwise-1x1x1', (j) => { specs(j)[0].name = 'x/kernel'; }), { backend: 'cpu' })).rejects.toThrow(InputError);
    expect(tf.memory().numTensors).toBe(base);
    // An int32 kernel fails only when tfjs assigns it, after every variable exists.
    const broken = fixture('shared-two-input', (j) => { specs(j)[0].dtype = 'int32'; });
    await expect(optimize(broken, { backend: 'cpu' })).rejects.toThrow(/stock tfjs cannot load the original model: dtype of the new value \(int32\)/);
    expect(tf.memory().numTensors).toBe(base);
  });
});

test('values in messages are cut short, even when nested 100,000 deep', () => {
  let deep: unknown = 1;
  for (let i = 0; i < 100000; i++) deep = [deep];
  expect(describeValue(deep)).toBe('[[[[...]]]]');
  expect(describeValue('x'.repeat(10000)).length).toBeLessThanOrEqual(40);
  expect(describeValue(undefined)).toBe('nothing');
});
