/**
 * The queue behind batch scoring (serve/score.ts), as one small interface with two
 * implementations:
 *   - `MemoryQueue`: in this process, no Redis — `recur score` without --redis. Jobs run one at a
 *     time through the same chunk function a worker runs, with the same retries and backoff.
 *   - `RedisQueue` + `startRedisWorker` (serve/queue-redis.ts): BullMQ on Redis — `recur score
 *     --redis URL` submits, any number of `recur worker` processes on any machines take the jobs.
 *     That module is loaded only when Redis is asked for: BullMQ is an optional peer dependency
 *     (its msgpack codec brings a native add-on with an install script, which a user of the
 *     library who never queues on Redis should not get).
 *
 * Guarantees (BullMQ's, which the tests check with real processes): a job is processed at least
 * once — a worker that dies mid-job (kill -9) stops renewing its lock, and after `lockMs` another
 * worker's stalled check puts the job back in the queue; a job that throws is retried `attempts`
 * times with exponential backoff. Results are only ever written by the submitter, once per line.
 */
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

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function message(e: unknown): string {
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

/** The Redis list that holds a queue's dead letters (JSON, oldest first). */
export function deadLetterKey(name: string): string {
  return `${name}:dead-letter`;
}
