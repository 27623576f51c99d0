/**
 * Picks the backend verification (and benchmarks) run on. `auto` prefers libtensorflow through
 * @tensorflow/tfjs-node-gpu (CUDA) or @tensorflow/tfjs-node, then wasm (XNNPACK), then cpu, and
 * always says which one it got, on what device, and why a preferred one was passed over.
 */
import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors';
import { quietRequire } from './load';
import { BrowserBackend, isBrowserBackend } from '../browser/session';

/** Backends of tfjs in this Node process. */
export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
/** Any backend a check can run on: Node's, or a headless browser's (src/browser). */
export type TargetName = BackendName | BrowserBackend;
export type BackendRequest = TargetName | 'auto';
export const BACKEND_REQUESTS: BackendRequest[] = ['auto', 'tensorflow', 'wasm', 'cpu', 'webgl', 'webgpu'];

export interface BackendInfo {
  name: TargetName;
  /** e.g. "gpu (CUDA via tfjs-node-gpu)", "cpu (wasm, SIMD)". */
  device: string;
  /** Why preferred backends were not used, when `auto` fell back. */
  fallbacks: string[];
}

/** `require` in production; tests inject a loader to exercise the native path without it. */
export type ModuleLoader = (id: string) => unknown;

interface NodeBackendShape {
  isGPUPackage?: boolean;
  isUsingGpuDevice?: boolean;
}

async function tryTensorflow(load: ModuleLoader): Promise<{ device: string } | { reason: string }> {
  const reasons: string[] = [];
  for (const id of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    // A tfjs-node without its native binding throws after ~150 lines of console noise: one reason.
    const loaded = quietRequire(id, load);
    if (loaded.reason !== undefined) {
      reasons.push(loaded.reason);
      continue;
    }
    if (!(await tf.setBackend('tensorflow'))) {
      reasons.push(`${id} loaded but the tensorflow backend did not initialize`);
      continue;
    }
    const backend = tf.backend() as unknown as NodeBackendShape;
    const gpu = backend.isGPUPackage === true && backend.isUsingGpuDevice === true;
    const device = gpu
      ? 'gpu (CUDA via tfjs-node-gpu)'
      : `cpu (libtensorflow via ${id}${backend.isGPUPackage ? ', no CUDA device found' : ''})`;
    return { device };
  }
  return { reason: reasons.join('; ') };
}

async function tryWasm(load: ModuleLoader): Promise<{ device: string } | { reason: string }> {
  try {
    const loaded = quietRequire('@tensorflow/tfjs-backend-wasm', load);
    if (loaded.reason !== undefined) return { reason: `wasm backend unavailable (${loaded.reason})` };
    if (!(await tf.setBackend('wasm'))) return { reason: 'the wasm backend did not initialize' };
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    return { device: `cpu (wasm${simd ? ', SIMD' : ''})` };
  } catch (error) {
    return { reason: `wasm backend unavailable (${(error as Error).message.split('\n')[0]})` };
  }
}

export async function selectBackend(request: BackendRequest = 'auto', load: ModuleLoader = require): Promise<BackendInfo & { name: BackendName }> {
  // Browser backends run in a page (BrowserSession), never in this process.
  if (isBrowserBackend(request)) throw new InputError(`backend ${request} runs in a headless browser; it is not available to this command`);
  if (!BACKEND_REQUESTS.includes(request)) {
    throw new InputError(`unknown backend "${request}" (use ${BACKEND_REQUESTS.join(', ')})`);
  }
  const fallbacks: string[] = [];
  if (request === 'auto' || request === 'tensorflow') {
    const result = await tryTensorflow(load);
    if ('device' in result) return { name: 'tensorflow', device: result.device, fallbacks };
    if (request === 'tensorflow') throw new InputError(`backend tensorflow unavailable: ${result.reason}`);
    fallbacks.push(result.reason);
  }
  if (request === 'auto' || request === 'wasm') {
    const result = await tryWasm(load);
    if ('device' in result) return { name: 'wasm', device: result.device, fallbacks };
    if (request === 'wasm') throw new InputError(result.reason);
    fallbacks.push(result.reason);
  }
  await tf.setBackend('cpu');
  return { name: 'cpu', device: 'cpu (JavaScript)', fallbacks };
}

/**
 * tfjs failed while running the user's original model on `backend`: the model's problem on that
 * backend (an op or dtype it lacks), never ours. With `auto` the next backend is tried.
 */
export class OriginalModelError extends InputError {
  override name = 'OriginalModelError';

  constructor(readonly backend: TargetName, readonly reason: string) {
    super(`the original model does not run on ${backend}: ${reason}`);
  }
}

/**
 * Runs `body` on the requested backend. With `auto`, the backends are tried in order
 * (tensorflow, wasm, cpu): one that is unavailable, or that the ORIGINAL model does not run on
 * (`body` throws OriginalModelError), is passed over for the next, and the reason travels in
 * `fallbacks`. Only when no backend runs the model is that an error, naming each failure.
 */
export async function onBackend<T>(
  request: BackendRequest, load: ModuleLoader, body: (backend: BackendInfo) => Promise<T>,
): Promise<T> {
  if (request !== 'auto') return body(await selectBackend(request, load));
  const fallbacks: string[] = [];
  const failures: OriginalModelError[] = [];
  const attempts: [BackendName, () => Promise<{ device: string } | { reason: string }>][] = [
    ['tensorflow', () => tryTensorflow(load)],
    ['wasm', () => tryWasm(load)],
    ['cpu', async () => ((await tf.setBackend('cpu')) ? { device: 'cpu (JavaScript)' } : { reason: 'the cpu backend did not initialize' })],
  ];
  for (const [name, attempt] of attempts) {
    const result = await attempt();
    if ('reason' in result) {
      fallbacks.push(result.reason);
      continue;
    }
    try {
      return await body({ name, device: result.device, fallbacks: [...fallbacks] });
    } catch (error) {
      if (!(error instanceof OriginalModelError)) throw error;
      failures.push(error);
      fallbacks.push(error.message);
    }
  }
  if (failures.length === 0) throw new InputError(`no backend is available: ${fallbacks.join('; ')}`);
  const [first, ...rest] = failures;
  throw new InputError([first.message, ...rest.map((f) => `nor on ${f.backend}: ${f.reason}`)].join('; '));
}
