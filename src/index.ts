// First: loads tfjs quietly and says in one line if the app holds another copy of it.
import './backend/tfjs';
import { asGuest } from './backend/guest';
import { benchModel as benchModelAnyBackend } from './bench/model-bench';
import * as graph from './graphdef';

export { optimize, inspect, verify } from './optimize';
export { convertKeras3, ALREADY_LOADABLE } from './convert';
export type { ConvertResult, ConvertReport } from './convert';
export type { OptimizeOptions, OptimizeResult, Report, AnyModelSource } from './optimize';
export type {
  VerifyOptions, LayersVerifyOptions, VerificationReport, LayerAccuracy, SkippedBackend, VerifyInput, RewrittenLayer,
} from './verify/verify';
export { DEFAULT_TOLERANCE, DEFAULT_ACCURACY_FACTOR, DEFAULT_BATCH_SIZE } from './verify/verify';
export type { OutputMetrics } from './verify/compare';
export type { ErrorStats } from './verify/reference';
export { readNpy, writeNpy, encodeNpy, NpyReader } from './io/npy';
export type { NpyArray, NpyDtype } from './io/npy';
/** Benchmarks and graph-model entry points, like optimize/inspect/verify, leave the caller's backend as it was. */
export const benchModel = asGuest(benchModelAnyBackend);
export type { ModelBenchOptions, ModelBenchReport } from './bench/model-bench';
export type { Measurement } from './bench/measure';
export type { Samples } from './bench/stats';
export { decide, decidePolicy, formatPolicy, DEFAULT_POLICY_BATCH, MIN_SPEEDUP, POLICY_MODES, TABLE } from './policy/policy';
export type { PolicyMode, PolicyReport, PolicyDecision, PolicyOptions, TableEntry } from './policy/policy';
export { tfjsTimer } from './policy/timer';
export type { CandidateTiming, CandidateTimer, TimerChoice } from './policy/timer';
export type { Probe } from './policy/probe';
export { selectBackend } from './backend/select';
export type { BackendInfo, BackendRequest } from './backend/select';
export { readModelFiles, writeModelFiles, artifactsOfModel } from './io/files';
export { InputError } from './errors';
export type { Pass, MatchContext, MatchResult, Replacement } from './pass';
export { REPLACED_INPUT } from './pass';
export { BUILTIN_PASSES, registerPass, registeredPasses, passesByName, registeredGraphPasses, graphPassesByName } from '../passes';
export type { Rule, RuleCandidate, RunSettings, RewriteRecord, SkipRecord, PassRun } from './core/rule';
export type { Candidate, KeepHook } from './layers/driver';
export { nonSlidingConvPass } from './rewrite/non-sliding-conv';
export type { Graph, LayerNode, TensorRef, Weight, ModelIR } from './layers/types';
export type { GraphShapes, Shape } from './layers/shapes';
export const optimizeGraphModel = asGuest(graph.optimizeGraphModel);
export const inspectGraphModel = asGuest(graph.inspectGraphModel);
export const verifyGraphModels = asGuest(graph.verifyGraphModels);
export const benchmarkGraphArtifacts = asGuest(graph.benchmarkGraphArtifacts);
export { isGraphModelJson, isGraphModelFile, readGraphModelFiles, BUILTIN_GRAPH_PASSES } from './graphdef';
export type { GraphModelSource, GraphOptimizeOptions, GraphOptimizeResult, GraphBenchmark, GraphPass, GraphMatchContext, GraphReplacement, GraphCandidate } from './graphdef';
