/**
 * Where to tap each model for the per-layer check: the input and output of every call of a
 * rewritten conv in the original, and the tensors holding the conv's outputs in the rewritten
 * model. One probe model per side (`tf.model` over the same layers, with the taps as extra
 * outputs) yields the model outputs and all taps in a single forward pass.
 *
 * Limitation: the reference is computed from the original's captured input. When a conv upstream
 * of this one was rewritten too, the replacement sees that layer's (slightly different) output,
 * and its measured error includes the upstream difference.
 */
import * as tf from '@tensorflow/tfjs';
import type { BrowserSession, Values } from '../browser/session';
import { ConvSpec, convSpecOf } from './reference';

/** The rewritten layer and the layers that replaced it (RewriteRecord-compatible). */
export interface RewrittenLayer {
  layer: string;
  /** Path of the model holding the layer; nested when it contains "/". */
  graph?: string;
  replacement: string[];
  /** Other layers that rewrite removed (see RewriteRecord). */
  absorbed?: string[];
  /** Absorbed layers whose output is now held in depth pieces (see RewriteRecord). */
  pieces?: Record<string, { layer: string; node: number }[]>;
}

/** Taps of one rewritten conv: its input and output per call, and the replacement's outputs. */
export interface LayerProbe {
  layer: string;
  replacement: string[];
  spec: ConvSpec;
  /** Per call of the conv in the original: tap indices of its input and output. */
  original: { input: number; output: number }[];
  /**
   * Tap indices (rewritten model) of the tensors that now hold the conv's outputs; an array:
   * the depth pieces that hold it (RewriteRecord.pieces), joined along depth.
   */
  rewritten: (number | number[])[];
  /**
   * Per entry of `rewritten`, the tap of the tensor its replacement reads in the rewritten model
   * (the conv's input there), when found: the replacement is then measured against the float64
   * conv of its own input, so differences coming from upstream layers do not count against it.
   * An array: taps of the input's depth pieces, joined along depth (a replacement that reads
   * its input in pieces, RewriteRecord.pieces).
   */
  rewrittenInputs?: (number | number[])[];
}

/** A model plus the symbolic tensors it must yield: its outputs first, then the taps. */
export class ProbeModel {
  readonly tensors: tf.SymbolicTensor[] = [];
  /** Tap index of each model output (a model may list one tensor twice). */
  readonly outputs: number[];
  private probe: tf.LayersModel | null = null;

  constructor(readonly base: tf.LayersModel) {
    this.outputs = base.outputs.map((t) => this.tap(t));
  }

  /** Registers a tensor to yield; returns its index (model outputs are 0..outputs.length-1). */
  tap(tensor: tf.SymbolicTensor): number {
    if (this.probe) throw new Error('taps must be registered before the first run');
    const at = this.tensors.findIndex((t) => t.id === tensor.id);
    if (at >= 0) return at;
    this.tensors.push(tensor);
    return this.tensors.length - 1;
  }

  /** One forward pass on `inputs`; returns one tensor per registered tap (the caller disposes). */
  run(inputs: tf.Tensor[]): tf.Tensor[] {
    const isInput = (t: tf.SymbolicTensor) => this.base.inputs.findIndex((input) => input.id === t.id);
    const internal = this.tensors.filter((t) => isInput(t) < 0);
    // Same layers, more outputs: never dispose it (that would dispose the base's weights).
    this.probe ??= internal.length === this.base.outputs.length && this.outputs.every((i, o) => i === o)
      ? this.base
      : tf.model({ inputs: this.base.inputs, outputs: internal, name: `${this.base.name}_probe` });
    const result = this.probe.predict(inputs, { batchSize: inputs[0].shape[0] || 1 }) as tf.Tensor | tf.Tensor[];
    const produced = Array.isArray(result) ? result : [result];
    return this.tensors.map((t) => (isInput(t) >= 0 ? inputs[isInput(t)].clone() : produced[internal.indexOf(t)]));
  }

