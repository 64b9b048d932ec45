/**
 * Batch scoring: a JSONL file of inputs in, one result line per input line out, in input order.
 *
 * The job model, shared by the embedded run (`recur score` without --redis) and the distributed one
 * (`recur score --redis URL` submitting, any number of `recur worker` processing):
 *   - the input is parsed line by line; a line that is not a JSON string or an object with a string
 *     `input` never reaches a worker: it gets an error record and a dead-letter entry at once;
 *   - the valid lines are cut into chunks of `chunkSize`; a chunk is one job, whose id is the run
 *     id, the chunk's index and a hash of its inputs. The run id is a hash of the model file, the
 *     input and the chunk size, so the same command submitted twice (or again after a crash) names
 *     the same jobs and the queue holds each once;
 *   - a worker answers a chunk with one output (or one per-input error: the model cannot take that
 *     input) per line; a job that throws is retried with exponential backoff, and after its last
 *     attempt each of its lines becomes an error record and a dead-letter entry;
 *   - the submitter alone assembles the output from the jobs' results, keyed by chunk index, and
 *     writes it atomically: a job processed twice (a worker killed after finishing, before
 *     acknowledging) is processed at least once but written exactly once.
 *
 * Node-only (hashes, files, Redis): a layer beside cli/, never imported by the browser-safe core.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { writeFileAtomicAsync } from '../io/atomic.ts';
import type { Predictor } from '../models/files.ts';
import { sleep, type ChunkJob, type ChunkResult, type DeadLetter, type JobState, type ScoreQueue } from './queue.ts';

// ---- options ------------------------------------------------------------------------------------

const int = (what: string, min: number, max: number) =>
  z.int({ error: what }).min(min, { error: what }).max(max, { error: what });

/** The options of a scoring run (the submitting side), declared once: `recur score` maps its flags onto these keys. */
export const scoreOptionsSchema = z.strictObject({
  /** Valid input lines per job. */
  chunkSize: int('an integer in 1..100000', 1, 100_000).default(256),
  /** Tries of a job before its lines are dead-lettered (1 = no retry). */
  attempts: int('an integer in 1..100', 1, 100).default(3),
  /** Delay before the first retry; each later one doubles it. */
  backoffMs: int('an integer in 0..3600000', 0, 3_600_000).default(1000),
  /** How often the submitter asks the queue for finished jobs. */
  pollMs: int('an integer in 10..60000', 10, 60_000).default(200),
  /** How long the submitter waits for an unreachable Redis before it gives up. */
  redisTimeoutMs: int('an integer in 100..86400000', 100, 86_400_000).default(60_000),
  /** The run id (default: derived from the model, the input and the chunk size). */
  runId: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: '1 to 64 letters, digits, _ . or -' }).optional(),
});
export type ScoreOptions = z.input<typeof scoreOptionsSchema>;
export type ScoreSettings = z.output<typeof scoreOptionsSchema>;

/** The options of a worker, declared once: `recur worker` maps its flags onto these keys. */
export const workerOptionsSchema = z.strictObject({
  /** Jobs one worker process runs at once (they share its one thread: more helps only while waiting on Redis). */
  concurrency: int('an integer in 1..64', 1, 64).default(1),
  /** How long a job's lock lasts without renewal: a killed worker's job is taken over after about this long. */
  lockMs: int('an integer in 1000..3600000', 1000, 3_600_000).default(30_000),
  /** How often a worker looks for jobs whose lock expired (stalled: their worker died). */
  stalledMs: int('an integer in 500..3600000', 500, 3_600_000).default(30_000),
  /** Inputs per model call inside a chunk; the worker yields between calls so its lock is renewed. */
  batchSize: int('an integer in 1..100000', 1, 100_000).default(64),
});
export type WorkerOptions = z.input<typeof workerOptionsSchema>;
export type WorkerSettings = z.output<typeof workerOptionsSchema>;

/** Bad options or input for a scoring run: the message names the option or line. */
export class ScoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScoreError';
  }
}

