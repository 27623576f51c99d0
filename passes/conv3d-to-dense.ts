/**
 * conv3d-to-dense: a Conv3D that does not slide becomes views + one Dense.
 *
 * Identity: for input x [B, D, H, W, C], kernel K [kd, kh, kw, C, F] with strides == kernel,
 * no padding applied and no dilation, output[b, i, j, l, :] is
 *   x[b, i*kd:(i+1)*kd, j*kh:(j+1)*kh, l*kw:(l+1)*kw, :] flattened · K reshaped [kd*kh*kw*C, F] + bias,
 * followed by the activation; remainders of D/H/W that do not fill a patch are ignored.
 *
 * Before:  x [B,5,18,19,3] -> Conv3D(kernel=strides=[2,4,4], filters 24) -> y [B,2,4,4,24]
 * After:   x -> Reshape/Cropping2D (crop to [4,16,16,3]) -> Reshape [2,2,4,4,64*3]
 *            -> Permute (one rank-6 transpose) -> Reshape [2,4,4,96] -> Dense(24) -> y
 * The patch-embed case (the conv covers its whole input, Qwen2/3-VL) is Reshape [1,1,1,P] ->
 * Dense with the kernel's own bytes; a 1x1x1 conv is a Dense alone.
 *
 * Guards, in order (each refusal names the failing value): groups == 1; strides == kernel_size
 * (else it slides); dilation 1 where the kernel is > 1; padding 'valid', or 'same' that pads
 * nothing (every size a multiple of the kernel); no weight constraints; static input sizes
 * >= kernel for every call; kernel/bias weights present with the expected shapes.
 * Shared layers stay shared: one Dense serves every call (per-shape view layers if calls differ).
 */
import { nonSlidingConvPass } from '../src/rewrite/non-sliding-conv';
import { graphDefNonSlidingConvPass } from '../src/rewrite/non-sliding-conv-graphdef';

export const conv3dToDense = nonSlidingConvPass({ name: 'conv3d-to-dense', className: 'Conv3D', spatialRank: 3 });

/** The same rule on graph models (src/rewrite/non-sliding-conv-graphdef.ts), with the same guards and refusals. */
export const conv3dToDenseGraphDef = graphDefNonSlidingConvPass({ name: 'conv3d-to-dense', spatialRank: 3 });
