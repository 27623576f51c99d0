/** A small, strict argv parser: unknown flags and missing values are usage errors. */
import { InputError } from '../errors';

export interface FlagSpec {
  /** Flags that take a value, e.g. "--out". */
  values: string[];
  /** Boolean flags, e.g. "--json". */
  switches: string[];
}

export interface ParsedArgs {
  positional: string[];
  values: Map<string, string>;
  switches: Set<string>;
}

export class UsageError extends InputError {
  override name = 'UsageError';
}

export function parseArgs(argv: string[], spec: FlagSpec): ParsedArgs {
  const parsed: ParsedArgs = { positional: [], values: new Map(), switches: new Set() };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--') || arg === '--') {
      parsed.positional.push(arg);
      continue;
    }
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (spec.switches.includes(flag)) {
      if (inline !== undefined) throw new UsageError(`${flag} takes no value`);
      parsed.switches.add(flag);
    } else if (spec.values.includes(flag)) {
      const value = inline ?? argv[++i];
      if (value === undefined || (inline === undefined && value.startsWith('--'))) throw new UsageError(`${flag} needs a value`);
      parsed.values.set(flag, value);
    } else {
      throw new UsageError(`unknown option ${flag}`);
    }
  }
  return parsed;
}

export function numberFlag(args: ParsedArgs, flag: string, check: (n: number) => boolean, what: string): number | undefined {
  const text = args.values.get(flag);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || !check(value)) throw new UsageError(`${flag} must be ${what}, got "${text}"`);
  return value;
}
