#!/usr/bin/env node
/**
 * tfjs-rewrite CLI. Exit codes: 0 success, 1 verification failed (nothing written), 2 usage
 * error or bad input (one line on stderr). With --json, stdout carries exactly one JSON object;
 * everything else goes to stderr.
 */
// First: signal handlers must be in place before tfjs spends ~0.3 s loading.
import { onInterrupt } from './signals';
import { heldWarnings } from './warnings';
import * as fs from 'fs';
import '../backend/tfjs';
import { formatReport, formatVerification } from '../report/format';
import { BACKEND_REQUESTS, BackendRequest } from '../backend/select';
import { InputError, oneLine } from '../errors';
import { benchModel, inspect, optimize, verify } from '../api';
import { convertKeras3 } from '../convert';
import { isGraphModelFile } from '../graphdef/files';
import { checkOutputTarget, removePendingWrites } from '../io/files';
import { InputShapes, LayersVerifyOptions } from '../verify/verify';
import { formatLayerAccuracy } from '../verify/format';
import { silenceTfjsNodeBanner } from '../quiet';
import { packageVersion } from './version';
import { closeAllBrowsers } from '../browser/session';
import { ParsedArgs, UsageError, numberFlag, parseArgs } from './args';
import { formatModelBench } from '../pipeline/bench';
import { POLICY_MODES, PolicyMode, formatPolicy } from '../policy/policy';
import { ProgressLines } from './progress';

