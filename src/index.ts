// First: loads tfjs quietly and says in one line if the app holds another copy of it.
import './backend/tfjs';

// Each call runs in a worker thread with its own tfjs: the caller's backend and memory are never touched (src/api.ts).
export { optimize, inspect, verify, optimizeGraphModel, inspectGraphModel, verifyGraphModels, benchModel } from './api';
export { closePool } from './workers/pool';
export { convertKeras3, ALREADY_LOADABLE } from './convert';
export type { ConvertResult, ConvertReport } from './convert';
export type { OptimizeOptions, OptimizeResult, GraphOptimizeResult, Report, AnyModelSource } from './pipeline';
export type {
  VerifyOptions, LayersVerifyOptions, VerificationReport, LayerAccuracy, SkippedBackend, VerifyInput, RewrittenLayer,
} from './verify/verify';
export { DEFAULT_TOLERANCE, DEFAULT_ACCURACY_FACTOR, DEFAULT_BATCH_SIZE } from './verify/verify';
export type { OutputMetrics } from './verify/compare';
export type { ErrorStats } from './verify/reference';
export { readNpy, writeNpy, encodeNpy, NpyReader } from './io/npy';
export type { NpyArray, NpyDtype } from './io/npy';
export type { ModelBenchOptions, ModelBenchReport } from './pipeline/bench';
export type { Measurement } from './bench/measure';
export type { Samples } from './bench/stats';
export { decide, decidePolicy, formatPolicy, DEFAULT_POLICY_BATCH, MIN_SPEEDUP, POLICY_MODES, TABLE } from './policy/policy';
export type { PolicyMode, PolicyReport, PolicyDecision, PolicyOptions, TableEntry } from './policy/policy';
export { tfjsTimer } from './policy/timer';
export type { CandidateTiming, CandidateTimer, TimerChoice } from './policy/timer';
export type { CutOut, CutOut as Probe } from './formats/cutout';
export { selectBackend } from './backend/select';
export type { BackendInfo, BackendRequest } from './backend/select';
export { readModelFiles, writeModelFiles, artifactsOfModel } from './io/files';
export { InputError } from './errors';
export type { Pass, MatchContext, MatchResult, Replacement } from './pass';
export { REPLACED_INPUT } from './pass';
export { BUILTIN_PASSES, BUILTIN_GRAPHDEF_PASSES, registerPass, registeredPasses, passesByName, registeredGraphDefPasses, graphDefPassesByName } from '../passes';
export type { Rule, RuleCandidate, RunSettings, RewriteRecord, SkipRecord, PassRun } from './core/rule';
export type { Candidate, KeepHook } from './layers/driver';
export { nonSlidingConvPass } from './rewrite/non-sliding-conv';
export type { Graph, LayerNode, TensorRef, Weight, ModelIR } from './layers/types';
export type { LayersShapes, Shape } from './layers/shapes';
export { isGraphModelJson } from './graphdef/ir';
export { isGraphModelFile, readGraphModelFiles } from './graphdef/files';
export type { GraphDefPass, GraphDefMatchContext, GraphDefReplacement } from './graphdef/pass';
export type { GraphDefCandidate } from './graphdef/driver';
