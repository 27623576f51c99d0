/**
 * conv2d-to-dense: a Conv2D that does not slide (ViT/CLIP/SigLIP patch embeddings, kernel ==
 * strides 14/16/32) becomes views + one Dense — the same rule as conv3d-to-dense, one spatial
 * axis fewer: y[b,i,j,:] = flatten(x[b, i*kh:(i+1)*kh, j*kw:(j+1)*kw, :]) · K[kh*kw*C, F] + bias.
 *
 * Before:  x [B,224,224,3] -> Conv2D(kernel=strides=16, 768) -> [B,14,14,768]
 * After:   x -> Reshape [14,16,14,48] -> Permute -> Reshape [14,14,768] -> Dense(768)
 *
 * Guards as conv3d-to-dense. Conv2D already runs on fast kernels (XNNPACK on wasm), so whether
 * the rewrite pays is for the policy to measure (src/policy/), not for this rule.
 */
import { nonSlidingConvPass } from '../src/rewrite/non-sliding-conv';
import { graphDefNonSlidingConvPass } from '../src/rewrite/non-sliding-conv-graphdef';

export const conv2dToDense = nonSlidingConvPass({ name: 'conv2d-to-dense', className: 'Conv2D', spatialRank: 2 });

/** The same rule on graph models (src/rewrite/non-sliding-conv-graphdef.ts), with the same guards and refusals. */
export const conv2dToDenseGraphDef = graphDefNonSlidingConvPass({ name: 'conv2d-to-dense', spatialRank: 2 });
