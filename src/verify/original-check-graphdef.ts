/**
 * The conv-family ops of a graph model as subjects of the check of the original
 * (original-check.ts): every op tfjs-converter 4.22 runs as a convolution (its
 * convolution_executor: Conv2D, _FusedConv2D, DepthwiseConv2dNative, FusedDepthwiseConv2dNative,
 * Conv2DBackpropInput, Conv3D) with a static input, cut out alone as a graph model of its own:
 * a Placeholder cropped small, the filter (and bias) as integer Consts, the op with its attrs
 * (a fused activation dropped: integer sums stay exact), and its float64 reference from the
 * same attrs (reference.ts; a depthwise filter as the dense kernel it stands for).
 */
import type { io } from '@tensorflow/tfjs';
import { Attrs, attr, readInts, readString, readStrings } from '../graphdef/attrs';
import { MAIN_GRAPH } from '../graphdef/driver';
import { GraphModelIR, GraphNode, GraphWeight, artifactsFromGraphIR, float32Weight, int32Weight } from '../graphdef/ir';
import { GraphShapes } from '../graphdef/shapes';
import type { OriginalProbe, OriginalSubject } from './original-check';
import { croppedSpatial } from './original-check';
import { ConvSpec, convReference } from './reference';

type Kind = 'conv' | 'depthwise' | 'transposed';

/** The ops, with the input that carries the image (the filter is input 1 of each). */
const OPS: Record<string, { x: number; kind: Kind }> = {
  Conv2D: { x: 0, kind: 'conv' },
  _FusedConv2D: { x: 0, kind: 'conv' },
  Conv3D: { x: 0, kind: 'conv' },
  DepthwiseConv2dNative: { x: 0, kind: 'depthwise' },
  FusedDepthwiseConv2dNative: { x: 0, kind: 'depthwise' },
  Conv2DBackpropInput: { x: 2, kind: 'transposed' },
};

const isFused = (op: string) => op.startsWith('_Fused') || op.startsWith('Fused');

/** The op's geometry from its attrs and static shapes, or undefined when it has none to check. */
interface Geometry {
  kind: Kind;
  rank: number;
  channelsFirst: boolean;
  kernel: number[];
  strides: number[];
  dilation: number[];
  padding: 'valid' | 'same';
  explicit?: [number, number][];
  /** Image channels in, outputs per position (F, or C*M for a depthwise filter). */
  channels: number;
  filters: number;
  filterShape: number[];
  bias: boolean;
  /** The probe's input (no batch); a transposed conv's output size and leading crop on it. */
  shape: number[];
  transposed?: { out: number[]; padBefore: number[] };
}

const staticDims = (shapes: GraphShapes, tensor: string | undefined): number[] | undefined => {
  if (tensor === undefined) return undefined;
  const known = shapes.of(tensor);
  return 'dims' in known && known.dims.every((d) => d !== null) ? (known.dims as number[]) : undefined;
};

