/**
 * The layers lowering of the conv-to-dense rules (every spatial rank): a Keras conv config is
 * read into the format-free spec of conv-analysis.ts, whose guards and layout plan are shared
 * with the GraphDef lowering; the plan becomes Reshape / Permute / Cropping2D layers + one Dense.
 */
import { MatchContext, MatchResult, Pass, REPLACED_INPUT, Replacement } from '../pass';
import { isUnknown } from '../layers/shapes';
import { Json, JsonObject, LayerNode, TensorRef, Weight } from '../layers/types';
import { CallInput, ConvAnalysis, checkWindow, fmt, kernelAxes, planConv } from './conv-analysis';
import { DENSE_FROM_CONV_KEYS, pick } from './config';
import { patchCutOut } from './cut-out';
import { DepthPieces, depthPiecesOf } from './depth-pieces';
import { Step, withFilters } from './patch-plan';
import { rewritePointwiseOnPieces } from './pointwise-pieces';
import { permuteRows, transposeValues } from './transpose';
import { findWeight, keptEncodingNotes, renameWeight } from './weights';

export interface NonSlidingPlan extends ConvAnalysis {
  kernel: Weight;
  bias?: Weight;
  /** A 1x1x1 Conv3D whose input arrives in depth pieces: one Dense per piece (pointwise-pieces.ts). */
  pieces?: DepthPieces;
}

function asTuple(value: Json | undefined, rank: number, fallback: number): number[] | undefined {
  if (value === undefined || value === null) return new Array(rank).fill(fallback);
  if (typeof value === 'number') return new Array(rank).fill(value);
  if (Array.isArray(value) && value.length === rank && value.every((v) => typeof v === 'number')) return value as number[];
  return undefined;
}

export interface NonSlidingOptions {
  name: string;
  className: string;
  spatialRank: number;
}

