/**
 * The layers lowering of conv3d-to-conv2d-slices (the math: sliding-conv.ts). Keras has no
 * layer that merges depth into the batch, so depth is folded into rows: each depth slice
 * becomes a block of rows of one tall image, the blocks separated by the conv's own H padding
 * (zero rows), and one Conv2D per kernel depth i (valid in H, so no window crosses a block) runs
 * on the blocks of the input slices its output depths read: output block j of term i is
 * conv2d(x[j*sd + i*dd], K[i]). A term reading padding only for some output depths runs on the
 * real slices and is zero-padded after; an Add sums the terms. Stock layers only, every tensor
 * rank <= 5, padding on rank 4 (WebGL cannot compile a rank-5 pad), the bias inside one Conv2D
 * (rank 4: WebGPU's rank-5 BiasAdd is wrong), carried by the anchor term, which covers every
 * output depth, so each output gets it once.
 *
 * A big volume runs in chunks of output depths (CHUNK_INDIRECTION_BYTES: XNNPACK keeps a buffer
 * per filter sized by the last image), each chunk the same lowering on the depth slab it reads,
 * the chunks concatenated along depth; the chunks share the Conv2Ds. When the input is itself
 * such a concatenation (the conv before, chunked; depth-pieces.ts), the conv absorbs it: each
 * Conv2D call reads its depth range from the pieces, so between two chunked convs the volume is
 * never one tensor (wasm's 4 GB heap fits a 15-filter 256^3 MeshNet only so: a full-volume
 * tensor needs one free 1 GB run, and the chunk-sized holes between them do not hold it).
 *
 * Measured on wasm (docs/benchmarks.md): XNNPACK Conv2Ds over the tall image; the alternative,
 * TimeDistributed(Conv2D), runs an rnn loop, one depth slice per step.
 *
 * Before:  x [B,8,8,8,4] -> Conv3D(3x3x3 'same', dilation 2, 5 filters, relu) -> y [B,8,8,8,5]
 * After:   x -> Reshape [8,8,32] -> ZeroPadding2D (H: 2 + 2 rows per block)
 *            -> per kernel depth i: Cropping2D (the slices it reads) -> Reshape [n*12,8,4]
 *               -> ZeroPadding2D (W, and rows for the last window) -> Conv2D_i (3x3, dilation 2, 5 filters, valid)
 *               -> Reshape [n,96,5] -> ZeroPadding2D (the output depths it does not reach)
 *            -> Add -> Reshape [8,12,40] -> Cropping2D (separator rows) -> Reshape [8,8,8,5]
 *            -> Activation relu, named y
 */
import type { MatchContext, MatchResult, Pass, Replacement } from '../pass';
import { REPLACED_INPUT } from '../pass';
import { isUnknown } from '../layers/shapes';
import type { Json, JsonObject, LayerNode, TensorRef, Weight } from '../layers/types';
import { fmt } from './conv-analysis';
import { pick } from './config';
import { cutOutSpatial } from './cut-out';
import { DepthPieces, depthPiecesOf, elementwisePieces } from './depth-pieces';
import { DepthChunk, DepthTerm, SlidingGeometry, depthChunk, depthTerms, planSliding, splitDepths } from './sliding-conv';
import { findWeight, renameWeight } from './weights';

export interface SlidingLayersPlan {
  /** One geometry per distinct input shape, with the calls that see it. */
  groups: { calls: number[]; geometry: SlidingGeometry }[];
  channelsFirst: boolean;
  kernel: Weight;
  bias?: Weight;
  /** The input arrives in depth pieces (depth-pieces.ts): each Conv2D call then reads its range of them. */
  pieces?: DepthPieces;
}

function triple(value: Json | undefined, fallback: number): number[] | undefined {
  if (value === undefined || value === null) return [fallback, fallback, fallback];
  if (typeof value === 'number') return [value, value, value];
  if (Array.isArray(value) && value.length === 3 && value.every((v) => typeof v === 'number')) return value as number[];
  return undefined;
}

