/**
 * Issue 5's proof: >= 1,000 deterministic broken/hostile models through the public API. Every
 * case must end in an InputError with a one-line message, a verified success, or (nothing
 * rewritten) the model written through byte for byte; saved complete, and passing our own
 * validation again, leave the tensor count, the input folder
 * and the output's parent as they were, and finish within its time budget (async hangs: a
 * per-case timeout; synchronous ones: a watchdog thread that kills the run).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { InputError, inspect, optimize, readModelFiles } from '../src';
import { UNCHANGED } from '../src/pipeline';
import { FuzzCase, MUTATION_KINDS, generateCases, materialize, snapshotTree, startWatchdog } from './helpers/fuzz';
import { tempDir } from './helpers/tf';

const CASES = 1200;
/** Generous: the slowest valid case verifies in well under a second on cpu. */
const CASE_TIMEOUT_MS = 10_000;
/** Synchronous hangs (a loop that never ends) are caught by the watchdog thread instead. */
const WATCHDOG_MS = 30_000;

type Outcome = 'input-error' | 'verified' | 'unchanged' | 'verify-failed' | 'crash' | 'timeout';

async function withTimeout<T>(body: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), ms); });
  try {
    return await Promise.race([body, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** The weight shards of a model folder, concatenated in manifest order. */
function shardBytes(modelJson: string): Buffer {
  const json = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
  return Buffer.concat(json.weightsManifest.flatMap((group: { paths: string[] }) => group.paths.map((p) => fs.readFileSync(path.join(path.dirname(modelJson), decodeURIComponent(p))))));
}

interface Result {
  fuzzCase: FuzzCase;
  outcome: Outcome;
  detail: string;
  problems: string[];
}

async function runCase(fuzzCase: FuzzCase, root: string): Promise<Result> {
  const dir = path.join(root, `case-${fuzzCase.id}`);
  const modelJson = materialize(fuzzCase, dir);
  const before = snapshotTree(dir);
  const outParent = path.join(root, `out-${fuzzCase.id}`);
  fs.mkdirSync(outParent);
  const tensors = tf.memory().numTensors;
  const problems: string[] = [];
  let outcome: Outcome;
  let detail = '';
  try {
    const result = await withTimeout(optimize(modelJson, { backend: 'cpu', policy: 'always' }), CASE_TIMEOUT_MS);
    if (result === 'timeout') {
      outcome = 'timeout';
    } else if (result.report.verification?.passed || (result.report.rewritten.length === 0 && result.report.notes.includes(UNCHANGED))) {
      outcome = result.report.verification ? 'verified' : 'unchanged';
      const written = result.save(path.join(outParent, 'out'));
      // Nothing rewritten: the weights go out byte for byte.
      if (outcome === 'unchanged' && !shardBytes(written).equals(shardBytes(modelJson))) problems.push('an unchanged model was not written byte for byte');
      const reread = await readModelFiles(written);
      if (!reread.weightSpecs || !reread.modelTopology) problems.push('saved output is incomplete');
      // What we write must pass our own validation: a rewrite may not produce a hostile model.
      await inspect(written).catch((error: Error) => problems.push(`the output fails validation: ${error.message}`));
    } else {
      outcome = 'verify-failed';
      detail = JSON.stringify(result.report.verification?.outputs.map((o) => [o.maxAbsDiff, o.worst]));
    }
  } catch (error) {
    outcome = error instanceof InputError ? 'input-error' : 'crash';
    detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    if (process.env.FUZZ_STACKS && !(error instanceof InputError)) detail += ` ${(error as Error).stack}`;
    if (outcome === 'input-error' && (/\n/.test(detail) || detail.length > 600)) problems.push(`message is not one short line: ${detail.slice(0, 200)}`);
  }
  // inspect is the no-tensor path: a third of the cases go through it too.
  if (fuzzCase.id % 3 === 0 && outcome !== 'timeout') {
    try {
      await inspect(modelJson);
    } catch (error) {
      if (!(error instanceof InputError)) problems.push(`inspect crashed: ${(error as Error).message}`);
    }
  }
  if (outcome !== 'timeout' && tf.memory().numTensors !== tensors) {
    problems.push(`leaked ${tf.memory().numTensors - tensors} tensors`);
  }
  if (snapshotTree(dir) !== before) problems.push('the input folder changed');
  const leftovers = fs.readdirSync(outParent).filter((name) => name !== 'out' || (outcome !== 'verified' && outcome !== 'unchanged'));
  if (leftovers.length) problems.push(`left in the output's parent: ${leftovers.join(', ')}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(outParent, { recursive: true, force: true });
  return { fuzzCase, outcome, detail, problems };
}

test(`fuzz: ${CASES} mutated models end in a typed error or a verified success`, async () => {
  const root = tempDir('tfjs-rewrite-fuzz-');
  const cases = generateCases(CASES);
  const started = Date.now();
  const results: Result[] = [];
  // tfjs warns about odd shapes while loading mutated models; the outcome is what is asserted.
  jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  const watchdog = startWatchdog(WATCHDOG_MS);
  try {
    for (const fuzzCase of cases) {
      watchdog.beat(fuzzCase.id);
      results.push(await runCase(fuzzCase, root));
    }
  } finally {
    watchdog.stop();
  }
  const seconds = (Date.now() - started) / 1000;

  const table = new Map<string, Record<Outcome, number>>();
  for (const { fuzzCase, outcome } of results) {
    const row = table.get(fuzzCase.kind) ?? { 'input-error': 0, verified: 0, unchanged: 0, 'verify-failed': 0, crash: 0, timeout: 0 };
    row[outcome]++;
    table.set(fuzzCase.kind, row);
  }
  console.info(`fuzz: ${results.length} cases in ${seconds.toFixed(1)} s\n` +
    [...table].map(([kind, row]) => `  ${kind.padEnd(14)} ${JSON.stringify(row)}`).join('\n'));

  const bad = results.filter((r) => r.outcome === 'crash' || r.outcome === 'timeout' || r.outcome === 'verify-failed' || r.problems.length);
  const describe = (r: Result) =>
    `#${r.fuzzCase.id} ${r.fuzzCase.kind} ${r.fuzzCase.fixture} (${r.fuzzCase.what}): ${r.outcome} ${r.detail.slice(0, process.env.FUZZ_STACKS ? 3000 : 300)} ${r.problems.join('; ')}`;
  // FUZZ_DUMP=file writes every case's outcome, to review the messages users would see.
  if (process.env.FUZZ_DUMP) fs.writeFileSync(process.env.FUZZ_DUMP, results.map(describe).join('\n'));
  expect(bad.map(describe)).toEqual([]);

  // The generator must really exercise every kind, and both outcomes must occur.
  expect(results.length).toBeGreaterThanOrEqual(1000);
  for (const kind of MUTATION_KINDS) expect(table.get(kind)).toBeDefined();
  expect(results.filter((r) => r.outcome === 'verified').length).toBeGreaterThan(50);
  expect(results.filter((r) => r.outcome === 'input-error').length).toBeGreaterThan(500);
}, 120_000);

test('the generator is deterministic', () => {
  const [a, b] = [generateCases(50, 7), generateCases(50, 7)];
  expect(a.map((c) => [c.kind, c.what, c.modelJson])).toEqual(b.map((c) => [c.kind, c.what, c.modelJson]));
  expect(generateCases(50, 8).map((c) => c.modelJson)).not.toEqual(a.map((c) => c.modelJson));
});
