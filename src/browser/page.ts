/**
 * What runs inside the page: loads models from the asset server with stock tfjs, runs them on
 * staged inputs, returns the values asked for (model outputs and probe taps) and times runs.
 * Installed by serializing `pageRuntime` (tsconfig targets ES2020, so the emitted function is
 * plain modern JS with no helpers from outside it); it must reference nothing but page globals.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */

/** A tensor crossing the page boundary: little-endian bytes as base64. */
export interface WireTensor {
  b64: string;
  shape: number[];
  dtype: string;
}

/** A symbolic tensor of a top-level layer of a loaded LayersModel; node -1: model input `tensor`. */
export interface Tap {
  layer: string;
  node: number;
  tensor: number;
}

export function pageRuntime(): void {
  const g = globalThis as any;
  const tf = g.tf;
  const models = new Map<string, { kind: string; model: any }>();
  const staged = new Map<string, any[]>();
  const probes = new Map<string, { model: any; taps: any[]; internal: any[] }>();

  const decode = (t: WireTensor) => {
    const bin = g.atob(t.b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return tf.tensor(t.dtype === 'int32' ? new Int32Array(bytes.buffer) : new Float32Array(bytes.buffer), t.shape, t.dtype);
  };
  const encode = async (t: any): Promise<WireTensor> => {
    const data = await t.data();
    const values = data instanceof Float32Array || data instanceof Int32Array ? data : Float32Array.from(data);
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    let text = '';
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000) as any);
    return { b64: g.btoa(text), shape: t.shape, dtype: t.dtype };
  };
  const asArray = (x: any) => (Array.isArray(x) ? x : [x]);

  /** The symbolic tensors of `model` to yield; model inputs are echoed back, not computed. */
  const probeFor = (id: string, model: any, taps: Tap[]) => {
    const key = `${id}:${JSON.stringify(taps)}`;
    let probe = probes.get(key);
    if (!probe) {
      const symbolic = taps.map((tap) => (tap.node < 0 ? model.inputs[tap.tensor] : asArray(model.getLayer(tap.layer).getOutputAt(tap.node))[tap.tensor]));
      const internal = symbolic.filter((t: any) => !model.inputs.some((input: any) => input.id === t.id));
      probe = { model: internal.length ? tf.model({ inputs: model.inputs, outputs: internal }) : null, taps: symbolic, internal };
      probes.set(key, probe);
    }
    return probe;
  };

  /** One forward pass; returns the taps (layers) or the output nodes (graph), as tensors. */
  const forward = async (id: string, inputsId: string, taps?: Tap[], nodes?: string[]): Promise<any[]> => {
    const entry = models.get(id);
    const xs = staged.get(inputsId);
    if (!entry || !xs) throw new Error(`unknown model ${id} or inputs ${inputsId}`);
    if (entry.kind === 'graph') {
      const feed: Record<string, any> = {};
      entry.model.inputs.forEach((input: any, i: number) => (feed[input.name] = xs[i]));
      const names = nodes ?? entry.model.outputNodes;
      try {
        return asArray(entry.model.execute(feed, names));
      } catch (error) {
        if (!/executeAsync/.test(String((error as Error).message))) throw error;
        return asArray(await entry.model.executeAsync(feed, names));
      }
    }
    const batchSize = xs[0].shape[0] || 1;
    if (!taps) return asArray(entry.model.predict(xs.length === 1 ? xs[0] : xs, { batchSize }));
    const probe = probeFor(id, entry.model, taps);
    const produced = probe.model ? asArray(probe.model.predict(xs, { batchSize })) : [];
    return probe.taps.map((t: any) => {
      const input = entry.model.inputs.findIndex((i: any) => i.id === t.id);
      return input >= 0 ? xs[input].clone() : produced[probe.internal.indexOf(t)];
    });
  };

  g.tfr = {
    /** Selects the backend; returns the device and whether textures are float16. */
    async init(backend: string, forceFloat16: boolean) {
      if (forceFloat16) tf.env().set('WEBGL_FORCE_F16_TEXTURES', true);
      let ok = false;
      let error = '';
      try {
        ok = await tf.setBackend(backend);
      } catch (e) {
        error = String((e as Error).message ?? e);
      }
      if (!ok || tf.getBackend() !== backend) {
        const why = backend === 'webgpu' && !(g.navigator && g.navigator.gpu) ? 'this browser exposes no WebGPU (navigator.gpu)'
          : backend === 'webgpu' ? 'no WebGPU adapter in this browser' : error || `tf.setBackend('${backend}') failed`;
        return { ok: false, reason: why };
      }
      await tf.ready();
      let device = backend;
      let float16 = false;
      if (backend === 'webgl') {
        const gl = tf.backend().gpgpu.gl;
        const info = gl.getExtension('WEBGL_debug_renderer_info');
        device = String(info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER));
        float16 = !tf.env().getBool('WEBGL_RENDER_FLOAT32_ENABLED') || tf.env().getBool('WEBGL_FORCE_F16_TEXTURES');
      } else {
        const adapter = await g.navigator.gpu.requestAdapter();
        const info = adapter && adapter.info ? adapter.info : {};
        device = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') || 'unknown adapter';
        if (info.isFallbackAdapter) device += ' (fallback adapter)';
      }
      return { ok: true, device, float16, version: tf.version.tfjs };
    },
    async load(id: string, kind: string, url: string) {
      const model = kind === 'graph' ? await tf.loadGraphModel(url) : await tf.loadLayersModel(url);
      models.set(id, { kind, model });
      return kind === 'graph' ? { inputs: model.inputs.map((i: any) => i.name), outputs: model.outputNodes } : { inputs: model.inputNames, outputs: model.outputNames };
    },
    stage(id: string, inputs: WireTensor[]) {
      staged.set(id, inputs.map(decode));
    },
    /** Values of one forward pass: the taps (layers models) or the nodes (graph models; default its outputs). */
    async run(id: string, inputsId: string, taps?: Tap[], nodes?: string[]) {
      const outputs = await forward(id, inputsId, taps, nodes);
      try {
        const result = [];
        for (const t of outputs) result.push(await encode(t));
        return result;
      } finally {
        tf.dispose(outputs);
      }
    },
    /** Milliseconds of one run until every output is read back (as Node timings are). */
    async time(id: string, inputsId: string) {
      const start = g.performance.now();
      const outputs = await forward(id, inputsId);
      await Promise.all(outputs.map((t: any) => t.data()));
      const elapsed = g.performance.now() - start;
      tf.dispose(outputs);
      return elapsed;
    },
    dispose(id: string) {
      const entry = models.get(id);
      if (entry) {
        // Probe models share the model's layers: dropping them is enough, disposing would free its weights.
        for (const key of [...probes.keys()]) if (key.startsWith(`${id}:`)) probes.delete(key);
        entry.model.dispose();
        models.delete(id);
      }
      const xs = staged.get(id);
      if (xs) {
        tf.dispose(xs);
        staged.delete(id);
      }
    },
    numTensors: () => tf.memory().numTensors,
  };
}