export function matchSlidingLayer(layer: LayerNode, context: MatchContext): MatchResult<SlidingLayersPlan> {
  const refuse = (refusal: string) => ({ refusal });
  const c = layer.config;
  const kernel = triple(c.kernel_size, NaN);
  const strides = triple(c.strides, 1);
  const dilation = triple(c.dilation_rate, 1);
  if (!kernel || !strides || !dilation) return refuse(`kernel_size ${fmt(c.kernel_size)}, strides ${fmt(c.strides)} or dilation_rate ${fmt(c.dilation_rate)} is not 3 integers`);
  const dataFormat = c.data_format ?? 'channels_last';
  if (dataFormat !== 'channels_last' && dataFormat !== 'channels_first') return refuse(`data_format '${dataFormat}' is not supported`);
  const channelsFirst = dataFormat === 'channels_first';
  // Constraints project weights during training along the Conv3D kernel's axes.
  if (c.kernel_constraint != null || c.bias_constraint != null) return refuse('kernel_constraint/bias_constraint set (no Conv2D equivalent of their axes)');
  // It would see the Conv2D's partial sums, not the conv's output.
  if (c.activity_regularizer != null) return refuse('activity_regularizer set (it would see partial sums)');
  if (typeof c.filters !== 'number') return refuse(`filters ${fmt(c.filters)} is not a number`);
  const filters = c.filters;
  const useBias = c.use_bias !== false;
  const kernelWeight = findWeight(context.ir.weights, layer.name, 'kernel');
  const biasWeight = useBias ? findWeight(context.ir.weights, layer.name, 'bias') : undefined;

  const perCall = context.shapes.callInputs.get(layer.name) ?? [];
  if (perCall.length === 0) return refuse('the layer is never called, so its input shape is unknown');
  const byShape = new Map<string, { calls: number[]; geometry: SlidingGeometry }>();
  for (const [i, shapes] of perCall.entries()) {
    const where = perCall.length > 1 ? ` in call ${i}` : '';
    if (isUnknown(shapes)) return refuse(`input shape${where} is unknown: ${shapes.unknown}`);
    if (shapes.length !== 1) return refuse(`${shapes.length} inputs${where}, a conv takes one`);
    const shape = shapes[0];
    if (shape.length !== 5) return refuse(`input shape ${fmt(shape)}${where} is not rank 5`);
    const dims = shape.slice(1);
    const geometry = planSliding({
      kernel, strides, dilation, padding: typeof c.padding === 'string' ? c.padding : 'valid', groups: typeof c.groups === 'number' ? c.groups : 1,
      filters, spatial: channelsFirst ? dims.slice(1) : dims.slice(0, 3), channels: channelsFirst ? dims[0] : dims[3],
      kernelWeight, bias: useBias ? biasWeight ?? 'missing' : null, owner: layer.name,
    });
    if ('refusal' in geometry) return refuse(geometry.refusal + where);
    const key = fmt(dims);
    const entry = byShape.get(key) ?? { calls: [], geometry };
    entry.calls.push(i);
    byShape.set(key, entry);
  }
  const groups = [...byShape.values()];
  if (groups.some((g) => g.geometry.channels !== groups[0].geometry.channels)) return refuse('calls disagree on the channel count');
  const shape = perCall[0] as number[][];
  const pieces = !channelsFirst && perCall.length === 1 ? depthPiecesOf(context.graph, layer, shape[0].slice(1), context.shapes) : undefined;
  // In a Sequential, the Add of the depth terms makes the graph functional (src/layers/functional.ts).
  return { plan: { groups, channelsFirst, kernel: kernelWeight!, bias: biasWeight, ...(pieces ? { pieces } : {}) } };
}

/** One layer of the chain: class and config (the name is added by the caller). */
type Step = [className: string, config: JsonObject];

/** The layers around one Conv2D: kernel depth i, on the input slices of its output depths. */
export interface TermChain {
  i: number;
  /** This term's Conv2D adds the bias: its range covers every output depth. */
  bias: boolean;
  before: Step[];
  /** The slab depths [lo, hi) it reads, and `before` from that range on (no crop to it). */
  reads: [number, number];
  fromRead: Step[];
  after: Step[];
}

export interface SlidingChain {
  base: Step[];
  terms: TermChain[];
  post: Step[];
}

/**
 * The kernel depth whose Conv2D carries the bias, its range extended (with zero slices) to
 * every output depth: the widest term; without a bias, one only when every term reads padding
 * alone (the output is then zeros, still of the right shape).
 */
