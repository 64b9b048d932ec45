/**
 * Command-line plumbing shared by the commands: the error types that decide the exit code, strict
 * option parsing on top of node:util parseArgs, and number checks for option values.
 *
 * Exit codes: 0 success, 1 the command failed (a missing or malformed file, ...), 2 the command
 * line itself is wrong (unknown command or option, a bad value), 130 interrupted.
 */
import { parseArgs } from 'node:util';

/**
 * A failure the user can act on: printed as `recur <cmd>: <message>`, exit code 1 (or the given
 * one). The message never carries the `recur <cmd>:` prefix itself: `formatError` adds it, once.
 */
export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = 'CliError';
  }
}

/**
 * Something wrong with the command line: exit code 2, followed by one hint line — by default
 * `Run 'recur <cmd> --help' for usage.`, or `helpHint` where another hint helps more.
 */
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

/** Collapse whitespace to one line (control characters too, so a message cannot forge lines). */
function singleLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').replace(/[\u0000-\u001f\u007f]/g, ' ');
}

/**
 * The one error style of every command: `recur <cmd>: <message>` on one line, plus one hint line
 * for a usage error; exit code 2 for a usage error, the error's own for a CliError, else 1.
 * `cmd` is the command name ('train', 'onnx', ...) or null before a command is known.
 * A message that already starts with the prefix (an old caller) is not prefixed twice.
 */
export function formatError(cmd: string | null, e: unknown): { text: string; exitCode: number } {
  const who = cmd === null ? 'recur' : `recur ${cmd}`;
  const err = e as Error;
  let msg = singleLine(err instanceof Error ? err.message : String(e));
  if (msg.startsWith(`${who}: `)) msg = msg.slice(who.length + 2);
  if (e instanceof UsageError) {
    return { text: `${who}: ${msg}\n${e.helpHint || `Run '${who} --help' for usage.`}\n`, exitCode: e.exitCode };
  }
  if (e instanceof CliError) return { text: `${who}: ${msg}\n`, exitCode: e.exitCode };
  // An error no command anticipated: its class name helps a bug report.
  const name = err?.name && err.name !== 'Error' ? `${err.name}: ` : '';
  return { text: `${who}: ${name}${msg}\n`, exitCode: 1 };
}

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/** A number as a command line writes one: -5, -0.5, -.5, -1e-3. */
const NUMBER_ARG = /^-(\d|\.\d)[\d.eE+-]*$/;

/**
 * parseArgs refuses a string option's value that starts with '-' ("argument is ambiguous"), so
 * `--hidden -5` would never reach the range check that explains what is wrong. A value that looks
 * like a number is joined to its option (`--hidden=-5`, `-o=-5` becomes `--output=-5`); anything
 * else starting with '-' is left for parseArgs to treat as an option.
 */
export function joinNumericValues(args: string[], options: OptionSpec): string[] {
  const byShort = new Map<string, string>();
  for (const [name, o] of Object.entries(options)) if (o.short) byShort.set(o.short, name);
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') {
      out.push(...args.slice(i));
      break;
    }
    const name = a.startsWith('--') ? a.slice(2) : /^-[^-]$/.test(a) ? byShort.get(a[1]) : undefined;
    const next = args[i + 1];
    if (name !== undefined && options[name]?.type === 'string' && next !== undefined && NUMBER_ARG.test(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else {
      out.push(a);
    }
  }
  return out;
}

/**
 * One flag of a command, declared once: how it parses, the placeholder of its value and its help
 * (lines after the first are indented under it). From a command's flag record come the parseArgs
 * spec (`flagSpec`), the "Options:" lines of its help (`flagLines`) and a usage line
 * (`flagSynopsis`).
 */
export interface Flag {
  type: 'string' | 'boolean';
  short?: string;
  /** May be given several times (the values come as a list). */
  multiple?: boolean;
  /** The value's placeholder in the help: `--epochs N`. */
  value?: string;
  help: string;
  /** Taken off the command line before parsing (e.g. --set, repeatable): in the help only. */
  helpOnly?: boolean;
  /** The help writes the flag by its short form alone (`-o FILE`), as the command's usage does. */
  shortForm?: boolean;
  /** In a usage line without brackets (`--format onnx -o FILE [--force]`). */
  required?: boolean;
}

/** -h, --help: every command's (a help that writes its options in lower case gives its own text). */
export const HELP_FLAG: Flag = { type: 'boolean', short: 'h', help: 'Show this help' };

/** parseArgs's option spec from a flag record. */
export function flagSpec(flags: Record<string, Flag>): OptionSpec {
  const spec: OptionSpec = {};
  for (const [name, f] of Object.entries(flags)) {
    if (f.helpOnly) continue;
    spec[name] = { type: f.type, ...(f.short ? { short: f.short } : {}), ...(f.multiple ? { multiple: true } : {}) };
  }
  return spec;
}

