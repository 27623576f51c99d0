/**
 * conv1d-to-dense: a Conv1D that does not slide (audio frontends framing a waveform with
 * kernel == stride) becomes views + one Dense: y[b,i,:] = flatten(x[b, i*k:(i+1)*k, :]) · K[k*C, F].
 *
 * Before:  x [B,16000,1] -> Conv1D(kernel=strides=400, 512) -> [B,40,512]
 * After:   x -> Reshape [40,400] -> Dense(512)        (no transpose: frames are contiguous)
 *
 * Guards as conv3d-to-dense ('causal' padding always pads, so it is refused). Whether it pays
 * is the policy's call (src/policy/).
 */
import { nonSlidingConvPass } from '../src/rewrite/non-sliding-conv';
import { graphDefNonSlidingConvPass } from '../src/rewrite/non-sliding-conv-graphdef';

export const conv1dToDense = nonSlidingConvPass({ name: 'conv1d-to-dense', className: 'Conv1D', spatialRank: 1 });

/** The same rule on graph models (src/rewrite/non-sliding-conv-graphdef.ts), with the same guards and refusals. */
export const conv1dToDenseGraphDef = graphDefNonSlidingConvPass({ name: 'conv1d-to-dense', spatialRank: 1 });