/** Validate options against `schema`; the error names the key (as `name(key)` spells it) and the expected form. */
export function parseOptions<S extends z.ZodObject>(schema: S, options: unknown, name: (key: string) => string = (k) => `'${k}'`): z.output<S> {
  const r = schema.safeParse(options);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') throw new ScoreError(`unknown option ${name(issue.keys[0]!)} (known: ${Object.keys(schema.shape).join(', ')})`);
  const key = String(issue.path[0]);
  const got = (options as Record<string, unknown> | null)?.[key];
  throw new ScoreError(`${name(key)} must be ${issue.message}, got ${JSON.stringify(got) ?? String(got)}`);
}

// ---- input --------------------------------------------------------------------------------------

/** One input line: its 1-based number, and either the text to score (with the caller's id, if any) or why it cannot be. */
export type InputLine =
  | { line: number; input: string; id?: unknown }
  | { line: number; error: string };

/**
 * The lines of a JSONL input: each a JSON string (`"Anna"`) or an object with a string `input`
 * and any other fields, of which `id` is copied to the result (`{"id": 7, "input": "Anna"}`).
 * Every line counts, a blank one too (it gets an error record); the newline that ends the last
 * line does not start another.
 */
export function parseInputLines(text: string): InputLine[] {
  const raw = text.split('\n');
  if (raw.length > 0 && raw[raw.length - 1] === '') raw.pop();
  return raw.map((l, i): InputLine => {
    const line = i + 1;
    const s = l.endsWith('\r') ? l.slice(0, -1) : l;
    if (s.trim() === '') return { line, error: 'blank line: expected a JSON string or {"input": "..."}' };
    let v: unknown;
    try {
      v = JSON.parse(s);
    } catch (e) {
      return { line, error: `not JSON (${(e as Error).message})` };
    }
    if (typeof v === 'string') return { line, input: v };
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      if (typeof o.input !== 'string') return { line, error: `an object needs a string 'input', got ${o.input === undefined ? 'none' : typeof o.input}` };
      return o.id === undefined ? { line, input: o.input } : { line, input: o.input, id: o.id };
    }
    return { line, error: `expected a JSON string or {"input": "..."}, got ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}` };
  });
}

// ---- jobs ---------------------------------------------------------------------------------------

/** SHA-256 in hex. */
export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The queue a model's jobs go to: one per model file content, so a worker only ever takes jobs of the model it loaded. */
export function queueName(modelSha: string): string {
  return `recur-score-${modelSha.slice(0, 16)}`;
}

/** The run id of scoring `inputText` with the model `modelSha` in chunks of `chunkSize`. */
export function deriveRunId(modelSha: string, inputText: string, chunkSize: number): string {
  return sha256(`${modelSha}\n${chunkSize}\n${inputText}`).slice(0, 16);
}

/** The valid lines cut into jobs of `chunkSize`, with ids that name their run, index and content. */
export function makeJobs(runId: string, lines: readonly InputLine[], chunkSize: number): ChunkJob[] {
  const valid = lines.filter((l): l is Extract<InputLine, { input: string }> => 'input' in l);
  const jobs: ChunkJob[] = [];
  for (let c = 0, start = 0; start < valid.length; c++, start += chunkSize) {
    const part = valid.slice(start, start + chunkSize);
    const inputs = part.map((l) => l.input);
    // BullMQ refuses ':' in a custom id and an id that is an integer: letters and '-' only
    jobs.push({ id: `${runId}-${c}-${sha256(JSON.stringify(inputs)).slice(0, 12)}`, data: { run: runId, chunk: c, lines: part.map((l) => l.line), inputs } });
  }
  return jobs;
}

const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * Score one chunk: the model in batches of `batchSize`, yielding to the event loop between them
 * (a worker's lock is renewed by a timer; a chunk that held the thread longer than the lock would
 * be taken for stalled and run twice). A batch the model refuses is answered input by input (as
 * `recur predict` does), and an input it refuses alone gets its error instead of an output: that
 * is the input's fault (empty, too long, ...), so it is recorded, not retried. What throws out of
 * here (and is retried by the queue) is everything else: a worker or queue failure.
 */