  /** The values of every tap for one batch (`inputs` as tensors here; a staged id in a page). */
  async values(inputs: tf.Tensor[] | string): Promise<Values> {
    if (typeof inputs === 'string') throw new Error('a Node probe model takes tensors');
    const tensors = this.run(inputs);
    try {
      return await Promise.all(tensors.map(async (t) => ({ data: await t.data() as Float32Array, shape: t.shape })));
    } finally {
      tf.dispose(tensors);
    }
  }
}

/**
 * The same taps computed in a browser page: the Node copy of the model plans the taps (its
 * structure and weights are the page's), the page's copy computes them on its backend.
 */
export class PageProbeModel extends ProbeModel {
  constructor(base: tf.LayersModel, private readonly session: BrowserSession, private readonly id: string) {
    super(base);
  }

  override async values(inputs: tf.Tensor[] | string): Promise<Values> {
    if (typeof inputs !== 'string') throw new Error('a page probe model takes staged inputs');
    // A model input is named by position: a Sequential's implicit InputLayer is not among its layers.
    const taps = this.tensors.map((t) => {
      const input = this.base.inputs.findIndex((i) => i.id === t.id);
      return input >= 0 ? { layer: '', node: -1, tensor: input } : { layer: t.sourceLayer.name, node: t.nodeIndex, tensor: t.tensorIndex };
    });
    return this.session.run(this.id, inputs, taps);
  }
}

const isConv = (layer: tf.layers.Layer) => /^Conv[123]D(Transpose)?$/.test(layer.getClassName());

/** The layer `name` inside the nested model at `graph` ("outer/inner/..."), if any. */
function nestedLayer(model: tf.LayersModel, graph: string, name: string): tf.layers.Layer | undefined {
  let current: tf.layers.Layer | undefined = model;
  for (const part of [...graph.split('/').slice(1), name]) {
    current = current instanceof tf.LayersModel ? current.layers.find((l) => l.name === part) : undefined;
  }
  return current;
}

const single = (value: tf.SymbolicTensor | tf.SymbolicTensor[]) => (Array.isArray(value) ? value[0] : value);

/**
 * Taps for every rewritten conv, or a note saying why a conv has none.
 *
 * Later passes may rewrite the replacement again (fold the views before it into the Dense kernel,
 * drop a final reshape), so the conv's own input need not exist in the rewritten model. What
 * does exist is the conv's output, up to a reshape: it is what the rest of the model consumes.
 * Its descendants are found by following the records transitively; the tensors they produce that
 * none of them consumes are the conv's outputs (one per call), compared element for element in C
 * order with the float64 conv of the original's captured input.
 */
