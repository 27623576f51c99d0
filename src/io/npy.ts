/**
 * numpy .npy files (format versions 1-3), float32 and int32, C order, little-endian. Reading is
 * by row ranges from an open file, so inputs of tens of thousands of rows never sit in memory
 * whole; `readNpy` is the whole-file convenience.
 */
import * as fs from 'fs';
import { InputError } from '../errors';

export type NpyDtype = 'float32' | 'int32';
export type NpyData = Float32Array | Int32Array;

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  data: NpyData;
}

const MAGIC = '\x93NUMPY';
const DESCR: Record<string, NpyDtype> = { '<f4': 'float32', '<i4': 'int32' };
const HINT: Record<string, string> = {
  '<f8': 'float64: save it with x.astype(np.float32)',
  '<f2': 'float16: save it with x.astype(np.float32)',
  '<i8': 'int64: save it with x.astype(np.int32)',
  '|u1': 'uint8: save it with x.astype(np.float32) (or np.int32)',
  '>f4': 'big-endian float32: save it with x.astype("<f4")',
  '>i4': 'big-endian int32: save it with x.astype("<i4")',
};

export interface NpyHeader {
  dtype: NpyDtype;
  shape: number[];
  /** Byte offset of the first element. */
  dataOffset: number;
}

/** Parses the header at the start of `bytes` (at least the first 10 + header-length bytes). */
export function parseNpyHeader(bytes: Uint8Array, where: string): NpyHeader {
  if (bytes.length < 10 || String.fromCharCode(...bytes.subarray(0, 6)) !== MAGIC) {
    throw new InputError(`${where} is not a .npy file (no \\x93NUMPY magic)`);
  }
  const major = bytes[6];
  if (major < 1 || major > 3) throw new InputError(`${where}: unsupported .npy format version ${major}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lengthBytes = major === 1 ? 2 : 4;
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lengthBytes;
  if (bytes.length < start + headerLength) throw new InputError(`${where}: truncated .npy header`);
  const header = Buffer.from(bytes.subarray(start, start + headerLength)).toString(major === 3 ? 'utf8' : 'latin1');
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new InputError(`${where}: malformed .npy header ${JSON.stringify(header.trim())}`);
  }
  const dtype = DESCR[descr];
  if (!dtype) {
    throw new InputError(`${where} holds ${HINT[descr] ?? `dtype '${descr}'`}; only float32 ('<f4') and int32 ('<i4') are read`);
  }
  if (fortran === 'True') throw new InputError(`${where} is in Fortran order; save np.ascontiguousarray(x) instead`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new InputError(`${where}: bad shape (${shapeText})`);
  return { dtype, shape, dataOffset: start + headerLength };
}

const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** An open .npy file read a range of rows (first axis) at a time. */
export class NpyReader {
  readonly dtype: NpyDtype;
  readonly shape: number[];
  readonly rows: number;
  /** Elements per row. */
  readonly rowSize: number;
  private fd: number | null;
  private readonly dataOffset: number;

  constructor(readonly path: string) {
    try {
      this.fd = fs.openSync(path, 'r');
    } catch (error) {
      throw new InputError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    try {
      const head = Buffer.alloc(Math.min(fs.fstatSync(this.fd).size, 65536 + 12));
      fs.readSync(this.fd, head, 0, head.length, 0);
      const header = parseNpyHeader(head, path);
      if (header.shape.length === 0) throw new InputError(`${path} holds a scalar; inputs need a leading batch axis`);
      const expected = header.dataOffset + sizeOf(header.shape) * 4;
      const actual = fs.fstatSync(this.fd).size;
      if (actual !== expected) {
        throw new InputError(`${path}: shape ${JSON.stringify(header.shape)} needs ${expected} bytes, the file has ${actual} (${actual < expected ? 'truncated' : 'trailing data'})`);
      }
      this.dtype = header.dtype;
      this.shape = header.shape;
      this.rows = header.shape[0];
      this.rowSize = sizeOf(header.shape.slice(1));
      this.dataOffset = header.dataOffset;
    } catch (error) {
      this.close();
      throw error;
    }
  }

  /** Rows [start, start + count) as a fresh typed array. */
  read(start: number, count: number): NpyData {
    if (this.fd === null) throw new Error(`${this.path} is closed`);
    if (start < 0 || count < 0 || start + count > this.rows) throw new RangeError(`rows ${start}..${start + count} outside 0..${this.rows}`);
    const bytes = Buffer.alloc(count * this.rowSize * 4);
    let done = 0;
    while (done < bytes.length) {
      const got = fs.readSync(this.fd, bytes, done, bytes.length - done, this.dataOffset + start * this.rowSize * 4 + done);
      if (got === 0) throw new InputError(`${this.path}: unexpected end of file`);
      done += got;
    }
    // Buffer.alloc is never pooled, but copy if it ever shares an ArrayBuffer (typed arrays need alignment).
    const aligned = bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.length ? bytes.buffer : new Uint8Array(bytes).buffer;
    return this.dtype === 'float32' ? new Float32Array(aligned) : new Int32Array(aligned);
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

export function readNpy(path: string): NpyArray {
  const reader = new NpyReader(path);
  try {
    return { dtype: reader.dtype, shape: reader.shape, data: reader.read(0, reader.rows) };
  } finally {
    reader.close();
  }
}

/** The .npy (version 1.0) bytes of a C-order array. */
export function encodeNpy(array: NpyArray): Buffer {
  if (sizeOf(array.shape) !== array.data.length) {
    throw new Error(`shape ${JSON.stringify(array.shape)} does not hold ${array.data.length} elements`);
  }
  const descr = array.dtype === 'float32' ? '<f4' : '<i4';
  const shape = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  // numpy pads the header with spaces so the data starts 64-byte aligned, ending in '\n'.
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const prefix = Buffer.alloc(10);
  prefix.write(MAGIC, 0, 'latin1');
  prefix[6] = 1;
  prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  const data = Buffer.from(array.data.buffer, array.data.byteOffset, array.data.byteLength);
  return Buffer.concat([prefix, Buffer.from(header, 'latin1'), data]);
}

export function writeNpy(path: string, array: NpyArray): void {
  fs.writeFileSync(path, encodeNpy(array));
}
