/**
 * The rows a verification runs on: the user's own (.npy files, arrays or tensors, one per model
 * input, any leading batch size) or seeded uniform ones. Either way they are read a batch at a
 * time, so memory stays bounded by the batch size, not by the number of rows.
 */
import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors';
import { NpyArray, NpyReader } from '../io/npy';

/** One model input: a .npy path, an array with its shape, or a tensor (never disposed here). */
export type VerifyInput = string | NpyArray | tf.Tensor;

export interface InputSet {
  rows: number;
  /** What the rows are, for the report. */
  source: string;
  /** Rows [start, start + count) as one tensor per model input (the caller disposes them). */
  batch(start: number, count: number): tf.Tensor[];
  close(): void;
}

import type { InputShapes } from '../formats/input-shapes';
export type { InputShapes };

/** What the reader needs of a model input: its name, dtype and shape (null: unknown rank). */
interface InputInfo {
  name: string;
  dtype: string;
  shape: (number | null)[] | null;
}

function inputInfos(model: tf.LayersModel): InputInfo[] {
  return model.inputs.map((input, i) => ({ name: model.inputNames?.[i] ?? input.name, dtype: input.dtype, shape: input.shape ?? null }));
}

const shapeText = (shape: (number | null)[]) => `[${shape.map((d) => d ?? -1).join(', ')}]`;

/** `shapes[name]`, also under the tensor name "name:0" (graph signatures use either). */
function givenShape(shapes: InputShapes | undefined, name: string): number[] | undefined {
  if (!shapes) return undefined;
  const bare = name.replace(/:0$/, '');
  return shapes[name] ?? shapes[bare] ?? shapes[`${bare}:0`];
}

/** Refuses --input-shape names that match no model input: a typo would otherwise go unnoticed. */
function checkShapeNames(infos: InputInfo[], shapes: InputShapes | undefined): void {
  for (const name of Object.keys(shapes ?? {})) {
    if (!infos.some((info) => givenShape({ [name]: [] }, info.name) !== undefined)) {
      throw new InputError(`--input-shape names "${name}", which is not a model input (inputs: ${infos.map((info) => info.name).join(', ')})`);
    }
  }
}

/**
 * The shape to generate for one input, from the first source that gives it: an --input-shape
 * for it, else the model's declared sizes (the batch, if unknown, is `batch`). Refused only when
 * neither does, naming the input and the flag that fixes it.
 */
function generatedShape(info: InputInfo, batch: number, shapes: InputShapes | undefined): number[] {
  const given = givenShape(shapes, info.name);
  const declared = info.shape;
  if (given) {
    const flag = `--input-shape ${info.name}=${given.join('x')}`;
    if (declared && given.length !== declared.length) throw new InputError(`${flag}: rank ${given.length}, but the model input has rank ${declared.length} ${shapeText(declared)}`);
    const axis = declared ? declared.findIndex((d, a) => d !== null && d !== given[a]) : -1;
    if (axis >= 0) throw new InputError(`${flag}: size ${given[axis]} at axis ${axis}, but the model input declares ${shapeText(declared!)}`);
    if (given[0] !== batch) throw new InputError(`${flag}: ${given[0]} rows, but ${batch} rows are generated (--rows ${batch}); give the same leading size everywhere`);
    return given;
  }
  const example = (dims: (number | string | null)[]) => `--input-shape ${info.name}=${dims.map((d, a) => (a === 0 ? batch : d ?? '?')).join('x')}`;
  if (declared === null) {
    throw new InputError(`input "${info.name}" has an unknown rank; give its shape with --input-shape ${info.name}=${batch}x...`);
  }
  return declared.map((dim, axis) => {
    if (dim !== null) return dim;
    if (axis === 0) return batch;
    throw new InputError(`input "${info.name}" ${shapeText(declared)} has an unknown size at axis ${axis}; give its shape with ${example(declared)} (each ? a size)`);
  });
}

/**
 * Seeded inputs for every model input. Sizes come from `shapes` (by input name) where given,
 * else from the model's declared shape; only the batch may be unknown there.
 */
export function makeInputs(model: tf.LayersModel, batch: number, seed = 1234, shapes?: InputShapes): tf.Tensor[] {
  const infos = inputInfos(model);
  checkShapeNames(infos, shapes);
  const sizes = infos.map((info) => generatedShape(info, batch, shapes));
  return infos.map((info, i) => (info.dtype === 'int32'
    ? tf.randomUniform(sizes[i], 0, 10, 'int32', seed + i)
    : tf.randomUniform(sizes[i], -1, 1, 'float32', seed + i)));
}

/** The generated rows --input-shape implies (every leading size must agree), if it gives any. */
export function rowsOfShapes(shapes: InputShapes | undefined): number | undefined {
  const leading = [...new Set(Object.values(shapes ?? {}).map((shape) => shape[0]))];
  if (leading.length > 1) throw new InputError(`--input-shape leading sizes disagree (${leading.join(' vs ')}): they are all the number of generated rows`);
  return leading[0];
}

