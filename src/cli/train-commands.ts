/**
 * The task commands of the `recur` CLI: train, eval and predict a task model by name.
 *
 *   recur train TASK [--epochs N] [--max-steps N] [--time S] [--lr X] [--run-dir DIR] [--resume DIR]
 *                    [--seed N] [--eval-every N] [--checkpoint-every N] [--encoding E] [--set key=value ...]
 *   recur eval TASK --model FILE [--split test|val] [--encoding E] [--set key=value ...] [--json]
 *   recur predict TASK --model FILE [--encoding E] [INPUT ...]   (no inputs: one per line from standard input)
 *
 * Tasks come from the registry (src/models/registry.ts): `getTaskSpec(name)` gives the task's
 * defaults and how to build it with its data, load it from a model file, and run predictions. The
 * registry can also be passed in (tests, embedding the CLI).
 *
 * `--set key=value` sets one of the task's options (the keys of its `defaults`) or a trainer
 * option (lr, clipNorm, schedule, ...). Values are JSON when they parse as JSON (numbers, true,
 * false, null, arrays, objects, "strings"), otherwise plain strings. A key that is both (say `lr`)
 * goes to both.
 *
 * Every training run lives in a run directory: model.safetensors, best.safetensors,
 * trainer-state.safetensors (checkpoint), metrics.jsonl (see `recur plot`). The task's options are
 * stored in the checkpoint, so `recur train TASK --resume DIR` rebuilds the same task and
 * continues exactly where the run stopped; the budget flags (--epochs, --max-steps, --time) may
 * be changed on resume. `recur eval` rebuilds the held-out data with the same saved options (from
 * the run directory the model file lies in), with its own --set on top.
 *
 * Errors: a wrong command line throws UsageError (exit code 2), a failure the user can act on
 * CliError (exit code 1); `main` prints them. Success resolves to 0, a run stopped by Ctrl-C to 130.
 */
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { BatchSource, Task } from '../train/task.ts';
import { measureStepMemory, type StepMemory } from '../train/memory.ts';
import { Trainer, type FitResult, type TrainerOptions } from '../train/trainer.ts';
import { DataParallelTask } from '../train/data-parallel.ts';
import { workerShards, type ReplicaSpec } from '../train/data-parallel-node.ts';
import { fileStore, hasCheckpoint, readTrainingState, BEST_FILE, METRICS_FILE, MODEL_FILE, STATE_FILE } from '../train/checkpoint.ts';
import type { ProgressSink } from '../train/callbacks.ts';
import { noGrad } from '../autograd/tape.ts';
import { withEval } from '../nn/module.ts';
import type { BuiltTask as RegistryBuiltTask, TaskSpec as RegistryTaskSpec } from '../models/task-options.ts';
import type { ModelFile } from '../io/model.ts';
import { loadModelFile } from '../io/files.ts';
import { decodeText, type TextEncoding } from '../data/files.ts';
import { CliError, flagLines, flagSpec, HELP_FLAG, OptionReader, parseOrHelp, UsageError, type Flag, type Parsed } from './args.ts';
import { fileError, formatBytes, formatDuration, formatInt, oneLine } from './format.ts';
import { Progress } from './progress.ts';
import { chooseTrainingBackend, toHost } from './backends.ts';
import { getBackend } from '../backend/registry.ts';

// ---- the registry API ------------------------------------------------------------------------------

/**
 * What the commands need of a task spec: the registry's TaskSpec (models/task-options.ts) less its
 * topology, with trainOptions optional; tests pass a smaller one of their own.
 */
export type BuiltTask = Omit<RegistryBuiltTask, 'trainOptions'> & { trainOptions?: Record<string, unknown> };
export type TaskSpec = Pick<RegistryTaskSpec, 'name' | 'description' | 'defaults' | 'optionHelp' | 'optionForms' | 'load' | 'predict'> & {
  build(options: Record<string, unknown>): BuiltTask;
};

export interface TaskRegistry {
  getTaskSpec(name: string): TaskSpec | undefined;
  listTasks(): readonly (string | { name: string })[];
}

export interface CommandDeps {
  /** The task registry (default: the built-in one, models/registry.ts). */
  registry?: TaskRegistry;
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  /** Standard input as text, for `predict` without inputs (default: read process.stdin when it is not a terminal). */
  readStdin?: () => Promise<string | null>;
  /** The progress display for `train` (default: the terminal bar; false for none). */
  progress?: ProgressSink | false;
  /** Clock for default run-directory names. */
  now?: () => Date;
}

async function loadRegistry(deps: CommandDeps): Promise<TaskRegistry> {
  if (deps.registry) return deps.registry;
  try {
    const mod: Partial<TaskRegistry> = await import('../models/registry.ts');
    if (typeof mod.getTaskSpec !== 'function' || typeof mod.listTasks !== 'function') throw new Error('it does not export getTaskSpec and listTasks');
    return mod as TaskRegistry;
  } catch (e) {
    throw new CliError(`the task registry is not available (${oneLine((e as Error).message, 200)})`);
  }
}

function taskNames(reg: TaskRegistry): string[] {
  return reg.listTasks().map((t) => (typeof t === 'string' ? t : t.name));
}

