/**
 * conv3d-to-conv2d-slices: a sliding Conv3D becomes Conv2Ds over its depth slices, summed.
 *
 * Identity (sliding-conv.ts): out[b, d] = sum_i conv2d(xpad[b, d*sd + i*dd], K[i]) over kernel
 * depth i, K[i] = [kh, kw, C, F] with the conv's H/W strides and dilation; depth padding
 * explicit (TF's split: floor(total / 2) before); bias and activation once, after the sum.
 * Any kernel, strides, dilation, 'valid'/'same', channels_first, bias, activation.
 *
 * Before:  x [B,16,48,48,16] -> Conv3D(3x3x3 'same', 16 filters) -> y
 * After (layers, sliding-conv-layers.ts): depth folded into rows with zero separators ->
 *            per kernel depth: Cropping2D (its slices) -> Conv2D(3x3, 16 filters) -> Add -> views,
 *            named y; a big volume in chunks of output depths, concatenated, or read in depth
 *            pieces by the next chunked conv (no whole-volume tensor between them)
 * After (graph, sliding-conv-graphdef.ts): Reshape [-1,48,48,16] (depth into the batch) ->
 *            Conv2D(48 filters, 'SAME') -> Reshape -> 3 StridedSlice (+ Pad) -> AddN -> BiasAdd
 *            -> Reshape [-1,16,48,48,16] named y
 *
 * Priority: registered after conv3d-to-dense, which wins on a conv that does not slide (one
 * Dense beats kd Conv2Ds). Whether it pays is the policy's call per backend (wasm runs Conv3D as
 * scalar loops and Conv2D on XNNPACK; cpu runs both as JS loops): see src/policy.
 */
import { graphDefSlidingConvPass } from '../src/rewrite/sliding-conv-graphdef';
import { slidingLayersPass } from '../src/rewrite/sliding-conv-layers';

export const conv3dToConv2dSlices = slidingLayersPass('conv3d-to-conv2d-slices');

/** The same rule on graph models, with the same shared guards and refusals. */
export const conv3dToConv2dSlicesGraphDef = graphDefSlidingConvPass('conv3d-to-conv2d-slices');
