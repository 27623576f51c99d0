import { Pass, registerPass } from 'tfjs-rewrite';

/**
 * drop-dropout: Dropout is the identity at inference, so every reader of its output reads
 * its input instead. Before: x -> Dropout -> Dense.  After: x -> Dense.
 */
export const dropDropout: Pass<null> = {
  name: 'drop-dropout',
  appliesTo: (layer) => layer.className === 'Dropout',
  match: (layer, { graph }) =>
    graph.kind === 'sequential' && graph.layers.length === 1
      ? { refusal: 'the only layer of a Sequential' }
      : { plan: null },
  rewrite: (layer) => ({
    layers: [],
    outputs: layer.calls.map((call) => ({ ref: call.inputs[0] })),
    removeWeights: [],
    addWeights: [],
  }),
};

registerPass(dropDropout);
