/**
 * Decisions files (`--decisions FILE`, option `decisions`): the policy's decisions recorded once
 * and replayed everywhere, like a lockfile (TensorRT's timing cache, TVM's tuning logs). Absent,
 * the candidates are decided as usual and the file is written; present, every decision comes
 * from it and nothing is timed, so the same input and file give byte-identical output. A file
 * is checked candidate by candidate against the model (src/policy/fingerprint.ts): a changed,
 * missing or extra candidate is an InputError, never a silent re-time.
 *
 * What wins: a pass named with --passes is always rewritten, then --policy always rewrites
 * every correct match, then the file; the file is checked against the model in every case.
 */
import * as fs from 'fs';
import * as path from 'path';
import { InputError } from '../errors';
import { packageVersion } from '../version';
import { modelFingerprint } from './fingerprint';
import type { PolicyDecision, PolicyReport } from './types';

export const DECISIONS_FORMAT = 'tfjs-rewrite-decisions';
export const DECISIONS_VERSION = 1;

export type ModelFormat = 'layers-model' | 'graph-model';

/** One decision as written: where, the candidate's fingerprint, the verdict and its evidence. */
export type RecordedDecision = Pick<PolicyDecision, 'graph' | 'layer' | 'pass' | 'evidence' | 'reason' | 'originalMs' | 'rewrittenMs' | 'speedup' | 'interval' | 'rounds'>
  & { fingerprint: string; decision: 'rewrite' | 'keep' };

export interface DecisionsFile {
  format: typeof DECISIONS_FORMAT;
  version: typeof DECISIONS_VERSION;
  /** "tfjs-rewrite 1.2.3": the version that recorded it. */
  tool: string;
  modelFormat: ModelFormat;
  /** sha256 over every candidate's fingerprint (src/policy/fingerprint.ts). */
  fingerprint: string;
  /** Where the decisions were made: the target backend and its device. */
  backend: string;
  device: string;
  mode: string;
  batch: number;
  minSpeedup: number;
  decisions: RecordedDecision[];
}

/** A path (read if it exists, else written), a file's object, a report's `policy`, or its `decisions`. */
export type DecisionsOption = string | DecisionsFile | PolicyReport | PolicyDecision[];

/** A decisions file read and checked for form, ready to replay. */
export interface LoadedDecisions {
  /** How messages name it: the path, or "the decisions object". */
  source: string;
  modelFormat?: ModelFormat;
  backend?: string;
  decisions: RecordedDecision[];
}

/** What optimize does with the option: replay these, or record to that path at the end. */
export interface DecisionsPlan {
  replay?: LoadedDecisions;
  recordTo?: string;
}

const DECISION_KEYS = ['rewrite', 'keep'];

/** Checks the form of a decisions object; `source` names it in the one-line error. */
export function loadDecisions(value: unknown, source: string): LoadedDecisions {
  const bad = (why: string) => new InputError(`${source} is not a tfjs-rewrite decisions file: ${why}`);
  const object = value as Partial<DecisionsFile> | null;
  const list = Array.isArray(value) ? value : object && typeof object === 'object' ? object.decisions : undefined;
  if (!Array.isArray(list)) throw bad('no "decisions" list');
  if (!Array.isArray(value) && object && 'format' in object && object.format !== DECISIONS_FORMAT) throw bad(`format is ${JSON.stringify(object.format)}`);
  if (!Array.isArray(value) && object?.format === DECISIONS_FORMAT && object.version !== DECISIONS_VERSION) {
    throw bad(`version ${JSON.stringify(object.version)}, this tfjs-rewrite reads version ${DECISIONS_VERSION}`);
  }
  const decisions = list.map((entry: Partial<RecordedDecision>, i: number) => {
    const where = `decision ${i + 1}`;
    if (!entry || typeof entry !== 'object') throw bad(`${where} is not an object`);
    for (const key of ['graph', 'layer', 'pass', 'reason'] as const) if (typeof entry[key] !== 'string') throw bad(`${where} has no "${key}"`);
    if (typeof entry.fingerprint !== 'string' || !/^[0-9a-f]{64}$/.test(entry.fingerprint)) throw bad(`${where} (${entry.layer}) has no candidate fingerprint`);
    if (!DECISION_KEYS.includes(entry.decision as string)) {
      throw bad(`${where} (${entry.layer}) is ${JSON.stringify(entry.decision)}, not rewrite or keep${(entry.decision as string) === 'pending' ? ' (an inspect report decides nothing)' : ''}`);
    }
    return entry as RecordedDecision;
  });
  const seen = new Set<string>();
  for (const d of decisions) {
    const key = keyOf(d);
    if (seen.has(key)) throw bad(`${key} is decided twice`);
    seen.add(key);
  }
  const file = Array.isArray(value) ? {} : (object as Partial<DecisionsFile>);
  return { source, modelFormat: file.modelFormat, backend: file.backend, decisions };
}

const keyOf = (d: { graph: string; layer: string; pass: string }) => `${d.graph}/${d.layer} (${d.pass})`;

/**
 * Resolves the option. A path that exists is read (unreadable or malformed: InputError); one
 * that does not is where the decisions will be written, if `record` (optimize; inspect only reads).
 */
