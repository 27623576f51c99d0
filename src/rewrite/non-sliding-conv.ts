/**
 * Guards and rewrite shared by the non-sliding convolution passes (one rule family for every
 * spatial rank). A conv whose kernel equals its strides, that pads nothing and is not dilated
 * never slides: each output is the dot product of one non-overlapping patch with the kernel,
 * i.e. a Dense over patch rows. See patch-plan.ts for the layout steps.
 */
import { MatchContext, MatchResult, Pass, REPLACED_INPUT, Replacement } from '../pass';
import { Shape, isUnknown } from '../graph/shapes';
import { Json, JsonObject, LayerNode, TensorRef, Weight } from '../graph/types';
import { ConvGeometry, PatchPlan, RowOrder, Step, chooseRowOrder, withFilters } from './patch-plan';
import { permuteRows, transposeValues } from './transpose';
import { findWeight, renameWeight } from './weights';

export interface NonSlidingPlan {
  geometry: Omit<ConvGeometry, 'spatial'>;
  filters: number;
  order: RowOrder;
  kernel: Weight;
  bias?: Weight;
  /** Calls grouped by input shape: each group gets its own view layers, all share the Dense. */
  groups: { calls: number[]; plan: PatchPlan }[];
}

const fmt = (value: unknown) => (JSON.stringify(value) ?? 'nothing').replace(/,/g, ', ');

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
  /**
   * Whether the rewrite pays on the target backend; a string is the refusal. Applied after
   * every correctness guard, so a refusal here always means "correct, but not faster".
   */
  pays?: (backend: string | undefined) => true | string;
}