/** The spec of the task the command line names (its first argument). */
function findSpec(reg: TaskRegistry, name: string | undefined, who: string): TaskSpec {
  if (name === undefined) throw new UsageError(`missing the TASK argument (tasks: ${taskNames(reg).join(', ')})`);
  let spec: TaskSpec | undefined;
  try {
    spec = reg.getTaskSpec(name);
  } catch {
    spec = undefined;
  }
  if (!spec) throw new UsageError(`unknown task '${name}' (tasks: ${taskNames(reg).join(', ')})`);
  return spec;
}

// ---- --set key=value ------------------------------------------------------------------------------------

/** Pull every `--set key=value` (or `--set=key=value`) out of argv. */
export function extractSets(who: string, argv: string[]): { rest: string[]; sets: [string, string][] } {
  const rest: string[] = [];
  const sets: [string, string][] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    let kv: string | undefined;
    if (a === '--set') {
      kv = argv[++i];
      if (kv === undefined) throw new UsageError(`--set needs key=value`);
    } else if (a.startsWith('--set=')) {
      kv = a.slice('--set='.length);
    } else {
      rest.push(a);
      continue;
    }
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`--set expects key=value, got '${kv}'`);
    sets.push([kv.slice(0, eq), kv.slice(eq + 1)]);
  }
  return { rest, sets };
}

/** A --set value: JSON when it parses, else the plain string. */
export function parseSetValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** Trainer options that may be given with --set (the rest are flags or fixed by the CLI). */
const TRAINER_SET_KEYS = [
  'optimizer', 'lr', 'schedule', 'clipNorm', 'clipValue', 'epochs', 'maxSteps', 'timeLimitSeconds', 'evalEvery', 'logEvery',
  'earlyStopping', 'seed', 'gradNormLogging',
] as const;

interface SplitOptions {
  taskOptions: Record<string, unknown>;
  trainerOptions: Record<string, unknown>;
}

/** Route --set values to the task options and/or the trainer options, checking keys and types. */
function routeSets(who: string, sets: [string, string][], defaults: Record<string, unknown>, allowTask: boolean): SplitOptions {
  const taskOptions: Record<string, unknown> = {};
  const trainerOptions: Record<string, unknown> = {};
  for (const [key, raw] of sets) {
    const value = parseSetValue(raw);
    const isTask = Object.hasOwn(defaults, key);
    const isTrainer = (TRAINER_SET_KEYS as readonly string[]).includes(key);
    if (!isTask && !isTrainer) {
      throw new UsageError(`--set: unknown key '${key}' (task options: ${Object.keys(defaults).join(', ') || 'none'}; trainer options: ${TRAINER_SET_KEYS.join(', ')})`);
    }
    // the value itself is checked by the task's option schema when it is built (its message names
    // the option and the form it takes)
    if (isTask) {
      if (!allowTask) throw new UsageError(`--set ${key}: the task's options cannot change when resuming (they must match the checkpoint)`);
      taskOptions[key] = value;
    }
    if (isTrainer) trainerOptions[key] = value;
  }
  return { taskOptions, trainerOptions };
}

// ---- recur train ---------------------------------------------------------------------------------------

const TRAIN_FLAGS: Record<string, Flag> = {
  epochs: { type: 'string', value: 'N', help: "Passes over the training data (default: the task's, else 1)" },
  'max-steps': { type: 'string', value: 'N', help: 'Stop after N optimizer steps in total' },
  time: { type: 'string', value: 'SECONDS', help: 'Stop after this much training time (counted per session)' },
  lr: { type: 'string', value: 'RATE', help: 'Learning rate' },
  seed: { type: 'string', value: 'N', help: 'Seed of initialisation, dropout and data order' },
  'eval-every': { type: 'string', value: 'N', help: 'Evaluate every N steps (default: after each epoch)' },
  'checkpoint-every': { type: 'string', value: 'N', help: 'Write a checkpoint every N steps (default: after each epoch)' },
  'run-dir': { type: 'string', value: 'DIR', help: 'Where the run goes (default runs/TASK-DATE-TIME); a folder that is not\nempty is refused unless --overwrite is given' },
  overwrite: { type: 'boolean', help: 'Start a new run in a --run-dir that holds files: the files a run writes\n(model, best, checkpoint, metrics log, plot.svg) are removed first' },
  encoding: { type: 'string', value: 'utf-8|latin1', help: "The text encoding of the task's data file (--set data=FILE); UTF-8 is\nchecked strictly (a byte that is not UTF-8 is an error)" },
  resume: { type: 'string', value: 'DIR', help: 'Continue the run in DIR exactly where it stopped (with its options;\n--epochs, --max-steps and --time may change)' },
  set: { type: 'string', value: 'key=value', help: `A task option (see --list) or a trainer option (optimizer, lr, schedule,\nclipNorm, clipValue, epochs, maxSteps, timeLimitSeconds, evalEvery,\nlogEvery, earlyStopping, seed, gradNormLogging); values are JSON or text,\ne.g. --set hiddenSize=128 --set 'earlyStopping={"patience":3}'`, helpOnly: true },
  shards: { type: 'string', value: 'M', help: 'Cut each batch into M shards whose gradients are summed in a fixed order\n(data parallelism; default 4 with --workers). The results depend on M only:\nthe same for any --workers, and in one thread without it' },
  workers: { type: 'string', value: 'N', help: 'Run the shards in N worker threads, one replica of the model each (one\nwasm thread per worker); for classify-* and charlm' },
  'dry-run': { type: 'boolean', help: "Build the task and report one training step's memory (parameters, gradients,\noptimizer state, activations, workspaces), measured on the first batch on the\nwasm backend; nothing is trained or written" },
  list: { type: 'boolean', help: 'List the tasks and their options' },
  help: HELP_FLAG,
};

