/**
 * The per-layer float64 check for graph models: for each rewritten conv op, where to tap both
 * graphs (the conv's input in the original; its output, a node name both graphs share because a
 * replacement keeps the name of the last node it replaces) and the conv's float64 spec (filter,
 * bias, fused activation), so the layers verifier's LayerCheck can judge the replacement.
 */
import type { io } from '@tensorflow/tfjs';
import { ACTIVATIONS, ConvSpec } from './reference';
import type { LayerProbe, RewrittenLayer } from './probes';
import { readInts, readString, readStrings } from '../graphdef/attrs';
import { GraphModelIR, GraphNode, decodeFloatWeight, graphIRFromArtifacts, parseTensorName } from '../graphdef/ir';

/**
 * A probe plus the tensor names to fetch: `input`/`output` in the original, `output` (and the
 * conv's input, when the rewritten graph keeps its node: `rewrittenInput`) in the rewritten.
 */
export interface GraphDefTaps {
  probe: Omit<LayerProbe, 'original' | 'rewritten'>;
  input: string;
  output: string;
  rewrittenInput?: string;
}

const CONV_OPS = new Set(['Conv2D', '_FusedConv2D', 'Conv3D']);

export function planGraphDefTaps(original: io.ModelArtifacts, rewritten: io.ModelArtifacts, records?: RewrittenLayer[]): { probes: GraphDefTaps[]; notes: string[] } {
  const ir = graphIRFromArtifacts(original);
  const kept = new Set(graphIRFromArtifacts(rewritten).nodes.map((n) => n.name));
  const byName = new Map(ir.nodes.map((n) => [n.name, n]));
  const readers = new Map<string, GraphNode[]>();
  for (const node of ir.nodes) for (const i of node.input) readers.set(parseTensorName(i).node, [...(readers.get(parseTensorName(i).node) ?? []), node]);
  // Without records (the verify command), a conv op of the original that is gone was rewritten.
  const rewrittenConvs = records ?? ir.nodes.filter((n) => CONV_OPS.has(n.op) && !kept.has(n.name)).map((n) => ({ layer: n.name, replacement: [] }));
  const probes: GraphDefTaps[] = [];
  const notes: string[] = [];
  for (const record of rewrittenConvs) {
    const conv = byName.get(record.layer);
    if (!conv || !CONV_OPS.has(conv.op)) continue; // not a conv rewrite (a user rule)
    // The chain the replacement took over: conv [-> Squeeze] [-> BiasAdd]; its end is in both graphs.
    const chain = [conv];
    while (!kept.has(chain[chain.length - 1].name)) {
      const next = readers.get(chain[chain.length - 1].name);
      if (!next || next.length !== 1 || !['Squeeze', 'BiasAdd'].includes(next[0].op)) break;
      chain.push(next[0]);
    }
    const output = chain[chain.length - 1];
    if (!kept.has(output.name)) {
      notes.push(`${conv.name}: no float64 check (its output node is not in the rewritten model)`);
      continue;
    }
    const spec = graphConvSpec(ir, byName, conv, chain);
    if ('unavailable' in spec) {
      notes.push(`${conv.name}: no float64 check (${spec.unavailable})`);
      continue;
    }
    const rewrittenInput = kept.has(parseTensorName(spec.input).node) ? { rewrittenInput: spec.input } : {};
    probes.push({ probe: { layer: conv.name, replacement: record.replacement, spec: spec.spec }, input: spec.input, output: output.name, ...rewrittenInput });
  }
  return { probes, notes };
}

/** The float values of the Const behind `tensor` (through Identity), if it is one. */
function constValues(ir: GraphModelIR, byName: Map<string, GraphNode>, tensor: string): { values: Float32Array; shape: number[] } | undefined {
  let node = byName.get(parseTensorName(tensor).node);
  for (let hops = 0; node?.op === 'Identity' && hops < 8; hops++) node = byName.get(parseTensorName(node.input[0]).node);
  const weight = node?.op === 'Const' ? ir.weights.find((w) => w.spec.name === node!.name) : undefined;
  return weight && weight.spec.dtype === 'float32' ? { values: decodeFloatWeight(weight), shape: weight.spec.shape } : undefined;
}

function graphConvSpec(ir: GraphModelIR, byName: Map<string, GraphNode>, conv: GraphNode, chain: GraphNode[]): { spec: ConvSpec; input: string } | { unavailable: string } {
  const data = conv.input.filter((i) => !i.startsWith('^'));
  const filter = constValues(ir, byName, data[1] ?? '');
  if (!filter) return { unavailable: 'the filter is not a float Const' };
  const expand = byName.get(parseTensorName(data[0]).node);
  // The converter's Conv1D: ExpandDims -> Conv2D (filter [1, k, C, F]) -> Squeeze, a rank-1 conv of x.
  const conv1d = chain.some((n) => n.op === 'Squeeze') && expand?.op === 'ExpandDims';
  const opRank = conv.op === 'Conv3D' ? 3 : 2;
  const rank = conv1d ? 1 : opRank;
  const axes = (values: number[]) => values.slice(1 + opRank - rank, opRank + 1);
  const strides = readInts(conv.attr, 'strides');
  const dilations = readInts(conv.attr, 'dilations') ?? new Array(opRank + 2).fill(1);
  const padding = (readString(conv.attr, 'padding') ?? '').toLowerCase();
  if (!strides || (padding !== 'valid' && padding !== 'same')) return { unavailable: `strides/padding ${padding}` };
  const fused = conv.op === '_FusedConv2D' ? readStrings(conv.attr, 'fused_ops') ?? [] : [];
  const biasAdd = chain.find((n) => n.op === 'BiasAdd');
  const biasTensor = fused[0] === 'BiasAdd' ? data[2] : biasAdd?.input[1];
  const bias = biasTensor === undefined ? undefined : constValues(ir, byName, biasTensor);
  if (biasTensor !== undefined && !bias) return { unavailable: 'the bias is not a float Const' };
  const activationName = (fused[1] ?? 'linear').toLowerCase();
  const alpha = conv.attr.leakyrelu_alpha?.f;
  const activation = activationName === 'leakyrelu' ? (x: number) => (x > 0 ? x : Number(alpha ?? 0.2) * x) : ACTIVATIONS[activationName];
  if (!activation) return { unavailable: `fused activation ${fused[1]}` };
  const shape = filter.shape;
  return {
    input: conv1d ? expand!.input[0] : data[0],
    spec: {
      rank,
      kernelSize: shape.slice(opRank - rank, opRank),
      strides: axes(strides),
      dilation: axes(dilations),
      padding,
      channelsFirst: false,
      channels: shape[opRank],
      filters: shape[opRank + 1],
      kernel: Float64Array.from(filter.values),
      bias: bias ? Float64Array.from(bias.values) : null,
      activation,
      activationName,
    },
  };
}
