/**
 * drop-identity-views: a Reshape to the shape it already has, a Flatten of a rank-2 tensor, or
 * a Permute with dims in order does nothing; every reader gets the layer's input instead.
 *
 * Before:  x [B,1280] -> Reshape [1280] -> y        After:  x -> y
 *
 * Guards: every call's input and output shapes are known and equal (non-batch dims); a
 * Sequential keeps at least one layer.
 */
import { isUnknown, layerOutputShape } from '../src/layers/shapes';
import { MatchResult, Pass } from '../src/pass';
import { isView } from '../src/rewrite/views';

export const dropIdentityViews: Pass<null> = {
  name: 'drop-identity-views',
  reportRefusals: false,
  appliesTo: isView,

  match(layer, { graph, shapes }): MatchResult<null> {
    if (graph.kind === 'sequential' && graph.layers.length === 1) return { refusal: 'the only layer of a Sequential' };
    const calls = shapes.callInputs.get(layer.name) ?? [];
    if (calls.length === 0) return { refusal: 'no calls' };
    for (const inputs of calls) {
      if (isUnknown(inputs) || inputs.length !== 1) return { refusal: 'input shape unknown' };
      let out: (number | null)[];
      try {
        [out] = layerOutputShape(layer, inputs);
      } catch (error) {
        // A malformed config (hand-edited or hostile) is refused here; loading reports it properly.
        return { refusal: `output shape cannot be computed (${(error as Error).message})` };
      }
      const same = out.length === inputs[0].length && out.every((dim, i) => i === 0 || (dim !== null && dim === inputs[0][i]));
      if (!same) return { refusal: 'changes the shape' };
    }
    if (layer.className === 'Permute' && (layer.config.dims as number[]).some((d, i) => d !== i + 1)) return { refusal: 'reorders axes' };
    return { plan: null };
  },

  rewrite(layer) {
    return {
      layers: [],
      outputs: layer.calls.map((call) => ({ ref: call.inputs[0] })),
      removeWeights: [],
      addWeights: [],
    };
  },
};
