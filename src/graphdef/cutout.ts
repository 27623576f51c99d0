/**
 * The GraphDef cut-out of a candidate (src/formats/cutout.ts): the nodes the candidate's rewrite
 * would replace, the Consts they read (through Identity) and one Placeholder for the other input,
 * as a graph model of their own; and the same after the rules. A cut-out needs a static input
 * shape beyond the batch.
 */
import type { CutOut } from '../formats/cutout';
import { attr } from './attrs';
import type { GraphDefCandidate } from './driver';
import { graphDefLookups, runGraphDefPasses } from './driver';
import { GraphModelIR, GraphNode, GraphWeight, artifactsFromGraphIR, float32Weight, parseTensorName } from './ir';
import type { GraphDefPass } from './pass';

/** Replaces the values of the Consts a cut-out copies (the exact check's integer weights). */
export type ConstOverride = (node: GraphNode, weight: GraphWeight) => GraphWeight;

/** The cut-out of `candidate` (run through `passes`, the whole pipeline), or why there is none. */
export function graphDefCutOut(candidate: GraphDefCandidate, passes: GraphDefPass[], override?: ConstOverride): CutOut | string {
  const { layer: node, pass, plan, context } = candidate;
  const { ir } = context;
  const region = pass.rewrite(node, plan, { ...context, freshName: (base) => `${base}/cutout` }).remove;
  const inRegion = new Set(region);
  const nodes: GraphNode[] = [];
  const weights: GraphWeight[] = [];
  const inputs: Record<string, unknown> = {};
  const added = new Set<string>();
  const feeds = new Map<string, string>();
  let shape: number[] | string | undefined;
  // Consts (through Identity) are copied; any other outside tensor becomes a Placeholder.
  const outside = (tensor: string): string | undefined => {
    const ref = parseTensorName(tensor);
    if (ref.control) return undefined;
    let source = context.node(ref.node);
    const chain: GraphNode[] = [];
    while (source?.op === 'Identity') {
      chain.push(source);
      source = context.node(parseTensorName(source.input[0]).node);
    }
    if (source?.op === 'Const' && ref.index === 0) {
      for (const n of [source, ...chain.reverse()]) {
        if (added.has(n.name)) continue;
        added.add(n.name);
        nodes.push({ ...n, input: n.input.filter((i) => !i.startsWith('^')) });
        const weight = context.weight(n.name);
        if (weight) weights.push(override ? override(n, weight) : weight);
      }
      return tensor;
    }
    if (!feeds.has(tensor)) {
      const known = context.shapes.of(tensor);
      if ('unknown' in known) return undefined;
      // One input, static beyond the batch: what a timer or the exact check can feed.
      if (feeds.size === 1) shape = 'more than one input';
      else if (known.dims.slice(1).some((d) => d === null)) shape = `input ${tensor} has shape ${JSON.stringify(known.dims)}, not static beyond the batch`;
      else shape = known.dims.slice(1) as number[];
      const name = `cutout_input_${feeds.size}`;
      const dims = known.dims.map((d) => d ?? -1);
      inputs[`${name}:0`] = { name: `${name}:0`, dtype: 'DT_FLOAT', tensorShape: attr.shape(dims).shape };
      nodes.push({ name, op: 'Placeholder', input: [], attr: { dtype: attr.type('DT_FLOAT'), shape: attr.shape(dims) }, extra: {} });
      feeds.set(tensor, name);
    }
    return feeds.get(tensor);
  };
  for (const name of region) {
    const original = context.node(name)!;
    const input: string[] = [];
    for (const tensor of original.input) {
      if (inRegion.has(parseTensorName(tensor).node)) input.push(tensor);
      else {
        const mapped = outside(tensor);
        if (mapped === undefined && !tensor.startsWith('^')) return `input ${tensor} of ${name} has no static shape`;
        if (mapped !== undefined) input.push(mapped);
      }
    }
    nodes.push({ ...original, input });
  }
  if (typeof shape === 'string') return shape;
  if (shape === undefined) return 'the op reads no tensor but Consts';
  // A rule may ask to be timed on part of a huge input (a 256^3 volume): the one input shrinks.
  const part = pass.timingInput?.(node, shape, plan);
  const cutOutOf = part && part.join(',') !== shape.join(',') ? shape : undefined;
  if (part && cutOutOf) {
    const placeholder = nodes.find((n) => n.op === 'Placeholder')!;
    const dims = [(context.shapes.of([...feeds.keys()][0]) as { dims: (number | null)[] }).dims[0] ?? -1, ...part];
    placeholder.attr = { ...placeholder.attr, shape: attr.shape(dims) };
    inputs[`${placeholder.name}:0`] = { name: `${placeholder.name}:0`, dtype: 'DT_FLOAT', tensorShape: attr.shape(dims).shape };
    shape = part;
  }
  const last = region[region.length - 1];
  nodes.push({ name: 'cutout_output', op: 'Identity', input: [last], attr: { T: attr.type('DT_FLOAT') }, extra: {} });
  const signature = { inputs, outputs: { 'cutout_output:0': { name: 'cutout_output:0', dtype: 'DT_FLOAT' } } };
  const cutIR = (): GraphModelIR => ({
    nodes: nodes.map((n) => ({ ...n, input: [...n.input] })), topologyExtra: { ...ir.topologyExtra },
    weights: [...weights], artifactExtra: { ...ir.artifactExtra, signature }, notes: [],
  });
  const before = cutIR();
  const after = cutIR();
  // No keep hook: `match` alone decides, so a correct match always rewrites here.
  const run = runGraphDefPasses(after, passes, { backend: context.backend });
  if (!run.rewritten.some((r) => r.layer === node.name && r.pass === pass.name)) return `${pass.name} does not rewrite the op on its own (${run.skipped[0]?.reason ?? 'no match'})`;
  const replacement = after.nodes.filter((n) => n.op !== 'Placeholder' && n.op !== 'Const' && n.name !== 'cutout_output').map((n) => n.op);
  return { format: 'graphdef', layer: node.name, className: node.op, shape, calls: 1, original: artifactsFromGraphIR(before), rewritten: artifactsFromGraphIR(after), replacement, pass: pass.name, ...(cutOutOf ? { cutOutOf } : {}) };
}

