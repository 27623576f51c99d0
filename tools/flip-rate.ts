/**
 * Dev tool (not shipped): how often the timed default policy changes its mind between runs.
 * Runs `optimize` N times on one model (in-process, --policy measure so that every candidate is
 * timed, no verification) and compares, from the same runs, two rules:
 * - one round: the first round's medians against the 1.1x margin (the policy before issue 20);
 * - interval: the policy now (bootstrap interval, re-timed while it holds the margin).
 * A run "flips" when its set of decisions differs from the most common set over the runs.
 *
 *   npm run build && node dist/tools/flip-rate.js <model.json> [--runs 8] [--backend wasm] [--batch 16]
 */
import * as os from 'os';
import { optimize } from '../src';
import type { BackendRequest } from '../src/backend/select';
import { CandidateTimer, tfjsTimer } from '../src/policy/timer';
import { MIN_SPEEDUP } from '../src/policy/policy';

function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : fallback;
}

/** Runs whose decision set is not the most common one. */
function flips(sets: string[]): { flipped: number; distinct: number } {
  const counts = new Map<string, number>();
  for (const s of sets) counts.set(s, (counts.get(s) ?? 0) + 1);
  return { flipped: sets.length - Math.max(...counts.values()), distinct: counts.size };
}

async function main(): Promise<void> {
  const model = process.argv[2];
  if (!model || model.startsWith('--')) throw new Error('usage: node dist/tools/flip-rate.js <model.json> [--runs 8] [--backend wasm] [--batch 16]');
  const runs = Number(flag('--runs', '8'));
  const backend = flag('--backend', 'wasm') as BackendRequest;
  const batch = Number(flag('--batch', '16'));
  console.log(`flip-rate ${model}: ${runs} runs on ${backend}, batch ${batch}; ${os.cpus().length} cores (${os.cpus()[0]?.model}), load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} at ${new Date().toISOString()}`);
  const oneRound: string[] = [];
  const interval: string[] = [];
  // What the interval rule would give if an unsettled candidate fell back to its pooled point estimate.
  const pointWhenUnsure: string[] = [];
  let roundsTotal = 0;
  let timed = 0;
  for (let run = 0; run < runs; run++) {
    // The first call per layer is the one-round rule's whole evidence.
    const first = new Map<string, number>();
    const timer: CandidateTimer = async (probe, b, name) => {
      const timing = await tfjsTimer(probe, b, name);
      if (!first.has(probe.layer)) first.set(probe.layer, timing.originalMs / timing.rewrittenMs);
      return timing;
    };
    const started = Date.now();
    const { report } = await optimize(model, { backend, policy: 'measure', policyBatch: batch, verify: false, policyTimer: timer });
    const decisions = report.policy!.decisions.filter((d) => d.evidence === 'measured');
    const old = decisions.map((d) => `${d.layer}:${(first.get(d.layer) ?? 0) >= MIN_SPEEDUP ? 'rewrite' : 'keep'}`).join(',');
    const now = decisions.map((d) => `${d.layer}:${d.decision}`).join(',');
    oneRound.push(old);
    interval.push(now);
    pointWhenUnsure.push(decisions.map((d) => {
      const unsure = d.interval !== undefined && d.interval.low < MIN_SPEEDUP && d.interval.high >= MIN_SPEEDUP;
      return `${d.layer}:${unsure ? ((d.speedup ?? 0) >= MIN_SPEEDUP ? 'rewrite' : 'keep') : d.decision}`;
    }).join(','));
    for (const d of decisions) {
      roundsTotal += d.rounds ?? 1;
      timed++;
    }
    const detail = decisions.map((d) => `${d.layer} first ${(first.get(d.layer) ?? 0).toFixed(2)}x, ${d.speedup?.toFixed(2)}x [${d.interval?.low.toFixed(2)}-${d.interval?.high.toFixed(2)}] ${d.rounds} rounds -> ${d.decision}`).join('; ');
    console.log(`run ${run + 1}: ${detail} (${((Date.now() - started) / 1000).toFixed(1)} s, load ${os.loadavg()[0].toFixed(1)})`);
  }
  const [a, b, c] = [flips(oneRound), flips(interval), flips(pointWhenUnsure)];
  console.log(`one round: ${a.flipped}/${runs} runs flipped (${a.distinct} distinct decision sets)`);
  console.log(`interval:  ${b.flipped}/${runs} runs flipped (${b.distinct} distinct decision sets); ${(roundsTotal / Math.max(1, timed)).toFixed(2)} rounds per candidate on average`);
  console.log(`interval, point estimate when still unsure (not the policy): ${c.flipped}/${runs} runs flipped (${c.distinct} distinct decision sets)`);
}

main().catch((error) => {
  console.error(String(error?.stack ?? error));
  process.exit(1);
});
