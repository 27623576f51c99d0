#!/usr/bin/env node
/**
 * `npm run bench [-- options]`: the issue-4 benchmark. Prints the markdown table, the measured
 * Conv1D/Conv2D speedups against src/rewrite/policy.ts, the policy decisions, the pass cost and
 * PASS/FAIL lines against the targets; writes everything as JSON.
 *
 *   --backends wasm,cpu   Node backends to run (default: every one present)
 *   --browsers webgl,webgpu  browser backends to run in headless Chromium (default: both when a
 *                         browser and puppeteer-core are found; "none" to skip)
 *   --cases a,b           case names (default: all; see cases.ts)
 *   --full                also run what is skipped for time (runs estimated > 10 s)
 *   --quick               smoke run: two cheap cases at batch 8, one rep, no pass cost
 *   --no-pass-cost        skip the large-model pass-cost measurement
 *   --out <file>          JSON output (default bench-results.json)
 */
import * as fs from 'fs';
import * as tf from '@tensorflow/tfjs';
import type { BackendName } from '../backend/select';
import { parseArgs } from '../cli/args';
import { silenceTfjsNodeBanner } from '../quiet';
import { measurePassCost } from './pass-cost';
import { PassCost, checkTargets, formatPolicyChecks, formatTargets, markdownTable } from './report';
import { InterleaveOptions } from './stats';
import { PolicyRow, machine, presentBackends, runSuite } from './suite';
import { graphTable, runGraphCases } from './graph';
import { runBrowserSuite } from './browser-suite';
import { BrowserBackend, INSTALL_HINT, findChrome, isBrowserBackend } from '../browser/session';

const TIMING: InterleaveOptions = { warmup: 1, minReps: 3, maxReps: 15, budgetMs: 3000 };
const QUICK_TIMING: InterleaveOptions = { warmup: 1, minReps: 1, maxReps: 1, budgetMs: 0 };

function policyTable(rows: PolicyRow[]): string {
  const lines = ['| case | backend | batch | conv ms | rewrite ms | speedup | decision |', '|---|---|---:|---:|---:|---:|---|'];
  for (const row of rows) {
    for (const d of row.decisions) {
      const ms = (v?: number) => (v === undefined ? 'n/a' : v.toFixed(v >= 100 ? 0 : 2));
      lines.push(`| ${row.case} | ${row.backend} | ${row.batch} | ${ms(d.originalMs)} | ${ms(d.rewrittenMs)} | ${d.speedup?.toFixed(2) ?? 'n/a'}x | ${d.decision} |`);
    }
  }
  return lines.join('\n');
}

function passCostTable(cost: PassCost): string {
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
  return [
    `model: ${mib(cost.modelBytes)} of float32 weights, ${cost.convs} eligible Conv3D; median of ${cost.runs} fresh processes each`,
    '',
    '| step | wall ms | peak RSS | RSS / model |',
    '|---|---:|---:|---:|',
    `| load+save (readModelFiles -> writeModelFiles) | ${cost.loadSave.ms.toFixed(0)} | ${mib(cost.loadSave.peakRss)} | ${(cost.loadSave.peakRss / cost.modelBytes).toFixed(2)}x |`,
    `| optimize --no-verify + save | ${cost.optimize.ms.toFixed(0)} | ${mib(cost.optimize.peakRss)} | ${(cost.optimize.peakRss / cost.modelBytes).toFixed(2)}x |`,
    `| node + library loaded, nothing done | - | ${mib(cost.baselineRss)} | - |`,
  ].join('\n');
}

/** The browser backends to bench: as asked, or both when a browser can be driven here. */
function browserBackends(asked: string | undefined, log: (line: string) => void): BrowserBackend[] {
  if (asked === 'none') return [];
  if (asked) {
    const names = asked.split(',');
    const unknown = names.filter((name) => !isBrowserBackend(name));
    if (unknown.length) throw new Error(`--browsers takes webgl, webgpu or none, got ${unknown.join(', ')}`);
    return names as BrowserBackend[];
  }
  try {
    require.resolve('puppeteer-core');
  } catch {
    log('no webgl/webgpu rows: puppeteer-core is not installed');
    return [];
  }
  if (!findChrome()) {
    log(`no webgl/webgpu rows: no browser found (${INSTALL_HINT})`);
    return [];
  }
  return ['webgl', 'webgpu'];
}

