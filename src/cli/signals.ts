/**
 * Ctrl-C / kill handling, imported by the CLI before anything heavy (tfjs takes ~0.3 s to load):
 * a signal at any moment after startup ends the process with exit 2, never with the shell's
 * 128+N, after running the registered cleanups (temp output folders).
 */
const cleanups: (() => void)[] = [];

export function onInterrupt(cleanup: () => void): void {
  cleanups.push(cleanup);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    for (const cleanup of cleanups) {
      try {
        cleanup();
      } catch {
        // exiting anyway; one failed cleanup must not skip the others
      }
    }
    process.stderr.write(`tfjs-rewrite: interrupted (${signal}); no partial output was left\n`);
    process.exit(2);
  });
}
