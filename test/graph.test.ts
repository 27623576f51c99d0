/** The IR's JSON boundary and reference checks, on hand-written topologies. */
import { graphToJson, parseGraph } from '../src/layers/json';
import { lintGraph } from '../src/layers/lint';
import { inferShapes, isUnknown } from '../src/layers/shapes';
import { GraphError } from '../src/layers/types';

const input = (name: string, shape: (number | null)[]) => ({
  name, class_name: 'InputLayer', config: { batch_input_shape: shape, dtype: 'float32', name }, inbound_nodes: [],
});
const dense = (name: string, units: number, from: [string, number, number][][]) => ({
  name, class_name: 'Dense', config: { units, name }, inbound_nodes: from.map((call) => call.map((ref) => [...ref, {}])),
});
const functional = (layers: unknown[], outputs: [string, number, number][]) => ({
  class_name: 'Model',
  config: { name: 'm', layers, input_layers: [['x', 0, 0]], output_layers: outputs },
});

test('a functional topology round-trips', () => {
  const topology = functional([input('x', [null, 4]), dense('d', 3, [[['x', 0, 0]]])], [['d', 0, 0]]);
  expect(graphToJson(parseGraph(topology))).toEqual(topology);
});

test('an old-style Sequential (config is a bare list) round-trips', () => {
  const topology = { class_name: 'Sequential', config: [{ class_name: 'Dense', config: { name: 'd', units: 2, batch_input_shape: [null, 3] } }] };
  const graph = parseGraph(topology);
  expect(graph.kind).toBe('sequential');
  expect(graphToJson(graph)).toEqual(topology);
});

test('a Keras 3 spelling inside a Keras 2 topology is named (parseGraph reads the Keras 2 form only)', () => {
  const topology = functional([input('x', [null, 4]), { ...dense('d', 3, []), inbound_nodes: [{ args: [], kwargs: {} }] }], [['d', 0, 0]]);
  expect(() => parseGraph(topology)).toThrow(/inbound_nodes\[0\]: Keras 3 spelling in a topology that is otherwise not Keras 3/);
});

test('malformed entries name their key path', () => {
  const topology = functional([input('x', [null, 4]), { ...dense('d', 3, [[['x', 0, 0]]]), inbound_nodes: [[['x', 'zero', 0]]] }], [['d', 0, 0]]);
  expect(() => parseGraph(topology)).toThrow('modelTopology.config.layers[1].inbound_nodes[0][0][1]: expected a non-negative integer, got "zero"');
});

describe('lint', () => {
  const lint = (topology: unknown) => () => lintGraph(parseGraph(topology));

  test('a dangling reference (tfjs #7271 would loop forever) is an error', () => {
    expect(lint(functional([input('x', [null, 4]), dense('d', 3, [[['ghost', 0, 0]]])], [['d', 0, 0]])))
      .toThrow(new GraphError('m/d inbound node 0 references ["ghost", 0, 0], but there is no layer "ghost" in m'));
  });

  test('a node index past the calls of a layer is an error', () => {
    expect(lint(functional([input('x', [null, 4]), dense('d', 3, [[['x', 0, 0]]])], [['d', 1, 0]])))
      .toThrow('has node indices 0..0');
  });

  test('a cycle is an error', () => {
    const layers = [input('x', [null, 4]), dense('a', 4, [[['b', 0, 0]]]), dense('b', 4, [[['a', 0, 0]]])];
    expect(lint(functional(layers, [['b', 0, 0]]))).toThrow(/cycle through layers/);
  });

  test('duplicate layer names are an error', () => {
    expect(lint(functional([input('x', [null, 4]), dense('x', 3, [[['x', 0, 0]]])], [['x', 0, 0]]))).toThrow(/used twice/);
  });

  test('a layer applied to its own output is not a cycle', () => {
    const layers = [input('x', [null, 4]), dense('d', 4, [[['x', 0, 0]], [['d', 0, 0]]])];
    expect(lint(functional(layers, [['d', 1, 0]]))).not.toThrow();
  });
});

describe('shape inference', () => {
  test('follows tfjs computeOutputShape through calls, including a reused layer', () => {
    const layers = [input('x', [null, 4]), dense('d', 4, [[['x', 0, 0]], [['d', 0, 0]]]), dense('e', 2, [[['d', 1, 0]]])];
    const shapes = inferShapes(parseGraph(functional(layers, [['e', 0, 0]])));
    expect(shapes.outputs).toEqual([[null, 2]]);
    expect(shapes.callInputs.get('d')).toEqual([[[null, 4]], [[null, 4]]]);
  });

  test('an unknown layer class makes downstream shapes unknown, with the reason', () => {
    const layers = [input('x', [null, 4]), { ...dense('w', 4, [[['x', 0, 0]]]), class_name: 'Wobble' }, dense('e', 2, [[['w', 0, 0]]])];
    const shapes = inferShapes(parseGraph(functional(layers, [['e', 0, 0]])));
    const [call] = shapes.callInputs.get('e')!;
    expect(isUnknown(call) && call.unknown).toMatch(/Wobble/);
  });
});
