#!/usr/bin/env node
/**
 * `npm run bench [-- options]`: the dev benchmark (not shipped). Prints the markdown table of
 * every correct rewrite, the default policy's guarantee rows (optimize with default settings vs
 * the original, >= 0.9x on each backend), the pass cost and PASS/FAIL lines against the
 * targets; writes everything as JSON.
 *
 *   --backends wasm,cpu   Node backends to run (default: every one present)
 *   --browsers webgl,webgpu  browser backends to run in headless Chromium (default: both when a
 *                         browser and puppeteer-core are found; "none" to skip)
 *   --cases a,b           case names (default: all; see cases.ts and guarantee.ts)
 *   --full                also run what is skipped for time (runs estimated > 10 s)
 *   --quick               smoke run: two cheap cases at batch 8, one rep, no pass cost
 *   --no-pass-cost        skip the large-model pass-cost measurement
 *   --no-guarantee        skip the default-policy guarantee rows
 *   --no-threads          skip the row-parallel verification row (24,576 real rows, 1 thread vs all)
 *   --out <file>          JSON output (default bench-results.json)
 */
import * as fs from 'fs';
import * as tf from '@tensorflow/tfjs';
import type { BackendName } from '../../src/backend/select';
import { parseArgs } from '../../src/cli/args';
import { silenceTfjsNodeBanner } from '../../src/quiet';
import { measurePassCost } from './pass-cost';
import { markdownTable } from '../../src/bench/report';
import type { PolicyDecision } from '../../src/policy/policy';
import { PassCost, checkTargets, formatTargets } from './targets';
import { InterleaveOptions } from '../../src/bench/stats';
import { machine, presentBackends, runSuite } from './suite';
import { graphTable, runGraphCases } from './graph';
import { runBrowserSuite } from './browser-suite';
import { BrowserBackend, INSTALL_HINT, findChrome, isBrowserBackend } from '../../src/browser/session';
import { GUARANTEE_CASES, guaranteeTable, runGuarantee } from './guarantee';
import { BENCH_CASES } from './cases';
import { threadsRow } from './threads';

const TIMING: InterleaveOptions = { warmup: 1, minReps: 3, maxReps: 15, budgetMs: 3000 };
const QUICK_TIMING: InterleaveOptions = { warmup: 1, minReps: 1, maxReps: 1, budgetMs: 0 };

function policyTable(rows: { case: string; backend: string; batch: number; decisions: PolicyDecision[] }[]): string {
  const lines = ['| case | backend | batch | decision | evidence |', '|---|---|---:|---|---|'];
  for (const row of rows) for (const d of row.decisions) lines.push(`| ${row.case} | ${row.backend} | ${row.batch} | ${d.decision} | ${d.reason} |`);
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
  const args = parseArgs(argv, { values: ['--backends', '--browsers', '--cases', '--out'], switches: ['--full', '--quick', '--no-pass-cost', '--no-guarantee', '--no-threads'] });
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const quick = args.switches.has('--quick');
  const present = await presentBackends();
  const wanted = args.values.get('--backends')?.split(',') ?? present.map((b) => b.name);
  const missing = wanted.filter((name) => !present.some((b) => b.name === name));
  if (missing.length) throw new Error(`backend(s) not available here: ${missing.join(', ')} (present: ${present.map((b) => b.name).join(', ')})`);
  const names = args.values.get('--cases')?.split(',');
  const unknown = names?.filter((name) => !BENCH_CASES.some((c) => c.name === name) && !GUARANTEE_CASES.some((c) => c.name === name)) ?? [];
  if (unknown.length) throw new Error(`unknown case(s) ${unknown.join(', ')} (bench: ${BENCH_CASES.map((c) => c.name).join(', ')}; guarantee: ${GUARANTEE_CASES.map((c) => c.name).join(', ')})`);
  const started = new Date();
  const suite = await runSuite({
    backends: wanted as BackendName[],
    cases: names,
    full: args.switches.has('--full'),
    quick,
    timing: quick ? QUICK_TIMING : TIMING,
    log,
  });
  const browsers = browserBackends(args.values.get('--browsers'), log);
  const browserSuite = await runBrowserSuite(browsers, { cases: args.values.get('--cases')?.split(','), quick, timing: quick ? QUICK_TIMING : TIMING, log });
  suite.rows.push(...browserSuite.rows);
  suite.backends.push(...browserSuite.backends);
  // In a CPU-rendered browser the original graph Conv3D at batch 256 takes 6-60 s per run: only with --full.
  const graphBackends = [...wanted as BackendName[], ...(args.switches.has('--full') ? browsers : [])];
  if (browsers.length && !args.switches.has('--full')) log('graph-model rows on webgl/webgpu run only with --full (seconds to a minute per run without a GPU)');
  const graphRows = args.values.has('--cases') ? [] : await runGraphCases(graphBackends, log, quick);
  const guarantee = quick || args.switches.has('--no-guarantee') ? [] : await runGuarantee(wanted as BackendName[], TIMING, log, names);
  const passCost = quick || args.switches.has('--no-pass-cost') ? null : await measurePassCost({ log });
  const targets = checkTargets(suite.rows, passCost, suite.defaults, guarantee);
  // Fresh CLI processes on 1 thread and on every thread, interleaved (tools/bench/threads.ts).
  const threads = quick || args.switches.has('--no-threads') || args.values.has('--cases') ? null : await threadsRow({ log });
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
    '',
    ...(graphRows.length ? ['### graph models (GraphModel.execute, median of interleaved runs)', '', graphTable(graphRows), ''] : []),
    ...(guarantee.length ? [
      '### optimize with default settings vs the original (interleaved medians, batch 8; >= 0.9x required)',
      '',
      guaranteeTable(guarantee),
      '',
    ] : []),
    ...(browserSuite.policy.length ? ['### --policy measure decisions in the browser', '', policyTable(browserSuite.policy), ''] : []),
    ...(passCost ? ['', '### cost of the pass', '', passCostTable(passCost)] : []),
    '',
    ...(threads ? ['', '### row-parallel verification (issue 19: >= 1.6x on 2 cores)', '', '| case | 1 thread | all threads | speedup | load |', '|---|---:|---:|---:|---|', threads.row] : []),
    '',
    '### targets',
    '',
    formatTargets(targets),
    ...(threads ? [threads.verdict] : []),
  ].join('\n');
  process.stdout.write(`${out}\n`);
  const file = args.values.get('--out') ?? 'bench-results.json';
  fs.writeFileSync(file, JSON.stringify({ date: started.toISOString(), machine: host, backends: suite.backends, rows: suite.rows, skipped: suite.skipped, defaults: suite.defaults, guarantee, graphRows, passCost, targets, threads }, null, 2));
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