const USAGE: Record<string, string> = {
  optimize: `usage: tfjs-rewrite optimize <model.json> --out <dir> [options]
  Rewrites every eligible layer, verifies the result numerically, and writes it to <dir>.
  --out <dir>          output folder (model.json + shards); refused if it exists, unless --force
  --force              replace an existing --out folder
  --backend <name>     auto (default) | tensorflow | wasm | cpu | webgl | webgpu | all (every backend
                       present, as a matrix); webgl/webgpu run in a headless Chromium/Chrome
                       (puppeteer-core; CHROME_PATH or chromium/google-chrome on PATH)
  --inputs <a.npy> [<b.npy> ...]  verify on these rows: one .npy (float32/int32, C order) per
                       model input, any leading batch size (default: seeded uniform rows)
  --batch-size <n>     rows per forward pass; bounds memory for large --inputs (default 512)
  --atol <x>, --rtol <y>  tolerance |a-b| <= atol + rtol*|a| (defaults 1e-5, 1e-4; with the
                       defaults, elements beyond it pass within --accuracy-factor x the original's
                       measured float32 noise floor; a tolerance you set is enforced as set)
  --accuracy-factor <f>  fail when a rewritten layer's mean error vs a float64 reference
                       exceeds f times the original layer's (default 4)
  --rows <n>           rows of the generated inputs, without --inputs (default 2; old name --batch)
  --input-shape <name=1x224x224x3>  shape of a generated input, batch first, for inputs declared
                       with unknown sizes or rank (repeatable, one per input); sizes come from
                       --inputs, else --input-shape, else the model's declared shape
  --seed <n>           seed of the generated inputs (default 1234)
  --passes <a,b>       run only these passes (names: conv3d-to-dense, conv2d-to-dense,
                       conv1d-to-dense, fold-views-into-dense, collapse-reshapes,
                       drop-identity-views); named passes bypass the speed policy
  --policy <mode>      which correct rewrites are worth it on the target backend:
                       auto (default): rewrite what the table vouches for (large Conv3D patch
                       embeds on wasm), time every other candidate alone (the layer vs its
                       replacement, on the backend) and rewrite it only if >= 1.1x faster;
                       measure: time every candidate; always: rewrite every correct match
  --policy-batch <n>   batch the candidates are timed at (default 16; for a patch embed, its
                       patch count)
  --decisions <file>   replay the policy's decisions from <file> (nothing is timed; the same
                       model and file give byte-identical output), or, if <file> does not exist,
                       decide as usual and record them there; a file made for another model is
                       refused. --passes and --policy always still win over it (docs/policy.md)
  --no-verify          skip the numerical check
  --json               print one JSON report on stdout`,
  bench: `usage: tfjs-rewrite bench <model.json> [--passes a,b] [--policy mode] [--backend name] [--inputs a.npy ...] [--rows n] [--json]
  Times the model as is against exactly the model optimize with the same flags would write, the
  rewritten subgraphs alone, and (layers models) the bare matMul+bias they reduce to
  (interleaved runs after a warm-up, medians): speedup and overhead on your backend.
  --passes, --policy, --policy-batch  as for optimize (--policy always: every correct rewrite,
                       the per-rewrite table)
  --decisions <file>   time what optimize would write replaying <file> (which must exist)
  --backend <name>     auto (default) | tensorflow | wasm | cpu | webgl | webgpu (headless browser)
  --inputs <a.npy> ... one .npy per model input; its leading dimension is the batch
  --rows <n>           rows of the generated inputs (the timed batch) without --inputs (default 16;
                       old name --batch)
  --json               print one JSON report on stdout`,
  verify: `usage: tfjs-rewrite verify <a/model.json> <b/model.json> [options]
  Runs both models on the same inputs and compares every output (and, for layers the second
  replaced by name, their accuracy against a float64 reference).
  --backend, --inputs, --input-shape, --batch-size, --atol, --rtol, --accuracy-factor, --rows, --seed, --json
                       as for optimize`,
  convert: `usage: tfjs-rewrite convert <model.json> --out <dir> [--force] [--json]
  Converts a Keras 3 export (tensorflowjs_converter on Keras 3) to the Keras 2 form stock
  tfjs-layers loads, loads it once with stock tfjs to prove it, and writes it to <dir>. Nothing is
  rewritten or optimized. What cannot be converted exactly is refused in one line (exit 2).
  --out <dir>          output folder (model.json + shards); refused if it exists, unless --force
  --force              replace an existing --out folder
  --json               print one JSON report on stdout`,
  inspect: `usage: tfjs-rewrite inspect <model.json> [--passes a,b] [--backend name] [--policy mode] [--input-shape name=NxHxWxC] [--json]
  Lists what optimize would rewrite, and why every other candidate is left alone. Times
  nothing: candidates the policy would time are listed as not decided, with what would be timed.
  A graph model whose conv shapes static inference cannot tell is run once on zeros to learn them.
  --input-shape        graph models: the input sizes to learn shapes at (for inputs of unknown size)
  --passes, --backend, --policy, --policy-batch  as for optimize
  --decisions <file>   show what optimize would do replaying <file> (which must exist)`,
};
const MAIN_USAGE = `usage: tfjs-rewrite <command> [options]
commands:
  optimize <model.json> --out <dir>   rewrite, verify, write
  convert <model.json> --out <dir>    Keras 3 export -> the form stock tfjs loads, nothing else
  verify <a/model.json> <b/model.json> compare two models numerically
  inspect <model.json>                 what would be rewritten, and why not
  bench <model.json>                   time the model before and after the rewrite
  --version                            print the version
Run 'tfjs-rewrite <command> --help' for options. Exit codes: 0 ok, 1 verification failed, 2 bad usage or input,
130/143 interrupted (Ctrl-C/SIGTERM; nothing is written).`;

/** `--passes a,b`: registered pass names; named passes run even where a policy would hold them back. */
function passList(args: ParsedArgs): string[] | undefined {
  const text = args.values.get('--passes');
  if (text === undefined) return undefined;
  const names = text.split(',').map((name) => name.trim()).filter(Boolean);
  if (names.length === 0) throw new UsageError('--passes needs at least one pass name');
  return names;
}

function policyOptions(args: ParsedArgs): { policy: PolicyMode; policyBatch?: number; decisions?: string } {
  const policy = args.values.get('--policy') ?? 'auto';
  if (!POLICY_MODES.includes(policy as PolicyMode)) throw new UsageError(`--policy must be one of ${POLICY_MODES.join(', ')}, got "${policy}"`);
  const decisions = args.values.get('--decisions');
  return { policy: policy as PolicyMode, policyBatch: numberFlag(args, '--policy-batch', (n) => Number.isInteger(n) && n >= 1, 'a positive integer'), ...(decisions !== undefined ? { decisions } : {}) };
}