export function planDecisions(option: DecisionsOption | undefined, format: ModelFormat, record = true): DecisionsPlan {
  if (option === undefined) return {};
  if (typeof option !== 'string') return { replay: checkedFormat(loadDecisions(option, 'the decisions object'), format) };
  let text: string;
  try {
    text = fs.readFileSync(option, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw new InputError(`cannot read the decisions file ${option} (${code ?? (error as Error).message})`);
    if (!record) throw new InputError(`the decisions file ${option} does not exist (inspect reads one, only optimize records one)`);
    const dir = path.dirname(path.resolve(option));
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new InputError(`cannot record decisions to ${option}: its folder ${path.dirname(option)} does not exist`);
    return { recordTo: option };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InputError(`${option} is not a tfjs-rewrite decisions file: not JSON (${(error as Error).message})`);
  }
  return { replay: checkedFormat(loadDecisions(json, option), format) };
}

function checkedFormat(loaded: LoadedDecisions, format: ModelFormat): LoadedDecisions {
  if (loaded.modelFormat && loaded.modelFormat !== format) throw new InputError(`${loaded.source} was made for another model: a ${loaded.modelFormat}, this is a ${format}`);
  return loaded;
}

/** A candidate of this run, as replay sees it. */
export interface CandidateId {
  graph: string;
  layer: string;
  pass: string;
  fingerprint: string;
}

/**
 * The recorded decision of every candidate, by `graph/layer/pass`. Refuses (InputError, one
 * line) a file whose candidates differ from the model's: a candidate missing from the file, one
 * whose fingerprint differs, or a decision (for a pass of this run) with no candidate here.
 * Decisions for passes outside this run's pipeline (--passes) are not consulted.
 */
export function replayDecisions(loaded: LoadedDecisions, candidates: CandidateId[], passes: string[], backend: string): Map<string, RecordedDecision> {
  const inPipeline = new Set(passes);
  const recorded = new Map(loaded.decisions.filter((d) => inPipeline.has(d.pass)).map((d) => [keyOf(d), d]));
  const found = candidates.filter((c) => recorded.has(keyOf(c)));
  if (candidates.length > 0 && found.length === 0) {
    throw new InputError(`${loaded.source} was made for another model: none of its ${loaded.decisions.length} decisions is for a candidate of this one (first here: ${keyOf(candidates[0])})`);
  }
  const replayed = new Map<string, RecordedDecision>();
  for (const candidate of candidates) {
    const entry = recorded.get(keyOf(candidate));
    if (!entry) throw new InputError(`${loaded.source} misses the candidate ${keyOf(candidate)} of this model; record the file again (remove it and run once without it)`);
    if (entry.fingerprint !== candidate.fingerprint) {
      throw new InputError(`${loaded.source} was made for another model: ${keyOf(candidate)} differs (its class, geometry, input shape or weights changed)`);
    }
    replayed.set(keyOf(candidate), entry);
  }
  const extra = [...recorded.keys()].find((key) => !replayed.has(key));
  if (extra) {
    const where = loaded.backend && loaded.backend !== backend ? ` (recorded on ${loaded.backend}, matched here on ${backend}: a pass may accept it on one backend only)` : '';
    throw new InputError(`${loaded.source} was made for another model: it decides ${extra}, which is not a candidate of this one${where}`);
  }
  return replayed;
}

export const replayKey = keyOf;

/** The policy decision a recorded one replays as: the same verdict, its evidence quoted. */
export function replayedDecision(entry: RecordedDecision, source: string): Omit<PolicyDecision, 'graph' | 'layer' | 'pass'> {
  const { graph: _g, layer: _l, pass: _p, ...rest } = entry;
  return { ...rest, replayed: source, reason: `replayed from ${source}: ${entry.reason}` };
}

/** The file for a run's policy report (only decided candidates: inspect's 'pending' are refused). */
export function decisionsFileOf(report: PolicyReport, modelFormat: ModelFormat): DecisionsFile {
  const decisions: RecordedDecision[] = report.decisions.map((d) => {
    if (d.decision === 'pending' || !d.fingerprint) throw new Error(`cannot record ${keyOf(d)}: ${d.decision === 'pending' ? 'not decided' : 'no fingerprint'}`);
    // Fixed key order: the file's text depends on the decisions alone.
    return {
      graph: d.graph, layer: d.layer, pass: d.pass, fingerprint: d.fingerprint, decision: d.decision, evidence: d.evidence,
      ...(d.originalMs !== undefined ? { originalMs: d.originalMs, rewrittenMs: d.rewrittenMs, speedup: d.speedup } : {}),
      ...(d.interval ? { interval: d.interval, rounds: d.rounds } : {}),
      reason: d.reason,
    };
  });
  return {
    format: DECISIONS_FORMAT, version: DECISIONS_VERSION, tool: `tfjs-rewrite ${packageVersion()}`, modelFormat,
    fingerprint: modelFingerprint(decisions), backend: report.backend, device: report.device, mode: report.mode,
    batch: report.batch, minSpeedup: report.minSpeedup, decisions,
  };
}

/** Writes the file atomically: a temp file next to it, renamed into place. */
export function writeDecisionsFile(file: string, decisions: DecisionsFile): void {
  const temp = `${file}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(temp, `${JSON.stringify(decisions, null, 2)}\n`);
    fs.renameSync(temp, file);
  } catch (error) {
    fs.rmSync(temp, { force: true });
    throw new InputError(`cannot write the decisions file ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}

/**
 * Runs optimize with the option resolved: replays a file or object, or records the run's
 * decisions to the path when it succeeds (verification passed or skipped).
 */
export async function withDecisions<R extends { report: { policy?: PolicyReport; verification: { passed: boolean } | null } }>(
  option: DecisionsOption | undefined, format: ModelFormat, run: (replay?: LoadedDecisions) => Promise<R>,
): Promise<R> {
  const plan = planDecisions(option, format);
  const result = await run(plan.replay);
  if (plan.recordTo && result.report.policy && (result.report.verification?.passed ?? true)) {
    writeDecisionsFile(plan.recordTo, decisionsFileOf(result.report.policy, format));
  }
  return result;
}
