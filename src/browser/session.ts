/**
 * A headless Chromium/Chrome running stock tfjs on WebGL or WebGPU, driven by puppeteer-core.
 * The browser is the user's (CHROME_PATH, or a chromium/chrome on PATH; never downloaded); the
 * tfjs bundles are the ones the user installed (require.resolve); models reach the page through
 * an AssetServer on 127.0.0.1 that lives as long as the session. Every open session is killed
 * synchronously on process exit and by `closeAllBrowsers` (the CLI calls it on Ctrl-C).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { InputError, oneLine } from '../errors';
import { AssetServer } from './server';
import { Tap, WireTensor, pageRuntime } from './page';

export type BrowserBackend = 'webgl' | 'webgpu';
export const BROWSER_BACKENDS: BrowserBackend[] = ['webgl', 'webgpu'];
export const isBrowserBackend = (name: string): name is BrowserBackend => (BROWSER_BACKENDS as string[]).includes(name);

export interface BrowserOptions {
  /**
   * Simulates a GPU without float32 render targets (WEBGL_FORCE_F16_TEXTURES); webgl only.
   * Default: the environment variable TFJS_REWRITE_WEBGL_F16=1.
   */
  forceFloat16?: boolean;
}

/** Executable names tried on PATH, in order, when CHROME_PATH is not set. */
const NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable', 'chrome', 'microsoft-edge'];
export const INSTALL_HINT = 'install Chromium or Chrome (Debian/Ubuntu: apt-get install chromium) or set CHROME_PATH to its executable';

/** The browser executable: $CHROME_PATH, else the first of NAMES on PATH; null when none. */
export function findChrome(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.CHROME_PATH) return fs.existsSync(env.CHROME_PATH) ? env.CHROME_PATH : null;
  for (const dir of (env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    for (const name of NAMES) {
      const candidate = path.join(dir, name);
      try {
        fs.accessSync(candidate, fs.constants.X_OK);
        if (fs.statSync(candidate).isFile()) return candidate;
      } catch {
        // not here
      }
    }
  }
  return null;
}

/** Flags that keep Chromium offline and quiet; WebGL/WebGPU run on whatever GPU (or SwiftShader) it finds. */
const FLAGS = [
  '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--disable-default-apps', '--disable-extensions', '--mute-audio', '--enable-unsafe-webgpu',
];

interface PuppeteerBrowser {
  newPage(): Promise<PuppeteerPage>;
  close(): Promise<void>;
  process(): { kill(signal?: string): boolean; pid?: number } | null;
}
interface PuppeteerPage {
  goto(url: string): Promise<unknown>;
  evaluate<T>(fn: string | ((...args: never[]) => T), ...args: unknown[]): Promise<T>;
  on(event: string, handler: (arg: unknown) => void): void;
}

/** Open sessions: killed on exit and on Ctrl-C (synchronously: no await is possible there). */
const open = new Set<BrowserSession>();
let exitHook = false;

/** Launches under way: their browser has no handle yet, only its (unique) profile folder. */
const launching = new Set<string>();

/** Kills every open browser now and removes its profile; safe to call from a signal handler. */
export function closeAllBrowsers(): void {
  for (const session of [...open]) session.kill();
  for (const profile of [...launching]) {
    killByProfile(profile);
    removeProfile(profile);
    launching.delete(profile);
  }
}

/** SIGKILLs the process group of the browser we started with `profile` (Linux /proc; elsewhere a no-op). */
function killByProfile(profile: string): void {
  let pids: string[] = [];
  try {
    pids = fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return;
  }
  for (const pid of pids) {
    try {
      if (!fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`--user-data-dir=${profile}`)) continue;
      process.kill(-Number(pid), 'SIGKILL');
    } catch {
      // gone, not a group leader, or not ours to read
    }
  }
}

function resolveBundle(id: string, what: string): string {
  try {
    return require.resolve(id);
  } catch {
    throw new InputError(`${what} needs ${id.split('/dist/')[0]} installed (npm install ${id.split('/dist/')[0]})`);
  }
}

