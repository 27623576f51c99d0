/**
 * conv3d-transpose-to-dense / conv2d-transpose-to-dense: a transposed conv whose kernel equals
 * its strides (U-Net/VAE upsamplers, SAM's mask upscaler) is the exact dual of a patch embedding:
 * every input voxel writes its own output block, so it is one Dense to kd*kh*kw*F followed by
 * depth-to-space (src/rewrite/transposed-layers.ts has the identity and the layer chain).
 *
 * Before:  x [B,4,6,6,32] -> Conv3DTranspose(kernel=strides=2, filters 16) -> y [B,8,12,12,16]
 * After:   x -> Reshape [144,32] -> Dense(128) -> Reshape [4,36,2,64] -> Permute -> Reshape
 *            [48,6,2,32] -> Permute -> Reshape [8,12,12,16] -> y
 *
 * Guards, in order (shared analysis: src/rewrite/transposed-conv.ts): strides == kernel_size;
 * dilation 1 and no output_padding (tfjs ignores both); padding 'valid' or 'same' ('same' pads
 * nothing when kernel == strides); no weight constraints; one call with a static input; kernel
 * [...k, F, C] and bias [F] present. A quantized kernel keeps its encoding (a reordering).
 */
import { transposedDensePass } from '../src/rewrite/transposed-layers';
import { graphTransposedDensePass } from '../src/rewrite/transposed-graphdef';

export const conv3dTransposeToDense = transposedDensePass('conv3d-transpose-to-dense', 'Conv3DTranspose', 3);
export const conv2dTransposeToDense = transposedDensePass('conv2d-transpose-to-dense', 'Conv2DTranspose', 2);

/**
 * The 2-D rule on graph models: Conv2DBackpropInput -> MatMul + one Transpose
 * (src/rewrite/transposed-graphdef.ts). No 3-D graph lowering: tfjs-converter 4.22 has no
 * Conv3DBackpropInputV2 kernel, so a converted Conv3DTranspose graph does not run in tfjs at all
 * and a rewrite of it could not be verified against the original.
 */
export const conv2dTransposeToDenseGraphDef = graphTransposedDensePass('conv2d-transpose-to-dense', 2);
