/**
 * Where the streams of `recur serve` keep their state between steps: in this process's memory (the
 * default: nothing to install) or in Redis (`--redis URL`: any server process continues any stream).
 *
 * A stream record: the model it belongs to, a version (how many changes — steps and resets — it has
 * had), its state (a task-stream JSON string, models/stream.ts; null: fresh), and the last step's
 * input and output (so that a client which lost a reply can ask again and get the same answer).
 *
 * Concurrency: OPTIMISTIC. A step reads the record, computes, and commits only if the version is
 * still the one it read (a compare-and-set: a Lua script in Redis, which runs atomically; a plain
 * check in memory, where nothing runs between the check and the write). A stream stepped from two
 * clients at once therefore has exactly one winner; the loser is refused (409) and may retry.
 * Why not a per-stream lock: a lock held across the computation outlives a process killed with
 * SIGKILL (its stream stays locked until a lease runs out), costs two more round trips per step, and
 * still needs fencing against a holder that paused past its lease. A compare-and-set needs none of
 * that, and a stream is a sequence by nature — its client waits for step k before sending step k+1,
 * so conflicts are a client bug or a retry race, rare enough to answer with "retry".
 *
 * Every record expires `ttlMs` after its last change (Redis PEXPIRE; a sweep in memory).
 */
import { Redis } from 'ioredis';

export interface StreamRecord {
  model: string;
  version: number;
  /** The task stream's state (null: fresh or reset). */
  state: string | null;
  /** The last step: its input and output as JSON, or null before the first step or after a reset. */
  last: string | null;
}

export interface Commit {
  id: string;
  /** The version read before computing; the commit happens only if it is still current. */
  expected: number;
  state: string | null;
  last: string | null;
}

/** A commit's outcome: 'ok', 'missing' (deleted or expired meanwhile), or the version now current. */
export type CommitResult = 'ok' | 'missing' | { current: number };

/** The store cannot be reached (a server answers 503 with the reason). */
export class StoreUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreUnavailableError';
  }
}

export interface StreamStore {
  /** 'memory' or 'redis'. */
  readonly kind: string;
  /** Create a fresh stream; false when the id is taken. */
  create(id: string, model: string): Promise<boolean>;
  /** The records of these ids (null: unknown or expired), in one round trip. */
  load(ids: readonly string[]): Promise<(StreamRecord | null)[]>;
  /** Compare-and-set each record, in one round trip. */
  commit(commits: readonly Commit[]): Promise<CommitResult[]>;
  /** Delete a stream; false when it did not exist. */
  delete(id: string): Promise<boolean>;
  /** Streams not yet expired. */
  count(): Promise<number>;
  /** Throws StoreUnavailableError when the store cannot answer. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

// ---- memory -------------------------------------------------------------------------------------

export class MemoryStore implements StreamStore {
  readonly kind = 'memory';
  private readonly records = new Map<string, StreamRecord & { expires: number }>();
  private sweptAt = 0;

  constructor(private readonly ttlMs: number, private readonly now: () => number = Date.now) {}

  /** Drop expired records (at most once a second: a step must not scan every stream). */
  private sweep(): void {
    const t = this.now();
    if (t - this.sweptAt < 1000) return;
    this.sweptAt = t;
    for (const [id, r] of this.records) if (r.expires <= t) this.records.delete(id);
  }

  private get(id: string): (StreamRecord & { expires: number }) | null {
    const r = this.records.get(id);
    if (!r) return null;
    if (r.expires <= this.now()) {
      this.records.delete(id);
      return null;
    }
    return r;
  }

  async create(id: string, model: string): Promise<boolean> {
    this.sweep();
    if (this.get(id)) return false;
    this.records.set(id, { model, version: 0, state: null, last: null, expires: this.now() + this.ttlMs });
    return true;
  }

  async load(ids: readonly string[]): Promise<(StreamRecord | null)[]> {
    this.sweep();
    return ids.map((id) => {
      const r = this.get(id);
      return r ? { model: r.model, version: r.version, state: r.state, last: r.last } : null;
    });
  }

  async commit(commits: readonly Commit[]): Promise<CommitResult[]> {
    return commits.map((c) => {
      const r = this.get(c.id);
      if (!r) return 'missing';
      if (r.version !== c.expected) return { current: r.version };
      this.records.set(c.id, { model: r.model, version: r.version + 1, state: c.state, last: c.last, expires: this.now() + this.ttlMs });
      return 'ok';
    });
  }

  async delete(id: string): Promise<boolean> {
    const had = this.get(id) !== null;
    this.records.delete(id);
    return had;
  }

  async count(): Promise<number> {
    this.sweptAt = 0;
    this.sweep();
    return this.records.size;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.records.clear();
  }
}

// ---- redis --------------------------------------------------------------------------------------