const VERIFY_VALUES = ['--backend', '--atol', '--rtol', '--rows', '--batch', '--seed', '--batch-size', '--accuracy-factor'];

/** `--rows` (rows to generate), or its old name `--batch`: distinct from --batch-size (rows per pass). */
function rowsFlag(args: ParsedArgs): number | undefined {
  if (args.values.has('--rows') && args.values.has('--batch')) throw new UsageError('give --rows once (--batch is its old name)');
  const flag = args.values.has('--batch') ? '--batch' : '--rows';
  return numberFlag(args, flag, (n) => Number.isInteger(n) && n >= 1, 'a positive integer');
}

/** `--input-shape name=1x224x224x3`, repeatable (one per input): the shapes by input name. */
function takeInputShapes(argv: string[]): { argv: string[]; inputShapes?: InputShapes } {
  const rest: string[] = [];
  const shapes: InputShapes = {};
  for (let i = 0; i < argv.length; i++) {
    const inline = argv[i].startsWith('--input-shape=');
    if (argv[i] !== '--input-shape' && !inline) {
      rest.push(argv[i]);
      continue;
    }
    const text = inline ? argv[i].slice('--input-shape='.length) : argv[++i];
    const at = text?.lastIndexOf('=') ?? -1;
    const dims = at > 0 ? text.slice(at + 1).split('x') : [];
    if (at <= 0 || dims.some((d) => !/^[1-9]\d*$/.test(d))) {
      throw new UsageError(`--input-shape needs name=<size>x<size>..., batch first (e.g. image=1x224x224x3), got ${text === undefined ? 'nothing' : `"${text}"`}`);
    }
    const name = text.slice(0, at);
    if (name in shapes) throw new UsageError(`--input-shape ${name} is given twice`);
    shapes[name] = dims.map(Number);
  }
  return { argv: rest, inputShapes: Object.keys(shapes).length ? shapes : undefined };
}

interface TakenInputs {
  argv: string[];
  inputs?: string[];
  inputShapes?: InputShapes;
}

/** `--inputs` takes every following .npy path (the parser's flags take one value each); `--input-shape` too. */
function takeInputs(all: string[]): TakenInputs {
  const { argv, inputShapes } = takeInputShapes(all);
  const at = argv.indexOf('--inputs');
  if (at < 0) return { argv, inputShapes };
  let end = at + 1;
  while (end < argv.length && !argv[end].startsWith('--') && /\.npy$/i.test(argv[end])) end++;
  if (end === at + 1) throw new UsageError('--inputs needs one .npy file per model input');
  const rest = [...argv.slice(0, at), ...argv.slice(end)];
  if (rest.includes('--inputs')) throw new UsageError('give --inputs once, with all files after it');
  return { argv: rest, inputs: argv.slice(at + 1, end), inputShapes };
}

let progressLines: ProgressLines | undefined;

/** The run's progress on stderr (src/cli/progress.ts): one per process, as the CLI runs one command. */
function progress(always: boolean): ProgressLines {
  return (progressLines ??= new ProgressLines(process.argv[2] ?? 'tfjs-rewrite', always));
}

function verifyOptions(args: ParsedArgs, { inputs, inputShapes }: Partial<TakenInputs> = {}): LayersVerifyOptions {
  const backend = args.values.get('--backend') ?? 'auto';
  if (backend !== 'all' && !BACKEND_REQUESTS.includes(backend as BackendRequest)) {
    throw new UsageError(`--backend must be one of ${BACKEND_REQUESTS.join(', ')}, all; got "${backend}"`);
  }
  return {
    backend: backend as BackendRequest | 'all',
    inputs,
    inputShapes,
    onProgress: progress(inputs !== undefined).onProgress,
    onStage: progress(inputs !== undefined).onStage,
    batchSize: numberFlag(args, '--batch-size', (n) => Number.isInteger(n) && n >= 1, 'a positive integer'),
    accuracyFactor: numberFlag(args, '--accuracy-factor', (n) => n >= 1, 'a number >= 1'),
    atol: numberFlag(args, '--atol', (n) => n >= 0, 'a number >= 0'),
    rtol: numberFlag(args, '--rtol', (n) => n >= 0, 'a number >= 0'),
    batch: rowsFlag(args),
    seed: numberFlag(args, '--seed', Number.isInteger, 'an integer'),
  };
}

