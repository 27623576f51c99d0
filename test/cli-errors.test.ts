/**
 * The CLI binary on hostile input: exit code 0/1/2 only, one stderr line on failure (no stack),
 * no output folder unless it succeeded, no temp leftovers, input untouched, and no hang (every
 * run has a hard timeout, which also catches hangs that would block an in-process test).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { MUTATION_KINDS, generateCases, materialize, snapshotTree } from './helpers/fuzz';
import { COMMITTED, REPO, tempDir } from './helpers/tf';
import { withoutProgress } from './helpers/cli';

const CLI = path.join(REPO, 'dist', 'src', 'cli', 'main.js');
const TIMEOUT_MS = 30_000;

beforeAll(() => {
  // jest's globalSetup compiles; this keeps the file runnable on its own.
  if (!fs.existsSync(CLI)) spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(REPO, 'tsconfig.json')]);
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[]): Run {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: TIMEOUT_MS });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A copy of a committed fixture in a fresh folder; `edit` may change its model.json object and files. */
function model(fixture = 'pointwise-1x1x1', edit?: (json: any, dir: string) => void): string {
  const dir = path.join(tempDir('tfjs-rewrite-cli-'), 'model');
  fs.cpSync(path.join(COMMITTED, fixture), dir, { recursive: true });
  const file = path.join(dir, 'model.json');
  if (edit) {
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    edit(json, dir);
    fs.writeFileSync(file, JSON.stringify(json));
  }
  return file;
}

/** The contract of every failing run: exit 2, exactly one "tfjs-rewrite: " line, no stack. */
function expectOneLineFailure(run: Run, pattern: RegExp): void {
  expect(run.code).toBe(2);
  // The progress heartbeat (a line per 10 s of a slow run, on a loaded machine) is not an error line.
  const lines = withoutProgress(run.stderr).split('\n').filter((line) => line.length > 0);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^tfjs-rewrite: /);
  expect(lines[0]).not.toMatch(/internal error/);
  expect(run.stderr).not.toMatch(/\n\s+at /);
  expect(lines[0]).toMatch(pattern);
}

/** optimize `file` into a fresh --out; checks nothing is left behind and the input is untouched. */
function optimizeExpectingFailure(file: string, pattern: RegExp): void {
  const parent = tempDir('tfjs-rewrite-cli-out-');
  const before = snapshotTree(path.dirname(file));
  const run = cli(['optimize', file, '--out', path.join(parent, 'out'), '--backend', 'cpu']);
  expectOneLineFailure(run, pattern);
  expect(fs.readdirSync(parent)).toEqual([]);
  expect(snapshotTree(path.dirname(file))).toBe(before);
}

const layerNamed = (json: any, name: string) => json.modelTopology.config.layers.find((l: any) => l.name === name);

describe('bad input exits 2 with one line naming the problem', () => {
  test('missing model', () => optimizeExpectingFailure('/nonexistent/model.json', /nonexistent\/model\.json cannot be read \(ENOENT\)/));
  test('garbage JSON', () => {
    const file = model();
    fs.writeFileSync(file, '{"modelTopology": [');
    optimizeExpectingFailure(file, /model\.json is not valid JSON/);
  });
  test('a FIFO as the weight file is refused, not read forever', () => {
    const file = model();
    const shard = path.join(path.dirname(file), 'group1-shard1of1.bin');
    fs.rmSync(shard);
    if (spawnSync('mkfifo', [shard]).status !== 0) return; // no mkfifo on this system
    optimizeExpectingFailure(file, /group1-shard1of1\.bin is not a regular file/);
  });
  test('weight path escaping the folder', () => optimizeExpectingFailure(
    model('pointwise-1x1x1', (json) => { json.weightsManifest[0].paths = ['../../etc/passwd']; }),
    /weightsManifest\[0\]\.paths\[0\]: "\.\.\/\.\.\/etc\/passwd" points outside the model folder/,
  ));
  test('symlinked shard pointing out', () => optimizeExpectingFailure(
    model('pointwise-1x1x1', (json, dir) => {
      fs.symlinkSync('/dev/zero', path.join(dir, 'zero.bin'));
      json.weightsManifest[0].paths = ['zero.bin'];
    }),
    /"zero\.bin" is a link to a file outside the model folder/,
  ));
  test('truncated shard names the file and both byte counts', () => {
    const file = model();
    const shard = path.join(path.dirname(file), 'group1-shard1of1.bin');
    fs.truncateSync(shard, 100);
    optimizeExpectingFailure(file, /weight file .*group1-shard1of1\.bin has 100 bytes, expected 140 .*\(truncated\)/);
  });
  test('dangling inbound reference (tfjs would hang)', () => optimizeExpectingFailure(
    model('pointwise-1x1x1', (json) => { layerNamed(json, 'pointwise').inbound_nodes[0][0][0] = 'ghost'; }),
    /references \["ghost", 0, 0\], but there is no layer "ghost"/,
  ));
  test('cycle', () => optimizeExpectingFailure(
    model('pointwise-1x1x1', (json) => { layerNamed(json, 'pointwise').inbound_nodes[0][0][0] = 'pointwise'; }),
    /cycle through layers pointwise -> pointwise/,
  ));
  test('unknown layer class says which', () => optimizeExpectingFailure(
    model('pointwise-1x1x1', (json) => { layerNamed(json, 'pointwise').class_name = 'MyConv'; }),
    /unknown layer class "MyConv"/,
  ));
  test('a Keras 3 node in a Keras 2 topology is converted field by field; an empty one is named', () => optimizeExpectingFailure(
    model('pointwise-1x1x1', (json) => { layerNamed(json, 'pointwise').inbound_nodes = [{ args: [], kwargs: {} }]; }),
    /pointwise_1x1x1\/pointwise: inbound node 0 has no inputs/,
  ));
  test('NaN weight', () => {
    const file = model();
    const shard = path.join(path.dirname(file), 'group1-shard1of1.bin');
    const bytes = fs.readFileSync(shard);
    bytes.writeFloatLE(NaN, 8);
    fs.writeFileSync(shard, bytes);
    optimizeExpectingFailure(file, /weight "pointwise\/kernel" has 1 NaN\/Inf value\(s\) \(first at flat index 2\)/);
  });
  test('unknown flag and bad backend are usage errors', () => {
    expectOneLineFailure(cli(['optimize', model(), '--out', '/tmp/x', '--frobnicate']), /unknown option --frobnicate/);
    expectOneLineFailure(cli(['optimize', model(), '--out', '/tmp/x', '--backend', 'gpu']), /--backend must be one of/);
  });
});