/** The Const behind `tensor`, through Identity and ExpandDims (a Conv1D's filter). */
function constBehind(context: GraphDefCandidate['context'], tensor: string): GraphNode | undefined {
  let node = context.node(parseTensorName(tensor).node);
  for (let hops = 0; node && (node.op === 'Identity' || node.op === 'ExpandDims') && hops < 8; hops++) node = context.node(parseTensorName(node.input[0]).node);
  return node?.op === 'Const' ? node : undefined;
}

/**
 * The exact check's subject for a GraphDef candidate (src/verify/exact.ts), captured before the
 * rewrite: lookups over a snapshot of the graph; the conv's filter Const refilled with kernel
 * integers, every other float Const it reads (its bias) with bias integers. A fused activation
 * stays: it is the same op on the same exact integers on both sides.
 */
export function graphDefExactSubject(candidate: GraphDefCandidate, passes: GraphDefPass[]) {
  const frozen: GraphModelIR = { ...candidate.context.ir, nodes: [...candidate.context.ir.nodes], weights: [...candidate.context.ir.weights], notes: [] };
  const snapshot: GraphDefCandidate = { ...candidate, context: { ...candidate.context, ...graphDefLookups(frozen) } };
  const filter = candidate.layer.input[1] === undefined ? undefined : constBehind(snapshot.context, candidate.layer.input[1]);
  const spec = filter && snapshot.context.weight(filter.name)?.spec;
  const size = spec ? spec.shape.reduce((a, b) => a * b, 1) : 0;
  const filters = spec?.shape[spec.shape.length - 1] ?? 1;
  const isFloat = (w: GraphWeight) => w.spec.dtype === 'float32';
  return {
    layer: candidate.layer.name,
    graph: candidate.graph,
    pass: candidate.pass.name,
    patch: spec && size > 0 ? size / filters : `no filter Const behind ${candidate.layer.input[1]}`,
    hasBias: candidate.layer.op === '_FusedConv2D' || (snapshot.context.consumers(candidate.layer.name).some((n) => n.op === 'BiasAdd')),
    cutOuts: async (fill: (role: 'kernel' | 'bias', count: number) => Float32Array) => {
      const override = (node: GraphNode, weight: GraphWeight) => (isFloat(weight)
        ? float32Weight(weight.spec.name, weight.spec.shape, fill(node.name === filter?.name ? 'kernel' : 'bias', weight.spec.shape.reduce((a, b) => a * b, 1)))
        : weight);
      const cut = graphDefCutOut(snapshot, passes, override);
      return typeof cut === 'string' ? cut : [cut];
    },
  };
}