async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv, { values: ['--backends', '--browsers', '--cases', '--out'], switches: ['--full', '--quick', '--no-pass-cost'] });
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const quick = args.switches.has('--quick');
  const present = await presentBackends();
  const wanted = args.values.get('--backends')?.split(',') ?? present.map((b) => b.name);
  const missing = wanted.filter((name) => !present.some((b) => b.name === name));
  if (missing.length) throw new Error(`backend(s) not available here: ${missing.join(', ')} (present: ${present.map((b) => b.name).join(', ')})`);
  const started = new Date();
  const suite = await runSuite({
    backends: wanted as BackendName[],
    cases: args.values.get('--cases')?.split(','),
    full: args.switches.has('--full'),
    quick,
    timing: quick ? QUICK_TIMING : TIMING,
    log,
  });
  const browsers = browserBackends(args.values.get('--browsers'), log);
  const browserSuite = await runBrowserSuite(browsers, { cases: args.values.get('--cases')?.split(','), quick, timing: quick ? QUICK_TIMING : TIMING, log });
  suite.rows.push(...browserSuite.rows);
  suite.policy.push(...browserSuite.policy);
  suite.backends.push(...browserSuite.backends);
  // In a CPU-rendered browser the original graph Conv3D at batch 256 takes 6-60 s per run: only with --full.
  const graphBackends = [...wanted as BackendName[], ...(args.switches.has('--full') ? browsers : [])];
  if (browsers.length && !args.switches.has('--full')) log('graph-model rows on webgl/webgpu run only with --full (seconds to a minute per run without a GPU)');
  const graphRows = args.values.has('--cases') ? [] : await runGraphCases(graphBackends, log, quick);
  const passCost = quick || args.switches.has('--no-pass-cost') ? null : await measurePassCost({ log });
  const targets = checkTargets(suite.rows, passCost);
  const host = machine();

  const out = [
    `## tfjs-rewrite bench, ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    `${host.cpu} (${host.cores} cores), ${host.memory}, ${host.platform}, node ${host.node}, tfjs ${host.tfjs}; load average at the end ${host.loadavg}`,
    `backends: ${suite.backends.map((b) => `${b.name} = ${b.device}`).join('; ')}`,
    '',
    'Milliseconds per run: median ±half-range; speedup = original/rewritten; */bare = that over the bare matMul+bias.',
    '',
    markdownTable(suite.rows),
    ...(suite.skipped.length ? ['', ...suite.skipped.map((line) => `- ${line}`)] : []),
    ...(suite.policyChecks.length ? ['', formatPolicyChecks(suite.policyChecks)] : []),
    '',
    ...(graphRows.length ? ['### graph models (GraphModel.execute, median of interleaved runs)', '', graphTable(graphRows), ''] : []),
    '### --policy measure decisions',
    '',
    policyTable(suite.policy),
    ...(passCost ? ['', '### cost of the pass', '', passCostTable(passCost)] : []),
    '',
    '### targets',
    '',
    formatTargets(targets),
  ].join('\n');
  process.stdout.write(`${out}\n`);
  const file = args.values.get('--out') ?? 'bench-results.json';
  fs.writeFileSync(file, JSON.stringify({ date: started.toISOString(), machine: host, backends: suite.backends, rows: suite.rows, skipped: suite.skipped, policy: suite.policy, policyChecks: suite.policyChecks, graphRows, passCost, targets }, null, 2));
  log(`wrote ${file}`);
  if (tf.memory().numTensors > 0) log(`note: ${tf.memory().numTensors} tensors still allocated`);
}

if (require.main === module) {
  silenceTfjsNodeBanner();
  main(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`bench: ${(error as Error).message}\n`);
    process.exitCode = 2;
  });
}
