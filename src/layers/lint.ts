/**
 * Reference checks that must pass before a topology reaches tfjs: tf.models.modelFromJSON
 * retries unresolved nodes forever, so a dangling reference or a cycle hangs it (tfjs #7271).
 * Run on every graph read and after every pass.
 */
import { Graph, GraphError, LayerNode, TensorRef, ownNodeCount } from './types';

/**
 * Classes with exactly one output tensor: a reference to their tensor 1 makes tfjs read an
 * undefined tensor ("Cannot read properties of undefined"). Others (RNNs with return_state,
 * custom layers, nested models) may have more, and are left to tfjs.
 */
const SINGLE_OUTPUT = new Set([
  'InputLayer', 'Dense', 'Conv1D', 'Conv2D', 'Conv3D', 'Conv2DTranspose', 'Conv3DTranspose', 'DepthwiseConv2D',
  'SeparableConv1D', 'SeparableConv2D', 'Reshape', 'Permute', 'Flatten', 'Activation', 'Dropout', 'Add', 'Multiply',
  'Concatenate', 'Average', 'Maximum', 'Minimum', 'Subtract', 'BatchNormalization', 'LayerNormalization', 'Embedding',
  'MaxPooling1D', 'MaxPooling2D', 'MaxPooling3D', 'AveragePooling1D', 'AveragePooling2D', 'AveragePooling3D',
  'GlobalAveragePooling1D', 'GlobalAveragePooling2D', 'GlobalMaxPooling1D', 'GlobalMaxPooling2D', 'Cropping2D', 'ZeroPadding2D',
]);

function describeRef(ref: TensorRef): string {
  return `["${ref.layer}", ${ref.node}, ${ref.tensor}]`;
}

/** Throws a GraphError naming the first problem found, recursing into nested models. */
export function lintGraph(graph: Graph, path = graph.name): void {
  const byName = new Map<string, LayerNode>();
  for (const layer of graph.layers) {
    if (byName.has(layer.name)) {
      throw new GraphError(`${path}: layer name "${layer.name}" is used twice; layer names must be unique`);
    }
    byName.set(layer.name, layer);
  }
  for (const layer of graph.layers) {
    if (layer.graph) lintGraph(layer.graph, `${path}/${layer.name}`);
  }
  if (graph.kind === 'sequential') return;

  const checkRef = (ref: TensorRef, where: string): LayerNode => {
    const target = byName.get(ref.layer);
    if (!target) {
      throw new GraphError(`${where} references ${describeRef(ref)}, but there is no layer "${ref.layer}" in ${path}`);
    }
    const nodeCount = ownNodeCount(target) + target.calls.length;
    const firstUsable = target.className === 'InputLayer' ? 0 : ownNodeCount(target);
    if (ref.node < firstUsable || ref.node >= nodeCount) {
      const range = nodeCount > firstUsable ? `${firstUsable}..${nodeCount - 1}` : 'none';
      throw new GraphError(
        `${where} references ${describeRef(ref)}, but layer "${ref.layer}" has node indices ${range}`,
      );
    }
    if (ref.tensor !== 0 && SINGLE_OUTPUT.has(target.className)) {
      throw new GraphError(`${where} references ${describeRef(ref)}, but layer "${ref.layer}" (${target.className}) has one output tensor (index 0)`);
    }
    return target;
  };

  for (const layer of graph.layers) {
    if (layer.className === 'InputLayer' && layer.calls.length > 0) {
      throw new GraphError(`${path}/${layer.name}: an InputLayer takes no inbound nodes`);
    }
    layer.calls.forEach((call, i) => {
      if (call.inputs.length === 0) {
        throw new GraphError(`${path}/${layer.name}: inbound node ${i} has no inputs`);
      }
      call.inputs.forEach((ref) => checkRef(ref, `${path}/${layer.name} inbound node ${i}`));
    });
  }
  if (graph.inputs.length === 0) throw new GraphError(`${path}: input_layers is empty`);
  for (const ref of graph.inputs) {
    const target = checkRef(ref, `${path} input_layers`);
    if (target.className !== 'InputLayer') {
      throw new GraphError(`${path} input_layers names "${ref.layer}", which is a ${target.className}, not an InputLayer`);
    }
  }
  if (graph.outputs.length === 0) throw new GraphError(`${path}: output_layers is empty`);
  for (const ref of graph.outputs) checkRef(ref, `${path} output_layers`);
  checkAcyclic(graph, byName, path);
}

/** Depth-first search over (layer, node) pairs; a node seen again on the stack is a cycle. */
function checkAcyclic(graph: Graph, byName: Map<string, LayerNode>, path: string): void {
  const done = new Set<string>();
  const onStack = new Set<string>();
  const trail: string[] = [];
  const visit = (layer: LayerNode, node: number): void => {
    const key = `${layer.name}#${node}`;
    if (done.has(key)) return;
    if (onStack.has(key)) {
      throw new GraphError(`${path}: cycle through layers ${[...trail, layer.name].join(' -> ')}`);
    }
    const callIndex = node - ownNodeCount(layer);
    if (callIndex < 0) {
      done.add(key);
      return;
    }
    onStack.add(key);
    trail.push(layer.name);
    for (const ref of layer.calls[callIndex].inputs) visit(byName.get(ref.layer)!, ref.node);
    trail.pop();
    onStack.delete(key);
    done.add(key);
  };
  for (const layer of graph.layers) {
    layer.calls.forEach((_, i) => visit(layer, i + ownNodeCount(layer)));
  }
}
