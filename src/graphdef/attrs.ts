/**
 * The JSON spelling of GraphDef node attributes, as tensorflowjs_converter writes them (proto3
 * JSON: int64 as decimal strings, strings as base64, enums by name). Only this module and the
 * readers in ir.ts know it; passes and the fixture generator go through these helpers.
 */

export type AttrValue = Record<string, unknown>;
export type Attrs = Record<string, AttrValue>;

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const unb64 = (text: string) => Buffer.from(text, 'base64').toString('utf8');

/** Encoders: `attr.ints([1, 2, 2, 2, 1])` -> {list: {i: ["1", "2", ...]}}. */
export const attr = {
  ints: (values: number[]): AttrValue => ({ list: { i: values.map(String) } }),
  int: (value: number): AttrValue => ({ i: String(value) }),
  float: (value: number): AttrValue => ({ f: value }),
  bool: (value: boolean): AttrValue => ({ b: value }),
  str: (value: string): AttrValue => ({ s: b64(value) }),
  strs: (values: string[]): AttrValue => ({ list: { s: values.map(b64) } }),
  type: (dtype: string): AttrValue => ({ type: dtype }),
  /** -1 marks an unknown dimension, as in TensorShapeProto. */
  shape: (dims: number[]): AttrValue => ({ shape: shapeProto(dims) }),
  /** A Const's `value`: dtype and shape only, the bytes live in the weights manifest. */
  tensor: (dtype: string, dims: number[]): AttrValue => ({ tensor: { dtype, tensorShape: shapeProto(dims) } }),
};

function shapeProto(dims: number[]): Record<string, unknown> {
  return dims.length === 0 ? {} : { dim: dims.map((size) => ({ size: String(size) })) };
}

function toInt(value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : NaN;
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Decoders return undefined when the attr is absent or not of the asked kind. */
export function readInts(attrs: Attrs | undefined, name: string): number[] | undefined {
  const list = attrs?.[name]?.list as { i?: unknown[] } | undefined;
  if (!list) return undefined;
  const values = (list.i ?? []).map(toInt);
  return values.every((v) => v !== undefined) ? (values as number[]) : undefined;
}

export function readString(attrs: Attrs | undefined, name: string): string | undefined {
  const s = attrs?.[name]?.s;
  if (typeof s === 'string') return unb64(s);
  // Older converters wrote strings as byte arrays.
  if (Array.isArray(s) && s.every((c) => typeof c === 'number')) return String.fromCharCode(...(s as number[]));
  return undefined;
}

export function readStrings(attrs: Attrs | undefined, name: string): string[] | undefined {
  const list = attrs?.[name]?.list as { s?: unknown[] } | undefined;
  if (!list) return undefined;
  const values = (list.s ?? []).map((s) => (typeof s === 'string' ? unb64(s) : undefined));
  return values.every((v) => v !== undefined) ? (values as string[]) : undefined;
}

export function readType(attrs: Attrs | undefined, name: string): string | undefined {
  const type = attrs?.[name]?.type;
  return typeof type === 'string' ? type : undefined;
}

export function readBool(attrs: Attrs | undefined, name: string): boolean | undefined {
  const b = attrs?.[name]?.b;
  return typeof b === 'boolean' ? b : undefined;
}

/** A TensorShapeProto as dims, null for unknown sizes; undefined for unknown rank or malformed. */
export function parseShapeProto(proto: unknown): (number | null)[] | undefined {
  if (typeof proto !== 'object' || proto === null) return undefined;
  const shape = proto as { unknownRank?: boolean; dim?: { size?: unknown }[] };
  if (shape.unknownRank) return undefined;
  if (shape.dim == null) return [];
  if (!Array.isArray(shape.dim)) return undefined;
  const dims = shape.dim.map((d) => toInt(d?.size ?? '0'));
  if (dims.some((d) => d === undefined)) return undefined;
  return (dims as number[]).map((d) => (d < 0 ? null : d));
}

export function readShape(attrs: Attrs | undefined, name: string): (number | null)[] | undefined {
  return parseShapeProto(attrs?.[name]?.shape);
}
