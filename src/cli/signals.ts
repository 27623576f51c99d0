/**
 * Ctrl-C / kill handling, imported by the CLI before anything heavy (tfjs takes ~0.3 s to load):
 * a signal at any moment after startup runs the registered cleanups (temp output folders) and
 * exits with the shell's 128+N (130 for SIGINT, 143 for SIGTERM), so scripts and `make` see an
 * interruption, not a failure. Long loops yield to the event loop (src/yield.ts), which is
 * where this handler runs: within a forward pass of --batch-size rows.
 */
const EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;
const cleanups: (() => void)[] = [];

export function onInterrupt(cleanup: () => void): void {
  cleanups.push(cleanup);
}

for (const signal of Object.keys(EXIT_CODES) as (keyof typeof EXIT_CODES)[]) {
  process.on(signal, () => {
    for (const cleanup of cleanups) {
      try {
        cleanup();
      } catch {
        // exiting anyway; one failed cleanup must not skip the others
      }
    }
    process.stderr.write(`tfjs-rewrite: interrupted (${signal}); nothing was written\n`);
    // --json promises one JSON object on stdout, an interruption included.
    if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify({ error: `interrupted (${signal})`, exitCode: EXIT_CODES[signal] })}\n`);
    process.exit(EXIT_CODES[signal]);
  });
}
