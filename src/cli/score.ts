/**
 * `recur score` and `recur worker`: batch scoring of a JSONL file (serve/score.ts has the job
 * model, serve/queue.ts the queues). Without --redis, `recur score` runs the jobs itself on the
 * embedded queue; with it, it only submits them and assembles the output, and `recur worker`
 * processes (any number of them, on any machines that reach the same Redis).
 */
import { statSync } from 'node:fs';
import type { z } from 'zod';
import { dirname } from 'node:path';
import { readInputFile } from '../io/read.ts';
import { writeFileAtomicAsync } from '../io/atomic.ts';
import { decodeText } from '../data/files.ts';
import { loadPredictor, type Predictor } from '../models/files.ts';
import { MemoryQueue, deadLetterKey, type ChunkProcessor, type ScoreQueue } from '../serve/queue.ts';
import type { RedisQueue } from '../serve/queue-redis.ts';
import { redactUrl } from '../serve/store.ts';
import { parseOptions, queueName, ScoreError, scoreChunk, scoreInput, scoreOptionsSchema, sha256, workerOptionsSchema, type ScoreOptions, type WorkerOptions } from '../serve/score.ts';
import { CliError, flagLines, flagSpec, HELP_FLAG, OptionReader, parseOrHelp, UsageError, type Flag } from './args.ts';
import { fileError, formatDuration, formatInt } from './format.ts';

// ---- shared -------------------------------------------------------------------------------------

/**
 * The BullMQ queue and worker, loaded only when Redis is asked for: `bullmq` is an optional peer
 * dependency of recurjs (see serve/queue.ts for why), so its absence is a clear message here.
 */
async function redisQueues(): Promise<typeof import('../serve/queue-redis.ts')> {
  try {
    return await import('../serve/queue-redis.ts');
  } catch (e) {
    if ((e as { code?: string })?.code === 'ERR_MODULE_NOT_FOUND' && /'bullmq'/.test((e as Error).message)) {
      throw new CliError("scoring through Redis needs the 'bullmq' package (an optional dependency of recurjs): npm install bullmq");
    }
    throw e;
  }
}

/** Each option key's flag, for messages (`--chunk must be …`). */
const FLAG_OF: Record<string, string> = {
  chunkSize: '--chunk', attempts: '--attempts', backoffMs: '--backoff-ms', redisTimeoutMs: '--redis-timeout', runId: '--run-id', pollMs: 'pollMs',
  concurrency: '--concurrency', lockMs: '--lock-ms', stalledMs: '--stalled-ms', batchSize: '--batch',
};

/** The options checked by their schema, a wrong one named by its flag (undefined keys dropped from `raw`). */
function options<S extends typeof scoreOptionsSchema | typeof workerOptionsSchema>(schema: S, raw: Record<string, unknown>): z.output<S> {
  for (const k of Object.keys(raw)) if (raw[k] === undefined) delete raw[k];
  try {
    return parseOptions(schema, raw, (k) => FLAG_OF[k] ?? k);
  } catch (e) {
    if (e instanceof ScoreError) throw new UsageError(e.message);
    throw e;
  }
}

/** A numeric flag as written (NaN when it is no decimal number: the schema then names the flag). */
function numberFlag(r: OptionReader, flag: string): number | undefined {
  const v = r.string(flag);
  return v === undefined ? undefined : /^\s*-?\d+(\.\d+)?\s*$/.test(v) ? Number(v) : NaN;
}

interface LoadedModel {
  predictor: Predictor;
  sha: string;
}

function loadModel(path: string, task: string | undefined): LoadedModel {
  let bytes: Uint8Array;
  try {
    bytes = readInputFile(path, 'model file');
  } catch (e) {
    throw fileError(path, e);
  }
  try {
    return { predictor: loadPredictor(path, task), sha: sha256(bytes) };
  } catch (e) {
    throw fileError(path, e);
  }
}

/** Refuse an output path whose folder is missing before any work, not after it. */
function checkWritable(path: string): void {
  const dir = dirname(path);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) throw new CliError(`cannot write '${path}': the folder '${dir}' does not exist`);
}

const processorFor = (predictor: Predictor, batchSize: number): ChunkProcessor => (data) => scoreChunk(predictor, data.inputs, batchSize);