export function anchorDepth(g: SlidingGeometry, withBias: boolean): number | undefined {
  const terms = depthTerms(g);
  if (!withBias && terms.length) return undefined;
  return terms.reduce<DepthTerm | undefined>((best, t) => (!best || t.hi - t.lo > best.hi - best.lo ? t : best), undefined)?.i ?? 0;
}

/** The rows a depth slice takes in the tall image (see slidingChain) and its output rows. */
function blockRows(g: SlidingGeometry): { bottom: number; rows: number; Hb: number } {
  const ah = g.axes[1];
  const H = ah.size;
  // The H padding doubles as the zero separator; rounded up to the H stride so every block
  // starts on an output row (Hb output rows per block, the first Ho of them real).
  let bottom = ah.pad[1];
  bottom += (ah.stride - ((H + ah.pad[0] + bottom) % ah.stride)) % ah.stride;
  const rows = H + ah.pad[0] + bottom;
  return { bottom, rows, Hb: rows / ah.stride };
}

/**
 * The chain for one depth slab [D, H, W*C] (the whole input, or a chunk's slab, see
 * chunkedChain), from the H padding to the chunk's output [Do, Ho, Wo*F]; `anchor` from
 * anchorDepth.
 */
export function slidingChain(g: SlidingGeometry, anchor: number | undefined, withBias: boolean, zeroTerms: number[] = []): SlidingChain {
  const [ad, ah, aw] = g.axes;
  const { channels: C, filters: F } = g;
  const [D, W] = [ad.size, aw.size];
  const [sd, Do, Ho, Wo] = [ad.stride, ad.out, ah.out, aw.out];
  const { bottom, rows, Hb } = blockRows(g);
  // A valid conv over n*rows rows gives n*Hb output rows only with these extra zero rows.
  const extraRows = Math.max(0, ah.extent - ah.stride);

  // n blocks [n, rows, W*C] as the Conv2D's image: rows stacked, W padded, the last window's rows.
  const conv2dInput = (n: number): Step[] => [
    ['Reshape', { target_shape: [n * rows, W, C] }],
    ...(extraRows || aw.pad[0] || aw.pad[1] ? [['ZeroPadding2D', { padding: [[0, extraRows], [aw.pad[0], aw.pad[1]]], data_format: 'channels_last' }] as Step] : []),
  ];

  const base: Step[] = [];
  if (ah.pad[0] || bottom) base.push(['ZeroPadding2D', { padding: [[0, 0], [ah.pad[0], bottom]], data_format: 'channels_last' }]);

  const chosen: (DepthTerm & { bias: boolean })[] = depthTerms(g).filter((t) => t.i !== anchor).map((t) => ({ ...t, bias: false }));
  if (anchor !== undefined) chosen.push({ i: anchor, lo: 0, hi: Do, first: anchor * ad.dilation - ad.pad[0], bias: withBias });
  chosen.sort((a, b) => a.i - b.i);
  const terms = chosen.map((t): TermChain => {
    const n = t.hi - t.lo;
    const end = t.first + (sd === 1 ? n : n * sd);
    const before: Step[] = [];
    const crop = [[Math.max(0, t.first), Math.max(0, D - end)], [0, 0]];
    const zeros = [[Math.max(0, -t.first), Math.max(0, end - D)], [0, 0]];
    if (crop[0].some((v) => v)) before.push(['Cropping2D', { cropping: crop, data_format: 'channels_last' }]);
    if (zeros[0].some((v) => v)) before.push(['ZeroPadding2D', { padding: zeros, data_format: 'channels_last' }]);
    if (sd > 1) {
      // Every sd-th slice: [n*sd, ...] -> [n, sd, ...], keep index 0 of the sd axis.
      before.push(['Reshape', { target_shape: [n, sd, rows * W * C] }]);
      before.push(['Cropping2D', { cropping: [[0, 0], [0, sd - 1]], data_format: 'channels_last' }]);
    }
    before.push(...conv2dInput(n));
    // No ZeroPadding1D in tfjs: the depth zeros are padded on a rank-4 view.
    const after: Step[] = [['Reshape', { target_shape: [n, Hb * Wo, F] }]];
    if (t.lo || Do - t.hi) after.push(['ZeroPadding2D', { padding: [[t.lo, Do - t.hi], [0, 0]], data_format: 'channels_last' }]);
    const cropped = crop[0].some((v) => v);
    return { i: t.i, bias: t.bias, before, after, reads: [crop[0][0], D - crop[0][1]], fromRead: cropped ? before.slice(1) : before };
  });
  // A kernel depth this slab gives no real slice still runs its (bias-free) Conv2D, on one zero
  // block (the slab's first slice, zero-padded above, cropped to the padding), adding zeros: see
  // chunksOf for why. One output depth only (the chunk it is used for).
  for (const i of zeroTerms) {
    const before: Step[] = [];
    if (D > 1) before.push(['Cropping2D', { cropping: [[0, D - 1], [0, 0]], data_format: 'channels_last' }]);
    before.push(['ZeroPadding2D', { padding: [[1, 0], [0, 0]], data_format: 'channels_last' }]);
    before.push(['Cropping2D', { cropping: [[0, 1], [0, 0]], data_format: 'channels_last' }]);
    before.push(...conv2dInput(1));
    terms.push({ i, bias: false, before, after: [['Reshape', { target_shape: [1, Hb * Wo, F] }]], reads: [0, 1], fromRead: before.slice(D > 1 ? 1 : 0) });
  }
  terms.sort((a, b) => a.i - b.i);
  const post: Step[] = [['Reshape', { target_shape: [Do, Hb, Wo * F] }]];
  if (Hb > Ho) post.push(['Cropping2D', { cropping: [[0, 0], [0, Hb - Ho]], data_format: 'channels_last' }]);
  return { base, terms, post };
}

