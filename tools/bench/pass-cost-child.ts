/**
 * One pass-cost measurement in a fresh process, so its peak RSS is its own:
 *   node pass-cost-child.js baseline|load-save|optimize <model.json> <out dir>
 * Prints {"ms": wall time of the step, "peakRss": bytes} on stdout.
 */
import * as fs from 'fs';
import { readModelFiles, writeModelFiles } from '../../src/io/files';
import { optimize } from '../../src/pipeline';

async function main([mode, model, out]: string[]): Promise<void> {
  const start = performance.now();
  if (mode === 'load-save') {
    writeModelFiles(await readModelFiles(model), out, { force: true });
  } else if (mode === 'optimize') {
    (await optimize(model, { verify: false })).save(out, { force: true });
  } else if (mode !== 'baseline') {
    throw new Error(`unknown mode ${mode}`);
  }
  const ms = performance.now() - start;
  process.stdout.write(JSON.stringify({ ms, peakRss: peakRss() }));
}

/**
 * This process's own peak RSS. On Linux getrusage's maxRSS survives exec, so a child would
 * report its parent's peak if that was higher; VmHWM belongs to the new address space.
 */
function peakRss(): number {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (match) return Number(match[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack}\n`);
  process.exitCode = 1;
});
