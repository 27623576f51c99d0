import * as fs from 'fs';
import * as path from 'path';
import { InputError } from '../src/errors';
import { NpyReader, encodeNpy, parseNpyHeader, readNpy, writeNpy } from '../src/io/npy';
import { REPO, tempDir } from './helpers/tf';

const PATCHES = path.join(REPO, 'fixtures', 'inputs', 'jetty-patches-p4.npy');
const dir = tempDir('npy-');

/** A .npy with an arbitrary header dict, as numpy would lay it out. */
function rawNpy(dict: string, payload: Buffer): Buffer {
  let header = dict;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const prefix = Buffer.from([0x93, ...Buffer.from('NUMPY'), 1, 0, 0, 0]);
  prefix.writeUInt16LE(header.length, 8);
  return Buffer.concat([prefix, Buffer.from(header, 'latin1'), payload]);
}

describe('npy', () => {
  test('reads a file numpy wrote, and writes the same bytes back', () => {
    const array = readNpy(PATCHES);
    expect(array.dtype).toBe('float32');
    expect(array.shape).toEqual([256, 96]);
    // Normalized pixels: (x - 0.5) / 0.5 lies in [-1, 1] and is not constant.
    const values = Array.from(array.data);
    expect(Math.min(...values)).toBeGreaterThanOrEqual(-1);
    expect(Math.max(...values)).toBeLessThanOrEqual(1);
    expect(new Set(values).size).toBeGreaterThan(1000);
    expect(encodeNpy(array).equals(fs.readFileSync(PATCHES))).toBe(true);
  });

  test('reads row ranges equal to slices of the whole array', () => {
    const whole = readNpy(PATCHES).data;
    const reader = new NpyReader(PATCHES);
    try {
      expect(reader.rowSize).toBe(96);
      expect(Array.from(reader.read(37, 5))).toEqual(Array.from(whole.subarray(37 * 96, 42 * 96)));
      expect(Array.from(reader.read(255, 1))).toEqual(Array.from(whole.subarray(255 * 96)));
      expect(() => reader.read(250, 7)).toThrow(RangeError);
    } finally {
      reader.close();
    }
  });

  test('round-trips int32 and 1-D arrays', () => {
    const file = path.join(dir, 'ids.npy');
    writeNpy(file, { dtype: 'int32', shape: [5], data: Int32Array.from([3, -1, 0, 2147483647, -7]) });
    const back = readNpy(file);
    expect(back).toEqual({ dtype: 'int32', shape: [5], data: Int32Array.from([3, -1, 0, 2147483647, -7]) });
    expect(parseNpyHeader(fs.readFileSync(file), file).dataOffset % 64).toBe(0);
  });

  test.each([
    ['float64', "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", Buffer.alloc(16), /float64: save it with x.astype\(np.float32\)/],
    ['Fortran order', "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", Buffer.alloc(16), /Fortran order.*ascontiguousarray/],
    ['truncated data', "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }", Buffer.alloc(40), /needs 176 bytes, the file has 168 \(truncated\)/],
    ['a scalar', "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", Buffer.alloc(4), /scalar/],
    ['big-endian', "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", Buffer.alloc(4), /big-endian/],
  ])('refuses %s with an InputError that says what to do', (_, dict, payload, message) => {
    const file = path.join(dir, 'bad.npy');
    fs.writeFileSync(file, rawNpy(dict, payload));
    expect(() => readNpy(file)).toThrow(InputError);
    expect(() => readNpy(file)).toThrow(message);
  });

  test('refuses files that are not .npy', () => {
    const file = path.join(dir, 'model.json');
    fs.writeFileSync(file, '{"format": "layers-model"}');
    expect(() => readNpy(file)).toThrow(/not a \.npy file/);
    expect(() => readNpy(path.join(dir, 'missing.npy'))).toThrow(/cannot read .*ENOENT/);
  });
});
