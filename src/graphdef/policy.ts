/**
 * `--policy measure` for graph models: each candidate rewrite (a dry run of the rules: the keep
 * hook sees every match) is cut out as a probe graph (its nodes, the Consts they read, a
 * Placeholder per other input), rewritten by the same rule, and both probes are timed on the
 * backend; the keep hook then keeps the original op where the rewrite is not faster. The rule,
 * the decision (`decide`, with its 1.1x margin) and the report are those of layers models
 * (src/policy/policy.ts). A candidate that cannot be cut out or timed is kept.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import { BackendRequest, selectBackend } from '../backend/select';
import { DEFAULT_POLICY_BATCH, MIN_SPEEDUP, PolicyDecision, PolicyMode, PolicyReport } from '../policy/policy';
import type { CandidateTiming } from '../policy/timer';
import { describeInterval, describeVerdict, timeUntilSettled } from '../policy/interval';
import { graphCandidateFingerprint } from '../policy/fingerprint';
import { LoadedDecisions, replayDecisions, replayKey, replayedDecision } from '../policy/decisions';
import { attr } from './attrs';
import { benchmarkGraphArtifacts } from './bench';
import { loadGraph, openGraphInputs } from './verify';
import { BrowserSession, isBrowserBackend, withBrowser } from '../browser/session';
import { timeGraphsInPage } from '../bench/page';
import { summarizeSamples } from '../bench/stats';
import { GraphCandidate, runGraphPasses } from './driver';
import { GraphModelIR, GraphNode, artifactsFromGraphIR, parseTensorName } from './ir';
import type { GraphPass } from './pass';

/** A candidate's op alone, before and after its rule, for timing. */
export interface GraphProbe {
  node: string;
  original: io.ModelArtifacts;
  rewritten: io.ModelArtifacts;
}

export type GraphProbeTimer = (probe: GraphProbe, batch: number) => Promise<CandidateTiming>;

export interface GraphMeasureOptions {
  backend?: BackendRequest;
  batch?: number;
  timer?: GraphProbeTimer;
  forced?: Set<string>;
  log?: (line: string) => void;
  /** 'auto' or 'measure' (the same timing here: graph models have no table fast path yet); 'always' only with `decisions`. */
  mode?: PolicyMode;
  /** Replay these instead of timing (src/policy/decisions.ts); --passes and 'always' still win. */
  decisions?: LoadedDecisions;
}

const fmt = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));

