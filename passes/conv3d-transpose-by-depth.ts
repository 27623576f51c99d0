/**
 * conv3d-transpose-by-depth: any Conv3DTranspose (kernel > strides, 'valid' or 'same') as one
 * Conv2DTranspose over all depth slices (every kernel depth as its own block of filters) and an
 * overlap-add along depth, in stock layers only (src/rewrite/transposed-layers.ts).
 *
 * Before:  x [B,4,8,8,32] -> Conv3DTranspose(kernel 3, strides 2, 'same', filters 16) -> y [B,8,16,16,16]
 * After:   x -> Reshape/ZeroPadding2D (one zero row between depth slices) -> Reshape [36,8,32]
 *            -> Conv2DTranspose(64 = 4 depths x 16) -> Cropping2D/Reshape -> Permute -> Reshape
 *            -> 2 x (Cropping2D + ZeroPadding2D) -> Add -> Reshape/Cropping2D -> bias -> y
 *
 * Why: tfjs-backend-wasm 4.22 computes conv3dTranspose wrong for any stride > 1, while its
 * conv2dTranspose is right (and XNNPACK-fast). Guards: those of the transposed analysis
 * (dilation 1, no output_padding, one static call, weights present); a quantized kernel only when
 * the kernel depth is a multiple of the depth stride (no zero taps to store).
 * Priority: after conv3d-transpose-to-dense, which takes kernel == strides with a single Dense.
 */
import { transposedDepthPass } from '../src/rewrite/transposed-layers';

export const conv3dTransposeByDepth = transposedDepthPass('conv3d-transpose-by-depth');
