/**
 * Command-line plumbing shared by the commands: the error types that decide the exit code, strict
 * option parsing on top of node:util parseArgs, and number checks for option values.
 *
 * Exit codes: 0 success, 1 the command failed (a missing or malformed file, ...), 2 the command
 * line itself is wrong (unknown command or option, a bad value), 130 interrupted.
 */
import { parseArgs } from 'node:util';

/** A failure the user can act on: printed as one line, exit code 1 (or the given one). */
export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = 'CliError';
  }
}

/** Something wrong with the command line: exit code 2, with a pointer to --help (if any). */
export class UsageError extends CliError {
  constructor(message: string, readonly helpHint = '') {
    super(message, 2);
    this.name = 'UsageError';
  }
}

/** Where a command writes its text: the process's stdout/stderr, or a test's capture. */
export interface CliIO {
  out(text: string): void;
  err(text: string): void;
}

export const stdio: CliIO = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
};

/** Print `error: <message>` and return the exit code: 2 for a UsageError, else 1. */
export function reportError(io: CliIO, e: unknown): number {
  io.err(`error: ${(e as Error).message}\n`);
  return e instanceof UsageError ? 2 : 1;
}

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: false }>;

export interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/**
 * Strict parse of one command's arguments. Unknown options, a missing option value and surplus
 * positionals become a UsageError naming the culprit. `who` is e.g. "recur info".
 */
export function parseCommand(who: string, args: string[], options: OptionSpec, maxPositionals: number): Parsed {
  const hint = `Run '${who} --help' for usage.`;
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: true }) as typeof parsed;
  } catch (e) {
    const err = e as Error & { code?: string };
    const quoted = /'([^']+)'/.exec(err.message)?.[1];
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      throw new UsageError(`${who}: unknown option '${quoted ?? err.message}'`, hint);
    }
    if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      // e.g. "Option '--time <value>' argument missing" or "Option '--json' does not take an argument"
      throw new UsageError(`${who}: ${lowerFirst(err.message.split('\n')[0]).replace(/\.$/, '')}`, hint);
    }
    throw new UsageError(`${who}: ${lowerFirst(err.message.split('\n')[0])}`, hint);
  }
  if (parsed.positionals.length > maxPositionals) {
    const extra = parsed.positionals[maxPositionals];
    throw new UsageError(`${who}: unexpected argument '${extra}'`, hint);
  }
  return parsed;
}

function lowerFirst(s: string): string {
  return s.length ? s[0].toLowerCase() + s.slice(1) : s;
}

/** Option value readers: undefined when absent, a UsageError when malformed. */
export class OptionReader {
  constructor(private readonly who: string, private readonly values: Record<string, string | boolean | undefined>) {}

  private fail(name: string, what: string, raw: string): never {
    throw new UsageError(`${this.who}: --${name} must be ${what}, got '${raw}'`, `Run '${this.who} --help' for usage.`);
  }

  string(name: string): string | undefined {
    const v = this.values[name];
    return typeof v === 'string' ? v : undefined;
  }

  flag(name: string): boolean {
    return this.values[name] === true;
  }

  /** A finite number, optionally > 0 or ≥ 0. */
  number(name: string, check: 'positive' | 'nonnegative' | 'any' = 'any'): number | undefined {
    const raw = this.string(name);
    if (raw === undefined) return undefined;
    const v = raw.trim() === '' ? NaN : Number(raw);
    if (!Number.isFinite(v)) this.fail(name, 'a number', raw);
    if (check === 'positive' && !(v > 0)) this.fail(name, 'a number > 0', raw);
    if (check === 'nonnegative' && !(v >= 0)) this.fail(name, 'a number ≥ 0', raw);
    return v;
  }

  /** An integer ≥ min. */
  int(name: string, min: number): number | undefined {
    const raw = this.string(name);
    if (raw === undefined) return undefined;
    const v = /^[+-]?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(v) || v < min) this.fail(name, min === 1 ? 'a positive integer' : `an integer ≥ ${min}`, raw);
    return v;
  }
}