function geometryOf(node: GraphNode, shapes: GraphShapes): Geometry | undefined {
  const op = OPS[node.op];
  const filterShape = staticDims(shapes, node.input[1]);
  const inputKnown = node.input[op.x] === undefined ? undefined : shapes.of(node.input[op.x]);
  if (!filterShape || !inputKnown || !('dims' in inputKnown)) return undefined;
  const dims = inputKnown.dims;
  if (dims.slice(1).some((d) => d === null)) return undefined;
  const rank = filterShape.length - 2;
  if (dims.length !== rank + 2) return undefined;
  const channelsFirst = (readString(node.attr, 'data_format') ?? '').startsWith('NC');
  const spatialOf = <T>(list: T[]) => (channelsFirst ? list.slice(2) : list.slice(1, rank + 1));
  const ones = new Array(rank + 2).fill(1);
  const strides = spatialOf(readInts(node.attr, 'strides') ?? ones);
  // tfjs's conv2dTranspose takes no dilation (and TF's Conv2DBackpropInput requires 1).
  const dilation = op.kind === 'transposed' ? new Array(rank).fill(1) : spatialOf(readInts(node.attr, 'dilations') ?? ones);
  const paddingName = readString(node.attr, 'padding') ?? 'VALID';
  let explicit: [number, number][] | undefined;
  if (paddingName === 'EXPLICIT') {
    const pads = readInts(node.attr, 'explicit_paddings');
    if (!pads || pads.length !== 2 * (rank + 2) || op.kind === 'transposed') return undefined;
    explicit = spatialOf(Array.from({ length: rank + 2 }, (_, i) => [pads[2 * i], pads[2 * i + 1]] as [number, number]));
  } else if (paddingName !== 'SAME' && paddingName !== 'VALID') {
    return undefined;
  }
  const padding = paddingName === 'SAME' ? 'same' : 'valid';
  const fusedOps = isFused(node.op) ? readStrings(node.attr, 'fused_ops') ?? [] : [];
  // A fused BatchNorm is not run by tfjs at all (the model fails to load or run, not a finding here).
  if (fusedOps.length && fusedOps[0] !== 'BiasAdd') return undefined;
  const kernel = filterShape.slice(0, rank);
  const [inChannels, perFilter] = filterShape.slice(rank);
  const spatial = spatialOf(dims) as number[];
  const channels = (channelsFirst ? dims[1] : dims[rank + 1]) as number;
  const cropped = croppedSpatial(spatial, { kernel, strides, dilation, padding, transposed: op.kind === 'transposed' });
  const shape = channelsFirst ? [channels, ...cropped] : [...cropped, channels];
  const base = { kind: op.kind, rank, channelsFirst, kernel, strides, dilation, padding, explicit, filterShape, bias: fusedOps[0] === 'BiasAdd', shape } as const;
  if (op.kind === 'depthwise') return { ...base, channels, filters: inChannels * perFilter };
  if (op.kind === 'conv') return { ...base, channels, filters: perFilter };
  // Conv2DBackpropInput: filter [...k, F, C]; its output size keeps the original's remainder over the stride.
  const outDims = staticDims(shapes, node.name);
  if (!outDims || channelsFirst) return undefined;
  const out = outDims.slice(1, rank + 1);
  const probeOut = cropped.map((h, a) => {
    const first = (spatial[a] - 1) * strides[a] + (padding === 'valid' ? kernel[a] : 0);
    return (h - 1) * strides[a] + (padding === 'valid' ? kernel[a] : 0) + (out[a] - first);
  });
  const padBefore = probeOut.map((o, a) => (padding === 'same' ? Math.floor(Math.max((cropped[a] - 1) * strides[a] + kernel[a] - o, 0) / 2) : 0));
  return { ...base, channels: perFilter, filters: inChannels, transposed: { out: probeOut, padBefore } };
}

const F32 = attr.type('DT_FLOAT');
const constNode = (name: string, dtype: string, dims: number[]): GraphNode => ({
  name, op: 'Const', input: [], attr: { dtype: attr.type(dtype), value: attr.tensor(dtype, dims) }, extra: {},
});