describe('output folder', () => {
  test('an existing --out is refused without --force and left as it was', () => {
    const out = tempDir('tfjs-rewrite-cli-existing-');
    fs.writeFileSync(path.join(out, 'keep.txt'), 'mine');
    expectOneLineFailure(cli(['optimize', model(), '--out', out, '--backend', 'cpu']), /already exists \(pass --force to replace it\)/);
    expect(fs.readdirSync(out)).toEqual(['keep.txt']);
  });
  test('--force never replaces the folder holding the input', () => {
    const file = model();
    const before = snapshotTree(path.dirname(file));
    for (const out of [path.dirname(file), path.dirname(path.dirname(file))]) {
      expectOneLineFailure(cli(['optimize', file, '--out', out, '--force', '--backend', 'cpu']), /would replace the folder of the input/);
    }
    expect(snapshotTree(path.dirname(file))).toBe(before);
  });
  test('success writes a complete folder and one JSON object with --json', () => {
    const parent = tempDir('tfjs-rewrite-cli-ok-');
    const out = path.join(parent, 'out');
    const run = cli(['optimize', model('qwen3vl-patch-embed-mini'), '--out', out, '--backend', 'cpu', '--json', '--policy', 'always']);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).verification.passed).toBe(true);
    expect(fs.readdirSync(parent)).toEqual(['out']);
    expect(fs.readdirSync(out).sort()).toEqual(['group1-shard1of1.bin', 'model.json']);
  });
  test('a verification failure exits 1', () => {
    const a = model('pointwise-1x1x1');
    const b = model('pointwise-1x1x1', (_json, dir) => {
      const shard = path.join(dir, 'group1-shard1of1.bin');
      const bytes = fs.readFileSync(shard);
      bytes.writeFloatLE(bytes.readFloatLE(0) + 0.5, 0);
      fs.writeFileSync(shard, bytes);
    });
    const run = cli(['verify', a, b, '--backend', 'cpu']);
    expect(run.code).toBe(1);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });
});

test('a sample of fuzz cases through the binary: exit 0 or 2, one line, nothing partial', () => {
  const cases = generateCases(400, 99);
  // Two of each kind, so the sample spans every kind of damage.
  const sample = MUTATION_KINDS.flatMap((kind) => cases.filter((c) => c.kind === kind).slice(0, kind === 'valid' ? 1 : 2));
  const root = tempDir('tfjs-rewrite-cli-fuzz-');
  for (const fuzzCase of sample) {
    const file = materialize(fuzzCase, path.join(root, `case-${fuzzCase.id}`));
    const before = snapshotTree(path.dirname(file));
    const parent = path.join(root, `out-${fuzzCase.id}`);
    fs.mkdirSync(parent);
    const run = cli(['optimize', file, '--out', path.join(parent, 'out'), '--backend', 'cpu']);
    const label = `#${fuzzCase.id} ${fuzzCase.kind} (${fuzzCase.what}): exit ${run.code} ${run.stderr}`;
    expect([label, [0, 2].includes(run.code!)]).toEqual([label, true]);
    if (run.code === 2) {
      expect([label, withoutProgress(run.stderr).trim().split('\n').length, /\n\s+at /.test(run.stderr)]).toEqual([label, 1, false]);
    }
    expect([label, fs.readdirSync(parent)]).toEqual([label, run.code === 0 ? ['out'] : []]);
    expect(snapshotTree(path.dirname(file))).toBe(before);
  }
}, 120_000);