/**
 * tfjs-backend-wasm runs Conv2D on XNNPACK, which keeps, for every filter it has run, an
 * indirection buffer of kh*kw pointers (4 B each) per output pixel of the last image, until the
 * filter is disposed, i.e. as long as the model lives. One tall image of a 256^3 volume is
 * 256 x 258 x 256 output pixels: 607 MB per kernel depth of every rewritten layer, and a
 * 10-layer MeshNet ran out of wasm's 4 GB heap. So each Conv2D runs on chunks of output depths
 * whose image keeps this many bytes of indirection: the chunks share the layer's Conv2Ds (one
 * filter each), so a model keeps at most (kernel depths x layers) of these. 16 MiB, not 32: the
 * chunk is also the size of every temporary and of the depth pieces, and with half the size
 * mindgrab's rewritten model at 256^3 peaked at 1.9 GB of heap by layer 10, not 2.7 GB (wasm's
 * allocator then fits the next chunk into the holes the last one left).
 */
export const CHUNK_INDIRECTION_BYTES = 16 * 2 ** 20;

/** Above this many chunks, chunks are cut from a few group slabs rather than the whole input. */
const GROUP_AFTER = 4;

export interface ChunkChain extends SlidingChain {
  /** The chunk's input slab out of its group's (none when it is the whole group). */
  crop: Step[];
}

export interface ChunkedChain {
  /** [B, ...] -> [D, H, W*C]. */
  pre: Step[];
  groups: { crop: Step[]; chunks: ChunkChain[] }[];
  /** After the chunks' outputs are concatenated along depth: [Do, Ho, Wo*F] -> the conv's output. */
  final: Step[];
}

/** How many chunks of output depths keep each chunk's Conv2D images at most `indirectionBytes` of indirection (see above). */
export function chunkCount(g: SlidingGeometry, indirectionBytes: number): number {
  return Math.ceil(g.axes[0].out / depthsPerChunk(g, indirectionBytes));
}

/** Output depths one chunk may hold: XNNPACK's indirection buffer per output depth, within `indirectionBytes`. */
function depthsPerChunk(g: SlidingGeometry, indirectionBytes: number): number {
  const [, ah, aw] = g.axes;
  return Math.max(1, Math.floor(indirectionBytes / (blockRows(g).Hb * aw.out * ah.kernel * aw.kernel * 4)));
}

/**
 * The whole lowering for one input geometry: the input as [D, H, W*C]; its output depths in
 * `all` chunks (one when the volume is small, chunksOf), each lowered by slidingChain on the slab it reads; the
 * chunk outputs concatenated along depth. A slab is a Cropping2D, and tfjs-backend-wasm's slice
 * copies its whole input to JS first, so many chunks are cut from a few group slabs (about
 * sqrt(chunks) of them) instead of each from the whole volume.
 */
