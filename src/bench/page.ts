/**
 * Timing in a browser page (webgl/webgpu): the same interleaved runs as in Node, each run timed
 * inside the page from the call to the last output read back, so the page-to-Node round trip
 * is not counted. Models are loaded in the page from their artifacts; inputs are staged once.
 */
import * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import type { BrowserSession } from '../browser/session';
import type { CutOut } from '../formats/cutout';
import type { FormatName } from '../formats/load';
import type { Measurement, Prepared } from './measure';
import { InterleaveOptions, Runner, interleave } from './stats';

/** What a pair of cut-outs timed in the page gives (the policy's CandidateTiming). */
export interface PageTiming {
  originalMs: number;
  rewrittenMs: number;
  /** Every timed run behind the medians (the policy's interval, src/policy/interval.ts). */
  samples: { original: number[]; rewritten: number[] };
}

/** The page's name of a format. */
const kindOf = (format: FormatName) => (format === 'graphdef' ? 'graph' as const : 'layers' as const);

/** A runner timing `model` on `inputs`, both already in the page. */
export function pageRunner(session: BrowserSession, name: string, model: string, inputs: string, reps?: number): Runner {
  return { name, reps, run: () => session.time(model, inputs) };
}

/** Loads `artifacts`, stages `inputs`, runs `body`, then frees both in the page. */
async function withPageModels<T>(
  session: BrowserSession, models: { kind: 'layers' | 'graph'; artifacts: io.ModelArtifacts; label: string }[], inputs: tf.Tensor[][],
  body: (ids: string[], staged: string[]) => Promise<T>,
): Promise<T> {
  const ids: string[] = [];
  const staged: string[] = [];
  try {
    for (const m of models) ids.push(await session.load(m.kind, m.artifacts, m.label));
    for (const xs of inputs) staged.push(await session.stage(xs));
    return await body(ids, staged);
  } finally {
    for (const id of [...ids, ...staged]) await session.dispose(id);
  }
}

/** The layer classes of a layers model, from its topology (top level); '' for a GraphDef. */
function layerClasses(artifacts: io.ModelArtifacts): string {
  const topology = artifacts.modelTopology as { config?: { layers?: { class_name: string }[] } };
  return (topology.config?.layers ?? []).map((layer) => layer.class_name).join(',');
}

/** Seeded rows of a cut-out's input shape. */
const probeInputs = (probe: CutOut, batch: number) => [tf.randomUniform([batch, ...probe.shape], -1, 1, 'float32', 7)];

/** The bench's columns in the page: original, rewritten and the rewritten subgraphs alone (no bare matMul there). */
export async function measureInPage(session: BrowserSession, prepared: Prepared, inputs: tf.Tensor[], timing: InterleaveOptions): Promise<Measurement> {
  const batch = inputs[0].shape[0];
  const subgraphInputs = prepared.probes.map((probe) => probeInputs(probe, batch));
  const kind = kindOf(prepared.format);
  const models = [
    { kind, artifacts: prepared.original, label: 'original' },
    { kind, artifacts: prepared.rewritten, label: 'rewritten' },
    ...prepared.probes.map((probe) => ({ kind, artifacts: probe.rewritten, label: `${probe.layer} subgraph` })),
  ];
  try {
    return await withPageModels(session, models, [inputs, ...subgraphInputs], async (ids, staged) => {
      const runners: Runner[] = [pageRunner(session, 'original', ids[0], staged[0]), pageRunner(session, 'rewritten', ids[1], staged[0])];
      // A model that is just its one rewritten conv is its own subgraph: time it once.
      const whole = kind === 'layers' && prepared.probes.length === 1 && prepared.probes[0].calls === 1 && layerClasses(prepared.rewritten) === layerClasses(prepared.probes[0].rewritten);
      if (prepared.probes.length && !whole) {
        const parts = prepared.probes.flatMap((probe, i) => new Array<Runner>(probe.calls).fill(pageRunner(session, 'part', ids[2 + i], staged[1 + i])));
        runners.push({ name: 'subgraph', run: async () => { let total = 0; for (const part of parts) total += await part.run(); return total; } });
      }
      const samples = await interleave(runners, timing);
      const original = samples.get('original')!;
      const rewritten = samples.get('rewritten')!;
      const subgraph = samples.get('subgraph') ?? null;
      return {
        batch, original, rewritten, subgraph, bare: null,
        speedup: original.median / rewritten.median, overhead: null, subgraphOverhead: null,
        notes: [`timed in the page on ${session.backend} (${session.device}); no bare matMul column in a browser`],
      };
    });
  } finally {
    tf.dispose(subgraphInputs.flat());
  }
}

const PROBE_TIMING: InterleaveOptions = { warmup: 1, minReps: 3, maxReps: 9, budgetMs: 1500 };

/** The policy's timer for a browser backend: a cut-out's two models, interleaved, in the page. */
export function pageProbeTimer(session: BrowserSession, timing = PROBE_TIMING): (probe: CutOut, batch: number) => Promise<PageTiming> {
  return async (probe: CutOut, batch: number): Promise<PageTiming> => {
    const inputs = probeInputs(probe, batch);
    try {
      return await withPageModels(session, [
        { kind: kindOf(probe.format), artifacts: probe.original, label: 'original cut-out' },
        { kind: kindOf(probe.format), artifacts: probe.rewritten, label: 'rewritten cut-out' },
      ], [inputs], async (ids, staged) => {
        const samples = await interleave([pageRunner(session, 'original', ids[0], staged[0]), pageRunner(session, 'rewritten', ids[1], staged[0])], timing);
        const [original, rewritten] = [samples.get('original')!, samples.get('rewritten')!];
        return { originalMs: original.median, rewrittenMs: rewritten.median, samples: { original: original.ms, rewritten: rewritten.ms } };
      });
    } finally {
      tf.dispose(inputs);
    }
  };
}
