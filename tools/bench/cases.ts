/**
 * The benchmark cases: the fixtures' patch embeds at realistic patch counts, video convs at
 * realistic clip sizes (built here: the committed fixtures are small on purpose), and Conv2D/
 * Conv1D cases. Rows time every correct rewrite (--policy always); guarantee.ts times what the
 * default policy returns.
 */
import * as tf from '@tensorflow/tfjs';
import { FIXTURES, MESHNET_38, buildC3dBlock, buildMeshnet, fillDeterministic } from '../../fixtures/models';

export interface BenchCase {
  name: string;
  description: string;
  /** Batch sizes to time at; for the Qwen patch embeds the batch is the patch count N. */
  batches: number[];
  /** Per backend, the batches to time at instead of `batches` unless --full (to save time). */
  batchesOn?: Record<string, number[]>;
  /** What a batch row is, for the table ("patches", "clips"). */
  unit: string;
  /** Backends this case runs on only with --full (to keep the default run to a few minutes). */
  fullOnlyOn?: string[];
  /** Passes of the rewritten variant (default: all). */
  passes?: string[];
  /** Backends where `optimize` with default settings must return the very model these rows time. */
  checkDefaultOn?: string[];
  build(): tf.LayersModel;
}

const CLEANUPS = ['fold-views-into-dense', 'collapse-reshapes', 'drop-identity-views'];

/** Input -> one non-sliding Conv3D (channels last) -> optional reshape to tokens. */
function videoConv(name: string, shape: number[], kernel: [number, number, number], filters: number, seed: number): tf.LayersModel {
  const input = tf.input({ shape, name: 'clip' });
  const output = tf.layers.conv3d({ name: 'embed', filters, kernelSize: kernel, strides: kernel, padding: 'valid' }).apply(input) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: output, name });
  fillDeterministic(model, seed);
  return model;
}

/** Waveform -> one non-sliding Conv1D framing it (wav2vec-style frontend, kernel == stride). */
function audioFrontend(samples: number, frame: number, filters: number, seed: number): tf.LayersModel {
  const input = tf.input({ shape: [samples, 1], name: 'waveform' });
  const output = tf.layers.conv1d({ name: 'frame_embed', filters, kernelSize: frame, strides: frame, padding: 'valid' }).apply(input) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: output, name: 'audio_frontend' });
  fillDeterministic(model, seed);
  return model;
}

/**
 * A 3D U-Net decoder's upsampling path (Cicek et al. 2016 shapes, scaled down): bottleneck
 * [8,16,16,64] -> Conv3DTranspose 3x3x3 stride 2 'same' -> 32, relu -> Conv3DTranspose 2x2x2
 * stride 2 -> 16. wasm computes both originals wrong (stride > 1); the rows time them anyway.
 */