/**
 * Refuses NaN/Inf rows: both models would output NaN and verification would fail (or, on an
 * output that ignores the value, pass) for a reason that has nothing to do with the rewrite.
 */
function finite<T extends ArrayLike<number>>(values: T, label: string, firstRow: number, rowSize: number): T {
  for (let k = 0; k < values.length; k++) {
    if (!Number.isFinite(values[k])) {
      throw new InputError(`${label}: row ${firstRow + Math.floor(k / Math.max(rowSize, 1))} holds ${values[k]}; verification inputs must be finite`);
    }
  }
  return values;
}

/** Refuses data whose dtype or non-batch shape cannot feed `input` (any rank when its rank is unknown). */
function checkFits(model: tf.LayersModel, index: number, label: string, dtype: string, shape: number[]): void {
  const input = model.inputs[index];
  const fmt = (s: (number | null)[]) => `[${s.map((d) => d ?? 'N').join(', ')}]`;
  const name = `model input ${index} "${model.inputNames?.[index] ?? input.name}" ${input.shape ? fmt(input.shape) : '(unknown rank)'} ${input.dtype}`;
  if (dtype !== input.dtype) throw new InputError(`${label} is ${dtype} but ${name} needs ${input.dtype}`);
  const want = input.shape ?? shape;
  if (shape.length !== want.length || want.some((d, axis) => axis > 0 && d !== null && d !== shape[axis])) {
    throw new InputError(`${label} has shape ${fmt(shape)}, which does not fit ${name}`);
  }
}

function tensorSet(tensors: tf.Tensor[], source: string, owned: boolean): InputSet {
  return {
    rows: tensors[0].shape[0],
    source,
    batch: (start, count) => tensors.map((t) => (start === 0 && count === t.shape[0] ? t.clone() : t.slice(start, count))),
    close: () => {
      if (owned) tf.dispose(tensors);
    },
  };
}

export function openInputs(
  model: tf.LayersModel, inputs: VerifyInput[] | undefined, generated: { batch: number; seed: number; shapes?: InputShapes },
): InputSet {
  if (inputs === undefined) {
    const shaped = Object.keys(generated.shapes ?? {}).length ? `, shapes ${Object.entries(generated.shapes!).map(([name, shape]) => `${name}=${shape.join('x')}`).join(' ')}` : '';
    return tensorSet(makeInputs(model, generated.batch, generated.seed, generated.shapes), `${generated.batch} seeded uniform rows (seed ${generated.seed}${shaped})`, true);
  }
  if (inputs.length !== model.inputs.length) {
    throw new InputError(`got ${inputs.length} input${inputs.length === 1 ? '' : 's'} but the model has ${model.inputs.length} (${(model.inputNames ?? model.inputs.map((input) => input.name)).join(', ')}); give one per model input, in order`);
  }
  const readers: NpyReader[] = [];
  try {
    const parts = inputs.map((input, i) => {
      if (typeof input === 'string') {
        const reader = new NpyReader(input);
        readers.push(reader);
        checkFits(model, i, input, reader.dtype, reader.shape);
        const rowSize = reader.shape.slice(1).reduce((a, b) => a * b, 1);
        return { rows: reader.rows, label: input, read: (start: number, count: number) => tf.tensor(finite(reader.read(start, count), input, start, rowSize), [count, ...reader.shape.slice(1)], reader.dtype) };
      }
      if (input instanceof tf.Tensor) {
        checkFits(model, i, `input ${i} (tensor)`, input.dtype, input.shape);
        return { rows: input.shape[0], label: `tensor ${JSON.stringify(input.shape)}`, read: (start: number, count: number) => input.slice(start, count) };
      }
      const { data, shape, dtype } = input;
      if (shape.reduce((a, b) => a * b, 1) !== data.length) throw new InputError(`input ${i}: shape ${JSON.stringify(shape)} does not hold ${data.length} values`);
      checkFits(model, i, `input ${i} (array)`, dtype, shape);
      const rowSize = data.length / Math.max(shape[0], 1);
      return {
        rows: shape[0],
        label: `array ${JSON.stringify(shape)}`,
        read: (start: number, count: number) => tf.tensor(finite(data.subarray(start * rowSize, (start + count) * rowSize), `input ${i} (array)`, start, rowSize), [count, ...shape.slice(1)], dtype),
      };
    });
    const rows = parts[0].rows;
    const mismatch = parts.find((p) => p.rows !== rows);
    if (mismatch) throw new InputError(`inputs disagree on the number of rows: ${parts.map((p) => `${p.label} has ${p.rows}`).join(', ')}`);
    if (rows === 0) throw new InputError(`${parts[0].label} has no rows`);
    return {
      rows,
      source: parts.map((p) => p.label).join(', '),
      batch: (start, count) => {
        const tensors: tf.Tensor[] = [];
        try {
          for (const part of parts) tensors.push(part.read(start, count));
          return tensors;
        } catch (error) {
          tf.dispose(tensors); // a bad row in input 2 must not leak input 1's batch
          throw error;
        }
      },
      close: () => readers.forEach((r) => r.close()),
    };
  } catch (error) {
    readers.forEach((r) => r.close());
    throw error;
  }
}
