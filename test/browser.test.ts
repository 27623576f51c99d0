/**
 * --backend webgl|webgpu: stock tfjs in a real headless Chromium (puppeteer-core), models served
 * from 127.0.0.1. Also the pieces that need no browser: the asset server and browser discovery.
 */
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import '../src/jest';
import { optimize, verify, verifyGraphModels } from '../src';
import type { VerificationReport } from '../src/verify/verify';
import { AssetServer } from '../src/browser/server';
import { BrowserSession, closeAllBrowsers, findChrome } from '../src/browser/session';
import { FLOAT16_TOLERANCE } from '../src/verify/verify';
import { describeBrowser } from './helpers/browser';
import { withoutProgress } from './helpers/cli';
import { REPO, committedModel, tempDir } from './helpers/tf';
import { slidingLayersPass } from '../src/rewrite/sliding-conv-layers';

const CLI = path.join(REPO, 'dist', 'src', 'cli', 'main.js');
const MINI = committedModel('qwen3vl-patch-embed-mini');
const GRAPH_MINI = path.join(REPO, 'fixtures', 'graph-models', 'graph-patch-embed-mini', 'model.json');
const dir = tempDir('browser-');
/** The native tfjs-node packages absent (as on this machine), so 'all' is the same everywhere. */
const absent = (id: string) => {
  if (id.startsWith('@tensorflow/tfjs-node')) throw Object.assign(new Error(`Cannot find module '${id}'`), { code: 'MODULE_NOT_FOUND' });
  return require(id);
};
const run = (args: string[], env: NodeJS.ProcessEnv = process.env) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env });

const get = (url: string, method = 'GET') => new Promise<{ status: number; body: string }>((resolve, reject) => {
  const request = http.request(url, { method }, (response) => {
    let body = '';
    response.on('data', (chunk) => (body += chunk));
    response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
  });
  request.on('error', reject);
  request.end();
});

describe('asset server', () => {
  test('serves exactly the registered paths on 127.0.0.1, nothing else', async () => {
    const server = new AssetServer();
    await server.start();
    try {
      expect(server.origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const url = server.add('/m0/model.json', '{"ok":1}', 'application/json');
      server.add('/tf0.js', { file: path.join(REPO, 'package.json') }, 'text/javascript');
      expect(await get(url)).toEqual({ status: 200, body: '{"ok":1}' });
      expect((await get(`${server.origin}/tf0.js`)).body).toBe(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
      for (const probe of ['/', '/m0/', '/m0', '/package.json', '/m0/../package.json', '/m0/%2e%2e/package.json', '/tf0.js/../../package.json', '//etc/passwd']) {
        expect([probe, (await get(`${server.origin}${probe}`)).status]).toEqual([probe, 404]);
      }
      expect((await get(url, 'POST')).status).toBe(404);
      server.remove('/m0/');
      expect((await get(url)).status).toBe(404);
    } finally {
      server.close();
    }
  });
});

describe('finding the browser', () => {
  test('CHROME_PATH first, then the usual names on PATH; none gives null', () => {
    const bin = tempDir('fake-chrome-');
    const exe = path.join(bin, 'google-chrome');
    fs.writeFileSync(exe, '#!/bin/sh\n', { mode: 0o755 });
    fs.writeFileSync(path.join(bin, 'chromium'), 'not executable', { mode: 0o644 });
    expect(findChrome({ PATH: bin })).toBe(exe);
    expect(findChrome({ PATH: `/nonexistent${path.delimiter}${bin}`, CHROME_PATH: exe })).toBe(exe);
    expect(findChrome({ PATH: bin, CHROME_PATH: path.join(bin, 'missing') })).toBeNull();
    expect(findChrome({ PATH: '/nonexistent' })).toBeNull();
  });

  test('no browser: one line saying what to install, exit 2, nothing written', () => {
    const out = path.join(dir, 'no-browser');
    const result = run(['optimize', MINI, '--out', out, '--backend', 'webgl'], { ...process.env, CHROME_PATH: '/nonexistent/chrome' });
    expect(result.status).toBe(2);
    expect(result.stderr.trim().split('\n')).toEqual(['tfjs-rewrite: backend webgl needs a headless Chromium or Chrome: install Chromium or Chrome (Debian/Ubuntu: apt-get install chromium) or set CHROME_PATH to its executable']);
    expect(fs.existsSync(out)).toBe(false);
  });
});

/** The pids of the live processes whose parent is `pid` (from /proc). */
function children(pid: number): number[] {
  return fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name)).flatMap((name) => {
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(fields[1]) === pid && fields[0] !== 'Z' ? [Number(name)] : [];
    } catch {
      return [];
    }
  });
}
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    const state = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return state.slice(state.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
};

