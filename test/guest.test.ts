/**
 * The library as a guest in someone else's process: it leaves the caller's backend as it found
 * it, takes both model formats through the same functions, and turns tfjs's load-time console
 * noise (a second tfjs copy, a tfjs-node without its native binding) into one line.
 */
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { inspect, optimize, readGraphModelFiles, verify } from '../src';
import { keepingBackend } from '../src/backend/guest';
import { duplicateTfjsLine, loadedTfjsCores, muted, quietRequire } from '../src/backend/load';
import { selectBackend } from '../src/backend/select';
import { runCli } from './helpers/cli';
import { workerScript } from '../src/workers/pool';
import { REPO, committedModel, expectNoLeaks } from './helpers/tf';

const MINI = committedModel('qwen3vl-patch-embed-mini');
const GRAPH = path.join(REPO, 'fixtures', 'graph-models', 'graph-patch-embed-mini', 'model.json');

describe('the caller keeps its backend', () => {
  beforeEach(() => tf.setBackend('cpu'));

  test.each(['wasm', 'cpu'] as const)('optimize + verify on %s leave cpu active', async (backend) => {
    const result = await optimize(MINI, { backend, policy: 'always' });
    expect(result.report.verification!.backend).toBe(backend);
    expect(tf.getBackend()).toBe('cpu');
    await verify(MINI, result.artifacts, { backend });
    expect(tf.getBackend()).toBe('cpu');
  });

  test('a failing call restores it too', async () => {
    await expect(optimize(MINI, { backend: 'wasm', policy: 'always', inputs: [path.join(REPO, 'no-such.npy')] })).rejects.toThrow(/no-such\.npy/);
    expect(tf.getBackend()).toBe('cpu');
    await expect(keepingBackend(async () => {
      await selectBackend('wasm');
      throw new Error('boom');
    })).rejects.toThrow('boom');
    expect(tf.getBackend()).toBe('cpu');
  });

  test('a caller on wasm stays on wasm when verification runs on cpu', async () => {
    await tf.setBackend('wasm');
    await inspect(MINI, { backend: 'cpu' });
    const result = await optimize(MINI, { backend: 'cpu', policy: 'always' });
    expect(result.report.verification!.backend).toBe('cpu');
    expect(tf.getBackend()).toBe('wasm');
  });
});

