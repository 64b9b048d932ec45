/**
 * The `recur` command line. `main(argv)` parses the arguments (without the node and script
 * paths), runs one command and resolves to its exit code; it never calls process.exit itself
 * (except on a second Ctrl-C during `recur demo`). Errors the user can act on are printed as one
 * line on stderr, never as a stack trace.
 */
import { VERSION } from '../version.ts';
import { LIMIT_KEYS, setProcessLimits } from '../io/limits.ts';
import { CliError, flagSpec, formatError, OptionReader, parseCommand, UsageError } from './args.ts';
import { COMMANDS, commandHelp, INFO_FLAGS, MAIN_HELP, MODULE_COMMANDS, type Command, type ModuleCommand, type OwnCommand } from './help.ts';
import { selectBackend } from './backends.ts';

function isCommand(s: string): s is Command {
  return (COMMANDS as readonly string[]).includes(s);
}

function isModuleCommand(s: string): s is ModuleCommand {
  return (MODULE_COMMANDS as readonly string[]).includes(s);
}

/**
 * Commands implemented in their own modules, loaded only when used (each literal `import()` a
 * bundler and a reader can follow): how each runs (it handles --help) and its help text.
 */
const MODULE_COMMAND_TABLE: Record<ModuleCommand, () => Promise<{ run: (args: string[]) => Promise<number>; help: string }>> = {
  train: async () => { const m = await import('./train-commands.ts'); return { run: m.trainCommand, help: m.TRAIN_HELP }; },
  eval: async () => { const m = await import('./train-commands.ts'); return { run: m.evalCommand, help: m.EVAL_HELP }; },
  predict: async () => { const m = await import('./train-commands.ts'); return { run: m.predictCommand, help: m.PREDICT_HELP }; },
  g2p: async () => { const m = await import('./train-commands.ts'); return { run: m.g2pCommand, help: m.G2P_HELP }; },
  plot: async () => { const m = await import('./plot.ts'); return { run: m.plotCommand, help: m.PLOT_HELP }; },
  diagnose: async () => { const m = await import('./diagnose.ts'); return { run: m.diagnoseCommand, help: m.DIAGNOSE_HELP }; },
  export: async () => { const m = await import('./onnx.ts'); return { run: m.exportCommand, help: m.EXPORT_USAGE }; },
  onnx: async () => { const m = await import('./onnx.ts'); return { run: m.onnxCommand, help: m.ONNX_USAGE }; },
  import: async () => { const m = await import('./import.ts'); return { run: m.importCommand, help: m.IMPORT_USAGE }; },
  playground: async () => { const m = await import('./playground.ts'); return { run: m.playgroundCommand, help: m.PLAYGROUND_HELP }; },
  serve: async () => { const m = await import('./serve.ts'); return { run: m.serveCommand, help: m.SERVE_HELP }; },
  score: async () => { const m = await import('./score.ts'); return { run: m.scoreCommand, help: m.SCORE_HELP }; },
  worker: async () => { const m = await import('./score.ts'); return { run: (a) => m.workerCommand(a), help: m.WORKER_HELP }; },
};

async function runModuleCommand(cmd: ModuleCommand, args: string[]): Promise<number> {
  return (await MODULE_COMMAND_TABLE[cmd]()).run(args);
}

async function helpText(cmd: Command): Promise<string> {
  return isModuleCommand(cmd) ? (await MODULE_COMMAND_TABLE[cmd]()).help : commandHelp(cmd as OwnCommand);
}

/** Commands that crunch numbers, and so run on the fastest backend that loads. */
const COMPUTE_COMMANDS = new Set(['train', 'eval', 'predict', 'g2p', 'diagnose', 'demo', 'sample', 'export', 'onnx', 'import', 'serve', 'score', 'worker']);

function wantsHelp(args: string[]): boolean {
  const end = args.indexOf('--');
  const head = end >= 0 ? args.slice(0, end) : args;
  return head.includes('--help') || head.includes('-h');
}

