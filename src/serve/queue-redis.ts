/**
 * Batch scoring's queue on Redis (BullMQ): the submitting side (`RedisQueue`) and the worker
 * (`startRedisWorker`). See serve/queue.ts for the interface and its guarantees; this module is
 * imported only when a command asks for Redis, because `bullmq` is an optional peer dependency.
 */
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { WorkerSettings } from './score.ts';
import { redactUrl } from './store.ts';
import { deadLetterKey, isChunkResult, message, sleep, type ChunkData, type ChunkJob, type ChunkProcessor, type DeadLetter, type JobState, type RetryPolicy, type ScoreQueue } from './queue.ts';

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
    this.where = `Redis at ${redactUrl(url)}`;
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