export function chunkedChain(g: SlidingGeometry, channelsFirst: boolean, anchor: number | undefined, withBias: boolean, all: DepthChunk[], convDepths: number[]): ChunkedChain {
  const [ad, ah, aw] = g.axes;
  const { channels: C, filters: F } = g;
  const pre: Step[] = [];
  if (channelsFirst) pre.push(['Permute', { dims: [2, 3, 4, 1] }]);
  pre.push(['Reshape', { target_shape: [ad.size, ah.size, aw.size * C] }]);
  const cropDepth = (lo: number, hi: number, size: number): Step[] =>
    lo || size - hi ? [['Cropping2D', { cropping: [[lo, size - hi], [0, 0]], data_format: 'channels_last' }]] : [];
  const groupCount = all.length > GROUP_AFTER ? Math.round(Math.sqrt(all.length)) : 1;
  const groups = splitDepths(all.length, groupCount).map(([first, last]) => {
    const members = all.slice(first, last);
    const [R0, R1] = [members[0].r0, Math.max(...members.map((c) => c.r1))];
    return {
      crop: cropDepth(R0, R1, ad.size),
      chunks: members.map((c) => ({ crop: cropDepth(c.r0 - R0, c.r1 - R0, R1 - R0), ...slidingChain(c.geometry, anchor, withBias, c === all[0] && all.length > 1 ? missingDepths(c, anchor, convDepths) : []) })),
    };
  });
  const final: Step[] = [['Reshape', { target_shape: [ad.out, ah.out, aw.out, F] }]];
  if (channelsFirst) final.push(['Permute', { dims: [4, 1, 2, 3] }]);
  return { pre, groups, final };
}

/** The layer's Conv2Ds (kernel depths in `convDepths`) that chunk `c` would not call. */
function missingDepths(c: DepthChunk, anchor: number | undefined, convDepths: number[]): number[] {
  const own = new Set([...depthTerms(c.geometry).map((t) => t.i), ...(anchor === undefined ? [] : [anchor])]);
  return convDepths.filter((i) => !own.has(i));
}

/**
 * One geometry's output depths in chunks (chunkCount), plus, when there are several, a first
 * chunk of one output depth. XNNPACK sizes a filter's kept buffer by its last image, and
 * tfjs-layers' executor (predict, execute) runs a layer's inputs last-first, so the first
 * chunk's Conv2D calls run last: every Conv2D, each called there (on a zero block if the chunk
 * reads no real slice for it, slidingChain), keeps one block's indirection once its layer is
 * done, not a chunk's (measured on wasm: a 256^3 11-filter MeshNet fits the 4 GB heap only so).
 */
export function chunksOf(g: SlidingGeometry, indirectionBytes: number): DepthChunk[] {
  const count = chunkCount(g, indirectionBytes);
  const out = g.axes[0].out;
  const ranges = count > 1 && out > 1
    ? [[0, 1] as [number, number], ...splitDepths(out - 1, count).map(([a, b]): [number, number] => [a + 1, b + 1])]
    : splitDepths(out, count);
  return ranges.map(([a, b]) => depthChunk(g, a, b));
}

