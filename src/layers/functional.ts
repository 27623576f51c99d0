/**
 * A Sequential graph made functional, in place: for a rewrite that needs branches (the Add of
 * conv3d-to-conv2d-slices' depth terms, the overlap-add of conv3d-transpose-by-depth), which a
 * Sequential (one implicit chain of layers) cannot hold. Every layer keeps its name and config,
 * so its weights keep their names (tfjs names a weight after its layer, in either container) and
 * stock tfjs loads them as before; the model input gets the name tfjs gives a Sequential's
 * (`<first layer>_input`), so inputs fed by name still match.
 */
import type { Shape } from './shapes';
import { Graph, JsonObject, LayerNode, TensorRef, ownNodeCount } from './types';

/** The class a converted graph gets: what tfjs itself writes for a functional model, loaded by every tfjs 4.x. */
export const FUNCTIONAL_CLASS = 'Model';

const INPUT_KEYS = ['batch_input_shape', 'batch_shape', 'input_shape'];

/** The Sequential's input: declared by its first layer, else `inferred` (a nested one takes its caller's). */
function inputShapeOf(first: LayerNode, inferred: Shape | undefined): Shape | undefined {
  const c = first.config;
  if (Array.isArray(c.batch_input_shape)) return c.batch_input_shape as Shape;
  if (Array.isArray(c.batch_shape)) return c.batch_shape as Shape;
  if (Array.isArray(c.input_shape)) return [null, ...(c.input_shape as Shape)];
  return inferred;
}

/** The name tfjs gives a Sequential's input when it loads one: `<first layer>_input`. */
export function sequentialInputName(graph: Graph): string | undefined {
  const first = graph.layers[0];
  return graph.kind === 'sequential' && first && first.className !== 'InputLayer' ? `${first.name}_input` : undefined;
}

/**
 * Rewires `graph` (a Sequential) as a functional graph with the same layers in the same order.
 * `input.name`: sequentialInputName of the graph as read (a rewrite may have replaced its first
 * layer since); `input.shape`: the shape inference saw (batch first), for a Sequential that
 * declares none. Returns the report note; throws when the shape is unknown (a rule matched a
 * layer whose input shape it knew, so it is known).
 */
export function sequentialToFunctional(graph: Graph, input: { name?: string; shape?: Shape }, freshName: (base: string) => string): string {
  if (graph.kind !== 'sequential') throw new Error(`internal: ${graph.name} is not a Sequential`);
  // An InputLayer's tensor is its node 0; a nested model's first call is its node 1.
  const ref = (layer: LayerNode): TensorRef => ({ layer: layer.name, node: layer.className === 'InputLayer' ? 0 : ownNodeCount(layer), tensor: 0, kwargs: {} });
  const chain = [...graph.layers];
  let inputLayer: LayerNode;
  if (chain[0].className === 'InputLayer') {
    inputLayer = chain.shift()!;
  } else {
    const first = chain[0];
    const shape = inputShapeOf(first, input.shape);
    if (!shape) throw new Error(`internal: the input shape of Sequential ${graph.name} is unknown`);
    const name = freshName(input.name ?? `${first.name}_input`);
    const dtype = typeof first.config.dtype === 'string' ? first.config.dtype : 'float32';
    inputLayer = { name, className: 'InputLayer', calls: [], extra: {}, config: { batch_input_shape: shape, dtype, sparse: false, name } };
    // The shape now lives on the InputLayer (as Keras writes a functional model).
    const config: JsonObject = {};
    for (const [key, value] of Object.entries(first.config)) if (!INPUT_KEYS.includes(key)) config[key] = value;
    first.config = config;
  }
  let previous = ref(inputLayer);
  for (const layer of chain) {
    layer.calls = [{ inputs: [previous] }];
    previous = ref(layer);
  }
  // In place: the scope, its shapes and its units keep pointing at these layer objects.
  graph.layers.splice(0, graph.layers.length, inputLayer, ...chain);
  const { name: _name, ...extraConfig } = graph.extraConfig;
  Object.assign(graph, { kind: 'functional', className: FUNCTIONAL_CLASS, inputs: [ref(inputLayer)], outputs: [previous], extraConfig, sequentialAsList: undefined });
  return `${graph.name}: the Sequential is written as a functional model (class ${FUNCTIONAL_CLASS}, input ${inputLayer.name}): a rewrite in it needs branches, which a Sequential's one chain of layers cannot hold; every layer and weight keeps its name`;
}
