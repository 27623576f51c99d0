/**
 * Output folders: --force replaces only an empty folder or an earlier tfjs model output (a
 * model.json and the files its manifest lists, nothing else), and what is written follows the
 * umask (755/644 under 022), so a web server running as another user can read the model.
 */
import * as fs from 'fs';
import * as path from 'path';
import { optimize, writeModelFiles } from '../src';
import { runCli } from './helpers/cli';
import { committedModel, snapshotDir, tempDir } from './helpers/tf';

const TUBELET = committedModel('video-tubelet');
const mode = (file: string) => (fs.statSync(file).mode & 0o777).toString(8);

let artifacts: Awaited<ReturnType<typeof optimize>>['artifacts'];
beforeAll(async () => {
  artifacts = (await optimize(TUBELET, { verify: false })).artifacts;
});

describe('--force', () => {
  test('onto a folder holding notes.txt: exit 2 naming it, the folder untouched', () => {
    const out = tempDir();
    fs.writeFileSync(path.join(out, 'notes.txt'), 'mine');
    const run = runCli(['optimize', TUBELET, '--out', out, '--no-verify', '--force']);
    expect(run).toEqual({
      status: 2, stdout: '',
      stderr: `tfjs-rewrite: ${out} holds notes.txt, not part of a tfjs model; --force replaces only an empty folder or an earlier model output (choose another --out)\n`,
    });
    expect([...snapshotDir(out).keys()]).toEqual(['notes.txt']);
  });

  test('an earlier output with one extra file, a sub-folder or a model.json that is no model is refused', () => {
    const cases: [string, (dir: string) => void, RegExp][] = [
      ['extra file', (dir) => fs.writeFileSync(path.join(dir, 'README.md'), 'x'), /holds README\.md, not part of a tfjs model/],
      ['sub-folder', (dir) => fs.mkdirSync(path.join(dir, '.git')), /holds \.git, not part of a tfjs model/],
      ['not a model', (dir) => fs.writeFileSync(path.join(dir, 'model.json'), '{"name": "my-app"}'), /holds a model\.json that is not a tfjs model/],
      ['many strangers', (dir) => ['a', 'b', 'c', 'd', 'e'].forEach((n) => fs.writeFileSync(path.join(dir, n), '')), /holds a, b, c and 2 more, not part/],
    ];
    for (const [what, spoil, message] of cases) {
      const out = path.join(tempDir(), 'out');
      writeModelFiles(artifacts, out);
      spoil(out);
      const before = snapshotDir(out);
      let error: unknown;
      try {
        writeModelFiles(artifacts, out, { force: true });
      } catch (caught) {
        error = caught;
      }
      expect([what, String(error)]).toEqual([what, expect.stringMatching(message)]);
      expect(snapshotDir(out)).toEqual(before);
    }
  });

  test('an empty folder and an earlier output (model.json + its shards) are replaced', () => {
    const out = tempDir();
    writeModelFiles(artifacts, out, { force: true });
    const first = snapshotDir(out);
    expect([...first.keys()].sort()).toEqual(['group1-shard1of1.bin', 'model.json']);
    writeModelFiles(artifacts, out, { force: true });
    expect(snapshotDir(out)).toEqual(first);
    expect(fs.readdirSync(path.dirname(out)).filter((name) => name.startsWith(`${path.basename(out)}.tmp-`))).toEqual([]);
  });
});

describe('permissions follow the umask', () => {
  test.each([[0o022, '755', '644'], [0o077, '700', '600'], [0o002, '775', '664']])('umask %o: folder %s, files %s', (umask, dirMode, fileMode) => {
    const previous = process.umask(umask);
    try {
      const out = path.join(tempDir(), 'deploy', 'model');
      writeModelFiles(artifacts, out);
      expect(mode(out)).toBe(dirMode);
      for (const name of fs.readdirSync(out)) expect([name, mode(path.join(out, name))]).toEqual([name, fileMode]);
    } finally {
      process.umask(previous);
    }
  });
});