export function rewriteSlidingLayer(layer: LayerNode, plan: SlidingLayersPlan, context: MatchContext, indirectionBytes = CHUNK_INDIRECTION_BYTES): Replacement {
  const layers: LayerNode[] = [];
  const callCount = plan.groups.reduce((n, group) => n + group.calls.length, 0);
  const outputs: Replacement['outputs'] = new Array(callCount);
  const passThrough = pick(layer.config, ['trainable', 'dtype']);
  const ref = (name: string, node: number): TensorRef => ({ layer: name, node, tensor: 0, kwargs: {} });
  const geometry = plan.groups[0].geometry;
  const [kh, kw] = geometry.axes.slice(1).map((a) => a.kernel);
  const { channels: C, filters: F } = geometry;
  const activation = typeof layer.config.activation === 'string' ? layer.config.activation : 'linear';
  const add = (className: string, config: JsonObject, inputs: TensorRef[][], name?: string): TensorRef[][] => {
    const layerName = name ?? context.freshName(`${layer.name}_${className.toLowerCase()}`);
    layers.push({ name: layerName, className, config: { name: layerName, ...passThrough, ...config }, calls: inputs.map((i) => ({ inputs: i })), extra: {} });
    return inputs.map((_, i) => [ref(layerName, i)]);
  };
  const steps = (list: Step[], inputs: TensorRef[][], lastName?: string) =>
    list.reduce((x, [cls, config], s) => add(cls, config, x, s === list.length - 1 ? lastName : undefined), inputs);

  // Every group's views, then one Conv2D per kernel depth (a call per term that uses it, shared
  // by every chunk and every call of the layer), then every group's sums: the layer list stays
  // topological. One anchor for every call and chunk: the Conv2Ds (and so the bias) are shared.
  const withBias = plan.bias !== undefined;
  const chunking = plan.groups.map((group) => chunksOf(group.geometry, indirectionBytes));
  // An input in depth pieces, chunked here too: each Conv2D call reads its range of the pieces.
  let fromPieces: DepthPieces | undefined;
  if (plan.pieces && chunking.length === 1) {
    // One chunk would be the whole volume again: only piece-aligned chunks or several.
    const chunks = alignedChunks(geometry, plan.pieces, indirectionBytes) ?? (chunking[0].length > 1 ? chunking[0] : []);
    if (chunks.length > 1 && chunks.every((c) => c.r1 > c.r0)) [chunking[0], fromPieces] = [chunks, plan.pieces];
  }
  const termDepths = chunking.flat().map((c) => depthTerms(c.geometry).map((t) => t.i));
  // A chunk whose terms all read padding still needs one Conv2D for its (zero) output.
  const anchor = anchorDepth(geometry, withBias || termDepths.some((depths) => depths.length === 0));
  const convDepths = [...new Set([...termDepths.flat(), ...(anchor === undefined ? [] : [anchor])])].sort((a, b) => a - b);
  const chains = plan.groups.map((group, g) => ({ group, chain: chunkedChain(group.geometry, plan.channelsFirst, anchor, withBias, chunking[g], convDepths) }));
  // A term that reads padding alone has no range of the pieces to read: the chunks then read the whole input.
  const allTerms = chains.flatMap(({ chain }) => chain.groups.flatMap((g) => g.chunks.flatMap((c) => c.terms)));
  if (allTerms.some((t) => t.reads[1] <= t.reads[0])) fromPieces = undefined;
  const convs = new Map<number, LayerNode>();
  const convOf = (i: number, bias: boolean): LayerNode => {
    const known = convs.get(i);
    if (known) return known;
    const name = context.freshName(`${layer.name}_conv2d_${i}`);
    const conv: LayerNode = {
      name, className: 'Conv2D', calls: [], extra: {},
      config: {
        name, ...passThrough, filters: F, kernel_size: [kh, kw],
        strides: geometry.axes.slice(1).map((a) => a.stride), dilation_rate: geometry.axes.slice(1).map((a) => a.dilation),
        padding: 'valid', data_format: 'channels_last', activation: 'linear', use_bias: bias,
        ...pick(layer.config, ['kernel_initializer', 'kernel_regularizer', ...(bias ? ['bias_initializer', 'bias_regularizer'] : [])]),
      },
    };
    convs.set(i, conv);
    return conv;
  };
  // The Conv2D call of `term` after `list` on `input` (one entry per call of the group).
  const callConv = (term: TermChain, list: Step[], input: TensorRef[][]) => {
    const conv = convOf(term.i, term.bias);
    return steps(list, input).map((inputs) => {
      conv.calls.push({ inputs });
      return [ref(conv.name, conv.calls.length - 1)];
    });
  };
  let pieceRefs: Record<string, TensorRef[]> | undefined;
  // [call group][chunk][term] -> the Conv2D call outputs, one per call of the group.
  const convOutputs = chains.map(({ group, chain }) => {
    const chunks = chain.groups.flatMap((slabGroup) => slabGroup.chunks);
    if (fromPieces) {
      // Each term reads its own depth range of the pieces, H-padded after (it pads rows only):
      // blocks of a chunk's depth, not a slab with its halo, the same size at every dilation.
      const ranges = chunks.flatMap((chunk, k) => chunk.terms.map((term): [number, number] => [chunking[0][k].r0 + term.reads[0], chunking[0][k].r0 + term.reads[1]]));
      const { inputs, pieces } = pieceInputs(fromPieces, ranges, add, context.freshName);
      pieceRefs = pieces;
      let next = 0;
      return chunks.map((chunk) => chunk.terms.map((term) => callConv(term, [...chunk.base, ...term.fromRead], [[inputs[next++]]])));
    }
    const whole = steps(chain.pre, group.calls.map((call) => [ref(REPLACED_INPUT, call)]));
    return chain.groups.flatMap((slabGroup) => {
      const slab = steps(slabGroup.crop, whole);
      return slabGroup.chunks.map((chunk) => {
        const base = steps([...chunk.crop, ...chunk.base], slab);
        return chunk.terms.map((term) => callConv(term, term.before, base));
      });
    });
  });
  layers.push(...[...convs.values()].sort((a, b) => a.name.localeCompare(b.name)));
  chains.forEach(({ group, chain }, g) => {
    const sole = plan.groups.length === 1;
    const perCall = (list: TensorRef[][][]) => group.calls.map((_, c) => list.map((t) => t[c][0]));
    const chunkOutputs = chain.groups.flatMap((slabGroup) => slabGroup.chunks).map((chunk, k) => {
      const terms = chunk.terms.map((term, t) => steps(term.after, convOutputs[g][k][t]));
      return steps(chunk.post, terms.length === 1 ? terms[0] : add('Add', {}, perCall(terms)));
    });
    const joined = chunkOutputs.length === 1 ? chunkOutputs[0] : add('Concatenate', { axis: 1 }, perCall(chunkOutputs));
    const final = [...chain.final, ...(activation !== 'linear' ? [['Activation', { activation }] as Step] : [])];
    const end = steps(final, joined, sole ? layer.name : undefined);
    group.calls.forEach((call, c) => (outputs[call] = { layer: end[c][0].layer, call: c }));
  });

  // Kernel depth i is a contiguous run of the stored elements: a quantized kernel keeps its
  // encoding, exactly. Depths no term uses (they read only padding) are dropped.
  const slice = kh * kw * C * F;
  const addWeights: Weight[] = [...convs.entries()].sort((a, b) => a[0] - b[0]).map(([i, conv]) => ({
    ...plan.kernel,
    name: renameWeight(plan.kernel, layer.name, conv.name),
    shape: [kh, kw, C, F],
    values: plan.kernel.values.slice(i * slice, (i + 1) * slice),
  }));
  const biasConv = [...convs.values()].find((conv) => conv.config.use_bias === true);
  if (plan.bias && !biasConv) throw new Error(`internal: no Conv2D carries the bias of ${layer.name}`);
  if (plan.bias) addWeights.push({ ...plan.bias, name: renameWeight(plan.bias, layer.name, biasConv!.name) });
  const notes = plan.kernel.quantization
    ? [`${layer.name}: the ${plan.kernel.quantization.dtype}-quantized kernel keeps its encoding in the Conv2D kernels (stored elements split by kernel depth: exact, same size)`]
    : [];
  return {
    layers, outputs, removeWeights: [plan.kernel.name, ...(plan.bias ? [plan.bias.name] : [])], addWeights, notes,
    ...(fromPieces ? { absorbed: fromPieces.absorbed, pieces: pieceRefs } : {}),
  };
}