export function planProbes(
  records: RewrittenLayer[], original: ProbeModel, rewritten: ProbeModel,
): { probes: LayerProbe[]; notes: string[] } {
  const probes: LayerProbe[] = [];
  const notes: string[] = [];
  const present = new Map(rewritten.base.layers.map((l) => [l.name, l]));
  // Layers whose output a later replacement reads in depth pieces: the tensors holding it.
  const piecesOf = new Map<string, tf.SymbolicTensor[]>();
  for (const [name, refs] of records.flatMap((r) => Object.entries(r.pieces ?? {}))) {
    const tensors = refs.map((p) => present.get(p.layer)?.getOutputAt(p.node));
    if (tensors.every((t) => t !== undefined && !Array.isArray(t))) piecesOf.set(name, tensors as tf.SymbolicTensor[]);
  }
  for (const record of records) {
    const conv = original.base.layers.find((l) => l.name === record.layer);
    // Records of later passes (views, the replacement itself) are followed below, not checked.
    if (!conv || !isConv(conv)) {
      const nested = !conv && record.graph?.includes('/') ? nestedLayer(original.base, record.graph, record.layer) : undefined;
      if (nested && isConv(nested)) {
        notes.push(`per-layer reference not available for nested layer ${record.graph}/${record.layer} (the end-to-end comparison still covers it)`);
      }
      continue;
    }
    // A clean-up pass may rewrite the replacement's last layer, which carries the conv's name: one probe per conv.
    if (probes.some((probe) => probe.layer === record.layer)) continue;
    const unavailable = (why: string) => notes.push(`per-layer reference not available for ${record.layer}: ${why}`);
    const spec = convSpecOf(conv);
    if ('unavailable' in spec) {
      unavailable(spec.unavailable);
      continue;
    }
    const descendants = new Set(record.replacement);
    let foldedInto: string | undefined;
    for (const later of records.slice(records.indexOf(record) + 1)) {
      // Rewriting part of the replacement keeps that part's outputs (what it absorbed fed it).
      if (descendants.has(later.layer)) {
        later.replacement.forEach((name) => descendants.add(name));
        continue;
      }
      if (!later.absorbed?.some((name) => descendants.has(name))) continue;
      // A Reshape that absorbed part of the replacement (merged reshapes) holds the conv's output
      // up to a reshape (if it is gone too, a later record says where); anything else (a Dense
      // whose kernel rows now undo the conv's output Permute) means that output is no tensor now.
      // A conv that absorbed it reads its output in depth pieces (sliding-conv-layers.ts): they hold it.
      if (later.pieces?.[record.layer] && piecesOf.has(record.layer)) continue;
      const absorber = present.get(later.layer);
      if (!later.pieces?.[record.layer] && (!absorber || absorber.getClassName() === 'Reshape')) descendants.add(later.layer);
      else foldedInto ??= later.layer;
    }
    if (foldedInto !== undefined) {
      unavailable(`its output was folded into ${foldedInto} (the end-to-end comparison still covers it)`);
      continue;
    }
    const outputPieces = conv.inboundNodes.length === 1 ? piecesOf.get(record.layer) : undefined;
    const layers = [...descendants].map((name) => present.get(name)).filter((l): l is tf.layers.Layer => l !== undefined);
    const consumed = new Set<number>();
    const produced: tf.SymbolicTensor[] = [];
    for (const layer of layers) {
      layer.inboundNodes.forEach((_, i) => {
        const inputs = layer.getInputAt(i);
        (Array.isArray(inputs) ? inputs : [inputs]).forEach((t) => consumed.add(t.id));
        produced.push(single(layer.getOutputAt(i) as tf.SymbolicTensor));
      });
    }
    const ends: (tf.SymbolicTensor | tf.SymbolicTensor[])[] = outputPieces ? [outputPieces] : produced.filter((t) => !consumed.has(t.id));
    if (ends.length !== conv.inboundNodes.length) {
      unavailable(`found ${ends.length} replacement output(s) for ${conv.inboundNodes.length} call(s) among ${[...descendants].join(', ')}`);
      continue;
    }
    const perRow = (t: tf.SymbolicTensor | tf.SymbolicTensor[]): number =>
      Array.isArray(t) ? t.reduce((n, piece) => n + perRow(piece), 0) : t.shape.slice(1).reduce((a: number, b) => a * (b ?? NaN), 1);
    const convOut = single(conv.getOutputAt(0) as tf.SymbolicTensor);
    if (ends.some((t) => perRow(t) !== perRow(convOut))) {
      unavailable(`replacement outputs ${ends.map((t) => JSON.stringify(Array.isArray(t) ? t.map((p) => p.shape) : t.shape)).join(', ')} do not hold the conv's ${JSON.stringify(convOut.shape)}`);
      continue;
    }
    // The input it reads in the rewritten model: depth pieces when it absorbed them, else found by walking back.
    const inputPieces = piecesOf.get(single(conv.getInputAt(0) as tf.SymbolicTensor).sourceLayer.name);
    const found = record.pieces && inputPieces && ends.length === 1 ? [inputPieces] : ends.map((end) => ownInput(Array.isArray(end) ? end : [end], layers, conv));
    // Measured against the original's input, it would count every upstream difference as its own.
    if (found.some((t) => t === 'several')) {
      unavailable('its replacement reads its input in depth pieces that no rewrite record names (the end-to-end comparison still covers it)');
      continue;
    }
    const inputs = found as (tf.SymbolicTensor | tf.SymbolicTensor[] | undefined)[];
    const tapOf = (t: tf.SymbolicTensor | tf.SymbolicTensor[]) => (Array.isArray(t) ? t.map((piece) => rewritten.tap(piece)) : rewritten.tap(t));
    probes.push({
      layer: record.layer,
      replacement: layers.map((l) => l.name),
      spec,
      original: conv.inboundNodes.map((_, i) => ({
        input: original.tap(single(conv.getInputAt(i) as tf.SymbolicTensor)),
        output: original.tap(single(conv.getOutputAt(i) as tf.SymbolicTensor)),
      })),
      rewritten: ends.map(tapOf),
      ...(inputs.every((t) => t !== undefined) ? { rewrittenInputs: inputs.map((t) => tapOf(t!)) } : {}),
    });
  }
  return { probes, notes };
}

