/**
 * Loading tfjs and its backends as a guest in someone else's process. tfjs logs through the
 * console when it is loaded twice (~150 "kernel ... is already registered" lines from a second
 * copy of tfjs-core) and tfjs-node logs and throws when its native binding was never built
 * (`npm install --ignore-scripts`). Neither may reach the user as more than one line: module
 * loads run with the console muted, and a second tfjs-core copy is reported once, with the fix.
 */
import * as fs from 'fs';
import * as path from 'path';

const CONSOLE_METHODS = ['log', 'info', 'warn', 'error', 'debug'] as const;

/** Runs `fn` with console output captured; the captured lines are returned, never printed. */
export function muted<T>(fn: () => T): { value?: T; error?: unknown; lines: string[] } {
  const saved = CONSOLE_METHODS.map((method) => console[method]);
  const lines: string[] = [];
  for (const method of CONSOLE_METHODS) console[method] = (...parts: unknown[]) => void lines.push(parts.map(String).join(' '));
  try {
    return { value: fn(), lines };
  } catch (error) {
    return { error, lines };
  } finally {
    CONSOLE_METHODS.forEach((method, i) => (console[method] = saved[i]));
  }
}

/** Folders of every @tensorflow/tfjs-core copy this process has loaded, with their versions. */
export function loadedTfjsCores(cache: Record<string, unknown> = require.cache): { dir: string; version: string }[] {
  const dirs = new Set<string>();
  const marker = `${path.sep}@tensorflow${path.sep}tfjs-core${path.sep}`;
  for (const file of Object.keys(cache)) {
    const at = file.lastIndexOf(marker);
    if (at >= 0) dirs.add(file.slice(0, at + marker.length - 1));
  }
  return [...dirs].map((dir) => {
    let version = '?';
    try {
      version = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
    } catch {
      // a bundled or odd layout: the folder alone still tells the user where to look
    }
    return { dir, version };
  });
}

/** The one line for two or more tfjs-core copies, or null. */
export function duplicateTfjsLine(cores = loadedTfjsCores()): string | null {
  if (cores.length < 2) return null;
  const shown = cores.map((c) => `${c.version} in ${path.relative(process.cwd(), c.dir) || c.dir}`).join(', ');
  return `tfjs-rewrite: ${cores.length} copies of @tensorflow/tfjs-core are loaded (${shown}); models of one are not ` +
    'instances of the other\'s classes. Install @tensorflow/tfjs, its backends and tfjs-node at one version ' +
    '(`npm ls @tensorflow/tfjs-core` shows which package pulls which)';
}

let warned = false;
let report = (line: string) => console.warn(line);

/** Where the duplicate-tfjs line goes (default console.warn); the CLI folds it into its one line. */
export function setDuplicateTfjsReporter(reporter: (line: string) => void): void {
  report = reporter;
}

/** Says once per process that tfjs is loaded twice (after loading tfjs or a backend). */
export function warnIfDuplicateTfjs(): void {
  const line = warned ? null : duplicateTfjsLine();
  if (line === null) return;
  warned = true;
  report(line);
}

/**
 * `require(id)` with tfjs's load-time console noise muted; a failure is returned as a one-line
 * reason ("failed to load (<first line of the error>)"), never thrown or printed.
 */
export function quietRequire(id: string, load: (id: string) => unknown = require): { module?: unknown; reason?: string } {
  const { value, error } = muted(() => load(id));
  warnIfDuplicateTfjs();
  if (error === undefined) return { module: value };
  const code = (error as NodeJS.ErrnoException).code;
  const notFound = code === 'MODULE_NOT_FOUND' && String((error as Error).message).includes(`'${id}'`);
  return { reason: notFound ? `${id} is not installed` : `${id} failed to load (${String((error as Error).message ?? error).split('\n')[0].trim()})` };
}