function expectPositional(args: ParsedArgs, count: number, command: string): string[] {
  if (args.positional.length !== count) {
    throw new UsageError(`${command} takes ${count} model path${count > 1 ? 's' : ''}, got ${args.positional.length} (see --help)`);
  }
  return args.positional;
}

let printed = false;
const print = (text: string) => {
  printed = true;
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
};
const log = (text: string) => process.stderr.write(`${text}\n`);

async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    print(MAIN_USAGE);
    return command ? 0 : 2;
  }
  if (command === '--version' || command === '-V') {
    print(packageVersion());
    return 0;
  }
  if (!(command in USAGE)) throw new UsageError(`unknown command "${command}" (optimize, convert, verify, inspect, bench)`);
  if (rest.includes('--help') || rest.includes('-h')) {
    print(USAGE[command]);
    return 0;
  }

  if (command === 'inspect') {
    const { argv: inspectArgs, inputShapes } = takeInputShapes(rest);
    const args = parseArgs(inspectArgs, { values: ['--passes', '--backend', '--policy', '--policy-batch', '--decisions'], switches: ['--json'] });
    const [model] = expectPositional(args, 1, command);
    const { backend } = verifyOptions(args); // the backend decides what the policy does
    if (inputShapes && !isGraphModelFile(model)) throw new UsageError('inspect takes --input-shape for graph models only (a layers model\'s shapes come from its config)');
    const report = await inspect(model, { passes: passList(args), backend, ...policyOptions(args), inputShapes });
    if (args.switches.has('--json')) print(JSON.stringify({ command, model, ...report }));
    else print(formatReport(report, `inspect ${model}`) + (report.policy ? `\n${formatPolicy(report.policy)}` : ''));
    return 0;
  }

  if (command === 'convert') {
    const args = parseArgs(rest, { values: ['--out'], switches: ['--json', '--force'] });
    const [model] = expectPositional(args, 1, command);
    const out = args.values.get('--out');
    if (!out) throw new UsageError('convert needs --out <dir>');
    const writeOptions = { force: args.switches.has('--force'), inputs: [model] };
    checkOutputTarget(out, writeOptions);
    if (isGraphModelFile(model)) throw new UsageError(`${model} is a graph model; convert reads Keras LayersModel exports`);
    const result = await convertKeras3(model);
    const written = result.save(out, writeOptions);
    const { report } = result;
    if (args.switches.has('--json')) print(JSON.stringify({ command, model, out: written, ...report }));
    else {
      const io = (list: [string, (number | null)[]][]) => list.map(([name, shape]) => `${name} [${shape.map((d) => d ?? '?').join(', ')}]`).join(', ');
      print([`convert ${model} -> ${written}`, `inputs: ${io(report.inputs)}; outputs: ${io(report.outputs)} (loaded with stock tfjs)`, ...report.notes.map((n) => `note: ${n}`)].join('\n'));
    }
    return 0;
  }

  if (command === 'bench') {
    const taken = takeInputs(rest);
    if (taken.inputShapes) throw new UsageError('--input-shape is not supported by bench (give --inputs)');
    const args = parseArgs(taken.argv, { values: ['--backend', '--rows', '--batch', '--passes', '--policy', '--policy-batch', '--decisions'], switches: ['--json'] });
    const [model] = expectPositional(args, 1, command);
    const backend = verifyOptions(args).backend;
    if (backend === 'all') throw new UsageError('bench runs on one backend at a time; --backend all is not supported');
    const report = await benchModel(model, {
      backend, inputs: taken.inputs, batch: verifyOptions(args).batch, passes: passList(args), ...policyOptions(args), policyLog: log,
    });
    print(args.switches.has('--json') ? JSON.stringify({ command, model, ...report }) : formatModelBench(report, model));
    return 0;
  }

  if (command === 'verify') {
    const taken = takeInputs(rest);
    const args = parseArgs(taken.argv, { values: VERIFY_VALUES, switches: ['--json'] });
    const [a, b] = expectPositional(args, 2, command);
    const verification = await verify(a, b, verifyOptions(args, taken));
    print(args.switches.has('--json') ? JSON.stringify({ command, models: [a, b], verification }) : `${formatVerification(verification)}\n${formatLayerAccuracy(verification)}`);
    return verification.passed ? 0 : 1;
  }

  const taken = takeInputs(rest);
  const args = parseArgs(taken.argv, { values: ['--out', '--passes', '--policy', '--policy-batch', '--decisions', ...VERIFY_VALUES], switches: ['--json', '--no-verify', '--force'] });
  const [model] = expectPositional(args, 1, command);
  const out = args.values.get('--out');
  if (!out) throw new UsageError('optimize needs --out <dir>');
  const options = {
    ...verifyOptions(args, taken), verify: !args.switches.has('--no-verify'), passes: passList(args), ...policyOptions(args),
    policyLog: (line: string) => progress(false).onStage(line),
  };
  // Refuse a bad --out before minutes of verification, and again at write time.
  const writeOptions = { force: args.switches.has('--force'), inputs: [model] };
  checkOutputTarget(out, writeOptions);
  const recording = options.decisions !== undefined && !fs.existsSync(options.decisions);
  const result = await optimize(model, options);
  // Verification is one long chain of promises that never yields to the event loop, where
  // signals are delivered: yield once, so a Ctrl-C during it stops us before anything is written.
  await new Promise((resolve) => setImmediate(resolve));
  const passed = result.report.verification?.passed ?? true;
  const written = passed ? result.save(out, writeOptions) : null;
  if (args.switches.has('--json')) {
    print(JSON.stringify({ command, model, out: written, ...result.report }));
  } else {
    print(formatReport(result.report, `optimize ${model} -> ${written ?? '(nothing written)'}`));
    if (result.report.verification) print(formatLayerAccuracy(result.report.verification));
    if (result.report.policy) print(formatPolicy(result.report.policy));
  }
  if (!passed) log('tfjs-rewrite: verification failed; nothing was written');
  else if (recording) log(`tfjs-rewrite: decisions recorded to ${options.decisions}; commit it, and --decisions ${options.decisions} replays them`);
  return passed ? 0 : 1;
}