/**
 * Chunks of output depths equal to the input's pieces, when the conv keeps the depth size and
 * every piece is within the chunk bound (a 1x1x1 classifier after sliding convs): each slab is
 * then its piece and its pad depths, and the first piece is already the one-depth first chunk.
 */
function alignedChunks(g: SlidingGeometry, p: DepthPieces, indirectionBytes: number): DepthChunk[] | undefined {
  const ad = g.axes[0];
  const most = depthsPerChunk(g, indirectionBytes);
  if (ad.out !== ad.size || p.pieces.some((piece) => piece.hi - piece.lo > most)) return undefined;
  return p.pieces.map((piece) => depthChunk(g, piece.lo, piece.hi));
}

type AddLayer = (className: string, config: JsonObject, inputs: TensorRef[][], name?: string) => TensorRef[][];

/**
 * The input of each depth range [lo, hi) (one per Conv2D call) out of the pieces, after the
 * absorbed elementwise layers (one shared layer each, called per piece): a piece, or a
 * Concatenate of the pieces and piece crops it spans. Crops share a layer per distinct cropping.
 *
 * The last range also reads a barrier: every piece cropped to nothing, concatenated, as an empty
 * [0, H, W*C] (every backend's concat drops it, so the input is unchanged). Each crop keeps one
 * depth and empties the rows: Cropping2D slices depth first, and tfjs 4.22's WebGPU slice of an
 * already empty tensor throws (its CPU path calls subarray on []). tfjs-layers' executor orders
 * a model depth-first from its outputs, a node's inputs last-first, so the last chunk's last
 * term runs first, and through the barrier every piece (the whole upstream conv) is computed
 * before any Conv2D of this conv: one conv at a time. Without it the convs run as a wavefront,
 * each holding its band of pieces and every Conv2D its chunk-sized XNNPACK buffer at once.
 */
