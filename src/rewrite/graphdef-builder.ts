/**
 * What every GraphDef lowering of the conv rules builds its replacement with: nodes and weights
 * collected in order, named after the op they replace (`<op>/<label>`, made fresh).
 */
import { attr } from '../graphdef/attrs';
import { GraphNode, GraphWeight, int32Weight, parseTensorName } from '../graphdef/ir';
import type { GraphDefMatchContext } from '../graphdef/pass';
import { fmt } from './conv-analysis';

/** The float32 `T` attr of the ops a lowering emits. */
export const FLOAT_T = { T: attr.type('DT_FLOAT') };

export function graphDefBuilder(owner: string, context: Pick<GraphDefMatchContext, 'freshName'>) {
  const nodes: GraphNode[] = [];
  const addWeights: GraphWeight[] = [];
  const fresh = (label: string) => context.freshName(`${owner}/${label}`);
  const node = (name: string, op: string, input: string[], attrs: GraphNode['attr']): string => {
    nodes.push({ name, op, input, attr: attrs, extra: {} });
    return name;
  };
  /** An int32 Const (a shape, a permutation, slice bounds) of shape `dims`. */
  const intConst = (label: string, values: number[], dims = [values.length]) => {
    const name = fresh(label);
    addWeights.push({ ...int32Weight(name, values), spec: { name, shape: dims, dtype: 'int32' } });
    return node(name, 'Const', [], { value: attr.tensor('DT_INT32', dims), dtype: attr.type('DT_INT32') });
  };
  /** A Reshape of `x` to `target` (its shape a Const `<label>_shape`). */
  const reshape = (x: string, label: string, target: number[], name = fresh(label)) =>
    node(name, 'Reshape', [x, intConst(`${label}_shape`, target)], { ...FLOAT_T, Tshape: attr.type('DT_INT32') });
  return { nodes, addWeights, fresh, node, intConst, reshape };
}

/** The Const behind `tensor`, through Identity nodes (how the converter feeds a filter). */
export function constBehind(tensor: string, context: Pick<GraphDefMatchContext, 'node'>): GraphNode | undefined {
  let node = context.node(parseTensorName(tensor).node);
  for (let hops = 0; node && node.op === 'Identity' && node.input.length >= 1 && hops < 8; hops++) {
    node = context.node(parseTensorName(node.input[0]).node);
  }
  return node?.op === 'Const' ? node : undefined;
}

/**
 * A conv op's filter: the Const behind `tensor`, its weight and its shape of `rank`; or the
 * refusal naming what is missing (every conv lowering reads its filter this way).
 */
export function filterOf(tensor: string, rank: number, context: Pick<GraphDefMatchContext, 'node' | 'weight'>):
  { filterConst: GraphNode; filter: GraphWeight; shape: number[] } | { refusal: string } {
  const filterConst = constBehind(tensor, context);
  if (!filterConst) return { refusal: `filter "${tensor}" is not a Const` };
  const filter = context.weight(filterConst.name);
  if (!filter) return { refusal: `filter Const "${filterConst.name}" has no weight` };
  const shape = filter.spec.shape;
  if (shape.length !== rank) return { refusal: `filter shape ${fmt(shape)} is not rank ${rank}` };
  return { filterConst, filter, shape };
}
