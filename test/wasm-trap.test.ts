/**
 * A pooled worker retires after a WebAssembly trap (src/workers/health.ts, src/worker.ts): the
 * classification, on a real trap from a real module (an `unreachable` instruction), and on the
 * errors that must not retire a worker.
 */
import { noteWasmTrap, takeWasmTrap } from '../src/workers/health';

/** (module (func (export "f") unreachable)) */
const TRAPPING = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
  0x03, 0x02, 0x01, 0x00,
  0x07, 0x05, 0x01, 0x01, 0x66, 0x00, 0x00,
  0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b,
]);

test('a WebAssembly trap is recorded once; ordinary errors are not', () => {
  const wasm = (globalThis as unknown as { WebAssembly: { Instance: new (m: unknown) => { exports: { f(): void } }; Module: new (b: Uint8Array) => unknown } }).WebAssembly;
  const f = new wasm.Instance(new wasm.Module(TRAPPING)).exports.f;
  let trap: unknown;
  try {
    f();
  } catch (error) {
    trap = error;
  }
  expect((trap as Error).name).toBe('RuntimeError');
  expect(takeWasmTrap()).toBe(false);
  noteWasmTrap(new Error('the model has a bad layer'));
  noteWasmTrap(new RangeError('Invalid array length'));
  noteWasmTrap('a string');
  expect(takeWasmTrap()).toBe(false);
  noteWasmTrap(trap);
  expect(takeWasmTrap()).toBe(true);
  expect(takeWasmTrap()).toBe(false);
});
