/** Shared test utilities: leak checks and fixture access. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';

export const REPO = path.resolve(__dirname, '..', '..');
export const COMMITTED = path.join(REPO, 'fixtures', 'models');

export function committedModel(name: string): string {
  return path.join(COMMITTED, name, 'model.json');
}

const tempDirs: string[] = [];
afterAll(() => tempDirs.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

/** A fresh temp dir, removed after the test file (callable inside tests). */
export function tempDir(prefix = 'tfjs-rewrite-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** Runs `body` and asserts it leaves no tensors behind. */
export async function expectNoLeaks<T>(body: () => Promise<T>): Promise<T> {
  const before = tf.memory().numTensors;
  const result = await body();
  expect(tf.memory().numTensors).toBe(before);
  return result;
}

/** Every file under `dir` with its bytes, to prove a directory was not modified. */
export function snapshotDir(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const name of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const file = path.join(dir, name);
    if (fs.statSync(file).isFile()) files.set(name, fs.readFileSync(file).toString('base64'));
  }
  return files;
}

/** Every call of every layer (nested models included): the ranks of its inputs, then outputs. */
export function layerCalls(model: tf.LayersModel): { layer: string; className: string; ranks: number[] }[] {
  const ranks = (shapes: tf.Shape | tf.Shape[]) => (Array.isArray(shapes[0]) ? (shapes as tf.Shape[]) : [shapes as tf.Shape]).map((s) => s.length);
  return model.layers.flatMap((layer) => [
    ...layer.inboundNodes.map((node) => ({ layer: layer.name, className: layer.getClassName(), ranks: [...ranks(node.inputShapes), ...ranks(node.outputShapes)] })),
    ...(layer instanceof tf.LayersModel ? layerCalls(layer) : []),
  ]);
}

export { disposeModel } from '../../src/formats/load';

/** Runs the calling test file on `name`, putting the backend found before it back afterwards. */
export function useBackendForFile(name: string): void {
  let previous: string | undefined;
  beforeAll(async () => {
    previous = tf.getBackend();
    await tf.setBackend(name);
  });
  afterAll(async () => {
    if (previous) await tf.setBackend(previous);
  });
}
