/**
 * The one analysis behind the transposed-conv rules of both dialects, on a format-free geometry
 * (as conv-analysis.ts is for the forward convs): each dialect reads its Conv2DTranspose /
 * Conv3DTranspose (Keras config, or Conv2DBackpropInput / Conv3DBackpropInputV2 attrs) into a
 * `TransposedSpec`; the guards here give the same refusal text for both formats.
 *
 * tfjs-layers 4.22 facts this relies on (read from tfjs-layers/src/layers/convolutional.ts):
 * - the kernel is stored [...kernel, filters, channels] (filters before channels);
 * - output size per axis is deconvLength: 'valid' n*s + max(k - s, 0), 'same' n*s; the 'same'
 *   crop is TensorFlow's backprop padding, floor(max(k - s, 0) / 2) before;
 * - there is no output_padding, and dilation_rate is not passed to conv2dTranspose/conv3dTranspose
 *   (tfjs ignores it): a model carrying either is refused rather than guessed at.
 */
import type { CallInput } from './conv-analysis';
import { axisNames, fmt } from './conv-analysis';

export interface TransposedSpec {
  kernel: number[];
  strides: number[];
  dilation: number[];
  padding: string;
  /** Keras 'output_padding' (null when absent or null). */
  outputPadding: unknown;
  channelsFirst: boolean;
  filters: number;
  calls: CallInput[];
  kernelWeight: { shape: number[]; dtype: string } | undefined;
  bias: { shape: number[] } | 'missing' | null;
  owner: string;
}

export interface TransposedGeometry {
  /** Input spatial sizes and channels. */
  spatial: number[];
  channels: number;
  filters: number;
  kernel: number[];
  strides: number[];
  padding: 'valid' | 'same';
  /** Output spatial sizes (tfjs's deconvLength) and the leading crop of the full result per axis. */
  out: number[];
  padBefore: number[];
  channelsFirst: boolean;
}

/** Output size and leading crop per axis, as tfjs-layers and TensorFlow define them. */
export function transposedOutput(kernel: number[], strides: number[], padding: 'valid' | 'same', spatial: number[]): { out: number[]; padBefore: number[] } {
  return {
    out: spatial.map((n, a) => n * strides[a] + (padding === 'valid' ? Math.max(kernel[a] - strides[a], 0) : 0)),
    padBefore: spatial.map((_, a) => (padding === 'same' ? Math.floor(Math.max(kernel[a] - strides[a], 0) / 2) : 0)),
  };
}

/**
 * Every guard the transposed rules share; `nonOverlapping` adds kernel == strides (the Dense
 * form). A single call with a static input is required: the view layers are shaped per input.
 */
export function planTransposed(spec: TransposedSpec, nonOverlapping: boolean): TransposedGeometry | { refusal: string } {
  const refuse = (refusal: string) => ({ refusal });
  const rank = spec.kernel.length;
  const names = axisNames(rank);
  if (nonOverlapping && spec.strides.some((s, i) => s !== spec.kernel[i])) return refuse(`strides ${fmt(spec.strides)} != kernel_size ${fmt(spec.kernel)}`);
  // tfjs drops dilation_rate on transposed convs; the original then computes an undilated conv.
  if (spec.dilation.some((d) => d !== 1)) return refuse(`dilation_rate ${fmt(spec.dilation)} != 1 (tfjs ignores it on transposed convs)`);
  if (spec.outputPadding !== null && spec.outputPadding !== undefined) return refuse(`output_padding ${fmt(spec.outputPadding)} is set (tfjs-layers ignores it)`);
  if (spec.padding !== 'valid' && spec.padding !== 'same') return refuse(`padding '${spec.padding}' is not 'valid' or 'same'`);
  // tfjs-core's 3D 'same' padding is not clamped at 0 (get3DPadAndOutInfo): where k < s it
  // shifts the output by floor((k - s) / 2), unlike TensorFlow; no rewrite imitates that.
  const short = spec.kernel.findIndex((k, a) => k < spec.strides[a]);
  if (rank === 3 && spec.padding === 'same' && short >= 0) return refuse(`kernel ${spec.kernel[short]} < stride ${spec.strides[short]} on ${names[short]} with 'same': tfjs pads 3D convs by floor((k - s) / 2) < 0 there, unlike TensorFlow`);
  if (spec.calls.length !== 1) return refuse(spec.calls.length === 0 ? 'the layer is never called, so its input shape is unknown' : `${spec.calls.length} calls (shared layer)`);
  const call = spec.calls[0];
  if ('unknown' in call) return refuse(`input shape is unknown: ${call.unknown}`);
  if (call.shape.length !== rank + 2) return refuse(`input shape ${fmt(call.shape)} is not rank ${rank + 2}`);
  const dims = call.shape.slice(1);
  const channels = spec.channelsFirst ? dims[0] : dims[rank];
  const spatial = spec.channelsFirst ? dims.slice(1) : dims.slice(0, rank);
  if (channels === null || spatial.some((s) => s === null)) return refuse(`input shape ${fmt(call.shape)} is not static beyond the batch`);
  const expected = [...spec.kernel, spec.filters, channels];
  if (!spec.kernelWeight) return refuse(`no weight "${spec.owner}/kernel" in the manifest`);
  if (fmt(spec.kernelWeight.shape) !== fmt(expected)) return refuse(`kernel shape ${fmt(spec.kernelWeight.shape)} != ${fmt(expected)}`);
  if (spec.kernelWeight.dtype !== 'float32') return refuse(`kernel dtype ${spec.kernelWeight.dtype} is not float32`);
  if (spec.bias !== null && (spec.bias === 'missing' || fmt(spec.bias.shape) !== fmt([spec.filters]))) return refuse(`no bias of shape [${spec.filters}] for "${spec.owner}"`);
  const padding = spec.padding;
  return { spatial: spatial as number[], channels, filters: spec.filters, kernel: spec.kernel, strides: spec.strides, padding, channelsFirst: spec.channelsFirst, ...transposedOutput(spec.kernel, spec.strides, padding, spatial as number[]) };
}

/** Activations that act per element: they commute with every data movement of the rewrites. */
export const perElement = (activation: unknown) => activation !== 'softmax' && activation !== 'log_softmax';