function pieceInputs(p: DepthPieces, ranges: [number, number][], add: AddLayer, freshName: (base: string) => string): { inputs: TensorRef[]; pieces: Record<string, TensorRef[]> } {
  const activated = elementwisePieces(p, (cls, config, inputs, name) => add(cls, config, inputs.map((x) => [x]), name).map((out) => out[0]), freshName);
  const pieces = activated.pieces.map((piece) => [piece]);
  // Crops by cropping, shared: key -> the calls (piece index) and, once added, their outputs.
  const crops = new Map<string, { cropping: number[][]; calls: number[]; out?: TensorRef[][] }>();
  const crop = (j: number, above: number, below: number, allRows = 0): [string, number] => {
    const key = `${above},${below},${allRows}`;
    const entry = crops.get(key) ?? { cropping: [[above, below], [allRows, 0]], calls: [] };
    crops.set(key, entry);
    entry.calls.push(j);
    return [key, entry.calls.length - 1];
  };
  const [rows, cols] = p.view;
  const empties = p.pieces.map((piece, j) => crop(j, piece.hi - piece.lo - 1, 0, rows));
  const parts = ranges.map(([lo, hi]) => p.pieces.flatMap((piece, j) => {
    if (piece.hi <= lo || piece.lo >= hi) return [];
    const [above, below] = [Math.max(0, lo - piece.lo), Math.max(0, piece.hi - hi)];
    return [above || below ? crop(j, above, below) : j];
  }));
  for (const entry of crops.values()) {
    entry.out = add('Cropping2D', { cropping: entry.cropping, data_format: 'channels_last' }, entry.calls.map((j) => pieces[j]));
  }
  const refOf = (part: number | [string, number]) => (typeof part === 'number' ? pieces[part][0] : crops.get(part[0])!.out![part[1]][0]);
  const empty = add('Concatenate', { axis: 1 }, [empties.map(refOf)]);
  const barrier = add('Reshape', { target_shape: [0, rows, cols] }, empty)[0][0];
  const inputs = parts.map((list, k) => {
    const refs = [...list.map(refOf), ...(k === ranges.length - 1 ? [barrier] : [])];
    return refs.length === 1 ? refs[0] : add('Concatenate', { axis: 1 }, [refs])[0][0];
  });
  return { inputs, pieces: activated.held };
}


/** A sliding Conv3D's input cut down to what times it faithfully (cutOutSpatial): the plan's kernel and dilation. */
function timingInputOf(_layer: LayerNode, dims: number[], plan: SlidingLayersPlan): number[] {
  const axes = plan.groups[0].geometry.axes;
  const spatial = plan.channelsFirst ? dims.slice(1) : dims.slice(0, 3);
  const cut = cutOutSpatial(spatial, axes.map((a) => a.kernel), axes.map((a) => a.dilation));
  return plan.channelsFirst ? [dims[0], ...cut] : [...cut, dims[3]];
}

/** `indirectionBytes`: the chunk bound (CHUNK_INDIRECTION_BYTES); tests set a small one to chunk small volumes. */
export function slidingLayersPass(name: string, indirectionBytes = CHUNK_INDIRECTION_BYTES): Pass<SlidingLayersPlan> {
  return {
    name,
    appliesTo: (layer) => layer.className === 'Conv3D',
    match: matchSlidingLayer,
    rewrite: (layer, plan, context) => rewriteSlidingLayer(layer, plan, context, indirectionBytes),
    timingInput: timingInputOf,
  };
}