/** Builds the pass for one conv class (Conv3D now; Conv1D/Conv2D reuse it). */
export function nonSlidingConvPass(options: NonSlidingOptions): Pass<NonSlidingPlan> {
  const rank = options.spatialRank;
  const axisNames = rank === 1 ? ['L'] : ['D', 'H', 'W'].slice(3 - rank);

  function match(layer: LayerNode, context: MatchContext): MatchResult<NonSlidingPlan> {
    const refuse = (refusal: string) => ({ refusal });
    const c = layer.config;
    const kernelSize = asTuple(c.kernel_size, rank, NaN);
    const strides = asTuple(c.strides, rank, 1);
    const dilation = asTuple(c.dilation_rate, rank, 1);
    if (!kernelSize || kernelSize.some((k) => !Number.isInteger(k) || k < 1)) return refuse(`kernel_size ${fmt(c.kernel_size)} is not ${rank} positive integers`);
    if (!strides || !dilation) return refuse(`strides ${fmt(c.strides)} or dilation_rate ${fmt(c.dilation_rate)} is malformed`);
    // A grouped conv is block-diagonal across channel groups, not one Dense.
    if (c.groups !== undefined && c.groups !== null && c.groups !== 1) return refuse(`groups ${c.groups} != 1`);
    // Strides other than the kernel make windows overlap (or skip input): the conv slides.
    if (strides.some((s, i) => s !== kernelSize[i])) return refuse(`strides ${fmt(strides)} != kernel_size ${fmt(kernelSize)}`);
    // Dilation spreads a patch over the input; it only matters where the kernel is > 1.
    if (dilation.some((d, i) => d !== 1 && kernelSize[i] !== 1)) return refuse(`dilation_rate ${fmt(dilation)} != 1`);
    const padding = c.padding ?? 'valid';
    if (padding !== 'valid' && padding !== 'same') return refuse(`padding '${padding}' is not 'valid'`);
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
    if (callShapes.length === 0) return refuse('the layer is never called, so its input shape is unknown');
    const shapes: Shape[] = [];
    for (const [i, shapesOfCall] of callShapes.entries()) {
      if (isUnknown(shapesOfCall)) return refuse(`input shape of call ${i} is unknown: ${shapesOfCall.unknown}`);
      if (shapesOfCall.length !== 1 || shapesOfCall[0].length !== rank + 2) return refuse(`call ${i} input ${fmt(shapesOfCall)} is not rank ${rank + 2}`);
      shapes.push(shapesOfCall[0]);
    }

    const geometries: ConvGeometry[] = [];
    for (const [i, shape] of shapes.entries()) {
      const dims = shape.slice(1);
      const channels = channelsFirst ? dims[0] : dims[rank];
      const spatial = channelsFirst ? dims.slice(1) : dims.slice(0, rank);
      const where = callShapes.length > 1 ? ` in call ${i}` : '';
      // Reshape needs static sizes; only the batch may be dynamic.
      if (channels === null || spatial.some((s) => s === null)) return refuse(`input shape ${fmt(shape)}${where} is not static beyond the batch`);
      for (let a = 0; a < rank; a++) {
        const size = spatial[a]!;
        if (size < kernelSize[a]) return refuse(`input ${axisNames[a]}=${size}${where} is smaller than kernel ${kernelSize[a]}`);
        // 'same' pads (kernel - size % kernel) when the size is not a multiple; then it is a different conv.
        if (padding === 'same' && size % kernelSize[a] !== 0) {
          return refuse(`padding 'same' pads ${axisNames[a]} (${size} % ${kernelSize[a]} != 0)`);
        }
      }
      geometries.push({ spatial: spatial as number[], channels, kernel: kernelSize, channelsFirst });
    }

    const kernel = findWeight(context.ir.weights, layer.name, 'kernel');
    const expectedKernel = [...kernelSize, geometries[0].channels, filters];
    if (!kernel) return refuse(`no weight "${layer.name}/kernel" in the manifest`);
    if (fmt(kernel.shape) !== fmt(expectedKernel)) return refuse(`kernel shape ${fmt(kernel.shape)} != ${fmt(expectedKernel)}`);
    if (kernel.dtype !== 'float32') return refuse(`kernel dtype ${kernel.dtype} is not float32`);
    const useBias = c.use_bias !== false;
    const bias = useBias ? findWeight(context.ir.weights, layer.name, 'bias') : undefined;
    if (useBias && (!bias || fmt(bias.shape) !== fmt([filters]))) return refuse(`no bias of shape [${filters}] for "${layer.name}"`);
    if (geometries.some((g) => g.channels !== geometries[0].channels)) return refuse('calls disagree on the channel count');

    const byShape = new Map<string, number[]>();
    geometries.forEach((g, i) => byShape.set(fmt(g.spatial), [...(byShape.get(fmt(g.spatial)) ?? []), i]));
    const distinct = [...byShape.values()].map((calls) => geometries[calls[0]]);
    const chosen = chooseRowOrder(distinct);
    if (!chosen) return refuse('no layout plan within rank 6 was found');
    const pays = options.pays && !context.forced && !context.measuring ? options.pays(context.backend) : true;
    if (pays !== true) return refuse(pays);
    return {
      plan: {
        geometry: { channels: geometries[0].channels, kernel: kernelSize, channelsFirst },
        filters,
        order: chosen.order,
        kernel,
        bias,
        groups: [...byShape.values()].map((calls, g) => ({ calls, plan: chosen.plans[g] })),
      },
    };
  }

  function rewrite(layer: LayerNode, plan: NonSlidingPlan, context: MatchContext): Replacement {
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
        ...pick(layer.config, ['activation', 'use_bias', 'kernel_initializer', 'bias_initializer',
          'kernel_regularizer', 'bias_regularizer', 'activity_regularizer', 'kernel_constraint', 'bias_constraint']),
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

    const n = plan.geometry.kernel.length;
    const kernelAxes = plan.order.map((name) => (name === 'c' ? n : Number(name.slice(1))));
    const rows = plan.kernel.values.length / plan.filters;
    // Dense row r is the conv kernel's row source[r] (kernel rows are [k..., C], filters last).
    const source = transposeValues(Int32Array.from({ length: rows }, (_, i) => i), plan.kernel.shape.slice(0, -1), kernelAxes);
    const addWeights: Weight[] = [{
      name: renameWeight(plan.kernel, layer.name, denseName),
      shape: [rows, plan.filters],
      dtype: 'float32',
      values: source.every((row, r) => row === r)
        ? plan.kernel.values
        : permuteRows(plan.kernel.values as Float32Array, plan.filters, source, context.reuseWeights),
    }];
    if (plan.bias) addWeights.push({ ...plan.bias, name: renameWeight(plan.bias, layer.name, denseName) });
    return {
      layers,
      outputs,
      removeWeights: [plan.kernel.name, ...(plan.bias ? [plan.bias.name] : [])],
      addWeights,
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

function pick(config: JsonObject, keys: string[]): JsonObject {
  const out: JsonObject = {};
  for (const key of keys) if (key in config) out[key] = config[key];
  return out;
}