/** The op alone as a graph model: x -> op (integer filter and bias Consts) -> output. */
function probeArtifacts(ir: GraphModelIR, node: GraphNode, g: Geometry, kernel: Float32Array, bias: Float32Array | undefined, rows: number): io.ModelArtifacts {
  const xDims = [-1, ...g.shape];
  const nodes: GraphNode[] = [
    { name: 'x', op: 'Placeholder', input: [], attr: { dtype: F32, shape: attr.shape(xDims) }, extra: {} },
    constNode('filter', 'DT_FLOAT', g.filterShape),
  ];
  const weights: GraphWeight[] = [float32Weight('filter', g.filterShape, kernel)];
  let inputs = ['x', 'filter'];
  const attrs: Attrs = { ...node.attr };
  if (isFused(node.op)) {
    // The bias stays (a backend could add it wrong); the activation goes (integer sums stay exact).
    Object.assign(attrs, { fused_ops: attr.strs(bias ? ['BiasAdd'] : []), num_args: attr.int(bias ? 1 : 0) });
    if (bias) {
      nodes.push(constNode('bias', 'DT_FLOAT', [g.filters]));
      weights.push(float32Weight('bias', [g.filters], bias));
      inputs.push('bias');
    }
  }
  if (g.transposed) {
    const sizes = [rows, ...g.transposed.out, g.filters];
    nodes.push(constNode('input_sizes', 'DT_INT32', [sizes.length]));
    weights.push(int32Weight('input_sizes', sizes));
    inputs = ['input_sizes', 'filter', 'x'];
  }
  nodes.push({ name: 'conv', op: node.op, input: inputs, attr: attrs, extra: {} }, { name: 'output', op: 'Identity', input: ['conv'], attr: { T: F32 }, extra: {} });
  const signature = {
    inputs: { 'x:0': { name: 'x:0', dtype: 'DT_FLOAT', tensorShape: attr.shape(xDims).shape } },
    outputs: { 'output:0': { name: 'output:0', dtype: 'DT_FLOAT' } },
  };
  return artifactsFromGraphIR({ nodes, weights, topologyExtra: { ...ir.topologyExtra }, artifactExtra: { format: 'graph-model', signature }, notes: [] });
}

/** The float64 reference's spec; a depthwise filter [...k, C, M] becomes the dense [...k, C, C*M] it stands for. */
function specOf(g: Geometry, kernel: Float32Array, bias: Float32Array | undefined): ConvSpec {
  let dense = Float64Array.from(kernel);
  if (g.kind === 'depthwise') {
    const [C, M] = g.filterShape.slice(g.rank);
    const taps = g.kernel.reduce((a, b) => a * b, 1);
    dense = new Float64Array(taps * C * C * M);
    for (let t = 0; t < taps; t++) for (let c = 0; c < C; c++) for (let m = 0; m < M; m++) dense[(t * C + c) * C * M + c * M + m] = kernel[(t * C + c) * M + m];
  }
  return {
    rank: g.rank, kernelSize: g.kernel, strides: g.strides, dilation: g.dilation, padding: g.padding, channelsFirst: g.channelsFirst,
    channels: g.channels, filters: g.filters, kernel: dense, bias: bias ? Float64Array.from(bias) : null,
    activation: (x) => x, activationName: 'linear',
    ...(g.explicit ? { explicitPadding: g.explicit } : {}),
    ...(g.transposed ? { transposed: true, transposedOutput: g.transposed } : {}),
  };
}

/** Every conv-family op of a graph model with static shapes, as a subject of the check. */
export function graphDefSubjects(ir: GraphModelIR): OriginalSubject[] {
  const shapes = new GraphShapes(ir);
  const subjects: OriginalSubject[] = [];
  for (const node of ir.nodes) {
    if (!OPS[node.op]) continue;
    const g = geometryOf(node, shapes);
    if (!g) continue;
    const taps = g.kernel.reduce((a, b) => a * b, 1);
    const { kind, channelsFirst, strides, dilation, padding, explicit, filterShape, bias, shape, transposed } = g;
    subjects.push({
      layer: node.name, graph: MAIN_GRAPH, className: node.op, shape,
      key: JSON.stringify([node.op, kind, channelsFirst, strides, dilation, padding, explicit, filterShape, bias, shape, transposed]),
      // Kernel values summed into one output: a depthwise output reads one channel.
      patch: kind === 'depthwise' ? taps : taps * g.channels,
      probe: (fill, rows): OriginalProbe => {
        const kernel = fill('kernel', filterShape.reduce((a, b) => a * b, 1));
        const biasValues = bias ? fill('bias', g.filters) : undefined;
        const spec = specOf(g, kernel, biasValues);
        return {
          format: 'graphdef',
          artifacts: probeArtifacts(ir, node, g, kernel, biasValues, rows),
          float64: async (input) => convReference(spec, input.data, input.shape.slice(1), input.shape[0]).data,
        };
      },
    });
  }
  return subjects;
}