/**
 * The one tensor outside the replacement `layers` that replacement output `ends` (one tensor or
 * its depth pieces) is computed from, if it is the rewritten model's copy of one of the conv's
 * inputs: produced by the layer of the same name, node and index, of the same shape. Several
 * such tensors: 'several' (depth pieces no record names). Anything else (a replacement that
 * absorbed an upstream view) gives undefined.
 */
function ownInput(ends: tf.SymbolicTensor[], layers: tf.layers.Layer[], conv: tf.layers.Layer): tf.SymbolicTensor | 'several' | undefined {
  const inside = new Set(layers);
  const external = new Map<number, tf.SymbolicTensor>();
  const seen = new Set<number>();
  const stack = [...ends];
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t.id)) continue;
    seen.add(t.id);
    if (!inside.has(t.sourceLayer)) {
      external.set(t.id, t);
      continue;
    }
    const inputs = t.sourceLayer.getInputAt(t.nodeIndex);
    stack.push(...(Array.isArray(inputs) ? inputs : [inputs]));
  }
  if (external.size !== 1) return external.size > 1 ? 'several' : undefined;
  const [input] = external.values();
  const same = conv.inboundNodes.some((_, i) => {
    const x = single(conv.getInputAt(i) as tf.SymbolicTensor);
    return x.sourceLayer.name === input.sourceLayer.name && x.nodeIndex === input.nodeIndex && x.tensorIndex === input.tensorIndex &&
      JSON.stringify(x.shape.slice(1)) === JSON.stringify(input.shape.slice(1));
  });
  return same ? input : undefined;
}

/**
 * When verify() is given two models rather than an optimize() run: a layer of the original
 * that is gone from the rewritten model, whose replacement is every new layer named after it
 * (the pass names them `<layer>_...`).
 */
export function inferRewrittenLayers(original: tf.LayersModel, rewritten: tf.LayersModel): RewrittenLayer[] {
  const after = new Map(rewritten.layers.map((l) => [l.name, l]));
  const fresh = rewritten.layers.map((l) => l.name).filter((name) => !original.layers.some((l) => l.name === name));
  // The pass hands the conv's name to the layer that now produces its output (a Dense or view).
  const renamed = (l: tf.layers.Layer) => after.get(l.name)?.getClassName() !== l.getClassName();
  return original.layers
    .filter((l) => isConv(l) && renamed(l))
    .map((l) => ({
      layer: l.name,
      replacement: [...fresh.filter((name) => name.startsWith(`${l.name}_`)), ...(after.has(l.name) ? [l.name] : [])],
    }))
    .filter((r) => r.replacement.length > 0);
}
