/**
 * The queue behind batch scoring (serve/score.ts), as one small interface with two
 * implementations:
 *   - `MemoryQueue`: in this process, no Redis — `recur score` without --redis. Jobs run one at a
 *     time through the same chunk function a worker runs, with the same retries and backoff.
 *   - `RedisQueue` + `startRedisWorker`: BullMQ on Redis — `recur score --redis URL` submits,
 *     any number of `recur worker` processes on any machines take the jobs.
 *
 * Guarantees (BullMQ's, which the tests check with real processes): a job is processed at least
 * once — a worker that dies mid-job (kill -9) stops renewing its lock, and after `lockMs` another
 * worker's stalled check puts the job back in the queue; a job that throws is retried `attempts`
 * times with exponential backoff. Results are only ever written by the submitter, once per line.
 */
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { WorkerSettings } from './score.ts';

/** A chunk of a run: the 1-based input line numbers and their inputs. */
export interface ChunkData {
  run: string;
  chunk: number;
  lines: number[];
  inputs: string[];
}

export interface ChunkJob {
  /** Idempotent: the run id, the chunk index and a hash of the inputs. */
  id: string;
  data: ChunkData;
}

/** Per input of a chunk: its output, or (null output) the model's reason for refusing it. */
export interface ChunkResult {
  outputs: (string | null)[];
  errors: (string | null)[];
}

export type JobState =
  | { state: 'done'; result: ChunkResult }
  | { state: 'failed'; reason: string; attempts: number }
  | { state: 'pending' }
  | { state: 'missing' };

/** An input that got no output: which run and line, the input when there was one, and why. */
export interface DeadLetter {
  run: string;
  line: number;
  input?: string;
  error: string;
}

/** What processes a chunk: `scoreChunk` with a loaded model, or a test's stand-in. */
export type ChunkProcessor = (data: ChunkData) => Promise<ChunkResult>;

/** How often a job is tried, and the delay before the first retry (doubling after). */
export interface RetryPolicy {
  attempts: number;
  backoffMs: number;
}

export interface ScoreQueue {
  /** The queue's name (one per model). */
  readonly name: string;
  /** Where it lives, for messages: 'the embedded queue' or 'Redis at redis://…'. */
  readonly where: string;
  /** Enqueue jobs; a job whose id the queue already holds is not added again. */
  add(jobs: readonly ChunkJob[]): Promise<void>;
  /** Each job's state, in the order of `ids`. */
  states(ids: readonly string[]): Promise<JobState[]>;
  /** Forget these jobs (their results have been written). */
  remove(ids: readonly string[]): Promise<void>;
  /** Append to the dead-letter list. */
  deadLetter(entries: readonly DeadLetter[]): Promise<void>;
  close(): Promise<void>;
}

/** Whether `v` is a chunk's result for `n` inputs. */
export function isChunkResult(v: unknown, n: number): v is ChunkResult {
  const r = v as ChunkResult | null;
  return r !== null && typeof r === 'object' && Array.isArray(r.outputs) && Array.isArray(r.errors) && r.outputs.length === n && r.errors.length === n;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function message(e: unknown): string {
  return ((e as Error)?.message ?? String(e)).replace(/\s+/g, ' ').trim();
}

// ---- in this process ----------------------------------------------------------------------------

/** The embedded queue: jobs run in this process, in order, one at a time, with retries and backoff. */
export class MemoryQueue implements ScoreQueue {
  readonly where = 'the embedded queue';
  /** The dead-letter list (what a Redis queue keeps in Redis). */
  readonly deadLetters: DeadLetter[] = [];
  private readonly jobs = new Map<string, { data: ChunkData; state: JobState }>();
  private readonly order: string[] = [];
  private running: Promise<void> | null = null;

  constructor(readonly name: string, private readonly process: ChunkProcessor, private readonly retry: RetryPolicy) {}

  async add(jobs: readonly ChunkJob[]): Promise<void> {
    for (const j of jobs) {
      if (this.jobs.has(j.id)) continue;
      this.jobs.set(j.id, { data: j.data, state: { state: 'pending' } });
      this.order.push(j.id);
    }
    this.running ??= this.drain().finally(() => { this.running = null; });
  }

  private async drain(): Promise<void> {
    while (this.order.length > 0) {
      const id = this.order.shift()!;
      const job = this.jobs.get(id);
      if (job === undefined) continue;
      for (let attempt = 1; ; attempt++) {
        try {
          job.state = { state: 'done', result: await this.process(job.data) };
          break;
        } catch (e) {
          if (attempt >= this.retry.attempts) {
            job.state = { state: 'failed', reason: message(e), attempts: attempt };
            break;
          }
          await sleep(this.retry.backoffMs * 2 ** (attempt - 1));
        }
      }
    }
  }

  async states(ids: readonly string[]): Promise<JobState[]> {
    return ids.map((id) => this.jobs.get(id)?.state ?? { state: 'missing' });
  }

  async remove(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.jobs.delete(id);
  }

  async deadLetter(entries: readonly DeadLetter[]): Promise<void> {
    this.deadLetters.push(...entries);
  }

  async close(): Promise<void> {
    await this.running;
  }
}

// ---- on Redis (BullMQ) --------------------------------------------------------------------------

/** The Redis list that holds a queue's dead letters (JSON, oldest first). */
export function deadLetterKey(name: string): string {
  return `${name}:dead-letter`;
}

/** A URL with any password masked, for messages. */
export function showUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}

