/**
 * fold-views-into-dense: a chain of Reshape/Flatten/Permute that only reorders the features a
 * Dense consumes is folded into the Dense's kernel rows.
 *
 * Identity: if the Dense sees v = x[perm] (a fixed permutation of x's flattened features), then
 * v · W = x · W' with W'[perm[j]] = W[j]: the same products, rows reordered.
 *
 * Before:  x [B,1176] -> Reshape [3,2,14,14] -> Permute [2,3,4,1] -> Reshape [1,1,1,1176]
 *            -> Dense(1280) -> y [B,1,1,1,1280]
 * After:   x [B,1176] -> Dense(1280, rows permuted) -> Reshape [1,1,1,1280] -> y
 * (collapse-reshapes and drop-identity-views then remove what is left of the views.)
 *
 * Guards: the Dense has one call on one input whose non-batch dims are all 1 but the last (so
 * it consumes every feature at once); the chain is not empty, each view in it has one call and
 * no other consumer; it holds a Permute or the fold leaves fewer layers (no churn); the chain's
 * input shape is static; the kernel is float32.
 */
import { isUnknown } from '../src/layers/shapes';
import type { LayerNode, TensorRef, Weight } from '../src/layers/types';
import { MatchResult, Pass, REPLACED_INPUT } from '../src/pass';
import { consumerCount, upstreamOf } from '../src/rewrite/upstream';
import { isStatic, isView, viewPermutation } from '../src/rewrite/views';
import { permuteRows } from '../src/rewrite/transpose';
import { findWeight, keptEncodingNotes } from '../src/rewrite/weights';

interface FoldPlan {
  chain: LayerNode[];
  /** What the chain read (functional graphs); a Sequential reads the previous layer. */
  input?: TensorRef;
  inputShape: number[];
  denseInput: number[];
  kernel: Weight;
}

export const foldViewsIntoDense: Pass<FoldPlan> = {
  name: 'fold-views-into-dense',
  reportRefusals: false,
  appliesTo: (layer) => layer.className === 'Dense',

  match(dense, { graph, shapes, ir }): MatchResult<FoldPlan> {
    const refuse = (refusal: string) => ({ refusal });
    const [denseShapes] = shapes.callInputs.get(dense.name) ?? [];
    if (!denseShapes || isUnknown(denseShapes) || denseShapes.length !== 1) return refuse('input shape unknown');
    const denseInput = denseShapes[0];
    // The Dense must see all features in one row, or a permutation across rows would mix them.
    if (!isStatic(denseInput) || denseInput.slice(1, -1).some((dim) => dim !== 1)) return refuse('the Dense sees more than one row per example');
    const chain: LayerNode[] = [];
    let current = dense;
    let input: TensorRef | undefined;
    for (;;) {
      const up = upstreamOf(graph, current);
      input = up.input;
      if (!up.producer || !isView(up.producer) || consumerCount(graph, up.producer) !== 1) break;
      chain.unshift(up.producer);
      current = up.producer;
    }
    if (chain.length === 0) return refuse('no view chain before the Dense');
    // Without a Permute the chain is only reshapes: fold only if that leaves fewer layers
    // (else the fold would re-create the same Reshape it removed, every sweep).
    const hasPermute = chain.some((layer) => layer.className === 'Permute');
    const [chainShapes] = shapes.callInputs.get(chain[0].name) ?? [];
    if (!chainShapes || isUnknown(chainShapes) || !isStatic(chainShapes[0])) return refuse('the chain input shape is not static');
    const layersAfter = (chainShapes[0].length > 2 ? 1 : 0) + 1 + (denseInput.length > 2 ? 1 : 0);
    if (!hasPermute && layersAfter >= chain.length + 1) return refuse('nothing to fold: reshapes only');
    const kernel = findWeight(ir.weights, dense.name, 'kernel');
    if (!kernel || kernel.dtype !== 'float32') return refuse('no float32 kernel');
    return { plan: { chain, input, inputShape: chainShapes[0] as number[], denseInput: denseInput as number[], kernel } };
  },

  rewrite(dense, plan, { freshName }) {
    const features = plan.inputShape.slice(1).reduce((a, b) => a * b, 1);
    const units = plan.kernel.shape[1];
    // The Dense saw feature j at x's position source[j], so x's feature i needs kernel row j.
    const source = viewPermutation(plan.inputShape.slice(1), plan.chain);
    const rowOf = new Int32Array(features);
    source.forEach((position, row) => (rowOf[position] = row));
    const values = permuteRows(plan.kernel.values, units, rowOf);
    const layers: LayerNode[] = [];
    let feed: TensorRef[] = plan.input ? [{ ...plan.input }] : [{ layer: REPLACED_INPUT, node: 0, tensor: 0, kwargs: {} }];
    const append = (layer: Omit<LayerNode, 'calls' | 'extra'>) => {
      layers.push({ ...layer, calls: [{ inputs: feed }], extra: {} });
      feed = [{ layer: layer.name, node: 0, tensor: 0, kwargs: {} }];
    };
    const view = (base: string, targetShape: number[]) => {
      const name = freshName(base);
      append({ name, className: 'Reshape', config: { name, trainable: true, target_shape: targetShape } });
    };
    if (plan.inputShape.length > 2) view(`${dense.name}_flat`, [features]);
    // Same name, so the bias and every reference keep theirs.
    append({ name: dense.name, className: 'Dense', config: dense.config });
    if (plan.denseInput.length > 2) view(`${dense.name}_unflat`, [...plan.denseInput.slice(1, -1), units]);
    return {
      layers,
      outputs: [{ layer: layers[layers.length - 1].name, call: 0 }],
      absorbed: plan.chain.map((layer) => layer.name),
      removeWeights: [plan.kernel.name],
      addWeights: [{ ...plan.kernel, values }],
      notes: keptEncodingNotes(dense.name, plan.kernel),
    };
  },
};
