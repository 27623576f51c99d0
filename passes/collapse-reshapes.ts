/**
 * collapse-reshapes: Reshape/Flatten after Reshape/Flatten is one Reshape (a reshape only
 * relabels the same row-major data, so two in a row equal the last one alone).
 *
 * Before:  x [B,1280] -> Reshape [1,1,1,1280] -> Reshape [1280] -> y
 * After:   x [B,1280] -> Reshape [1280] -> y      (drop-identity-views then removes it)
 *
 * Guards: both have one call; the first has no other consumer; the output shape is static.
 * The merged layer keeps the second one's name, so model outputs keep theirs.
 */
import { isUnknown, layerOutputShape } from '../src/layers/shapes';
import type { TensorRef } from '../src/layers/types';
import { MatchResult, Pass, REPLACED_INPUT } from '../src/pass';
import { consumerCount, upstreamOf } from '../src/rewrite/upstream';
import { isReshape, isStatic } from '../src/rewrite/views';

interface CollapsePlan {
  first: string;
  input?: TensorRef;
  targetShape: number[];
}

export const collapseReshapes: Pass<CollapsePlan> = {
  name: 'collapse-reshapes',
  reportRefusals: false,
  appliesTo: isReshape,

  match(layer, { graph, shapes }): MatchResult<CollapsePlan> {
    const up = upstreamOf(graph, layer);
    if (!up.producer || !isReshape(up.producer)) return { refusal: 'not after a reshape' };
    if (consumerCount(graph, up.producer) !== 1) return { refusal: 'the first reshape has other consumers' };
    const [inputs] = shapes.callInputs.get(layer.name) ?? [];
    if (!inputs || isUnknown(inputs)) return { refusal: 'input shape unknown' };
    let out: (number | null)[];
    try {
      [out] = layerOutputShape(layer, inputs);
    } catch (error) {
      // A malformed config (hand-edited or hostile) is refused here; loading reports it properly.
      return { refusal: `output shape cannot be computed (${(error as Error).message})` };
    }
    if (!isStatic(out)) return { refusal: 'output shape not static' };
    const first = upstreamOf(graph, up.producer);
    return { plan: { first: up.producer.name, input: first.input, targetShape: out.slice(1) as number[] } };
  },

  rewrite(layer, plan) {
    const inputs = plan.input ? [{ ...plan.input }] : [{ layer: REPLACED_INPUT, node: 0, tensor: 0, kwargs: {} }];
    return {
      layers: [{
        name: layer.name,
        className: 'Reshape',
        config: { name: layer.name, trainable: layer.config.trainable ?? true, target_shape: plan.targetShape },
        calls: [{ inputs }],
        extra: {},
      }],
      outputs: [{ layer: layer.name, call: 0 }],
      absorbed: [plan.first],
      removeWeights: [],
      addWeights: [],
    };
  },
};