/** Shards per batch when --workers is given without --shards: 1, 2 and 4 workers split them evenly. */
const DEFAULT_SHARDS = 4;

/** How a worker rebuilds a built-in task: the registry's taskReplica from encodeTask's bytes (the registry loads lazily, as in loadRegistry). */
async function registryReplica(task: Task<unknown>): Promise<ReplicaSpec> {
  const { encodeTask } = await import('../models/registry.ts');
  const registry = new URL(`../models/registry${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
  return { module: registry.href, export: 'taskReplica', arg: encodeTask(task) };
}

/** `recur train TASK --dry-run`: the memory of one training step (train/memory.ts), nothing written. */
function dryRunReport(name: string, task: Task<unknown>, train: BatchSource<unknown>, trainerOptions: Record<string, unknown>, out: (t: string) => void): number {
  let optimizer;
  try {
    // the optimizer exactly as the run would make it (type, hyper-parameters, parameters)
    optimizer = new Trainer(task, { ...(trainerOptions as TrainerOptions), progress: false, log: () => {} }).optimizer;
  } catch (e) {
    throw new UsageError(`${oneLine((e as Error).message, 500)}`);
  }
  let m: StepMemory;
  try {
    m = measureStepMemory(task, train.get(0, 0), optimizer);
  } catch (e) {
    const msg = (e as Error).message;
    throw new CliError(`${name}: --dry-run: ${msg}${/does not measure its memory/.test(msg) ? ' (unset RECUR_BACKEND=js)' : ''}`);
  }
  const row = (label: string, bytes: number, note = ''): string => `  ${label.padEnd(16)}${formatBytes(bytes).padStart(10)}${note ? `  ${note}` : ''}\n`;
  out(`recur train ${name} --dry-run: ${formatInt(task.model.numParameters())} parameters; one training step on the first of ${formatInt(train.numBatches)} batches (nothing trained or written)\n`);
  out(row('parameters', m.parameters));
  out(row('gradients', m.gradients));
  out(row('optimizer state', m.optimizer, optimizer.type));
  out(row('activations', m.activations, 'kept by the forward pass for the backward pass'));
  out(row('workspaces', m.workspaces, "the rest of the step's peak: backward scratch, temporaries"));
  out(row('total', m.total));
  return 0;
}

export const TRAIN_HELP = `Usage:
  recur train TASK [options] [--set key=value ...]

Trains a task model (see 'recur train --list' for the tasks) and writes the run directory:
model.safetensors (the final model), best.safetensors (the best on the validation data),
trainer-state.safetensors (the checkpoint) and metrics.jsonl (draw it with 'recur plot DIR').
Shows progress; Ctrl-C stops after the current step, saves and evaluates (exit code 130).

Options:
${flagLines(TRAIN_FLAGS)}`;


/** Build the task; an options error from the registry is a command-line error. */
async function buildTask(spec: TaskSpec, options: Record<string, unknown>, who: string): Promise<BuiltTask> {
  try {
    return await spec.build(options);
  } catch (e) {
    const err = e as Error;
    const msg = taskMessage(spec.name, e);
    if (err?.name === 'TaskRegistryError' || err?.name === 'TaskConfigError') throw new UsageError(msg);
    throw new CliError(msg);
  }
}

/**
 * `TASK: message` for an error from a task's code. The registry's own errors already begin with
 * the task's name; it is not repeated (that gave 'classify-names: classify-names: ...').
 */
export function taskMessage(task: string, e: unknown): string {
  const m = oneLine((e as Error)?.message ?? String(e), 500);
  return m.startsWith(`${task}: `) ? m : `${task}: ${m}`;
}

/** The trainer options among a task's recommendations (unknown keys are left out, not errors). */
function pickTrainerOptions(o: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (o && typeof o === 'object') for (const k of TRAINER_SET_KEYS) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/** The files a run directory gets from `recur train` (and `recur plot`). */
const RUN_FILES = [MODEL_FILE, BEST_FILE, STATE_FILE, METRICS_FILE, 'plot.svg'];

/**
 * A new run must not write over another one: a run folder that exists and holds files is refused
 * unless `overwrite` (the trainer would replace model.safetensors and append to the old
 * metrics.jsonl, silently mixing two runs).
 */
function checkRunDir(dir: string, overwrite: boolean): void {
  if (!existsSync(dir)) return;
  if (!statSync(dir).isDirectory()) throw new CliError(`--run-dir '${dir}' is a file, not a folder`);
  const entries = readdirSync(dir);
  if (entries.length === 0 || overwrite) return;
  if (hasCheckpoint(dir)) throw new CliError(`'${dir}' already holds a run; continue it with --resume ${dir}, start over with --overwrite, or choose another --run-dir`);
  const shown = entries.slice(0, 4).join(', ') + (entries.length > 4 ? `, … (${entries.length} entries)` : '');
  throw new CliError(`--run-dir '${dir}' is not empty (${shown}); pass --overwrite to replace the run files in it, or choose another --run-dir`);
}

function defaultRunDir(task: string, d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return join('runs', `${task}-${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`);
}

function formatMetrics(m: Record<string, number>): string {
  return Object.entries(m)
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toPrecision(4)}`)
    .join(', ');
}

function listText(reg: TaskRegistry): string {
  const lines = ['Tasks:'];
  for (const name of taskNames(reg)) {
    const spec = reg.getTaskSpec(name);
    if (!spec) continue;
    lines.push(`  ${name.padEnd(14)} ${spec.description}`);
    const help = spec.optionHelp;
    if (help) {
      // one line per option, from the task's option schema: key=default, then its help and form
      for (const [k, v] of Object.entries(spec.defaults)) {
        const form = spec.optionForms?.[k];
        lines.push(`      ${`${k}=${JSON.stringify(v)}`.padEnd(26)} ${help[k] ?? ''}${form ? ` (${form})` : ''}`);
      }
      continue;
    }
    const opts = Object.entries(spec.defaults).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
    if (opts.length) lines.push(`  ${''.padEnd(14)} options: ${opts.join(' ')}`);
  }
  return `${lines.join('\n')}\n`;
}

function sinkFor(deps: CommandDeps): ProgressSink | null {
  if (deps.progress === false) return null;
  if (deps.progress) return deps.progress;
  const bar = new Progress();
  return {
    update: (s, force) => bar.update(s, force),
    print: (t) => bar.print(t, process.stderr),
    done: () => bar.done(),
  };
}

export async function trainCommand(argv: string[], deps: CommandDeps = {}): Promise<number> {
  const who = 'recur train';
  const hint = `Run '${who} --help' for usage.`;
  const out = deps.stdout ?? ((t: string) => void process.stdout.write(t));
  const err = deps.stderr ?? ((t: string) => void process.stderr.write(t));
  const { rest, sets } = extractSets(who, argv);
  const parsed = parseOrHelp(who, rest, flagSpec(TRAIN_FLAGS), 1, TRAIN_HELP, out);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const reg = await loadRegistry(deps);
  if (values.list) {
    out(listText(reg));
    return 0;
  }
  const spec = findSpec(reg, positionals[0], who);
  const r = new OptionReader(who, values);
  const flags: Record<string, unknown> = {};
  const epochs = r.int('epochs', 1);
  const maxSteps = r.int('max-steps', 1);
  const time = r.number('time', 'positive');
  const lr = r.number('lr', 'nonnegative');
  const seed = r.int('seed', 0);
  const evalEvery = r.int('eval-every', 1);
  const checkpointEvery = r.int('checkpoint-every', 1);
  if (epochs !== undefined) flags.epochs = epochs;
  if (maxSteps !== undefined) flags.maxSteps = maxSteps;
  if (time !== undefined) flags.timeLimitSeconds = time;
  if (lr !== undefined) flags.lr = lr;
  if (seed !== undefined) flags.seed = seed;
  if (evalEvery !== undefined) flags.evalEvery = evalEvery;
  const resumeDir = r.string('resume');
  let runDir = r.string('run-dir');
  const dryRun = r.flag('dry-run');
  if (dryRun && resumeDir !== undefined) throw new UsageError('--dry-run measures a new run; it does not go with --resume', hint);
  const workers = r.int('workers', 1);
  let shards = r.int('shards', 1);
  if (dryRun && (workers !== undefined || shards !== undefined)) throw new UsageError('--dry-run measures the plain training step; it does not go with --workers or --shards', hint);
  const encoding = encodingOption(spec, r.string('encoding'));
  if (encoding !== undefined && resumeDir !== undefined) throw new UsageError(`${who}: --encoding cannot change when resuming (the run reads its data as before)`, hint);

  // Task options and trainer options: from the checkpoint when resuming, else defaults + --set + flags.
  let taskOptions: Record<string, unknown>;
  let trainerOptions: Record<string, unknown>;
  let savedCheckpointEvery: number | undefined;
  if (resumeDir !== undefined) {
    if (!hasCheckpoint(resumeDir)) throw new CliError(`cannot resume: '${resumeDir}' holds no checkpoint (trainer-state.safetensors)`);
    let saved;
    try {
      saved = readTrainingState(resumeDir);
    } catch (e) {
      throw fileError(join(resumeDir, 'trainer-state.safetensors'), e);
    }
    const meta = (saved.meta ?? {}) as { task?: unknown; taskOptions?: unknown };
    if (meta.task !== spec.name) throw new CliError(`cannot resume: the run in '${resumeDir}' is of task '${String(meta.task ?? saved.task)}', not '${spec.name}'`);
    for (const k of ['seed', 'lr'] as const) {
      if (flags[k] !== undefined) throw new UsageError(`--${k} cannot change when resuming (the run continues with its own)`);
    }
    const routed = routeSets(who, sets, spec.defaults, false);
    taskOptions = { ...((meta.taskOptions ?? {}) as Record<string, unknown>) };
    const savedOpts = { ...(saved.options as Record<string, unknown>) };
    delete savedOpts.meta;
    delete savedOpts.runDir;
    delete savedOpts.checkpoint;
    trainerOptions = { ...savedOpts, ...routed.trainerOptions, ...flags };
    // A budget given now replaces the saved one entirely (an old maxSteps would stop a longer run).
    if (flags.epochs !== undefined || flags.maxSteps !== undefined || flags.timeLimitSeconds !== undefined) {
      for (const k of ['epochs', 'maxSteps', 'timeLimitSeconds'] as const) if (flags[k] === undefined && routed.trainerOptions[k] === undefined) trainerOptions[k] = null;
    }
    if (trainerOptions.epochs === null && trainerOptions.maxSteps == null && trainerOptions.timeLimitSeconds == null) trainerOptions.epochs = undefined;
    // the shards decide the results, so a run keeps its own (the workers may change)
    const savedShards = (meta as { shards?: unknown }).shards;
    if (shards !== undefined && shards !== savedShards) throw new UsageError(`--shards cannot change when resuming (the run ${typeof savedShards === 'number' ? `uses ${savedShards}` : 'was not sharded'})`);
    if (workers !== undefined && typeof savedShards !== 'number') throw new UsageError('--workers: the run was not sharded, so it continues in one thread (a sharded run computes other gradients)');
    shards = typeof savedShards === 'number' ? savedShards : undefined;
    const ck = (saved.options as { checkpoint?: { every?: number } }).checkpoint;
    if (typeof ck?.every === 'number') savedCheckpointEvery = ck.every;
    if (runDir !== undefined && resolve(runDir) !== resolve(resumeDir)) throw new UsageError(`--run-dir and --resume name different directories; a resumed run stays in its directory`);
    runDir = resumeDir;
  } else {
    const routed = routeSets(who, sets, spec.defaults, true);
    taskOptions = { ...spec.defaults, ...routed.taskOptions };
    // Flags that are also task options (lr, seed, epochs...) go to the task too.
    for (const [k, v] of Object.entries(flags)) if (Object.hasOwn(spec.defaults, k)) taskOptions[k] = v;
    if (encoding !== undefined) taskOptions.encoding = encoding;
    // The task's recommended trainer options (from build, below) under --set, under the flags.
    trainerOptions = { ...routed.trainerOptions, ...flags };
    runDir = runDir ?? defaultRunDir(spec.name, (deps.now ?? (() => new Date()))());
    if (!dryRun) checkRunDir(runDir, r.flag('overwrite'));
  }
  if (resumeDir !== undefined && r.flag('overwrite')) throw new UsageError('--overwrite starts a new run; it does not go with --resume');

  const built = await buildTask(spec, taskOptions, who);
  if (resumeDir === undefined) trainerOptions = { ...pickTrainerOptions(built.trainOptions ?? spec.defaults), ...trainerOptions };
  const { task, train } = built;
  const val = built.val ?? null;
  const progress = sinkFor(deps);
  const print = (t: string): void => (progress?.print ? progress.print(t) : err(`${t}\n`));
  for (const k of Object.keys(trainerOptions)) if (trainerOptions[k] === undefined) delete trainerOptions[k];
  if (dryRun) return dryRunReport(spec.name, task, train, trainerOptions, out);
  if (workers !== undefined) shards ??= DEFAULT_SHARDS;
  if (workers !== undefined && workers > shards!) throw new UsageError(`--workers ${workers} is more than the ${shards} shards of each batch (set --shards)`, hint);
  let trainTask: Task<unknown> = task;
  let runner: Awaited<ReturnType<typeof workerShards>> | undefined;
  if (shards !== undefined) {
    try {
      // the workers compute on the backend this process trains on, so the results do not depend on them
      const backend = getBackend().name === 'js' ? 'js' : 'wasm';
      if (workers !== undefined) runner = await workerShards(task, { workers, backend, replica: await registryReplica(task) });
      trainTask = new DataParallelTask(task, { shards, runner });
    } catch (e) {
      await runner?.close();
      throw new CliError(`${spec.name}: ${oneLine((e as Error).message, 500)}`);
    }
  }
  if (shards === undefined) {
    try {
      await chooseTrainingBackend(task, train.get(0, 0), print);
    } catch (e) {
      throw new CliError(`${spec.name}: ${oneLine((e as Error).message, 500)}`);
    }
  }
  let trainer: Trainer<unknown>;
  try {
    trainer = new Trainer(trainTask, {
      ...(trainerOptions as TrainerOptions),
      runDir,
      store: fileStore,
      checkpoint: { every: checkpointEvery ?? savedCheckpointEvery ?? train.numBatches },
      progress: progress ?? false,
      handleInterrupt: true,
      log: (m) => print(m),
      meta: { task: spec.name, taskOptions, ...(shards !== undefined ? { shards } : {}) },
    });
  } catch (e) {
    await runner?.close();
    throw new UsageError(`${oneLine((e as Error).message, 500)}`);
  }
  // Only now, with the task built and the options accepted, is the old run removed.
  if (resumeDir === undefined && r.flag('overwrite')) for (const f of RUN_FILES) rmSync(join(runDir, f), { force: true });
  const nParams = task.model.numParameters();
  out(`recur train ${spec.name}: ${formatInt(nParams)} parameters, ${formatInt(train.numBatches)} batches per epoch${val ? `, ${formatInt(val.numBatches)} validation batches` : ''}\n`);
  out(`  run directory ${runDir}${resumeDir !== undefined ? ' (resuming)' : ''}\n`);
  if (shards !== undefined) out(`  ${shards} shards per batch, ${runner ? `in ${runner.workers} worker thread${runner.workers === 1 ? '' : 's'}` : 'in this thread'}\n`);
  let result: FitResult;
  try {
    result = await trainer.fit(train, val, resumeDir !== undefined ? { resume: resumeDir } : {});
    await toHost(task.model);
  } catch (e) {
    const m = taskMessage(spec.name, e);
    throw new CliError(`${spec.name}: training failed: ${m.slice(spec.name.length + 2)}`);
  } finally {
    await runner?.close();
  }
  const reasons: Record<string, string> = {
    epochs: 'all epochs done', maxSteps: 'step limit reached', time: 'time limit reached', earlyStopping: 'early stopping (no improvement)',
    callback: 'stopped', interrupted: 'interrupted',
  };
  out(`${reasons[result.stopReason] ?? result.stopReason}: ${formatInt(result.step)} steps, ${result.epoch} epoch${result.epoch === 1 ? '' : 's'}${result.batch ? ` + ${result.batch} batches` : ''}, ${formatDuration(result.totalSeconds)}\n`);
  if (result.trainLoss !== null) out(`  training loss ${result.trainLoss.toPrecision(4)} (mean of the last steps)\n`);
  if (result.finalMetrics) out(`  validation: ${formatMetrics(result.finalMetrics)}\n`);
  if (result.bestMetric !== null && result.finalMetrics) {
    const primary = Object.keys(result.finalMetrics)[0];
    out(`  best ${primary} ${result.bestMetric.toPrecision(4)} at step ${result.bestStep} (${join(runDir, BEST_FILE)})\n`);
  }
  if (built.test) {
    const m = trainer.evaluate(built.test);
    out(`  test: ${formatMetrics(m)}\n`);
  }
  out(`  model ${join(runDir, MODEL_FILE)}; curves: recur plot ${runDir}\n`);
  if (result.stopReason === 'interrupted') out(`  continue with: recur train ${spec.name} --resume ${runDir}\n`);
  return result.stopReason === 'interrupted' ? 130 : 0;
}

// ---- recur eval -----------------------------------------------------------------------------------------

const EVAL_FLAGS: Record<string, Flag> = {
  model: { type: 'string', value: 'FILE', help: 'The model file (e.g. runs/.../model.safetensors or best.safetensors; default:\nthe model that ships with recur for the task, if one does)' },
  split: { type: 'string', value: 'test|val', help: 'Which held-out data (default: test if the task has it, else val)' },
  set: { type: 'string', value: 'key=value', help: "A task option that selects the data or the decoding (beamWidth,\nlengthPenalty), over the saved one (see 'recur train --list')", helpOnly: true },
  encoding: { type: 'string', value: 'utf-8|latin1', help: 'The text encoding of the data file (--set data=FILE)' },
  json: { type: 'boolean', help: 'Print the metrics as one JSON object' },
  help: HELP_FLAG,
};

export const EVAL_HELP = `Usage:
  recur eval TASK [--model FILE] [--split test|val] [--set key=value ...] [--json]

Scores a trained model on the task's held-out data (the test split when the task has one, else
the validation split) and prints each metric (the first is the task's primary metric). The data
is rebuilt with the task options the model was trained with (saved in the checkpoint of the run
directory the model file is in; the defaults for a model file outside its run directory), with
--set on top: --set beamWidth=5 decodes with a beam of 5 whatever the model was trained with.

Options:
${flagLines(EVAL_FLAGS)}`;


/**
 * The task a model file was saved for: its config's (the registry's `taskNameOf`), else the
 * `recur.task` metadata the trainer writes; null when the file says neither.
 */
async function modelTaskName(file: ModelFile): Promise<string | null> {
  try {
    const { taskNameOf } = await import('../models/registry.ts');
    const name = taskNameOf(file.config);
    if (name !== null) return name;
  } catch {
    // The registry did not load (an embedding without it): the metadata alone decides.
  }
  const meta = file.metadata['recur.task'];
  return typeof meta === 'string' && meta !== '' ? meta : null;
}

/**
 * Load a model file for `recur <command> TASK`. A model of another task is refused by name before
 * the task's loader sees it (its error would be about a missing tensor or config key).
 */
async function loadTask(spec: TaskSpec, path: string, command: 'eval' | 'predict' | 'g2p', options?: Record<string, unknown>): Promise<Task<any>> {
  if (!existsSync(path)) throw fileError(path, Object.assign(new Error('missing'), { code: 'ENOENT' }));
  let file: ModelFile;
  try {
    file = loadModelFile(path);
  } catch (e) {
    throw fileError(path, e);
  }
  const other = await modelTaskName(file);
  if (other !== null && other !== spec.name) {
    throw new CliError(`${path}: this is a ${other} model; \`recur ${command === 'g2p' ? command : `${command} ${spec.name}`}\` needs a ${spec.name} model`);
  }
  try {
    return spec.load(file, path, options).task;
  } catch (e) {
    if ((e as Error)?.name === 'TaskRegistryError') throw new UsageError((e as Error).message); // an option, not the file
    throw fileError(path, e);
  }
}

/**
 * The task options a model was trained with: those `recur train` stored in the checkpoint of the
 * run directory the model file lies in (model.safetensors, best.safetensors), when that run is of
 * this task; else none (a model file moved out of its run: the defaults, and --set, apply).
 */
function savedTaskOptions(spec: TaskSpec, modelPath: string): Record<string, unknown> {
  const dir = dirname(modelPath);
  if (!hasCheckpoint(dir)) return {};
  let saved;
  try {
    saved = readTrainingState(dir);
  } catch (e) {
    throw fileError(join(dir, STATE_FILE), e);
  }
  const meta = (saved.meta ?? {}) as { task?: unknown; taskOptions?: unknown };
  const o = meta.taskOptions;
  if (meta.task !== spec.name || o === null || typeof o !== 'object' || Array.isArray(o)) return {};
  return { ...(o as Record<string, unknown>) };
}

/**
 * What `eval` and `predict` start from: the task the command line names, its model file and the
 * task options the model was trained with — the --model file and its run's saved options, or
 * without --model the model that ships with recur for the task (pretrained/) and its recorded options.
 */
async function taskAndModel(who: string, parsed: Parsed, deps: CommandDeps): Promise<{ spec: TaskSpec; r: OptionReader; modelPath: string; saved: Record<string, unknown> }> {
  const spec = findSpec(await loadRegistry(deps), parsed.positionals[0], who);
  const r = new OptionReader(who, parsed.values);
  const modelPath = r.string('model');
  if (modelPath !== undefined) return { spec, r, modelPath, saved: savedTaskOptions(spec, modelPath) };
  const { PRETRAINED_DIR, pretrainedModels } = await import('../models/files.ts');
  const shipped = pretrainedModels();
  const entry = shipped.find((m) => m.task === spec.name);
  if (!entry) throw new UsageError(`--model FILE is required: no trained ${spec.name} model ships with recur (shipped: ${shipped.map((m) => m.task).join(', ')})`);
  return { spec, r, modelPath: join(PRETRAINED_DIR, entry.file), saved: entry.options };
}

export async function evalCommand(argv: string[], deps: CommandDeps = {}): Promise<number> {
  const who = 'recur eval';
  const out = deps.stdout ?? ((t: string) => void process.stdout.write(t));
  const { rest, sets } = extractSets(who, argv);
  const parsed = parseOrHelp(who, rest, flagSpec(EVAL_FLAGS), 1, EVAL_HELP, out);
  if (!parsed) return 0;
  const { spec, r, modelPath, saved } = await taskAndModel(who, parsed, deps);
  const split = r.string('split');
  if (split !== undefined && split !== 'test' && split !== 'val') throw new UsageError(`--split must be 'test' or 'val', got '${split}'`);
  const { taskOptions } = routeSets(who, sets, spec.defaults, true);
  const encoding = encodingOption(spec, r.string('encoding'));
  if (encoding !== undefined) taskOptions.encoding = encoding;
  // The data as the model was trained on it, and its decoding (beamWidth, ...): the run's saved
  // task options, under --set.
  const options = { ...spec.defaults, ...saved, ...taskOptions };
  const task = await loadTask(spec, modelPath, 'eval', options);
  const built = await buildTask(spec, options, who);
  const which = split ?? (built.test ? 'test' : 'val');
  const data = which === 'test' ? built.test : built.val;
  if (!data) throw new CliError(`${spec.name} has no ${which === 'test' ? 'test' : 'validation'} data`);
  let metrics: Record<string, number>;
  try {
    metrics = withEval(task.model, () => task.evaluate(data));
  } catch (e) {
    // data the model cannot score (a label it never saw, ...) is a clear error, not a crash
    if ((e as Error)?.name === 'TaskConfigError') throw new CliError(oneLine((e as Error).message, 500));
    throw e;
  }
  if (r.flag('json')) {
    out(`${JSON.stringify({ task: spec.name, model: modelPath, split: which, metrics })}\n`);
  } else {
    out(`${spec.name} on the ${which === 'test' ? 'test' : 'validation'} data (${formatInt(data.numBatches)} batches):\n`);
    const w = Math.max(...Object.keys(metrics).map((k) => k.length));
    for (const [k, v] of Object.entries(metrics)) out(`  ${k.padEnd(w)}  ${Number.isInteger(v) ? v : v.toPrecision(6)}\n`);
  }
  return 0;
}

// ---- recur predict, recur g2p -----------------------------------------------------------------------------

const PREDICT_FLAGS: Record<string, Flag> = {
  model: { type: 'string', value: 'FILE', help: 'The model file (default: the model that ships with recur for the task, if\none does: classify-names, namegen, seq2seq)' },
  set: { type: 'string', value: 'key=value', help: 'A task option that acts at inference (beamWidth, lengthPenalty), over\nthe one the model was trained with', helpOnly: true },
  encoding: { type: 'string', value: 'utf-8|latin1', help: 'The text encoding of standard input (default utf-8, checked strictly:\na byte that is not UTF-8 is an error)' },
  help: HELP_FLAG,
};

export const PREDICT_HELP = `Usage:
  recur predict TASK [--model FILE] [--set key=value ...] [--encoding utf-8|latin1] [INPUT ...]

Runs a trained model on each INPUT (or, with none, on each non-empty line of standard input) and
prints one output line per input: a label, a tag sequence, a translation, a continuation, ...
depending on the task. An input the model cannot take is reported on standard error (by its
number and text) and gets no output line; the others are still answered, and the exit code is 1.

Options:
${flagLines(PREDICT_FLAGS)}`;

const G2P_FLAGS: Record<string, Flag> = {
  model: { type: 'string', value: 'FILE', help: 'A seq2seq model file (default: the one that ships with recur)' },
  'beam-width': { type: 'string', value: 'N', help: "Beam width (1: greedy; default: the model's)" },
  encoding: PREDICT_FLAGS.encoding,
  help: HELP_FLAG,
};

export const G2P_HELP = `Usage:
  recur g2p [--model FILE] [--beam-width N] [WORD ...]

Pronounces English words: prints each WORD (or, with none, each non-empty line of standard input)
with the phonemes the grapheme-to-phoneme model predicts, in the CMU Pronouncing Dictionary's
notation ("PHOENIX  F IY N IH K S"). The model that ships with recur was trained with 'recur train
seq2seq' (39 phonemes, no stress digits; a model trained with --set stress=true prints them); a
word with a character outside its letters is reported on standard error and gets no line (exit
code 1).

Options:
${flagLines(G2P_FLAGS)}`;

/** Standard input decoded strictly (a byte that is not UTF-8 is an error, not a silent U+FFFD). */
async function readProcessStdin(encoding: TextEncoding = 'utf-8'): Promise<string | null> {
  if (process.stdin.isTTY) return null;
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  try {
    return decodeText(Buffer.concat(chunks), 'standard input', encoding);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
}

/** --encoding: utf-8 or latin1, for a task that reads a data file (it has an 'encoding' option). */
function encodingOption(spec: TaskSpec | null, v: string | undefined): TextEncoding | undefined {
  if (v === undefined) return undefined;
  if (v !== 'utf-8' && v !== 'latin1') throw new UsageError(`--encoding must be utf-8 or latin1, got '${v}'`);
  if (spec && !Object.hasOwn(spec.defaults, 'encoding')) throw new UsageError(`task '${spec.name}' reads no data file, so --encoding does not apply`);
  return v;
}

export async function predictCommand(argv: string[], deps: CommandDeps = {}): Promise<number> {
  const who = 'recur predict';
  const out = deps.stdout ?? ((t: string) => void process.stdout.write(t));
  const { rest, sets } = extractSets(who, argv);
  const parsed = parseOrHelp(who, rest, flagSpec(PREDICT_FLAGS), Infinity, PREDICT_HELP, out);
  if (!parsed) return 0;
  const { spec, r, modelPath, saved } = await taskAndModel(who, parsed, deps);
  const { taskOptions } = routeSets(who, sets, spec.defaults, true);
  const inputs = await inputLines(parsed.positionals.slice(1), encodingOption(null, r.string('encoding')), deps);
  if (inputs.length === 0) return 0;
  const task = await loadTask(spec, modelPath, 'predict', { ...saved, ...taskOptions });
  const outputs = answer(who, spec, task, inputs, deps);
  for (const o of outputs) if (o !== null) out(`${String(o).replace(/\r?\n/g, ' ')}\n`);
  return outputs.includes(null) ? 1 : 0;
}

export async function g2pCommand(argv: string[], deps: CommandDeps = {}): Promise<number> {
  const who = 'recur g2p';
  const out = deps.stdout ?? ((t: string) => void process.stdout.write(t));
  const parsed = parseOrHelp(who, argv, flagSpec(G2P_FLAGS), Infinity, G2P_HELP, out);
  if (!parsed) return 0;
  const { spec, r, modelPath, saved } = await taskAndModel(who, { ...parsed, positionals: ['seq2seq'] }, deps);
  const beamWidth = r.int('beam-width', 1);
  const words = await inputLines(parsed.positionals, encodingOption(null, r.string('encoding')), deps);
  if (words.length === 0) return 0;
  const task = await loadTask(spec, modelPath, 'g2p', beamWidth === undefined ? saved : { ...saved, beamWidth });
  const outputs = answer(who, spec, task, words, deps);
  outputs.forEach((o, i) => o !== null && out(`${words[i].trim().toUpperCase()}  ${o}\n`));
  return outputs.includes(null) ? 1 : 0;
}

/** The inputs given as arguments, else the non-empty lines of standard input (none: a usage error). */
async function inputLines(args: string[], encoding: TextEncoding | undefined, deps: CommandDeps): Promise<string[]> {
  if (args.length > 0) return args;
  const text = await (deps.readStdin ?? (() => readProcessStdin(encoding)))();
  if (text === null) throw new UsageError(`give the inputs as arguments, or one per line on standard input`);
  return text.split(/\r?\n/).filter((l) => l.trim() !== '');
}

/**
 * The task's output for each input, null for an input it cannot take. One bad input fails the
 * whole batch: then the others are answered one by one, and the bad ones are named on stderr.
 */
function answer(who: string, spec: TaskSpec, task: Task<any>, inputs: string[], deps: CommandDeps): (string | null)[] {
  task.model.eval();
  const run = (batch: string[]): string[] => {
    const outputs = noGrad(() => spec.predict(task, batch));
    if (!Array.isArray(outputs) || outputs.length !== batch.length) throw new CliError(`${spec.name}: predict returned ${Array.isArray(outputs) ? outputs.length : 'no'} outputs for ${batch.length} inputs`);
    return outputs;
  };
  try {
    return run(inputs);
  } catch (e) {
    if (e instanceof CliError || inputs.length === 1) throw e instanceof CliError ? e : new CliError(taskMessage(spec.name, e));
  }
  const err = deps.stderr ?? ((t: string) => void process.stderr.write(t));
  return inputs.map((input, i) => {
    try {
      return run([input])[0];
    } catch (e) {
      err(`${who}: input ${i + 1} (${JSON.stringify(oneLine(input, 60))}): ${taskMessage(spec.name, e)}\n`);
      return null;
    }
  });
}