/**
 * Take every `--limit KEY=N` (or `--limit=KEY=N`) out of the arguments, before a `--`, and raise
 * those resource limits for this run (io/limits.ts); any command that reads a file obeys them.
 */
function applyLimitOptions(argv: string[]): string[] {
  const rest: string[] = [];
  const overrides: Record<string, number> = {};
  const end = argv.indexOf('--');
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (end >= 0 && i >= end) {
      rest.push(a);
      continue;
    }
    let spec: string | undefined;
    if (a === '--limit') {
      spec = argv[++i];
      if (spec === undefined) throw new UsageError('--limit needs KEY=N');
    } else if (a.startsWith('--limit=')) spec = a.slice('--limit='.length);
    else {
      rest.push(a);
      continue;
    }
    const m = /^(\w+)=(\d+)$/.exec(spec);
    if (!m) throw new UsageError(`--limit must be KEY=N with N a positive integer, got '${spec}' (keys: ${LIMIT_KEYS.join(', ')})`);
    if (!(LIMIT_KEYS as string[]).includes(m[1])) throw new UsageError(`--limit: unknown limit '${m[1]}' (keys: ${LIMIT_KEYS.join(', ')})`);
    overrides[m[1]] = Number(m[2]);
  }
  try {
    setProcessLimits(overrides);
  } catch (e) {
    throw new UsageError(`--limit: ${(e as Error).message.replace(/^limits: /, '')}`);
  }
  return rest;
}

async function dispatch(args: string[]): Promise<number> {
  const argv = applyLimitOptions(args);
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h') {
    process.stdout.write(MAIN_HELP);
    return 0;
  }
  if (first === '--version' || first === '-v') {
    process.stdout.write(`recur ${VERSION}\n`);
    return 0;
  }
  if (first.startsWith('-')) throw new UsageError(`unknown option '${first}'`);
  if (!isCommand(first)) throw new UsageError(`unknown command '${first}' (commands: ${COMMANDS.join(', ')})`);
  if (COMPUTE_COMMANDS.has(first) && !wantsHelp(rest)) await selectBackend();
  if (isModuleCommand(first)) return runModuleCommand(first, rest);
  if (wantsHelp(rest)) {
    process.stdout.write(commandHelp(first));
    return 0;
  }
  switch (first) {
    case 'help': {
      const { positionals } = parseCommand('recur help', rest, {}, 1);
      const topic = positionals[0];
      if (topic === undefined) process.stdout.write(MAIN_HELP);
      else if (isCommand(topic)) process.stdout.write(await helpText(topic));
      else throw new UsageError(`unknown command '${topic}' (commands: ${COMMANDS.join(', ')})`, "Run 'recur --help' for usage.");
      return 0;
    }
    case 'info': {
      const { values, positionals } = parseCommand('recur info', rest, flagSpec(INFO_FLAGS), 1);
      if (positionals.length === 0) throw new UsageError('missing the MODEL file argument');
      const { formatModelInfo, readModelInfo } = await import('./info.ts');
      const info = readModelInfo(positionals[0]);
      const r = new OptionReader('recur info', values);
      process.stdout.write(r.flag('json') ? `${JSON.stringify(info, null, 2)}\n` : formatModelInfo(info));
      return 0;
    }
    case 'demo':
      return (await import('./demo.ts')).runDemo(rest);
    case 'sample':
      return (await import('./sample.ts')).runSample(rest);
  }
}

/** Run the CLI; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  // Output piped into a program that stops reading (recur info FILE | head) is not an error.
  process.stdout.once('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  // The command an error is reported for: the first argument when it names one.
  const cmd = argv[0] !== undefined && isCommand(argv[0]) ? argv[0] : null;
  try {
    return await dispatch(argv);
  } catch (e) {
    const { text, exitCode } = formatError(cmd, e);
    process.stderr.write(text);
    if (process.env.RECUR_DEBUG && !(e instanceof CliError)) process.stderr.write(`${(e as Error)?.stack ?? ''}\n`);
    return exitCode;
  }
}