/** The nodes the candidate's rewrite would replace, as a graph of their own; or why not. */
export function probeOf(candidate: GraphCandidate): GraphProbe | string {
  const { layer: node, pass, plan, context } = candidate;
  const { ir } = context;
  const region = pass.rewrite(node, plan, { ...context, freshName: (base) => `${base}/probe` }).remove;
  const inRegion = new Set(region);
  const nodes: GraphNode[] = [];
  const weights: GraphModelIR['weights'] = [];
  const inputs: Record<string, unknown> = {};
  const added = new Set<string>();
  const feeds = new Map<string, string>();
  // Consts (through Identity) are copied; any other outside tensor becomes a Placeholder.
  const outside = (tensor: string): string | undefined => {
    const ref = parseTensorName(tensor);
    if (ref.control) return undefined;
    let source = context.node(ref.node);
    const chain: GraphNode[] = [];
    while (source?.op === 'Identity') {
      chain.push(source);
      source = context.node(parseTensorName(source.input[0]).node);
    }
    if (source?.op === 'Const' && ref.index === 0) {
      for (const n of [source, ...chain.reverse()]) {
        if (added.has(n.name)) continue;
        added.add(n.name);
        nodes.push({ ...n, input: n.input.filter((i) => !i.startsWith('^')) });
        const weight = context.weight(n.name);
        if (weight) weights.push(weight);
      }
      return tensor;
    }
    if (!feeds.has(tensor)) {
      const shape = context.shapes.of(tensor);
      if ('unknown' in shape) return undefined;
      const name = `probe_input_${feeds.size}`;
      const dims = shape.dims.map((d) => d ?? -1);
      inputs[`${name}:0`] = { name: `${name}:0`, dtype: 'DT_FLOAT', tensorShape: attr.shape(dims).shape };
      nodes.push({ name, op: 'Placeholder', input: [], attr: { dtype: attr.type('DT_FLOAT'), shape: attr.shape(dims) }, extra: {} });
      feeds.set(tensor, name);
    }
    return feeds.get(tensor);
  };
  for (const name of region) {
    const original = context.node(name)!;
    const input: string[] = [];
    for (const tensor of original.input) {
      if (inRegion.has(parseTensorName(tensor).node)) input.push(tensor);
      else {
        const mapped = outside(tensor);
        if (mapped === undefined && !tensor.startsWith('^')) return `input ${tensor} of ${name} has no static shape`;
        if (mapped !== undefined) input.push(mapped);
      }
    }
    nodes.push({ ...original, input });
  }
  const last = region[region.length - 1];
  nodes.push({ name: 'probe_output', op: 'Identity', input: [last], attr: { T: attr.type('DT_FLOAT') }, extra: {} });
  const signature = { inputs, outputs: { 'probe_output:0': { name: 'probe_output:0', dtype: 'DT_FLOAT' } } };
  const probeIR = (): GraphModelIR => ({
    nodes: nodes.map((n) => ({ ...n, input: [...n.input] })), topologyExtra: { ...ir.topologyExtra },
    weights: [...weights], artifactExtra: { ...ir.artifactExtra, signature }, notes: [],
  });
  const before = probeIR();
  const after = probeIR();
  const run = runGraphPasses(after, [pass], { forced: new Set([pass.name]), backend: context.backend });
  if (!run.rewritten.some((r) => r.layer === node.name)) return `${pass.name} does not rewrite the op on its own (${run.skipped[0]?.reason ?? 'no match'})`;
  return { node: node.name, original: artifactsFromGraphIR(before), rewritten: artifactsFromGraphIR(after) };
}

/** Times both probes with the graph bench (interleaved runs, medians). */
export const timeGraphProbe = (backend: BackendRequest): GraphProbeTimer => async (probe, batch) => {
  const result = await benchmarkGraphArtifacts(probe.original, probe.rewritten, { backend, batch, runs: 5, warmup: 1 });
  return { originalMs: result.medianOriginalMs, rewrittenMs: result.medianRewrittenMs, samples: { original: result.originalMs, rewritten: result.rewrittenMs } };
};

/** The timer for a browser backend: both probes in one page of `session`, interleaved, medians. */
const pageGraphTimer = (session: BrowserSession): GraphProbeTimer => async (probe, batch) => {
  const model = await loadGraph(probe.original, 'original probe');
  let feed: tf.Tensor[] = [];
  try {
    const rows = openGraphInputs(model, undefined, { batch, seed: 1234 });
    feed = rows.batch(0, batch);
    rows.close();
    const times = await timeGraphsInPage(session, probe.original, probe.rewritten, feed, 5, 1);
    const [a, b] = times.map((ms) => summarizeSamples(ms).median);
    return { originalMs: a, rewrittenMs: b, samples: { original: times[0], rewritten: times[1] } };
  } finally {
    tf.dispose(feed);
    model.dispose();
  }
};

type Measured = { keep: (candidate: GraphCandidate) => string | null; report: PolicyReport };

export async function measureGraphCandidates(ir: GraphModelIR, passes: GraphPass[], options: GraphMeasureOptions = {}): Promise<Measured> {
  const request = options.backend ?? 'auto';
  // webgl/webgpu: one headless browser page times every candidate (unless a timer is injected).
  if (isBrowserBackend(request) && !options.timer && !options.decisions && options.mode !== 'always') {
    return withBrowser(request, {}, (session) => measureWith(ir, passes, { name: request, device: session.device }, { ...options, timer: pageGraphTimer(session) }));
  }
  return measureWith(ir, passes, isBrowserBackend(request) ? { name: request, device: 'injected timer' } : await selectBackend(request), options);
}

