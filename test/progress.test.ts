/**
 * Progress on stderr: never silent for more than 10 s whatever the run does (the stage, time
 * elapsed and, for rows, an estimate), rows at most once a second. Fake timers: no waiting.
 */
import { HEARTBEAT_MS, ProgressLines, duration } from '../src/cli/progress';

afterEach(() => jest.useRealTimers());

test('a stage with no other output gets a line every 8 s (within the 10 s promise) with its elapsed time; rows get an estimate', () => {
  jest.useFakeTimers({ now: 0 });
  const lines: string[] = [];
  const progress = new ProgressLines('optimize', false, (line) => lines.push(line));
  progress.onStage('policy on wasm: deciding which rewrites pay');
  jest.advanceTimersByTime(HEARTBEAT_MS - 1000);
  expect(lines).toEqual([]);
  jest.advanceTimersByTime(1000);
  expect(lines).toEqual(['tfjs-rewrite: optimize: policy on wasm: deciding which rewrites pay, 8 s elapsed']);
  // Rows: shown once a second at most, with the rate's estimate of what is left.
  progress.onProgress({ backend: 'wasm', done: 1, total: 41 });
  expect(lines[1]).toBe('tfjs-rewrite: verifying on wasm: 1/41 rows, 8 s elapsed');
  jest.advanceTimersByTime(2000);
  progress.onProgress({ backend: 'wasm', done: 11, total: 41 });
  expect(lines[2]).toBe('tfjs-rewrite: verifying on wasm: 11/41 rows, 10 s elapsed, ~6 s left');
  progress.onProgress({ backend: 'wasm', done: 12, total: 41 }); // within the second: not shown
  expect(lines).toHaveLength(3);
  // A long silent step within the rows: the heartbeat repeats the last row count.
  jest.advanceTimersByTime(HEARTBEAT_MS);
  expect(lines[3]).toMatch(/^tfjs-rewrite: optimize: verifying on wasm: 12\/41 rows, 18 s elapsed, ~\d+ s left$/);
  progress.stop();
  jest.advanceTimersByTime(5 * HEARTBEAT_MS);
  expect(lines).toHaveLength(4);
});

test('a quick run prints nothing; with --inputs the last row count is shown', () => {
  jest.useFakeTimers({ now: 0 });
  const quiet: string[] = [];
  const a = new ProgressLines('verify', false, (line) => quiet.push(line));
  a.onProgress({ backend: 'cpu', done: 2, total: 2 });
  a.stop();
  expect(quiet).toEqual([]);
  const shown: string[] = [];
  const b = new ProgressLines('verify', true, (line) => shown.push(line));
  b.onProgress({ backend: 'cpu', done: 2, total: 2 });
  b.stop();
  expect(shown).toEqual(['tfjs-rewrite: verifying on cpu: 2/2 rows']);
});

test('durations read as seconds, then minutes', () => {
  expect([duration(400), duration(59_400), duration(61_000), duration(3_600_000)]).toEqual(['0 s', '59 s', '1 min 1 s', '60 min 0 s']);
});