export async function scoreChunk(predictor: Predictor, inputs: readonly string[], batchSize: number): Promise<ChunkResult> {
  const outputs: (string | null)[] = [];
  const errors: (string | null)[] = [];
  for (let start = 0; start < inputs.length; start += batchSize) {
    if (start > 0) await yieldToLoop();
    const batch = inputs.slice(start, start + batchSize);
    let out: string[] | null = null;
    try {
      out = predictor.predict(batch);
    } catch {
      // answered one by one below
    }
    if (out !== null) {
      for (const o of out) {
        outputs.push(String(o));
        errors.push(null);
      }
      continue;
    }
    const one: { output: string | null; error: string | null }[] = batch.map((input) => {
      try {
        return { output: String(predictor.predict([input])[0]), error: null };
      } catch (e) {
        return { output: null, error: oneLine((e as Error)?.message ?? String(e)) };
      }
    });
    for (const r of one) {
      outputs.push(r.output);
      errors.push(r.error);
    }
  }
  return { outputs, errors };
}

function oneLine(s: string, max = 300): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

// ---- the submitting side ------------------------------------------------------------------------

export interface SubmitHooks {
  /** Lines with a result so far, of all lines (malformed ones count as done from the start). */
  progress?(done: number, total: number): void;
  /** A line for the user: lost or regained Redis, jobs enqueued again, no worker listening. */
  notice?(text: string): void;
  /** Whether any worker listens (asked while nothing progresses; Redis queues only). */
  workers?(): Promise<number>;
}

export interface ScoreSummary {
  runId: string;
  lines: number;
  scored: number;
  errors: number;
  deadLetters: DeadLetter[];
  seconds: number;
}

/** A job's end: done with its result, or failed for good. */
type Outcome = Extract<JobState, { state: 'done' | 'failed' }>;

/** The most unfinished jobs the submitter asks the queue about per poll. */
export const POLL_WINDOW = 1000;

/**
 * Enqueue `jobs` and wait until each has finished or failed for good: the outcome per job id.
 * Errors from the queue (Redis unreachable) are reported once through `notice` and retried every
 * poll until `redisTimeoutMs` has passed without a successful call; then a ScoreError says so.
 * A job the queue no longer knows (Redis restarted without persistence) is enqueued again under
 * the same id.
 */
export async function collect(queue: ScoreQueue, jobs: readonly ChunkJob[], settings: ScoreSettings, hooks: SubmitHooks, countDone: (o: Map<string, Outcome>) => number, total: number): Promise<Map<string, Outcome>> {
  const outcomes = new Map<string, Outcome>();
  let added = false;
  let downSince: number | null = null;
  let lastError = '';
  let idleSince = Date.now();
  let warnedIdle = false;
  let sweepAll = false;
  hooks.progress?.(countDone(outcomes), total);
  while (outcomes.size < jobs.length) {
    try {
      if (!added) {
        await queue.add(jobs);
        added = true;
      }
      // Jobs run roughly in order, so the oldest unfinished ones are asked about, at most
      // POLL_WINDOW per poll (a round trip each); after an outage all of them once, to find
      // every job a restarted Redis lost.
      const unfinished = jobs.filter((j) => !outcomes.has(j.id));
      const pending = sweepAll ? unfinished : unfinished.slice(0, POLL_WINDOW);
      const states: JobState[] = await queue.states(pending.map((j) => j.id));
      sweepAll = false;
      if (downSince !== null) {
        hooks.notice?.(`${queue.where} is reachable again after ${((Date.now() - downSince) / 1000).toFixed(1)} s`);
        downSince = null;
      }
      const missing: ChunkJob[] = [];
      let progressed = false;
      states.forEach((s, i) => {
        const job = pending[i]!;
        if (s.state === 'done' || s.state === 'failed') {
          outcomes.set(job.id, s);
          progressed = true;
        } else if (s.state === 'missing') missing.push(job);
      });
      if (missing.length > 0) {
        hooks.notice?.(`${missing.length} job${missing.length === 1 ? '' : 's'} of this run vanished from ${queue.where} (restarted without persistence?): enqueued again`);
        await queue.add(missing);
      }
      if (progressed) {
        idleSince = Date.now();
        warnedIdle = false;
        hooks.progress?.(countDone(outcomes), total);
      } else if (!warnedIdle && hooks.workers && Date.now() - idleSince > 5000) {
        warnedIdle = true;
        if ((await hooks.workers()) === 0) hooks.notice?.(`no worker listens on queue ${queue.name} yet: start one with the same model file`);
      }
    } catch (e) {
      if (e instanceof ScoreError) throw e;
      lastError = oneLine((e as Error)?.message ?? String(e));
      sweepAll = true;
      if (downSince === null) {
        downSince = Date.now();
        hooks.notice?.(`${queue.where} is unreachable (${lastError}); retrying for up to ${settings.redisTimeoutMs / 1000} s`);
      } else if (Date.now() - downSince > settings.redisTimeoutMs) {
        throw new ScoreError(`${queue.where} has been unreachable for ${settings.redisTimeoutMs / 1000} s (${lastError}); the jobs finished so far are lost with this process, run the same command again to resume run ${jobs[0]?.data.run ?? ''}`);
      }
    }
    if (outcomes.size < jobs.length) await sleep(settings.pollMs);
  }
  return outcomes;
}