function unetDecoder(seed: number): tf.LayersModel {
  const input = tf.input({ shape: [8, 16, 16, 64], name: 'bottleneck' });
  const up1 = tf.layers.conv3dTranspose({ name: 'up1', filters: 32, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' });
  const up2 = tf.layers.conv3dTranspose({ name: 'up2', filters: 16, kernelSize: 2, strides: 2 });
  const model = tf.model({ inputs: input, outputs: up2.apply(up1.apply(input)) as tf.SymbolicTensor, name: 'unet3d_decoder' });
  fillDeterministic(model, seed);
  return model;
}

const fromFixture = (name: string) => () => FIXTURES.find((spec) => spec.name === name)!.build();

export const BENCH_CASES: BenchCase[] = [
  {
    name: 'qwen3vl-patch-embed',
    description: 'Qwen3-VL patch embed (fixture): [N, 1536] -> Reshape/Permute -> Conv3D 2x16x16 -> 1152, bias',
    batches: [256, 1024, 4096],
    unit: 'patches',
    checkDefaultOn: ['wasm'],
    build: fromFixture('qwen3vl-patch-embed'),
  },
  {
    name: 'qwen2vl-patch-embed',
    description: 'Qwen2-VL patch embed (fixture): [N, 1176] -> Reshape/Permute -> Conv3D 2x14x14 -> 1280, no bias',
    batches: [1024],
    unit: 'patches',
    fullOnlyOn: ['cpu'], // ~1.5 min there, and it tells nothing the qwen3vl rows do not
    build: fromFixture('qwen2vl-patch-embed'),
  },
  {
    name: 'videomae-tubelet',
    description: 'VideoMAE-B tubelet embed: 16-frame 224x224 clip -> Conv3D 2x16x16 -> 768 (1568 tubelets; one transpose)',
    batches: [1],
    unit: 'clips',
    build: () => videoConv('videomae_tubelet', [16, 224, 224, 3], [2, 16, 16], 768, 4104),
  },
  {
    name: 'video-swin-remainder',
    description: 'Video-Swin 2x4x4 embed -> 96 on a 17x226x230 clip (remainders cropped; crop + transpose)',
    batches: [1],
    unit: 'clips',
    build: () => videoConv('video_swin_remainder', [17, 226, 230, 3], [2, 4, 4], 96, 5105),
  },
  {
    name: 'downsample-1x2x2',
    description: '1x2x2 stride-2 conv -> 4 filters on [8,64,64,4] x4: tiny matMul, full-input transpose (the policy case)',
    batches: [4],
    unit: 'clips',
    build: () => videoConv('downsample_1x2x2', [8, 64, 64, 4], [1, 2, 2], 4, 6106),
  },
  {
    name: 'vit-b16-patch-embed',
    description: 'ViT-B/16 patch embed (fixture): image [224,224,3] -> Conv2D 16x16 stride 16 -> 768 -> 196 tokens',
    batches: [8],
    // Plain JS is linear in the batch (~3.5 s per run at 8, ~50 s for the row): 2 gives the same ratio.
    batchesOn: { cpu: [2] },
    unit: 'images',
    passes: ['conv2d-to-dense', ...CLEANUPS],
    build: fromFixture('vit-b16-patch-embed'),
  },
  {
    // The fixture of this name is small on purpose (1600 samples); this is one second at 16 kHz.
    name: 'audio-conv1d-frontend',
    description: 'Audio frontend: waveform [16000,1] -> Conv1D kernel 400 stride 400 -> 512 (40 frames)',
    batches: [8],
    unit: 'waveforms',
    passes: ['conv1d-to-dense', ...CLEANUPS],
    build: () => audioFrontend(16000, 400, 512, 7107),
  },
  {
    name: 'unet3d-decoder',
    description: '3D U-Net decoder: [8,16,16,64] -> Conv3DTranspose 3x3x3 s2 same -> 32 -> Conv3DTranspose 2x2x2 s2 -> 16 ([32,64,64,16] out)',
    batches: [1],
    unit: 'volumes',
    // wasm computes the originals wrong: the default must rewrite both there, whatever the timing.
    checkDefaultOn: ['wasm'],
    passes: ['conv3d-transpose-to-dense', 'conv3d-transpose-by-depth', ...CLEANUPS],
    build: () => unetDecoder(8108),
  },
  {
    name: 'meshnet-38',
    description: 'MeshNet-shaped segmenter (MESHNET_38): [38,38,38,1] -> 9 sliding Conv3D 3x3x3 same, dilation 1..16..1, 21 filters -> 1x1x1 -> 3',
    batches: [1],
    unit: 'volumes',
    // ~1 min per run on cpu (plain JS loops on both sides; the default policy keeps it there).
    fullOnlyOn: ['cpu'],
    checkDefaultOn: ['wasm'],
    build: () => buildMeshnet(MESHNET_38),
  },
  {
    name: 'c3d-block',
    description: 'C3D-style block: clip [8,56,56,3] -> Conv3D 3x3x3 32 relu -> MaxPool 1x2x2 -> Conv3D 3x3x3 32 relu',
    batches: [1],
    unit: 'clips',
    checkDefaultOn: ['wasm'],
    build: () => buildC3dBlock({ modelName: 'c3d_block', frames: 8, size: 56, filters: [32, 32], seed: 8106 }),
  },
];