/**
 * Keys: `{prefix}s:{id}` a hash {m: model, v: version, s: state, o: last step}; `{prefix}index` a
 * sorted set of ids scored by expiry time, for counting live streams without a SCAN. (Two keys in
 * one script: a Redis Cluster would need them in one hash slot — this store targets one Redis
 * primary, with or without replicas; docs/deploying.md.)
 */
const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'm', ARGV[1], 'v', 0, 's', '', 'o', '')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]) + tonumber(ARGV[2]), ARGV[4])
return 1`;

// compare-and-set: returns -1 when written, -2 when the stream is gone, else the current version
const COMMIT = `
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return -2 end
if tonumber(v) ~= tonumber(ARGV[1]) then return tonumber(v) end
redis.call('HSET', KEYS[1], 'v', tonumber(v) + 1, 's', ARGV[2], 'o', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], tonumber(ARGV[5]) + tonumber(ARGV[4]), ARGV[6])
return -1`;

export interface RedisStoreOptions {
  url: string;
  ttlMs: number;
  /** Key prefix (default 'recur:'). */
  prefix?: string;
  /** How long to wait for the first connection before giving up (default 5000 ms). */
  connectTimeoutMs?: number;
}

export class RedisStore implements StreamStore {
  readonly kind = 'redis';
  private readonly prefix: string;
  private readonly index: string;

  private constructor(private readonly redis: Redis, private readonly ttlMs: number, prefix: string) {
    this.prefix = prefix;
    this.index = `${prefix}index`;
  }

  /** Connect (resolves once Redis answers; rejects with StoreUnavailableError naming the URL). */
  static async connect(o: RedisStoreOptions): Promise<RedisStore> {
    const redis = new Redis(o.url, {
      lazyConnect: true,
      // fail a command at once while disconnected (the client gets a 503 now, not a hang), and
      // keep reconnecting in the background: the server recovers by itself when Redis is back
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (times) => Math.min(50 * times, 1000),
      connectTimeout: o.connectTimeoutMs ?? 5000,
    });
    redis.on('error', () => {}); // reported per request (503) and by /readyz; never an uncaught event
    try {
      await redis.connect();
      await redis.ping();
    } catch (e) {
      redis.disconnect();
      throw new StoreUnavailableError(`cannot reach Redis at ${redactUrl(o.url)}: ${(e as Error).message}`);
    }
    return new RedisStore(redis, o.ttlMs, o.prefix ?? 'recur:');
  }

  private key(id: string): string {
    return `${this.prefix}s:${id}`;
  }

  private async run<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw new StoreUnavailableError(`Redis ${what} failed: ${(e as Error).message}`);
    }
  }

  async create(id: string, model: string): Promise<boolean> {
    const r = await this.run('create', () => this.redis.eval(CREATE, 2, this.key(id), this.index, model, this.ttlMs, Date.now(), id));
    return r === 1;
  }

  async load(ids: readonly string[]): Promise<(StreamRecord | null)[]> {
    if (ids.length === 0) return [];
    const p = this.redis.pipeline();
    for (const id of ids) p.hmget(this.key(id), 'm', 'v', 's', 'o');
    const results = await this.run('read', () => p.exec());
    return ids.map((_, i) => {
      const [err, row] = results![i]!;
      if (err) throw new StoreUnavailableError(`Redis read failed: ${err.message}`);
      const [m, v, s, o] = row as (string | null)[];
      if (m === null || v === null) return null;
      return { model: m, version: Number(v), state: s ? s : null, last: o ? o : null };
    });
  }

  async commit(commits: readonly Commit[]): Promise<CommitResult[]> {
    if (commits.length === 0) return [];
    const p = this.redis.pipeline();
    const now = Date.now();
    for (const c of commits) p.eval(COMMIT, 2, this.key(c.id), this.index, c.expected, c.state ?? '', c.last ?? '', this.ttlMs, now, c.id);
    const results = await this.run('write', () => p.exec());
    return commits.map((_, i) => {
      const [err, r] = results![i]!;
      if (err) throw new StoreUnavailableError(`Redis write failed: ${err.message}`);
      return r === -1 ? 'ok' : r === -2 ? 'missing' : { current: Number(r) };
    });
  }

  async delete(id: string): Promise<boolean> {
    const r = await this.run('delete', () => this.redis.multi().del(this.key(id)).zrem(this.index, id).exec());
    return r?.[0]?.[1] === 1;
  }

  async count(): Promise<number> {
    const r = await this.run('count', () => this.redis.multi().zremrangebyscore(this.index, '-inf', Date.now()).zcard(this.index).exec());
    return Number(r?.[1]?.[1] ?? 0);
  }

  async ping(): Promise<void> {
    await this.run('ping', () => this.redis.ping());
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

/** A Redis URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(a malformed URL)';
  }
}