/**
 * Score the JSONL `inputText` through `queue` and write the results to `outPath` atomically: one
 * JSON line per input line, in order — `{"line": N, "id": ..., "output": "..."}`, or
 * `{"line": N, "id": ..., "error": "..."}` for a line that is malformed, that the model refused, or
 * whose job failed after all its attempts. Every error line is also a dead-letter entry, handed to
 * the queue (a Redis list, or the embedded queue's array) and returned in the summary.
 */
export async function scoreInput(opts: {
  queue: ScoreQueue;
  inputText: string;
  outPath: string;
  modelSha: string;
  options?: ScoreOptions;
  hooks?: SubmitHooks;
}): Promise<ScoreSummary> {
  const t0 = performance.now();
  const settings = parseOptions(scoreOptionsSchema, opts.options ?? {});
  const lines = parseInputLines(opts.inputText);
  const runId = settings.runId ?? deriveRunId(opts.modelSha, opts.inputText, settings.chunkSize);
  const jobs = makeJobs(runId, lines, settings.chunkSize);
  const malformed = lines.length - jobs.reduce((n, j) => n + j.data.inputs.length, 0);
  const byId = new Map(jobs.map((j) => [j.id, j]));
  const countDone = (o: Map<string, Outcome>): number => {
    let n = malformed;
    for (const id of o.keys()) n += byId.get(id)!.data.inputs.length;
    return n;
  };
  const outcomes = await collect(opts.queue, jobs, settings, opts.hooks ?? {}, countDone, lines.length);

  // assemble: each line's record, from its chunk's outcome (keyed by line number: written once)
  const records = new Map<number, { output?: string; error?: string }>();
  for (const l of lines) if ('error' in l) records.set(l.line, { error: l.error });
  for (const job of jobs) {
    const o = outcomes.get(job.id)!;
    job.data.lines.forEach((line, i) => {
      if (o.state === 'failed') records.set(line, { error: `the job failed after ${o.attempts} attempt${o.attempts === 1 ? '' : 's'}: ${o.reason}` });
      else {
        const err = o.result.errors[i];
        const out = o.result.outputs[i];
        records.set(line, err != null || out == null ? { error: `the model refused this input: ${err ?? 'no output'}` } : { output: out });
      }
    });
  }
  const deadLetters: DeadLetter[] = [];
  const text: string[] = [];
  let scored = 0;
  for (const l of lines) {
    const r = records.get(l.line)!;
    const id = 'id' in l && l.id !== undefined ? { id: l.id } : {};
    if (r.error !== undefined) {
      text.push(JSON.stringify({ line: l.line, ...id, error: r.error }));
      deadLetters.push({ run: runId, line: l.line, ...('input' in l ? { input: l.input } : {}), error: r.error });
    } else {
      text.push(JSON.stringify({ line: l.line, ...id, output: r.output }));
      scored++;
    }
  }
  await writeFileAtomicAsync(opts.outPath, text.length > 0 ? `${text.join('\n')}\n` : '');
  if (deadLetters.length > 0) await opts.queue.deadLetter(deadLetters);
  await opts.queue.remove(jobs.map((j) => j.id)).catch(() => {}); // results are in the file now; a leftover job is only garbage
  return { runId, lines: lines.length, scored, errors: deadLetters.length, deadLetters, seconds: (performance.now() - t0) / 1000 };
}
