#!/usr/bin/env node
/**
 * tfjs-rewrite CLI. Exit codes: 0 success, 1 verification failed (nothing written), 2 usage
 * error or bad input (one line on stderr). With --json, stdout carries exactly one JSON object;
 * everything else goes to stderr.
 */
import { formatReport, formatVerification } from '../report/format';
import { BACKEND_REQUESTS, BackendRequest } from '../backend/select';
import { InputError, oneLine } from '../errors';
import { inspect, optimize, verify } from '../optimize';
import { VerifyOptions } from '../verify/verify';
import { silenceTfjsNodeBanner } from '../quiet';
import { ParsedArgs, UsageError, numberFlag, parseArgs } from './args';

const USAGE: Record<string, string> = {
  optimize: `usage: tfjs-rewrite optimize <model.json> --out <dir> [options]
  Rewrites every eligible layer, verifies the result numerically, and writes it to <dir>.
  --out <dir>          output folder (model.json + shards); refused if it exists, unless --force
  --force              replace an existing --out folder
  --backend <name>     auto (default) | tensorflow | wasm | cpu
  --atol <x>, --rtol <y>  tolerance |a-b| <= atol + rtol*|a| (defaults 1e-5, 1e-4)
  --batch <n>          batch size of the generated inputs (default 2)
  --seed <n>           seed of the generated inputs (default 1234)
  --no-verify          skip the numerical check
  --json               print one JSON report on stdout`,
  verify: `usage: tfjs-rewrite verify <a/model.json> <b/model.json> [options]
  Runs both models on the same seeded inputs and compares every output.
  --backend, --atol, --rtol, --batch, --seed, --json   as for optimize`,
  inspect: `usage: tfjs-rewrite inspect <model.json> [--json]
  Lists what optimize would rewrite, and why every other candidate is left alone.`,
};
const MAIN_USAGE = `usage: tfjs-rewrite <command> [options]
commands:
  optimize <model.json> --out <dir>   rewrite, verify, write
  verify <a/model.json> <b/model.json> compare two models numerically
  inspect <model.json>                 what would be rewritten, and why not
Run 'tfjs-rewrite <command> --help' for options. Exit codes: 0 ok, 1 verification failed, 2 bad usage or input.`;

const VERIFY_VALUES = ['--backend', '--atol', '--rtol', '--batch', '--seed'];

function verifyOptions(args: ParsedArgs): VerifyOptions {
  const backend = args.values.get('--backend') ?? 'auto';
  if (!BACKEND_REQUESTS.includes(backend as BackendRequest)) {
    throw new UsageError(`--backend must be one of ${BACKEND_REQUESTS.join(', ')}, got "${backend}"`);
  }
  return {
    backend: backend as BackendRequest,
    atol: numberFlag(args, '--atol', (n) => n >= 0, 'a number >= 0'),
    rtol: numberFlag(args, '--rtol', (n) => n >= 0, 'a number >= 0'),
    batch: numberFlag(args, '--batch', (n) => Number.isInteger(n) && n >= 1, 'a positive integer'),
    seed: numberFlag(args, '--seed', Number.isInteger, 'an integer'),
  };
}

function expectPositional(args: ParsedArgs, count: number, command: string): string[] {
  if (args.positional.length !== count) {
    throw new UsageError(`${command} takes ${count} model path${count > 1 ? 's' : ''}, got ${args.positional.length} (see --help)`);
  }
  return args.positional;
}

const print = (text: string) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
const log = (text: string) => process.stderr.write(`${text}\n`);

async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    print(MAIN_USAGE);
    return command ? 0 : 2;
  }
  if (!(command in USAGE)) throw new UsageError(`unknown command "${command}" (optimize, verify, inspect)`);
  if (rest.includes('--help') || rest.includes('-h')) {
    print(USAGE[command]);
    return 0;
  }

  if (command === 'inspect') {
    const args = parseArgs(rest, { values: [], switches: ['--json'] });
    const [model] = expectPositional(args, 1, command);
    const report = await inspect(model);
    print(args.switches.has('--json') ? JSON.stringify({ command, model, ...report }) : formatReport(report, `inspect ${model}`));
    return 0;
  }

  if (command === 'verify') {
    const args = parseArgs(rest, { values: VERIFY_VALUES, switches: ['--json'] });
    const [a, b] = expectPositional(args, 2, command);
    const verification = await verify(a, b, verifyOptions(args));
    print(args.switches.has('--json') ? JSON.stringify({ command, models: [a, b], verification }) : formatVerification(verification));
    return verification.passed ? 0 : 1;
  }

  const args = parseArgs(rest, { values: ['--out', ...VERIFY_VALUES], switches: ['--json', '--no-verify', '--force'] });
  const [model] = expectPositional(args, 1, command);
  const out = args.values.get('--out');
  if (!out) throw new UsageError('optimize needs --out <dir>');
  const options = { ...verifyOptions(args), verify: !args.switches.has('--no-verify') };
  const result = await optimize(model, options);
  const passed = result.report.verification?.passed ?? true;
  const written = passed ? result.save(out, { force: args.switches.has('--force') }) : null;
  if (args.switches.has('--json')) {
    print(JSON.stringify({ command, model, out: written, ...result.report }));
  } else {
    print(formatReport(result.report, `optimize ${model} -> ${written ?? '(nothing written)'}`));
  }
  if (!passed) log('tfjs-rewrite: verification failed; nothing was written');
  return passed ? 0 : 1;
}

silenceTfjsNodeBanner();
// Anything a dependency logs must not break the single JSON object on stdout.
console.log = (...parts: unknown[]) => process.stderr.write(`${parts.map(String).join(' ')}\n`);

run(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    const known = error instanceof InputError;
    log(`tfjs-rewrite: ${known ? '' : 'internal error: '}${oneLine(error)}`);
    if (!known && process.env.TFJS_REWRITE_DEBUG) log(String((error as Error).stack));
    process.exitCode = 2;
  },
);
