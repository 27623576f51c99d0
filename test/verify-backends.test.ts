import * as tf from '@tensorflow/tfjs';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { optimize, verify } from '../src';
import type { SkippedBackend, VerificationReport } from '../src/verify/verify';
import { committedModel, expectNoLeaks } from './helpers/tf';
import { BROWSER_MISSING } from './helpers/browser';

const MINI = committedModel('qwen3vl-patch-embed-mini');

/** A module loader where the native packages are absent, as on this machine. */
const absent = (id: string) => {
  if (id.startsWith('@tensorflow/tfjs-node')) throw Object.assign(new Error(`Cannot find module '${id}'`), { code: 'MODULE_NOT_FOUND' });
  return require(id);
};

const ran = (runs: VerificationReport['backends']) => runs!.filter((r): r is VerificationReport => !('skipped' in r));

describe('--backend all', () => {
  test('runs every backend present, reports a matrix and why tensorflow was skipped', async () => {
    const { artifacts } = await optimize(MINI, { verify: false, policy: 'always' });
    const report = await expectNoLeaks(() => verify(MINI, artifacts, { backend: 'all', batch: 8, moduleLoader: absent }));
    expect(report.backend).toBe('all');
    // webgl/webgpu run in a headless browser (test/browser.test.ts); listed as skipped without one.
    expect(report.backends!.map((r) => r.backend)).toEqual(['tensorflow', 'wasm', 'cpu', 'webgl', 'webgpu']);
    const skipped = report.backends![0] as SkippedBackend;
    expect(skipped.skipped).toMatch(/@tensorflow\/tfjs-node-gpu is not installed; @tensorflow\/tfjs-node is not installed/);
    expect(report.fallbacks[0]).toBe(`tensorflow: ${skipped.skipped}`);
    const browsers = BROWSER_MISSING ? [] : [['webgl', true], ['webgpu', true]];
    expect(ran(report.backends).map((r) => [r.backend, r.passed])).toEqual([['wasm', true], ['cpu', true], ...browsers]);
    expect(report.device).toMatch(BROWSER_MISSING ? /^wasm: cpu \(wasm.*\); cpu: cpu \(JavaScript\)$/ : /^wasm: cpu \(wasm.*\); cpu: cpu \(JavaScript\); webgl: .+; webgpu: .+$/);
    // The summary holds, per output, the backend where it was worst.
    const worst = Math.max(...ran(report.backends).map((r) => r.outputs[0].maxAbsDiff));
    expect(report.outputs[0].maxAbsDiff).toBe(worst);
    expect(report.passed).toBe(true);
  });

  test('a CUDA build of libtensorflow is detected from the backend and reported as gpu', async () => {
    // Stand-in for tfjs-node-gpu on a CUDA machine: a "tensorflow" backend (cpu kernels) that
    // exposes the two flags the real NodeJSKernelBackend sets.
    class FakeGpuBackend extends MathBackendCPU {
      isGPUPackage = true;
      isUsingGpuDevice = true;
    }
    const kernels = tf.getKernelsForBackend('cpu');
    tf.registerBackend('tensorflow', () => new FakeGpuBackend(), 0);
    kernels.forEach((k) => tf.registerKernel({ ...k, backendName: 'tensorflow' }));
    try {
      const { artifacts } = await optimize(MINI, { verify: false, policy: 'always' });
      const loaded: string[] = [];
      const report = await verify(MINI, artifacts, {
        backend: 'all', batch: 4, moduleLoader: (id) => (loaded.push(id), id.startsWith('@tensorflow/tfjs-node') ? {} : require(id)),
      });
      expect(loaded[0]).toBe('@tensorflow/tfjs-node-gpu');
      const tensorflow = report.backends![0] as VerificationReport;
      expect(tensorflow).toMatchObject({ backend: 'tensorflow', device: 'gpu (CUDA via tfjs-node-gpu)', passed: true });
      expect(tensorflow.layers![0].passed).toBe(true);
    } finally {
      kernels.forEach((k) => tf.unregisterKernel(k.kernelName, 'tensorflow'));
      tf.removeBackend('tensorflow');
      await tf.setBackend('cpu');
    }
  });

  test('a native package that fails to load (no CUDA libraries) is skipped with its error', async () => {
    const { artifacts } = await optimize(MINI, { verify: false, policy: 'always' });
    const report = await verify(MINI, artifacts, {
      backend: 'all',
      moduleLoader: (id) => {
        if (id === '@tensorflow/tfjs-node-gpu') throw new Error('libcudart.so.11.0: cannot open shared object file\n    at Module._extensions');
        return absent(id);
      },
    });
    expect((report.backends![0] as SkippedBackend).skipped)
      .toMatch(/@tensorflow\/tfjs-node-gpu failed to load \(libcudart\.so\.11\.0: cannot open shared object file\); @tensorflow\/tfjs-node is not installed/);
    expect(report.passed).toBe(true);
  });
});