async function measureWith(ir: GraphModelIR, passes: GraphPass[], backend: { name: string; device: string }, options: GraphMeasureOptions): Promise<Measured> {
  const batch = options.batch ?? DEFAULT_POLICY_BATCH;
  const timer = options.timer ?? timeGraphProbe(backend.name as BackendRequest);
  const candidates: GraphCandidate[] = [];
  runGraphPasses(ir, passes, { backend: backend.name, forced: options.forced, keep: (candidate) => (candidates.push(candidate), 'dry run') });

  const judgedCandidates = candidates.filter((candidate) => candidate.pass.reportRefusals !== false);
  const ids = judgedCandidates.map((c) => ({ layer: c.layer.name, graph: c.graph, pass: c.pass.name, fingerprint: graphCandidateFingerprint(c) }));
  const replayed = options.decisions && replayDecisions(options.decisions, ids, passes.map((pass) => pass.name), backend.name);
  const decisions: PolicyDecision[] = [];
  for (const [i, candidate] of judgedCandidates.entries()) {
    const where = ids[i];
    if (candidate.context.forced) {
      decisions.push({ ...where, decision: 'rewrite', evidence: 'forced', reason: 'asked for by name (--passes): the policy does not judge it' });
      continue;
    }
    if (options.mode === 'always') {
      decisions.push({ ...where, decision: 'rewrite', evidence: 'always', reason: '--policy always: every correct match is rewritten' });
      continue;
    }
    const entry = replayed?.get(replayKey(where));
    if (entry) {
      decisions.push({ ...where, ...replayedDecision(entry, options.decisions!.source) });
      continue;
    }
    const probe = probeOf(candidate);
    if (typeof probe === 'string') {
      decisions.push({ ...where, decision: 'keep', evidence: 'unmeasured', reason: `cannot be timed alone: ${probe}` });
      continue;
    }
    let timed: Awaited<ReturnType<typeof timeUntilSettled>>;
    try {
      timed = await timeUntilSettled(async () => [{ calls: 1, timing: await timer(probe, batch) }], MIN_SPEEDUP);
    } catch (error) {
      decisions.push({ ...where, decision: 'keep', evidence: 'unmeasured', reason: `could not time it on ${backend.name}: ${(error as Error).message.split('\n')[0]}` });
      continue;
    }
    const { decision, originalMs, rewrittenMs, speedup, interval, rounds } = timed;
    const reason = `measured here: ${fmt(originalMs)} ms -> ${fmt(rewrittenMs)} ms (${describeInterval(timed)}) on ${backend.name} at batch ${batch}; ${describeVerdict(timed, MIN_SPEEDUP)}`;
    decisions.push({ ...where, decision, evidence: 'measured', originalMs, rewrittenMs, speedup, ...(interval ? { interval, rounds } : {}), reason });
    options.log?.(`policy: ${candidate.graph}/${candidate.layer.name}: ${reason}`);
  }
  const kept = new Map(decisions.filter((d) => d.decision !== 'rewrite').map((d) => [`${d.layer}/${d.pass}`, d.reason]));
  const judged = new Set(decisions.map((d) => `${d.layer}/${d.pass}`));
  return {
    keep: (candidate) => {
      if (candidate.context.forced || candidate.pass.reportRefusals === false) return null;
      const key = `${candidate.layer.name}/${candidate.pass.name}`;
      // A candidate that only appears once others are rewritten was never timed: keep it.
      if (!judged.has(key)) return 'not judged by the policy (it appeared during rewriting); force it with --passes';
      return kept.get(key) ?? null;
    },
    report: { mode: options.mode ?? 'measure', backend: backend.name, device: backend.device, batch, minSpeedup: MIN_SPEEDUP, decisions },
  };
}