silenceTfjsNodeBanner();
// Anything a dependency logs must not break the single JSON object on stdout.
console.log = (...parts: unknown[]) => process.stderr.write(`${parts.map(String).join(' ')}\n`);

/** Every failure, expected or a bug, ends as one stderr line and exit 2: never a stack, never another code. */
function fail(error: unknown): void {
  const known = error instanceof InputError;
  // A second tfjs copy may be the cause: said in the same line, never as a second one.
  const held = heldWarnings.splice(0).map((line) => ` (${line.replace(/^tfjs-rewrite: /, '')})`).join('');
  const message = `${known ? '' : 'internal error: '}${oneLine(error)}${held}`;
  log(`tfjs-rewrite: ${message}`);
  // --json promises one JSON object on stdout, failures included.
  if (!printed && process.argv.includes('--json')) print(JSON.stringify({ error: message, exitCode: 2 }));
  if (!known && process.env.TFJS_REWRITE_DEBUG) log(String((error as Error).stack));
  process.exitCode = 2;
}
// Errors thrown outside the run promise (timers or callbacks inside dependencies).
process.on('uncaughtException', (error) => {
  fail(error);
  removePendingWrites();
  process.exit(2);
});
process.on('unhandledRejection', (error) => {
  fail(error);
  removePendingWrites();
  process.exit(2);
});
// Writes are synchronous, so a signal lands before the output exists or after it is complete.
onInterrupt(removePendingWrites);
// A browser opened for --backend webgl|webgpu must not outlive us.
onInterrupt(closeAllBrowsers);

run(process.argv.slice(2)).then((code) => {
  progressLines?.stop();
  for (const line of heldWarnings.splice(0)) log(line);
  process.exitCode = code;
}, fail);