const toWire = async (t: tf.Tensor): Promise<WireTensor> => {
  const data = await t.data();
  const values = data instanceof Float32Array || data instanceof Int32Array ? data : Float32Array.from(data as ArrayLike<number>);
  return { b64: Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64'), shape: t.shape, dtype: t.dtype };
};

export type Values = { data: Float32Array | Int32Array; shape: number[] }[];

const fromWire = (w: WireTensor) => {
  const bytes = Buffer.from(w.b64, 'base64');
  const copy = new Uint8Array(bytes).buffer; // aligned, owned
  return { data: w.dtype === 'int32' ? new Int32Array(copy) : new Float32Array(copy), shape: w.shape };
};

/** model.json + one weights file, as tensorflowjs writes them, for the page's stock HTTP loader. */
function modelFiles(artifacts: io.ModelArtifacts): { json: string; weights: Buffer } {
  const { weightData, weightSpecs, ...rest } = artifacts;
  const bytes = weightData ? new tf.io.CompositeArrayBuffer(weightData).slice() : new ArrayBuffer(0);
  const json = {
    ...rest,
    weightsManifest: [{ paths: ['weights.bin'], weights: weightSpecs ?? [] }],
  };
  return { json: JSON.stringify(json), weights: Buffer.from(bytes) };
}

export class BrowserSession {
  private nextId = 0;
  private closed = false;

  private constructor(
    readonly backend: BrowserBackend,
    readonly device: string,
    /** Textures hold float16: every stored value is rounded to 11 significant bits. */
    readonly float16: boolean,
    private readonly browser: PuppeteerBrowser,
    private readonly page: PuppeteerPage,
    private readonly server: AssetServer,
    private readonly profile: string,
  ) {}

  /**
   * Launches the browser, loads tfjs and selects `backend`. Errors are one line: no browser,
   * no puppeteer-core, no WebGPU adapter.
   */
  static async open(backend: BrowserBackend, options: BrowserOptions = {}): Promise<BrowserSession> {
    let puppeteer: { launch(options: object): Promise<PuppeteerBrowser> };
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      puppeteer = require('puppeteer-core');
    } catch {
      throw new InputError(`backend ${backend} runs in a headless browser and needs puppeteer-core (npm install puppeteer-core)`);
    }
    const executable = findChrome();
    if (!executable) throw new InputError(`backend ${backend} needs a headless Chromium or Chrome: ${INSTALL_HINT}`);
    const bundles = [resolveBundle('@tensorflow/tfjs/dist/tf.min.js', `backend ${backend}`)];
    if (backend === 'webgpu') bundles.push(resolveBundle('@tensorflow/tfjs-backend-webgpu/dist/tf-backend-webgpu.min.js', 'backend webgpu'));

    const server = new AssetServer();
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-rewrite-chrome-'));
    let browser: PuppeteerBrowser | null = null;
    launching.add(profile);
    if (!exitHook) {
      exitHook = true;
      process.on('exit', closeAllBrowsers);
    }
    try {
      await server.start();
      const scripts = bundles.map((file, i) => server.add(`/tf${i}.js`, { file }, 'text/javascript'));
      server.add('/runtime.js', `(${pageRuntime.toString()})();`, 'text/javascript');
      const html = `<!doctype html><html><head>${scripts.map((src) => `<script src="${src}"></script>`).join('')}<script src="/runtime.js"></script></head><body></body></html>`;
      server.add('/', html, 'text/html');
      browser = await puppeteer.launch({
        executablePath: executable, headless: true, userDataDir: profile, args: FLAGS,
        // Our own handlers close the browser; puppeteer's would exit the process with their own code.
        handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false, protocolTimeout: 600_000,
      });
      const page = await browser.newPage();
      await page.goto(`${server.origin}/`);
      const init = await page.evaluate(
        (name: string, f16: boolean) => (globalThis as unknown as { tfr: { init(b: string, f: boolean): Promise<{ ok: boolean; reason?: string; device?: string; float16?: boolean }> } }).tfr.init(name, f16),
        backend, options.forceFloat16 ?? process.env.TFJS_REWRITE_WEBGL_F16 === '1',
      );
      if (!init.ok) throw new InputError(`backend ${backend} unavailable in ${path.basename(executable)}: ${init.reason}`);
      const session = new BrowserSession(backend, `${init.device} (${path.basename(executable)}, headless)`, init.float16 === true, browser, page, server, profile);
      open.add(session);
      return session;
    } catch (error) {
      browser?.process()?.kill('SIGKILL');
      server.close();
      removeProfile(profile);
      if (error instanceof InputError) throw error;
      throw new InputError(`could not start ${executable} for backend ${backend}: ${oneLine(error)}`);
    } finally {
      launching.delete(profile);
    }
  }

  private call<T>(method: string, ...args: unknown[]): Promise<T> {
    if (this.closed) throw new Error('browser session is closed');
    return this.page.evaluate(`globalThis.tfr.${method}(${args.map((a) => (a === undefined ? 'undefined' : JSON.stringify(a))).join(',')})`) as Promise<T>;
  }

  /** Loads a model in the page through the asset server; returns its id. */
  async load(kind: 'layers' | 'graph', artifacts: io.ModelArtifacts, label: string): Promise<string> {
    const id = `m${this.nextId++}`;
    const { json, weights } = modelFiles(artifacts);
    const url = this.server.add(`/${id}/model.json`, json, 'application/json');
    this.server.add(`/${id}/weights.bin`, weights, 'application/octet-stream');
    try {
      await this.call('load', id, kind, url);
    } catch (error) {
      throw new InputError(`stock tfjs cannot load the ${label} model on ${this.backend}: ${pageError(error)}`);
    } finally {
      this.server.remove(`/${id}/`);
    }
    return id;
  }

  /** Copies `tensors` into the page (the caller keeps and disposes them); returns their id. */
  async stage(tensors: tf.Tensor[]): Promise<string> {
    const id = `x${this.nextId++}`;
    const wire = await Promise.all(tensors.map(toWire));
    await this.call('stage', id, wire);
    return id;
  }

  /** One forward pass: the values of `taps` (layers models) or of `nodes` (graph models; default every output). */
  async run(model: string, inputs: string, taps?: Tap[], nodes?: string[]): Promise<Values> {
    try {
      return (await this.call<WireTensor[]>('run', model, inputs, taps, nodes)).map(fromWire);
    } catch (error) {
      throw new Error(pageError(error));
    }
  }

  /** Milliseconds of one run measured in the page, outputs read back. */
  time(model: string, inputs: string): Promise<number> {
    return this.call<number>('time', model, inputs);
  }

  async dispose(id: string): Promise<void> {
    if (!this.closed) await this.call('dispose', id);
  }

  numTensors(): Promise<number> {
    return this.call<number>('numTensors');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    open.delete(this);
    try {
      await Promise.race([this.browser.close(), new Promise((resolve) => setTimeout(resolve, 3000).unref())]);
    } finally {
      this.kill();
    }
  }

  /** Synchronous teardown: kill the browser's process group, stop serving, remove the profile. */
  kill(): void {
    this.closed = true;
    open.delete(this);
    const child = this.browser.process();
    try {
      // puppeteer starts Chromium detached, as a group leader: its GPU, network and renderer
      // processes go with it (they would otherwise write into the profile after it is removed).
      if (child?.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      try {
        child?.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    this.server.close();
    removeProfile(this.profile);
  }
}

/** Removes a profile folder; a process that was just killed may still finish a write: retry briefly. */
function removeProfile(dir: string): void {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // a file appeared while removing: try again
    }
    if (!fs.existsSync(dir)) return;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  }
}

/** The message of an error thrown inside the page, without puppeteer's wrapping. */
function pageError(error: unknown): string {
  return oneLine(error).replace(/^Error: /, '').replace(/\s+at \S+ \(.*$/, '');
}

/** Runs `body` with a session, closed on every exit path. */
export async function withBrowser<T>(backend: BrowserBackend, options: BrowserOptions, body: (session: BrowserSession) => Promise<T>): Promise<T> {
  const session = await BrowserSession.open(backend, options);
  try {
    return await body(session);
  } finally {
    await session.close();
  }
}
