/**
 * A format adapter: everything the one pipeline (optimize, inspect, verify, bench) needs of a
 * model format. Its parts live at their own levels (read/validate, IR, dialect, cut-outs and
 * writer with the format in src/layers or src/graphdef; the verification run in src/verify);
 * an adapter binds them for the pipeline. Two exist: src/pipeline/formats/layers.ts (Keras
 * LayersModel topology) and src/pipeline/formats/graphdef.ts (converter graph model).
 */
import type * as tf from '@tensorflow/tfjs';
import type { io } from '@tensorflow/tfjs';
import type { DriverOptions } from '../core/driver';
import type { PassRun, RuleCandidate } from '../core/rule';
import type { CutOut } from '../formats/cutout';
import type { FormatName } from '../formats/load';
import type { ModelSummary } from '../formats/summary';
import type { WriteOptions } from '../io/files';
import type { ModelFormat } from '../policy/decisions';
import type { TableFacts } from '../policy/policy';
import type { BrowserOptions } from '../browser/session';
import type { ExactSubject } from '../verify/exact';
import type { Finding } from '../verify/original-check';
import type { InputShapes, LayersVerifyOptions, VerificationReport } from '../verify/verify';

/** A candidate of any dialect: a unit with a name, its rule, its context's run settings. */
export type AnyCandidate = RuleCandidate<{ name: string }, { forced?: boolean }, { name: string; reportRefusals?: boolean }>;

export interface FormatAdapter<IR extends { notes: string[] }, P extends { name: string }, C extends AnyCandidate, M> {
  format: FormatName;
  /**
   * Reads and validates the model: the artifacts stock tfjs loads, and the IR rules run on.
   * `inputShapes`: sizes for inputs of unknown size, where a format learns shapes by running the model.
   */
  read(source: unknown, options?: { inputShapes?: InputShapes }): Promise<{ artifacts: io.ModelArtifacts; ir: IR }>;
  /** The rules to run (default: every registered lowering of this format), and which were named. */
  rules(chosen?: (P | string)[]): { passes: P[]; forced: Set<string>; notes: string[] };
  /** Runs the rules through the core driver on this format's dialect. */
  run(ir: IR, passes: P[], options: DriverOptions<C>): PassRun;
  /** The candidate's cut-outs (src/formats/cutout.ts), or why it has none. */
  cutOuts(candidate: C, passes: P[]): Promise<CutOut[] | string>;
  /** What the policy's table needs to know of a candidate, when the format can say it. */
  facts(candidate: C, cutOuts: CutOut[]): TableFacts[] | undefined;
  /** What a decisions file checks the candidate against (src/policy/fingerprint.ts). */
  fingerprint(candidate: C): string;
  /** The format as decisions files name it. */
  decisionsFormat: ModelFormat;
  /** The exact check's subject, captured before the rewrite. */
  exactSubject(candidate: C, passes: P[]): ExactSubject;
  summarize(ir: IR): ModelSummary;
  /** Extra report fields (a Keras 3 conversion). */
  reportExtra(ir: IR): Record<string, unknown>;
  /** The model must be written from the IR even when nothing was rewritten (a converted form). */
  mustWrite(ir: IR): boolean;
  /** Files read for this run may have their kernels reordered in place when nothing verifies against them. */
  reusesWeights: boolean;
  /** The writer: artifacts of the IR (built on first use) and the files. */
  writer(ir: IR): { artifacts(): io.ModelArtifacts; save(dir: string, options?: WriteOptions): string };
  /** Stock tfjs's model of these artifacts. */
  load(artifacts: io.ModelArtifacts): Promise<M>;
  /** Loads and frees the model once: proves stock tfjs accepts it. */
  checkLoads(artifacts: io.ModelArtifacts): Promise<void>;
  /** Conv-family layers the original computes wrong on the target (src/verify/original-check.ts), where the format can check. */
  originalFindings?(ir: IR, target: { name: string; device: string }, browser?: BrowserOptions): Promise<Finding[]>;
  /** The verification run of this format (src/verify): outputs, float64 taps, exact subjects. */
  verify(original: io.ModelArtifacts, rewritten: io.ModelArtifacts, options: LayersVerifyOptions): Promise<VerificationReport>;
}

// eslint-style escape hatch: the pipeline holds either adapter and passes each one its own values.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type SomeAdapter = FormatAdapter<any, any, any, tf.LayersModel | tf.GraphModel>;
