/**
 * `--decisions FILE` as a CI job uses it: record once, replay in fresh processes (byte-identical
 * output, both formats), and a file made for another model refused with exit 2, one stderr
 * line, nothing written.
 */
import * as fs from 'fs';
import * as path from 'path';
import { runCli } from './helpers/cli';
import { COMMITTED, committedModel, snapshotDir, tempDir } from './helpers/tf';

const graphModel = (name: string) => path.join(COMMITTED, '..', 'graph-models', name, 'model.json');

describe('optimize --decisions', () => {
  test.each([
    ['layers', committedModel('channels-first-gelu'), committedModel('video-tubelet')],
    ['graph', graphModel('graph-patch-embed-mini'), graphModel('graph-tubelet-remainder')],
  ])('%s: recorded, then replayed by another process to the same bytes; another model is refused with one line and nothing written', (_format, model, other) => {
    const dir = tempDir();
    const file = path.join(dir, 'decisions.json');
    // Recording with --policy always times nothing; replaying it under the default policy
    // rewrites exactly what was recorded.
    const record = runCli(['optimize', model, '--out', path.join(dir, 'a'), '--decisions', file, '--policy', 'always', '--no-verify', '--backend', 'cpu']);
    expect([record.status, record.stderr]).toEqual([0, `tfjs-rewrite: decisions recorded to ${file}; commit it, and --decisions ${file} replays them\n`]);
    const recorded = fs.readFileSync(file);
    const replay = runCli(['optimize', model, '--out', path.join(dir, 'b'), '--decisions', file, '--no-verify', '--backend', 'cpu', '--json']);
    expect([replay.status, replay.stderr]).toEqual([0, '']);
    const report = JSON.parse(replay.stdout);
    expect(report.policy.decisions.length).toBeGreaterThan(0);
    for (const d of report.policy.decisions) expect(d.reason).toMatch(/^replayed from .*decisions\.json: --policy always/);
    expect(snapshotDir(path.join(dir, 'b'))).toEqual(snapshotDir(path.join(dir, 'a')));
    expect(fs.readFileSync(file)).toEqual(recorded);

    const refused = runCli(['optimize', other, '--out', path.join(dir, 'c'), '--decisions', file, '--backend', 'cpu']);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/^tfjs-rewrite: .*decisions\.json was made for another model: [^\n]+\n$/);
    expect(refused.stdout).toBe('');
    expect(fs.existsSync(path.join(dir, 'c'))).toBe(false);
    expect(fs.readdirSync(dir).sort()).toEqual(['a', 'b', 'decisions.json']);
    expect(fs.readFileSync(file)).toEqual(recorded);
  });
});