const stamp = (): string => new Date().toISOString().slice(11, 19);

/** The defaults, from the schemas (the help shows them; the schemas apply them). */
const SCORE_DEFAULTS = scoreOptionsSchema.parse({});
const WORKER_DEFAULTS = workerOptionsSchema.parse({});

// ---- recur score --------------------------------------------------------------------------------

const SCORE_FLAGS: Record<string, Flag> = {
  input: { type: 'string', value: 'FILE', help: 'The inputs: JSONL, each line a JSON string or {"input": "...", "id": ...}' },
  out: { type: 'string', value: 'FILE', help: 'Where the results go (written atomically when all are in)' },
  redis: { type: 'string', value: 'URL', help: 'Submit to Redis (redis://HOST:PORT) for `recur worker` processes;\nwithout it the jobs run in this process' },
  task: { type: 'string', value: 'NAME', help: "The model's task (default: the one the model file names)" },
  chunk: { type: 'string', value: 'N', help: `Input lines per job (default ${SCORE_DEFAULTS.chunkSize})` },
  attempts: { type: 'string', value: 'N', help: `Tries of a failing job before its lines are dead-lettered (default ${SCORE_DEFAULTS.attempts})` },
  'backoff-ms': { type: 'string', value: 'MS', help: `Delay before the first retry, doubled for each next (default ${SCORE_DEFAULTS.backoffMs})` },
  'redis-timeout': { type: 'string', value: 'SECONDS', help: `Give up when Redis is unreachable for this long (default ${SCORE_DEFAULTS.redisTimeoutMs / 1000})` },
  'run-id': { type: 'string', value: 'ID', help: 'Name the run (default: a hash of the model, the input and --chunk, so the\nsame command submitted again names the same jobs)' },
  'dead-letter': { type: 'string', value: 'FILE', help: 'Also write the dead letters (inputs without output) to FILE as JSONL' },
  batch: { type: 'string', value: 'N', help: `Inputs per model call (embedded mode; default ${WORKER_DEFAULTS.batchSize})` },
  quiet: { type: 'boolean', short: 'q', help: 'No progress bar' },
  help: HELP_FLAG,
};

export const SCORE_HELP = `Usage:
  recur score MODEL --input FILE --out FILE [--redis URL] [options]

Scores every line of a JSONL file with a trained model (the same outputs as 'recur predict') and
writes one JSON line per input line, in input order: {"line": N, "id": ..., "output": "..."}, or
{"line": N, "id": ..., "error": "..."} for a line that is not valid input, that the model refuses,
or whose job failed after all its attempts (those are also the dead letters: a list in Redis, and
--dead-letter FILE). Without --redis the jobs run in this process; with it, start workers with
'recur worker MODEL --redis URL' on any machines that reach Redis. A progress bar with the rate and
an ETA goes to standard error. Exit code 0 when every line has an output, 1 when some have errors
(the output file is complete either way). See docs/scoring.md.

Options:
${flagLines(SCORE_FLAGS)}`;

/** The submitting side's progress: a bar redrawn in place on a terminal, else a line every 10 s. */
class ScoreProgress {
  private readonly live = process.stderr.isTTY === true;
  private readonly t0 = performance.now();
  private lastDraw = -Infinity;
  private shown = false;

  constructor(private readonly enabled: boolean) {}