describeBrowser('in headless Chromium', () => {
  let qwen: string;
  beforeAll(() => {
    // The full-size Qwen3-VL patch embed ([N, 1536] -> 1152) is generated, not committed.
    qwen = path.join(REPO, 'fixtures', 'generated', 'qwen3vl-patch-embed', 'model.json');
    if (!fs.existsSync(qwen)) execGenerate('qwen3vl-patch-embed');
  });

  test('optimize <qwen3vl patch embed> --backend webgl --json verifies and names the renderer', () => {
    const result = run(['optimize', qwen, '--out', path.join(dir, 'qwen'), '--backend', 'webgl', '--json']);
    expect(withoutProgress(result.stderr)).toBe('');
    expect(result.status).toBe(0);
    const { verification } = JSON.parse(result.stdout);
    expect(verification).toMatchObject({ passed: true, backend: 'webgl', precision: 'float32', atol: 1e-5, rtol: 1e-4 });
    expect(verification.device).toMatch(/ANGLE|SwiftShader|Mesa|NVIDIA|AMD|Intel|Apple/);
    expect(verification.outputs[0].maxAbsDiff).toBeLessThan(1e-4);
    expect(verification.layers[0]).toMatchObject({ layer: 'patch_embed', passed: true });
    expect(verification.exact).toEqual([expect.objectContaining({ layer: 'patch_embed', exact: true, mismatches: 0, elements: 2 * 1152 })]);
  }, 120000);

  test('verify of a rewritten model with one wrong kernel value exits 1 on webgl', () => {
    const out = path.join(dir, 'mini');
    expect(run(['optimize', MINI, '--out', out, '--backend', 'cpu']).status).toBe(0);
    const model = JSON.parse(fs.readFileSync(path.join(out, 'model.json'), 'utf8'));
    const [group] = model.weightsManifest;
    const shard = path.join(out, group.paths[0]);
    const bytes = fs.readFileSync(shard);
    let offset = 0;
    for (const spec of group.weights) {
      if (spec.name.endsWith('/kernel')) break;
      offset += spec.shape.reduce((a: number, b: number) => a * b, 1) * 4;
    }
    bytes.writeFloatLE(bytes.readFloatLE(offset + 4 * 37) + 0.25, offset + 4 * 37); // one value of the Dense kernel
    fs.writeFileSync(shard, bytes);
    const result = run(['verify', MINI, path.join(out, 'model.json'), '--backend', 'webgl', '--json']);
    expect(result.status).toBe(1);
    const { verification } = JSON.parse(result.stdout);
    expect(verification).toMatchObject({ passed: false, backend: 'webgl' });
    expect(verification.outputs[0].outsideTolerance).toBeGreaterThan(0);
  }, 120000);

  test('verify --backend webgpu runs on the WebGPU adapter (or says in one line there is none)', () => {
    const out = path.join(dir, 'mini-gpu');
    expect(run(['optimize', MINI, '--out', out, '--backend', 'cpu']).status).toBe(0);
    const result = run(['verify', MINI, path.join(out, 'model.json'), '--backend', 'webgpu', '--json']);
    if (result.status === 2) {
      expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^tfjs-rewrite: backend webgpu unavailable in .*: (no WebGPU adapter|this browser exposes no WebGPU)/)]);
    } else {
      expect(result.status).toBe(0);
      expect(JSON.parse(result.stdout).verification).toMatchObject({ passed: true, backend: 'webgpu' });
    }
  }, 120000);

  test('bench --backend webgl prints the speedup measured in the page', () => {
    const result = run(['bench', MINI, '--backend', 'webgl', '--rows', '64', '--json']);
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({ backend: 'webgl' });
    expect(report.measurement.speedup).toBeGreaterThan(0);
    expect(report.measurement.original.ms.length).toBeGreaterThanOrEqual(3);
    const text = run(['bench', MINI, '--backend', 'webgl', '--rows', '64']);
    expect(text.stdout).toMatch(/\| webgl \| 64 rows \| [\d.]+ ±\d+% \| [\d.]+ ±\d+% \|.*\| [\d.]+x \|/);
  }, 180000);

  test('--policy measure times the candidates in the page, for both formats', () => {
    for (const [model, out] of [[MINI, 'policy-layers'], [GRAPH_MINI, 'policy-graph']]) {
      const result = run(['optimize', model, '--out', path.join(dir, out), '--backend', 'webgl', '--policy', 'measure', '--json']);
      expect(result.status).toBe(0);
      const { policy, verification } = JSON.parse(result.stdout);
      expect(policy).toMatchObject({ mode: 'measure', backend: 'webgl', device: expect.stringMatching(/\S/) });
      // Every candidate may be kept (the model then goes through unchanged, unverified).
      if (verification) expect(verification.device).toBe(policy.device);
      expect(policy.decisions.length).toBeGreaterThanOrEqual(1);
      for (const d of policy.decisions) {
        expect(d.originalMs).toBeGreaterThan(0);
        expect(d.rewrittenMs).toBeGreaterThan(0);
        expect(d.reason).toMatch(/on webgl at batch \d+/);
      }
    }
  }, 180000);

  test('a MeshNet-shaped model rewritten by conv3d-to-conv2d-slices verifies on webgl, and runs on webgpu', () => {
    const meshnet = committedModel('meshnet-mini');
    const out = path.join(dir, 'meshnet');
    // Both Conv3D rules, as the default pipeline orders them: the 1x1x1 classifier goes to conv3d-to-dense.
    const result = run(['optimize', meshnet, '--out', out, '--backend', 'webgl', '--passes', 'conv3d-to-dense,conv3d-to-conv2d-slices', '--json']);
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout);
    const passOf = Object.fromEntries(report.rewritten.map((r: { layer: string; pass: string }) => [r.layer.split('/').pop(), r.pass]));
    expect(passOf).toEqual({ ...Object.fromEntries([0, 1, 2, 3, 4].map((i) => [`conv_${i}`, 'conv3d-to-conv2d-slices'])), classifier: 'conv3d-to-dense' });
    expect(report.verification).toMatchObject({ passed: true, backend: 'webgl' });
    const gpu = run(['verify', meshnet, path.join(out, 'model.json'), '--backend', 'webgpu', '--json']);
    if (gpu.status === 2) {
      expect(gpu.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^tfjs-rewrite: backend webgpu unavailable in .*: (no WebGPU adapter|this browser exposes no WebGPU)/)]);
    } else {
      const verification = JSON.parse(gpu.stdout).verification;
      expect(verification.backend).toBe('webgpu');
      // tfjs 4.22 computes the original's rank-5 BiasAdd wrong on WebGPU; the rewrite adds its bias on rank 4.
      if (!verification.passed) expect(verification.notes.join('\n')).toMatch(/original.*wrong/);
      else expect(gpu.status).toBe(0);
    }
  }, 300000);

  test('the chunked form of conv3d-to-conv2d-slices (depth chunks, depth pieces, the empty barrier) verifies on webgl and webgpu', async () => {
    const meshnet = committedModel('meshnet-mini');
    const out = path.join(dir, 'meshnet-chunked');
    // A small chunk bound gives this 20^3 model the layout a 256^3 volume gets by default: 4 chunks
    // per layer at dilation 1, 7 at dilation 4; each conv after the first reads the one before in
    // depth pieces (slabs cut from the pieces, an empty Concatenate as the barrier).
    const result = await optimize(meshnet, { passes: [slidingLayersPass('conv3d-to-conv2d-slices', 80_000)], backend: 'cpu', verify: false });
    expect(result.report.rewritten.map((r) => r.absorbed?.length ?? 0)).toEqual([0, 3, 3, 3, 3, 3]);
    result.save(out);
    for (const backend of ['webgl', 'webgpu']) {
      const checked = run(['verify', meshnet, path.join(out, 'model.json'), '--backend', backend, '--json']);
      if (backend === 'webgpu' && checked.status === 2) {
        expect(checked.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^tfjs-rewrite: backend webgpu unavailable in .*: (no WebGPU adapter|this browser exposes no WebGPU)/)]);
        continue;
      }
      const verification = JSON.parse(checked.stdout).verification;
      expect(verification.backend).toBe(backend);
      // tfjs 4.22 computes the original's rank-5 BiasAdd wrong on WebGPU (as in the test above).
      if (backend === 'webgpu' && !verification.passed) expect(verification.notes.join('\n')).toMatch(/original.*wrong/);
      else expect([checked.status, verification.passed]).toEqual([0, true]);
    }
  }, 300000);

  test('graph models verify on webgl too', () => {
    const result = run(['optimize', GRAPH_MINI, '--out', path.join(dir, 'graph'), '--backend', 'webgl', '--policy', 'always', '--json']);
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout).verification).toMatchObject({ passed: true, backend: 'webgl' });
  }, 120000);

  test('graph models with --backend all: every backend, and a zeroed original output on webgpu is named', async () => {
    expect(run(['optimize', GRAPH_MINI, '--out', path.join(dir, 'graph-all'), '--backend', 'cpu']).status).toBe(0);
    const report = await verifyGraphModels(GRAPH_MINI, path.join(dir, 'graph-all', 'model.json'), { backend: 'all', moduleLoader: absent });
    const runs = report.backends!.filter((r): r is VerificationReport => !('skipped' in r));
    expect(runs.map((r) => r.backend)).toEqual(['wasm', 'cpu', 'webgl', 'webgpu']);
    expect(runs.slice(0, 3).map((r) => r.passed)).toEqual([true, true, true]);
    const webgpu = runs[3];
    // tfjs 4.22: the original's rank-5 BiasAdd returns zeros on WebGPU; the rewrite is right there.
    if (!webgpu.passed) expect(webgpu.notes).toEqual([expect.stringMatching(/^the original model returns only zeros for Identity:0 on webgpu: the original, not the rewrite, is wrong there/)]);
    expect(report.passed).toBe(webgpu.passed);
  }, 120000);

  test('transposed-conv rewrites (Dense + depth-to-space, depth decomposition) run right on webgl and webgpu', async () => {
    // A small 3D U-Net decoder: both rules, every tensor rank <= 5, no rank-5 pad, biases on rank <= 4.
    const input = tf.input({ shape: [2, 3, 3, 4] });
    const init = (seed: number) => tf.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed });
    const up1 = tf.layers.conv3dTranspose({ name: 'up1', filters: 3, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: init(1), biasInitializer: init(2) });
    const up2 = tf.layers.conv3dTranspose({ name: 'up2', filters: 2, kernelSize: 2, strides: 2, kernelInitializer: init(3), biasInitializer: init(4) });
    const model = tf.model({ inputs: input, outputs: up2.apply(up1.apply(input)) as tf.SymbolicTensor, name: 'decoder' });
    for (const backend of ['webgl', 'webgpu'] as const) {
      const { report } = await optimize(model, { backend, policy: 'always' });
      expect({ backend, rewritten: report.rewritten.filter((r) => r.layer.startsWith('up')).map((r) => r.pass) })
        .toEqual({ backend, rewritten: ['conv3d-transpose-by-depth', 'conv3d-transpose-to-dense'] });
      expect({ backend, passed: report.verification?.passed, exact: report.verification?.exact?.map((e) => e.exact) }).toEqual({ backend, passed: true, exact: [true, true] });
      // Findings name only transposed convs here (WebGPU's rank-5 BiasAdd), never something else.
      expect(report.findings?.every((f) => f.backend === backend && f.className === 'Conv3DTranspose')).toBe(true);
    }
    model.dispose();
  }, 240000);

  test('float16 textures: the report says so and the tolerance follows float16 rounding', async () => {
    // Policy 'always': a timed default may keep the mini patch embed, and then there is nothing to compare.
    const { artifacts } = await optimize(MINI, { verify: false, policy: 'always' });
    const report = await verify(MINI, artifacts, { backend: 'webgl', batch: 64, browser: { forceFloat16: true } });
    expect(report).toMatchObject({ passed: true, precision: 'float16', atol: FLOAT16_TOLERANCE.atol, rtol: FLOAT16_TOLERANCE.rtol });
    expect(FLOAT16_TOLERANCE.rtol).toBe(4 * 2 ** -11);
    expect(report.notes![0]).toMatch(/float16 textures on this device: tolerance widened to \|a-b\| <= 0\.00195 \+ 0\.00195\*\|a\|/);
    // Float16 rounding is what the widening is for: far above float32's 1e-5, within 4 u16.
    expect(report.outputs[0].maxAbsDiff).toBeGreaterThan(1e-5);
    expect(report.layers![0].passed).toBe(true);
  }, 120000);

  test('the jest matcher takes the browser backends', async () => {
    const { artifacts } = await optimize(MINI, { verify: false, policy: 'always' });
    const before = tf.memory().numTensors;
    await expect(artifacts).toComputeLike(MINI, { backend: 'webgl', batch: 16 });
    expect(tf.memory().numTensors).toBe(before);
  }, 120000);

  test('the browser is gone after close, after closeAllBrowsers, and after Ctrl-C of the CLI', async () => {
    const session = await BrowserSession.open('webgl');
    const [pid] = children(process.pid).filter((p) => fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('--user-data-dir'));
    expect(alive(pid)).toBe(true);
    await session.close();
    expect(alive(pid)).toBe(false);
    await BrowserSession.open('webgl');
    const [second] = children(process.pid).filter((p) => fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('--user-data-dir'));
    closeAllBrowsers();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(alive(second)).toBe(false);

    const cli = spawn(process.execPath, [CLI, 'optimize', qwen, '--out', path.join(dir, 'interrupted'), '--backend', 'webgl', '--rows', '512']);
    let browser: number | undefined;
    for (let i = 0; i < 300 && browser === undefined; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      browser = children(cli.pid!).find((p) => fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('--user-data-dir'));
    }
    expect(browser).toBeDefined();
    const profile = /--user-data-dir=([^\0]+)/.exec(fs.readFileSync(`/proc/${browser}/cmdline`, 'utf8'))![1];
    expect(fs.existsSync(profile)).toBe(true);
    const exited = new Promise<number | null>((resolve) => cli.on('exit', (code) => resolve(code)));
    cli.kill('SIGINT');
    expect(await exited).toBe(130);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(alive(browser!)).toBe(false);
    expect(fs.existsSync(profile)).toBe(false); // its temporary profile too, even mid-launch
    expect(fs.existsSync(path.join(dir, 'interrupted'))).toBe(false);
  }, 120000);
});

function execGenerate(name: string): void {
  const result = spawnSync(process.execPath, [path.join(REPO, 'dist', 'fixtures', 'generate.js'), name], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`fixture generation failed: ${result.stderr}`);
}
