/** Runs the compiled CLI (built by test/global-setup.js) as a user would. */
import { spawnSync } from 'child_process';
import * as path from 'path';
import { REPO } from './tf';

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

export const CLI = path.join(REPO, 'dist', 'src', 'cli', 'main.js');

export function runCli(args: string[]): CliRun {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: REPO, timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** stderr without the progress heartbeat (a line every 10 s of a long run: src/cli/progress.ts). */
export function withoutProgress(stderr: string): string {
  return stderr.split('\n').filter((line) => !/^tfjs-rewrite: .*\d+ s elapsed(, ~.* left)?$/.test(line)).join('\n');
}