  update(done: number, total: number): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (done < total && now - this.lastDraw < (this.live ? 100 : 10_000)) return;
    this.lastDraw = now;
    const s = (now - this.t0) / 1000;
    const rate = s > 0 ? done / s : 0;
    const eta = rate > 0 ? (total - done) / rate : NaN;
    const width = 24;
    const filled = total === 0 ? width : Math.round((width * done) / total);
    const text = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${formatInt(done)}/${formatInt(total)} lines  ${rate.toFixed(0)}/s  ETA ${formatDuration(eta)}`;
    if (this.live) {
      process.stderr.write(`\r\x1b[K${text}`);
      this.shown = true;
    } else process.stderr.write(`${text}\n`);
  }

  /** A notice on its own line (the bar is cleared first). */
  note(text: string): void {
    if (this.shown) {
      process.stderr.write('\r\x1b[K');
      this.shown = false;
    }
    process.stderr.write(`recur score: ${text}\n`);
  }

  done(): void {
    if (this.shown) process.stderr.write('\n');
    this.shown = false;
  }
}

/** Run `recur score` with its arguments (after the command name); resolves to the exit code. */
export async function scoreCommand(argv: string[]): Promise<number> {
  const parsed = parseOrHelp('recur score', argv, flagSpec(SCORE_FLAGS), 1, SCORE_HELP);
  if (!parsed) return 0;
  const r = new OptionReader('recur score', parsed.values);
  const modelPath = parsed.positionals[0];
  if (modelPath === undefined) throw new UsageError('missing the MODEL file argument');
  const inputPath = r.string('input');
  const outPath = r.string('out');
  if (inputPath === undefined) throw new UsageError('--input FILE is required');
  if (outPath === undefined) throw new UsageError('--out FILE is required');
  const num = (flag: string): number | undefined => numberFlag(r, flag);
  const timeout = num('redis-timeout');
  const raw: Record<string, unknown> = {
    chunkSize: num('chunk'), attempts: num('attempts'), backoffMs: num('backoff-ms'),
    redisTimeoutMs: timeout === undefined ? undefined : Math.round(timeout * 1000), runId: r.string('run-id'),
  };
  const settings = options(scoreOptionsSchema, raw);
  const batch = num('batch');
  options(workerOptionsSchema, { batchSize: batch });
  const redisUrl = r.string('redis');
  checkWritable(outPath);
  const deadPath = r.string('dead-letter');
  if (deadPath !== undefined) checkWritable(deadPath);

  let inputText: string;
  try {
    inputText = decodeText(readInputFile(inputPath, 'input file'), inputPath, 'utf-8');
  } catch (e) {
    throw fileError(inputPath, e);
  }
  const model = loadModel(modelPath, r.string('task'));
  const name = queueName(model.sha);
  const progress = new ScoreProgress(!r.flag('quiet'));
  const retry = { attempts: settings.attempts, backoffMs: settings.backoffMs };

  let queue: ScoreQueue;
  let redisQueue: RedisQueue | null = null;
  if (redisUrl === undefined) {
    queue = new MemoryQueue(name, processorFor(model.predictor, batch ?? WORKER_DEFAULTS.batchSize), retry);
  } else {
    const { RedisQueue } = await redisQueues();
    try {
      queue = redisQueue = new RedisQueue(name, redisUrl, retry);
    } catch (e) {
      throw new UsageError(`--redis: ${(e as Error).message}`);
    }
    try {
      await redisQueue.ready(settings.redisTimeoutMs);
    } catch (e) {
      await queue.close();
      throw new CliError((e as Error).message);
    }
    progress.note(`run submitted to queue ${name} on ${redactUrl(redisUrl)}; workers: recur worker ${modelPath} --redis ${redactUrl(redisUrl)}`);
  }
  let summary;
  try {
    summary = await scoreInput({
      queue, inputText, outPath, modelSha: model.sha, options: raw as ScoreOptions,
      hooks: {
        progress: (done, total) => progress.update(done, total),
        notice: (t) => progress.note(t),
        ...(redisQueue ? { workers: () => redisQueue!.workers() } : {}),
      },
    });
  } catch (e) {
    progress.done();
    if (e instanceof ScoreError) throw new CliError(e.message);
    if (/^cannot write '/.test((e as Error)?.message ?? '')) throw new CliError((e as Error).message);
    throw e;
  } finally {
    await queue.close();
  }
  progress.done();
  if (deadPath !== undefined) {
    await writeFileAtomicAsync(deadPath, summary.deadLetters.map((d) => `${JSON.stringify(d)}\n`).join(''));
  }
  const rate = summary.seconds > 0 ? summary.lines / summary.seconds : 0;
  process.stderr.write(`recur score: ${formatInt(summary.lines)} lines in ${summary.seconds.toFixed(1)} s (${rate.toFixed(0)} lines/s): ${formatInt(summary.scored)} scored, ${formatInt(summary.errors)} errors${summary.errors > 0 && redisUrl !== undefined ? ` (dead letters in Redis list ${deadLetterKey(name)})` : ''}; run ${summary.runId}; results in ${outPath}\n`);
  return summary.errors > 0 ? 1 : 0;
}

// ---- recur worker -------------------------------------------------------------------------------

const WORKER_FLAGS: Record<string, Flag> = {
  redis: { type: 'string', value: 'URL', help: 'The Redis the runs are submitted to (redis://HOST:PORT); required' },
  task: { type: 'string', value: 'NAME', help: "The model's task (default: the one the model file names)" },
  concurrency: { type: 'string', value: 'N', help: `Jobs at once in this process (default ${WORKER_DEFAULTS.concurrency}; one thread computes them)` },
  'lock-ms': { type: 'string', value: 'MS', help: `A job's lock; a worker that dies holding one loses its job to another\nafter about this long (default ${WORKER_DEFAULTS.lockMs})` },
  'stalled-ms': { type: 'string', value: 'MS', help: `How often to look for jobs of dead workers (default ${WORKER_DEFAULTS.stalledMs})` },
  batch: { type: 'string', value: 'N', help: `Inputs per model call (default ${WORKER_DEFAULTS.batchSize})` },
  quiet: { type: 'boolean', short: 'q', help: 'Log only errors, not every job' },
  help: HELP_FLAG,
};

export const WORKER_HELP = `Usage:
  recur worker MODEL --redis URL [options]

Takes the jobs that 'recur score MODEL --redis URL' submits for this model file (the queue is named
after the file's content, so a worker never takes another model's jobs) and processes them until
stopped with Ctrl-C or SIGTERM, which let the current job finish. Start any number, on any machines
that reach Redis. Logs one line per job on standard error. See docs/scoring.md.

Options:
${flagLines(WORKER_FLAGS)}`;

/** Run `recur worker` with its arguments; resolves to the exit code once stopped by a signal. */
export async function workerCommand(argv: string[], signal?: AbortSignal): Promise<number> {
  const parsed = parseOrHelp('recur worker', argv, flagSpec(WORKER_FLAGS), 1, WORKER_HELP);
  if (!parsed) return 0;
  const r = new OptionReader('recur worker', parsed.values);
  const modelPath = parsed.positionals[0];
  if (modelPath === undefined) throw new UsageError('missing the MODEL file argument');
  const redisUrl = r.string('redis');
  if (redisUrl === undefined) throw new UsageError('--redis URL is required');
  if (!/^rediss?:\/\//.test(redisUrl)) throw new UsageError(`--redis must be a URL that starts with redis:// or rediss://, got '${redisUrl}'`);
  const num = (flag: string): number | undefined => numberFlag(r, flag);
  const raw: Record<string, unknown> = { concurrency: num('concurrency'), lockMs: num('lock-ms'), stalledMs: num('stalled-ms'), batchSize: num('batch') };
  const settings = options(workerOptionsSchema, raw);
  const model = loadModel(modelPath, r.string('task'));
  const name = queueName(model.sha);
  const quiet = r.flag('quiet');
  const log = (t: string): void => void process.stderr.write(`recur worker: ${stamp()} ${t}\n`);
  const span = (lines: number[]): string => (lines.length === 0 ? 'no lines' : `lines ${lines[0]}-${lines[lines.length - 1]}`);
  log(`${model.predictor.task} model ${modelPath}; queue ${name} on ${redactUrl(redisUrl)}; pid ${process.pid}`);
  const { startRedisWorker } = await redisQueues();
  const worker = startRedisWorker(name, redisUrl, processorFor(model.predictor, settings.batchSize), settings, {
    started: (id, d, attempt) => { if (!quiet) log(`job ${id} started (${span(d.lines)}, attempt ${attempt})`); },
    finished: (id, d, ms) => { if (!quiet) log(`job ${id} done (${d.inputs.length} lines in ${ms.toFixed(0)} ms)`); },
    failed: (id, _d, reason, final) => log(`job ${id} failed${final ? ' for good (its lines go to the dead letters)' : ', will be retried'}: ${reason}`),
    down: (reason) => log(`Redis error (${reason}); reconnecting, jobs wait`),
    up: () => log('Redis is reachable again'),
  });
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    signal?.addEventListener('abort', stop, { once: true });
  });
  log('stopping: finishing the current job');
  await worker.close();
  log('stopped');
  return 0;
}