describe('a true guest: calls run in worker threads with their own tfjs', () => {
  test('an app serving predictions on cpu while three optimize() run concurrently (one on wasm) sees only cpu and right answers', async () => {
    await tf.setBackend('cpu');
    const app = await tf.loadLayersModel(tf.io.fromMemory((await optimize(MINI, { policy: 'always', backend: 'cpu' })).artifacts));
    const x = tf.randomUniform([2, ...(app.inputs[0].shape.slice(1) as number[])], -1, 1, 'float32', 3);
    const expected = (app.predict(x) as tf.Tensor).dataSync().slice();
    const tensors = tf.memory().numTensors;
    let done = false;
    let predictions = 0;
    const backends = new Set<string>();
    let worst = 0;
    const serving = (async () => {
      while (!done) {
        backends.add(tf.getBackend());
        const y = app.predict(x) as tf.Tensor;
        const got = await y.data();
        y.dispose();
        worst = Math.max(worst, ...Array.from(got, (v, i) => Math.abs(v - expected[i])));
        predictions++;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    const results = await Promise.all([
      optimize(MINI, { backend: 'wasm', policy: 'always' }),
      optimize(MINI, { backend: 'cpu', policy: 'always' }),
      optimize(GRAPH, { backend: 'cpu', policy: 'always' }),
    ]);
    done = true;
    await serving;
    console.log(`${predictions} predictions served during 3 concurrent optimize() calls, backends seen: ${[...backends]}`);
    expect(results.map((r) => [r.report.verification!.backend, r.report.verification!.passed])).toEqual([['wasm', true], ['cpu', true], ['cpu', true]]);
    expect([...backends]).toEqual(['cpu']);
    expect(predictions).toBeGreaterThan(0);
    expect(worst).toBe(0);
    expect(tf.memory().numTensors).toBe(tensors);
    tf.dispose(x);
    app.dispose();
  });

  test('the pool worker script resolves from the compiled package', () => {
    expect(workerScript()).toMatch(/dist[\\/]src[\\/]worker\.js$/);
  });
});

describe('one set of entry points for both formats', () => {
  beforeAll(() => tf.setBackend('cpu'));

  test('a graph-model path, its artifacts and a tf.GraphModel all optimize; load() gives a tf.GraphModel', async () => {
    const fromPath = await optimize(GRAPH, { backend: 'cpu' , policy: 'always' });
    expect(fromPath.report.rewritten.length).toBeGreaterThan(0);
    expect(fromPath.report.verification!.passed).toBe(true);
    const artifacts = await readGraphModelFiles(GRAPH);
    const fromArtifacts = await optimize(artifacts, { backend: 'cpu' , policy: 'always' });
    expect(fromArtifacts.report.rewritten).toEqual(fromPath.report.rewritten);
    const model = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
    const fromModel = await expectNoLeaks(() => optimize(model, { backend: 'cpu' , policy: 'always' }));
    expect(fromModel.report.rewritten).toEqual(fromPath.report.rewritten);
    const loaded = await fromModel.load();
    expect(loaded).toBeInstanceOf(tf.GraphModel);
    loaded.dispose();
    model.dispose();
  });

  test('inspect and verify take graph models; mixing formats is refused; the policy timer times graph cut-outs too', async () => {
    const report = await inspect(GRAPH, { policy: 'always' });
    expect(report.rewritten.length).toBeGreaterThan(0);
    const fromGraphPath = report.rewritten;
    const rewritten = (await optimize(GRAPH, { verify: false , policy: 'always' })).artifacts;
    expect((await verify(GRAPH, rewritten, { backend: 'cpu' })).passed).toBe(true);
    await expect(verify(GRAPH, MINI)).rejects.toThrow('cannot compare a graph model with a layers model');
    const timed = await optimize(GRAPH, { backend: 'cpu', policy: 'measure', verify: false, policyTimer: async (cutOut) => {
      expect(cutOut.format).toBe('graphdef');
      return { originalMs: 1, rewrittenMs: 2 };
    } });
    expect(timed.report.rewritten).toEqual([]);
    expect(timed.report.policy!.decisions.map((d) => [d.decision, d.evidence])).toEqual(fromGraphPath.map(() => ['keep', 'measured']));
    // Names go through the one registry: same names as for layers models.
    const named = await optimize(GRAPH, { passes: ['conv3d-to-dense'], verify: false });
    expect(named.report.rewritten.map((r) => r.pass)).toEqual(fromGraphPath.map((r) => r.pass));
  });
});

describe('load-time noise becomes one line', () => {
  test('a module that logs 155 warnings and throws yields one reason and prints nothing', () => {
    const printed: string[] = [];
    const warn = jest.spyOn(console, 'warn').mockImplementation((...parts) => void printed.push(parts.join(' ')));
    try {
      const noisy = (id: string) => {
        for (let i = 0; i < 155; i++) console.warn(`The kernel 'K${i}' for backend 'cpu' is already registered`);
        throw new Error(`The Node.js native addon module (tfjs_binding.node) can not be found at path: /x/${id}/lib/napi-v8/tfjs_binding.node. \nPlease run npm rebuild`);
      };
      const result = quietRequire('@tensorflow/tfjs-node', noisy);
      expect(result.reason).toBe('@tensorflow/tfjs-node failed to load (The Node.js native addon module (tfjs_binding.node) can not be found at path: /x/@tensorflow/tfjs-node/lib/napi-v8/tfjs_binding.node.)');
      expect(printed).toEqual([]);
    } finally {
      warn.mockRestore();
    }
    expect(console.warn).not.toBe(undefined);
  });

  test('a missing package is "not installed"; a missing dependency of it is a load failure', () => {
    const missing = (id: string) => () => {
      throw Object.assign(new Error(`Cannot find module '${id}'`), { code: 'MODULE_NOT_FOUND' });
    };
    expect(quietRequire('@tensorflow/tfjs-node', missing('@tensorflow/tfjs-node')).reason).toBe('@tensorflow/tfjs-node is not installed');
    expect(quietRequire('@tensorflow/tfjs-node', missing('adm-zip')).reason).toBe("@tensorflow/tfjs-node failed to load (Cannot find module 'adm-zip')");
  });

  test('muted restores the console even when the body throws', () => {
    const before = [console.log, console.warn, console.error];
    const { error, lines } = muted(() => {
      console.error('noise');
      throw new Error('x');
    });
    expect((error as Error).message).toBe('x');
    expect(lines).toEqual(['noise']);
    expect([console.log, console.warn, console.error]).toEqual(before);
  });

  test('two tfjs-core copies are named in one line with the fix', () => {
    const root = path.join(REPO, 'node_modules', '@tensorflow');
    const cache = {
      [path.join(root, 'tfjs-core', 'dist', 'tf-core.node.js')]: {},
      [path.join(root, 'tfjs', 'node_modules', '@tensorflow', 'tfjs-core', 'dist', 'tf-core.node.js')]: {},
      [path.join(root, 'tfjs-core', 'dist', 'index.js')]: {},
    };
    const cores = loadedTfjsCores(cache);
    expect(cores).toHaveLength(2);
    expect(cores[0].version).toBe(tf.version_core);
    const line = duplicateTfjsLine(cores)!;
    expect(line.split('\n')).toHaveLength(1);
    expect(line).toMatch(/^tfjs-rewrite: 2 copies of @tensorflow\/tfjs-core are loaded \(\d+\.\d+\.\d+ in node_modules\/@tensorflow\/tfjs-core, \? in node_modules\/@tensorflow\/tfjs\/node_modules\/@tensorflow\/tfjs-core\).*npm ls @tensorflow\/tfjs-core/);
    expect(duplicateTfjsLine(loadedTfjsCores())).toBeNull(); // this test process: one copy
  });
});

test('--version prints the package version', () => {
  const run = runCli(['--version']);
  expect(run).toEqual({ status: 0, stdout: `${require('../package.json').version}\n`, stderr: '' });
});