/** Builds the pass for one conv class (Conv3D now; Conv1D/Conv2D reuse it). */
export function nonSlidingConvPass(options: NonSlidingOptions): Pass<NonSlidingPlan> {
  const rank = options.spatialRank;

  function match(layer: LayerNode, context: MatchContext): MatchResult<NonSlidingPlan> {
    const refuse = (refusal: string) => ({ refusal });
    const c = layer.config;
    const kernelSize = asTuple(c.kernel_size, rank, NaN);
    const strides = asTuple(c.strides, rank, 1);
    const dilation = asTuple(c.dilation_rate, rank, 1);
    if (!kernelSize || kernelSize.some((k) => !Number.isInteger(k) || k < 1)) return refuse(`kernel_size ${fmt(c.kernel_size)} is not ${rank} positive integers`);
    if (!strides || !dilation) return refuse(`strides ${fmt(c.strides)} or dilation_rate ${fmt(c.dilation_rate)} is malformed`);
    const groups = c.groups ?? 1;
    if (typeof groups !== 'number') return refuse(`groups ${fmt(groups)} is not a number`);
    const padding = c.padding ?? 'valid';
    if (typeof padding !== 'string') return refuse(`padding ${fmt(padding)} is not a string`);
    const window = checkWindow({ kernel: kernelSize, strides, dilation, padding, groups });
    if (window) return refuse(window);
    const dataFormat = c.data_format ?? 'channels_last';
    if (dataFormat !== 'channels_last' && dataFormat !== 'channels_first') return refuse(`data_format '${dataFormat}' is not supported`);
    const channelsFirst = dataFormat === 'channels_first';
    // tfjs's Conv1D transposes a channels_first input but returns its output channels last
    // (conv1dWithBias), against its own declared shape: no rewrite can match both.
    if (channelsFirst && rank === 1) return refuse(`data_format 'channels_first' on ${options.className}: tfjs computes its output channels last, not as its shape says`);
    // Constraints project weights during training with axis semantics tied to the conv layout.
    if (c.kernel_constraint != null || c.bias_constraint != null) return refuse('kernel_constraint/bias_constraint set (no Dense equivalent of their axes)');
    // Softmax normalizes over the last axis: F for the Dense, but W for a channels_first conv.
    if (channelsFirst && (c.activation === 'softmax' || c.activation === 'log_softmax')) {
      return refuse(`activation '${c.activation}' on channels_first output normalizes over W, not the filters`);
    }
    const filters = c.filters;
    if (typeof filters !== 'number') return refuse(`filters ${fmt(filters)} is not a number`);

    const callShapes = context.shapes.callInputs.get(layer.name) ?? [];
    const calls: CallInput[] = [];
    for (const [i, shapesOfCall] of callShapes.entries()) {
      const where = callShapes.length > 1 ? ` in call ${i}` : '';
      if (isUnknown(shapesOfCall)) calls.push({ unknown: shapesOfCall.unknown });
      else if (shapesOfCall.length !== 1) return refuse(`${shapesOfCall.length} inputs${where}, a conv takes one`);
      else calls.push({ shape: shapesOfCall[0] });
    }
    const kernel = findWeight(context.ir.weights, layer.name, 'kernel');
    const useBias = c.use_bias !== false;
    const bias = useBias ? findWeight(context.ir.weights, layer.name, 'bias') : undefined;
    const analysis = planConv({
      kernel: kernelSize, strides, dilation, padding, groups, channelsFirst, filters, calls,
      kernelWeight: kernel, bias: useBias ? bias ?? 'missing' : null, owner: layer.name,
    });
    if ('refusal' in analysis) return analysis;
    // After chunked sliding convs (a MeshNet's 1x1x1 classifier): one Dense on the whole volume
    // would make it one tensor again, which a 256^3 15-filter MeshNet cannot afford on wasm.
    const only = calls.length === 1 && 'shape' in calls[0] ? calls[0].shape : undefined;
    const pointwise = rank === 3 && !channelsFirst && only && kernelSize.every((k) => k === 1) && strides.every((s) => s === 1);
    const pieces = pointwise ? depthPiecesOf(context.graph, layer, only.slice(1) as number[], context.shapes) : undefined;
    return { plan: { ...analysis, kernel: kernel!, bias, ...(pieces ? { pieces } : {}) } };
  }

  function rewrite(layer: LayerNode, plan: NonSlidingPlan, context: MatchContext): Replacement {
    if (plan.pieces) return rewritePointwiseOnPieces(layer, { kernel: plan.kernel, bias: plan.bias, filters: plan.filters }, plan.pieces, context);
    const layers: LayerNode[] = [];
    const callCount = plan.groups.reduce((n, group) => n + group.calls.length, 0);
    const denseInputs: TensorRef[][] = new Array(callCount);
    const outputs: Replacement['outputs'] = new Array(callCount);
    // The layer that ends up producing the conv's output takes the conv's name, so model output
    // names and getLayer(name) keep working (and, when it is the Dense, so do the weight names).
    const afterSteps = plan.groups.map((group) => withFilters(group.plan.after, plan.filters));
    const denseIsLast = afterSteps.every((steps) => steps.length === 0);
    const denseName = denseIsLast ? layer.name : context.freshName(`${layer.name}_dense`);
    const passThrough = pick(layer.config, ['trainable', 'dtype']);
    const ref = (name: string, node: number): TensorRef => ({ layer: name, node, tensor: 0, kwargs: {} });

    // Chains a list of steps after `inputs` (one entry per call of the group); returns the chain's end.
    const chain = (steps: Step[], inputs: TensorRef[][], label: string, lastName?: string) => {
      let current = inputs;
      for (const [k, step] of steps.entries()) {
        const name = k === steps.length - 1 && lastName ? lastName : context.freshName(`${layer.name}_${label}_${step.kind}`);
        layers.push({ name, className: STEP_CLASS[step.kind], config: { name, ...passThrough, ...stepConfig(step) }, calls: current.map((inputs) => ({ inputs })), extra: {} });
        current = current.map((_, i) => [ref(name, i)]);
      }
      return current;
    };

    plan.groups.forEach((group, g) => {
      const label = plan.groups.length > 1 ? `in${g + 1}` : 'in';
      const ends = chain(group.plan.before, group.calls.map((call) => [ref(REPLACED_INPUT, call)]), label);
      group.calls.forEach((call, i) => (denseInputs[call] = ends[i]));
    });
    layers.push({
      name: denseName,
      className: 'Dense',
      config: {
        name: denseName,
        ...passThrough,
        units: plan.filters,
        ...pick(layer.config, ['activation', 'use_bias', ...DENSE_FROM_CONV_KEYS]),
      },
      calls: denseInputs.map((inputs) => ({ inputs })),
      extra: {},
    });
    plan.groups.forEach((group, g) => {
      const label = plan.groups.length > 1 ? `out${g + 1}` : 'out';
      const before = layers.length;
      const ends = chain(afterSteps[g], group.calls.map((call) => [ref(denseName, call)]), label,
        plan.groups.length === 1 ? layer.name : undefined);
      group.calls.forEach((call, i) => {
        outputs[call] = layers.length > before ? { layer: ends[i][0].layer, call: i } : { layer: denseName, call };
      });
    });

    const rows = plan.kernel.values.length / plan.filters;
    // Dense row r is the conv kernel's row source[r] (kernel rows are [k..., C], filters last).
    const source = transposeValues(Int32Array.from({ length: rows }, (_, i) => i), plan.kernel.shape.slice(0, -1), kernelAxes(plan.order, plan.geometry.kernel.length));
    // The same elements in another order: a quantized kernel keeps its encoding (exact, same size).
    const addWeights: Weight[] = [{
      ...plan.kernel,
      name: renameWeight(plan.kernel, layer.name, denseName),
      shape: [rows, plan.filters],
      values: source.every((row, r) => row === r)
        ? plan.kernel.values
        : permuteRows(plan.kernel.values, plan.filters, source, context.reuseWeights),
    }];
    if (plan.bias) addWeights.push({ ...plan.bias, name: renameWeight(plan.bias, layer.name, denseName) });
    return {
      layers,
      outputs,
      removeWeights: [plan.kernel.name, ...(plan.bias ? [plan.bias.name] : [])],
      addWeights,
      notes: keptEncodingNotes(layer.name, plan.kernel),
    };
  }

  // A wrapper (TimeDistributed, Bidirectional) holding this conv class gets a refusal too, so the
  // report accounts for every such conv in the model.
  const wrapped = (layer: LayerNode) => {
    const inner = layer.config.layer;
    return inner !== null && typeof inner === 'object' && !Array.isArray(inner) && inner.class_name === options.className;
  };
  return {
    name: options.name,
    appliesTo: (layer) => layer.className === options.className || wrapped(layer),
    match: (layer, context) => (wrapped(layer)
      ? { refusal: `the ${options.className} is wrapped in ${layer.className}, which applies it per slice; wrapped layers are not rewritten` }
      : match(layer, context)),
    rewrite,
    // Channels last or first as the layer reads its input.
    timingInput: (_layer, dims, plan) => {
      const { kernel, channelsFirst } = plan.geometry;
      const spatial = channelsFirst ? dims.slice(1) : dims.slice(0, -1);
      const channels = channelsFirst ? dims[0] : dims[dims.length - 1];
      const cut = patchCutOut(spatial, kernel, channels);
      return channelsFirst ? [channels, ...cut] : [...cut, channels];
    },
  };
}

const STEP_CLASS: Record<Step['kind'], string> = { reshape: 'Reshape', permute: 'Permute', crop: 'Cropping2D' };

function stepConfig(step: Step): JsonObject {
  switch (step.kind) {
    case 'reshape':
      return { target_shape: step.targetShape };
    case 'permute':
      return { dims: step.dims };
    case 'crop':
      return { cropping: step.cropping, data_format: 'channels_first' };
  }
}