/** A flag and its value's placeholder as a usage line writes it: `--epochs N`, `-o FILE` (shortForm). */
function flagWithValue(name: string, f: Flag): string {
  return `${f.shortForm && f.short ? `-${f.short}` : `--${name}`}${f.value ? ` ${f.value}` : ''}`;
}

/** How the "Options:" lines write a flag: `--epochs N`, `-o FILE` (shortForm) or `-h, --help`. */
export function flagUsage(name: string, f: Flag): string {
  return `${f.short && !f.shortForm ? `-${f.short}, ` : ''}${flagWithValue(name, f)}`;
}

/**
 * The "Options:" lines of a help text: each flag with its value's placeholder, indented by
 * `indent` (default 2), its help from `column` (default 26). A flag written wider than its column
 * is followed by three spaces, so that its help still stands apart from it.
 */
export function flagLines(flags: Record<string, Flag>, column = 26, indent = 2): string {
  const lines: string[] = [];
  for (const [name, f] of Object.entries(flags)) {
    const usage = flagUsage(name, f);
    const width = column - indent - 1;
    const [first, ...rest] = f.help.split('\n');
    lines.push(`${' '.repeat(indent)}${usage.length > width ? `${usage}  ` : usage.padEnd(width)} ${first}`, ...rest.map((l) => `${' '.repeat(column)}${l}`));
  }
  return `${lines.join('\n')}\n`;
}

/** A usage line of flags: `--format onnx -o FILE [--force]` (brackets round those not required). */
export function flagSynopsis(flags: Record<string, Flag>): string {
  return Object.entries(flags)
    .map(([name, f]) => (f.required ? flagWithValue(name, f) : `[${flagWithValue(name, f)}]`))
    .join(' ');
}

/**
 * parseCommand for a command with `--help`: that flag prints `help` (through `out`, default
 * standard output) and gives null, and the command then exits 0.
 */
export function parseOrHelp(who: string, args: string[], options: OptionSpec, maxPositionals: number, help: string, out: (text: string) => void = (t) => void process.stdout.write(t)): Parsed | null {
  const parsed = parseCommand(who, args, options, maxPositionals);
  if (!parsed.values.help) return parsed;
  out(help);
  return null;
}

/**
 * Strict parse of one command's arguments. Unknown options, a missing option value and surplus
 * positionals become a UsageError naming the culprit. `who` is e.g. "recur info" (kept for the
 * callers' sake; messages no longer repeat it, formatError prefixes the command).
 */
export function parseCommand(_who: string, args: string[], options: OptionSpec, maxPositionals: number): Parsed {
  let parsed: Parsed;
  try {
    parsed = parseArgs({ args: joinNumericValues(args, options), options, strict: true, allowPositionals: true }) as Parsed;
  } catch (e) {
    const err = e as Error & { code?: string };
    const quoted = /'([^']+)'/.exec(err.message)?.[1];
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      throw new UsageError(`unknown option '${quoted ?? err.message}'`);
    }
    if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      // e.g. "Option '--time <value>' argument missing" or "Option '--json' does not take an argument"
      const first = err.message.split('\n')[0];
      const m = /^Option '(-\w, )?(--[\w-]+)(?: <value>)?' argument (missing|is ambiguous)/.exec(first);
      if (m?.[3] === 'missing') throw new UsageError(`${m[2]} needs a value`);
      if (m) throw new UsageError(`${m[2]} needs a value; one that starts with '-' is written ${m[2]}=VALUE`);
      throw new UsageError(lowerFirst(first).replace(/\.$/, ''));
    }
    throw new UsageError(lowerFirst(err.message.split('\n')[0]));
  }
  if (parsed.positionals.length > maxPositionals) {
    const extra = parsed.positionals[maxPositionals];
    throw new UsageError(`unexpected argument '${extra}'`);
  }
  return parsed;
}

function lowerFirst(s: string): string {
  return s.length ? s[0].toLowerCase() + s.slice(1) : s;
}

/** Option value readers: undefined when absent, a UsageError when malformed. */
export class OptionReader {
  constructor(_who: string, private readonly values: Parsed['values']) {}

  private fail(name: string, what: string, raw: string): never {
    throw new UsageError(`--${name} must be ${what}, got '${raw}'`);
  }

  string(name: string): string | undefined {
    const v = this.values[name];
    return typeof v === 'string' ? v : undefined;
  }

  /** Every value of an option given several times (`multiple: true` in its spec). */
  strings(name: string): string[] {
    const v = this.values[name];
    return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
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
