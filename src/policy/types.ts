/** The policy's report types, apart so decisions files (decisions.ts) can name them without a circle. */
import type { SpeedupInterval } from './interval';

export type PolicyMode = 'auto' | 'measure' | 'always';

export interface PolicyDecision {
  layer: string;
  graph: string;
  pass: string;
  /** 'pending': inspect only, the candidate would be timed by optimize. */
  decision: 'rewrite' | 'keep' | 'pending';
  evidence: 'measured' | 'table' | 'forced' | 'always' | 'unmeasured' | 'correctness';
  /** Summed over the layer's calls; present when measured. */
  originalMs?: number;
  rewrittenMs?: number;
  /** originalMs / rewrittenMs: above 1 the rewrite is faster. */
  speedup?: number;
  /** Bootstrap interval of the speedup, when the timer gave its samples; and the rounds timed. */
  interval?: SpeedupInterval;
  rounds?: number;
  /** What a decisions file checks the candidate against (src/policy/fingerprint.ts). */
  fingerprint?: string;
  /** Set when the decision was read from a decisions file: its path (or "the decisions object"). */
  replayed?: string;
  reason: string;
}

export interface PolicyReport {
  mode: PolicyMode;
  backend: string;
  device: string;
  batch: number;
  minSpeedup: number;
  decisions: PolicyDecision[];
}