function redisFor(url: string, blocking: boolean): Redis {
  if (!/^rediss?:\/\//.test(url)) throw new Error(`a Redis URL starts with redis:// or rediss://, got '${url}'`);
  // A worker's blocking connection must wait through an outage (BullMQ requires
  // maxRetriesPerRequest null); the submitter's fails fast instead, so it can say Redis is down.
  return new Redis(url, blocking
    ? { maxRetriesPerRequest: null, lazyConnect: false }
    : { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000, retryStrategy: (n) => Math.min(n * 100, 1000) });
}

/** The submitting side of a BullMQ queue. */
export class RedisQueue implements ScoreQueue {
  readonly where: string;
  private readonly connection: Redis;
  private readonly queue: Queue;

  constructor(readonly name: string, url: string, private readonly retry: RetryPolicy) {
    this.where = `Redis at ${showUrl(url)}`;
    this.connection = redisFor(url, false);
    this.connection.on('error', () => {}); // reported by the calls that fail, once per outage
    this.queue = new Queue(name, { connection: this.connection });
    this.queue.on('error', () => {});
  }

  /** Wait until Redis answers (or throw its error after `timeoutMs`). */
  async ready(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await this.connection.ping();
        return;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`${this.where} does not answer (${message(e)})`);
        await sleep(200);
      }
    }
  }

  async add(jobs: readonly ChunkJob[]): Promise<void> {
    if (jobs.length === 0) return;
    await this.queue.addBulk(jobs.map((j) => ({
      name: 'chunk',
      data: j.data,
      opts: { jobId: j.id, attempts: this.retry.attempts, backoff: { type: 'exponential', delay: this.retry.backoffMs }, removeOnComplete: false, removeOnFail: false },
    })));
  }

  async states(ids: readonly string[]): Promise<JobState[]> {
    return Promise.all(ids.map(async (id): Promise<JobState> => {
      // The state first, then the job: read the other way round, a job that completes between the
      // two reads shows as completed with the result it did not have yet.
      const state = await this.queue.getJobState(id);
      if (state === 'unknown') return { state: 'missing' };
      if (state !== 'completed' && state !== 'failed') return { state: 'pending' };
      const job: Job | undefined = await this.queue.getJob(id);
      if (job === undefined || job === null) return { state: 'missing' };
      if (state === 'failed') return { state: 'failed', reason: job.failedReason ?? 'unknown', attempts: job.attemptsMade };
      if (isChunkResult(job.returnvalue, (job.data as ChunkData).inputs.length)) return { state: 'done', result: job.returnvalue };
      // Completed without a result for each input: a job hash that does not match its id (Redis
      // emptied and refilled under a worker). Dropped, to be enqueued anew.
      await job.remove().catch(() => {});
      return { state: 'missing' };
    }));
  }

  async remove(ids: readonly string[]): Promise<void> {
    await Promise.all(ids.map((id) => this.queue.remove(id)));
  }

  async deadLetter(entries: readonly DeadLetter[]): Promise<void> {
    if (entries.length === 0) return;
    await this.ready(10_000);
    await this.connection.rpush(deadLetterKey(this.name), ...entries.map((e) => JSON.stringify(e)));
  }

  /** The dead-letter list as stored. */
  async deadLetters(): Promise<DeadLetter[]> {
    await this.ready(10_000);
    return (await this.connection.lrange(deadLetterKey(this.name), 0, -1)).map((s) => JSON.parse(s) as DeadLetter);
  }

  /** Workers connected to this queue (BullMQ names their connections). */
  async workers(): Promise<number> {
    return this.queue.getWorkersCount();
  }

  async close(): Promise<void> {
    await this.queue.close().catch(() => {});
    this.connection.disconnect();
  }
}

export interface WorkerEvents {
  /** A job started (`attempt` counts from 1; a job taken over from a dead worker counts as its next). */
  started?(id: string, data: ChunkData, attempt: number): void;
  finished?(id: string, data: ChunkData, ms: number): void;
  failed?(id: string, data: ChunkData, reason: string, final: boolean): void;
  /** Lost Redis (once per outage), and found it again. */
  down?(reason: string): void;
  up?(): void;
}

export interface RunningWorker {
  /** Stop taking jobs, finish the current ones, disconnect. */
  close(): Promise<void>;
}

/** Take the jobs of queue `name` on Redis at `url` and process each with `process`. */
export function startRedisWorker(name: string, url: string, process: ChunkProcessor, settings: WorkerSettings, events: WorkerEvents = {}): RunningWorker {
  const connection = redisFor(url, true);
  let down = false;
  const markUp = (): void => {
    if (!down) return;
    down = false;
    events.up?.();
  };
  const worker = new Worker(name, async (job: Job) => {
    markUp();
    const data = job.data as ChunkData;
    events.started?.(job.id!, data, job.attemptsMade + 1);
    const t0 = performance.now();
    const result = await process(data);
    events.finished?.(job.id!, data, performance.now() - t0);
    return result;
  }, {
    connection,
    concurrency: settings.concurrency,
    lockDuration: settings.lockMs,
    stalledInterval: settings.stalledMs,
    // a job whose worker died twice in a row is suspect (it may be what kills them): failed, not retried forever
    maxStalledCount: 2,
  });
  worker.on('failed', (job, err) => {
    if (job) events.failed?.(job.id!, job.data as ChunkData, message(err), job.attemptsMade >= (job.opts.attempts ?? 1));
  });
  worker.on('error', (e) => {
    if (down) return;
    down = true;
    events.down?.(message(e));
  });
  connection.on('ready', markUp);
  return {
    close: async () => {
      await worker.close();
      connection.disconnect();
    },
  };
}
