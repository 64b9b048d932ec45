/**
 * The HTTP server of `recur serve`: task models behind a small JSON API, on Hono.
 *
 *   const server = await createServer([{ name: 'whale', task }], { redis: 'redis://127.0.0.1:6379' });
 *   const { url, close } = await listen(server, { port: 8080 });
 *
 * Endpoints (JSON in and out; every error is {error: "what is wrong"} with the right status):
 *   GET  /healthz                 the process is up
 *   GET  /readyz                  it can serve: the state store answers (503 with the reason if not)
 *   GET  /metrics                 Prometheus text: requests, latency, batch sizes, active streams
 *   GET  /models                  the served models, their tasks and what a stream step takes
 *   POST /predict                 {model?, inputs: string[]} → {outputs: string[]} (the task's predict)
 *   POST /streams                 {model?, id?} → 201 {id, model, version: 0}
 *   GET  /streams/:id             {id, model, version}
 *   POST /streams/:id/step        {input, version?} → {id, version, output}
 *   POST /streams/:id/reset       {version?} → {id, version}: the state back to zeros
 *   DELETE /streams/:id           204
 *
 * Batching: the steps that arrive within one tick (`tickMs`, up to `maxBatch`) are read from the
 * store in one round trip, computed in ONE forward pass per model (models/stream.ts stacks their
 * states along B), and committed in one round trip.
 *
 * Versions: a stream's version counts its changes. A step that names the version it expects is
 * refused with 409 when the stream has moved on — except when it is the step that made the current
 * version (same input), whose stored reply is returned again (`replayed: true`): a client that lost
 * a reply (the server died after committing) retries safely, and no step is applied twice. Without
 * `version` a step applies to whatever the stream holds. Concurrent steps of one stream: one wins,
 * the others get 409 (the compare-and-set of store.ts says why this is optimistic).
 *
 * Trust: models are loaded once at start, never from a path in a request; bodies over
 * `maxBodyBytes`, texts over `maxInputLength`, predict batches over `maxPredictInputs` are refused
 * (413/400); with `token` set every endpoint needs `Authorization: Bearer <token>` (401).
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { serve as serveNode } from '@hono/node-server';
import { z } from 'zod';
import type { Task } from '../train/task.ts';
import { predictBatch } from '../models/files.ts';
import { getTaskSpec, taskNameOf, type TaskSpec } from '../models/registry.ts';
import { streamOf, type TaskStream } from '../models/stream.ts';
import { MemoryStore, RedisStore, StoreUnavailableError, type Commit, type StreamRecord, type StreamStore } from './store.ts';
import { ServeMetrics } from './metrics.ts';
import { isRecord } from '../util/options.ts';

// ---- options ------------------------------------------------------------------------------------

const int = (min: number, max: number, what: string) => z.int({ error: what }).min(min, { error: what }).max(max, { error: what });

/** The options of `createServer` (and, through its flags, of `recur serve`): one schema. */
export const serverOptionsSchema = z.strictObject({
  /** How long a step waits for others to share its forward pass (ms). */
  tickMs: z.number({ error: 'a number of milliseconds in 0..1000' }).min(0, { error: 'a number of milliseconds in 0..1000' }).max(1000, { error: 'a number of milliseconds in 0..1000' }).default(2),
  /** Most steps computed in one tick. */
  maxBatch: int(1, 65536, 'an integer in 1..65536').default(256),
  /** Largest request body. */
  maxBodyBytes: int(64, 64 * 1024 * 1024, 'an integer in 64..67108864').default(64 * 1024),
  /** Longest text of one step or one predict input (characters). */
  maxInputLength: int(1, 1_000_000, 'an integer in 1..1000000').default(1024),
  /** Most inputs of one predict request. */
  maxPredictInputs: int(1, 65536, 'an integer in 1..65536').default(64),
  /** A stream expires this long after its last change. */
  ttlSeconds: z.number({ error: 'a number of seconds > 0' }).positive({ error: 'a number of seconds > 0' }).max(365 * 24 * 3600, { error: 'at most a year' }).default(3600),
  /** The next characters a charlm step returns. */
  top: int(1, 1_000_000, 'a positive integer').default(5),
  /** Bearer token every request must carry (none: no authentication). */
  token: z.string({ error: 'a string of at least 16 characters' }).min(16, { error: 'a string of at least 16 characters' }).optional(),
  /** Redis URL for the stream state (none: in this process's memory). */
  redis: z.string({ error: 'a redis:// or rediss:// URL' }).regex(/^rediss?:\/\//, { error: 'a redis:// or rediss:// URL' }).optional(),
  /** Prefix of the Redis keys (several deployments can share one Redis). */
  redisPrefix: z.string({ error: 'a key prefix' }).regex(/^[A-Za-z0-9:._-]{1,64}$/, { error: 'a key prefix of letters, digits and : . _ -' }).default('recur:'),
});
export type ServerOptions = z.input<typeof serverOptionsSchema>;
type Options = z.output<typeof serverOptionsSchema>;

export class ServeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ServeConfigError';
  }
}

function parseOptions(options: unknown): Options {
  const r = serverOptionsSchema.safeParse(options ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') throw new ServeConfigError(`createServer: unknown option '${issue.keys[0]}' (known: ${Object.keys(serverOptionsSchema.shape).join(', ')})`);
  const key = issue.path.join('.');
  const got = (options as Record<string, unknown>)[key];
  throw new ServeConfigError(`createServer: option '${key}' must be ${issue.message}, got ${key === 'token' ? 'another' : JSON.stringify(got) ?? String(got)}`);
}

// ---- models -------------------------------------------------------------------------------------

export interface ServedModelInput {
  /** The name requests use (`model`): letters, digits, '.', '_', '-'. */
  name: string;
  /** A loaded task (spec.load, or loadTask from recurjs/node). */
  task: Task<any>;
}

interface ServedModel {
  name: string;
  spec: TaskSpec;
  task: Task<any>;
  stream: TaskStream | null;
}

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const STREAM_ID = /^[A-Za-z0-9._:-]{1,128}$/;

// ---- request bodies -------------------------------------------------------------------------------

const modelField = z.string({ error: 'a model name' }).optional();
const predictBody = (o: Options) =>
  z.strictObject({
    model: modelField,
    inputs: z
      .array(z.string({ error: 'a string' }).max(o.maxInputLength, { error: `at most ${o.maxInputLength} characters` }), { error: 'a list of strings' })
      .min(1, { error: 'at least one input' })
      .max(o.maxPredictInputs, { error: `at most ${o.maxPredictInputs} inputs per request` }),
  });
const createBody = z.strictObject({
  model: modelField,
  id: z.string({ error: 'a stream id' }).regex(STREAM_ID, { error: "1..128 letters, digits or '.', '_', ':', '-'" }).optional(),
});
const versionField = z.int({ error: 'an integer ≥ 0' }).min(0, { error: 'an integer ≥ 0' }).optional();
// `input` is checked against the stream's model once the stream's record says which model it is
const stepBody = z.strictObject({ input: z.unknown().optional(), version: versionField });
const resetBody = z.strictObject({ version: versionField });

/** "where: what" of the first issue, as one line (for a 400). */
function issueText(error: z.ZodError, what = 'body'): string {
  const issue = error.issues[0]!;
  if (issue.code === 'unrecognized_keys') return `${what}: unknown field '${issue.keys[0]}'`;
  const path = issue.path.map(String).join('.');
  return `${what}${path ? ` field '${path}'` : ''}: ${issue.message}`;
}

// ---- the server -----------------------------------------------------------------------------------

interface Reply {
  status: 200 | 201 | 204 | 400 | 404 | 409 | 500 | 503;
  body: Record<string, unknown>;
}

interface StepJob {
  id: string;
  input: unknown;
  version: number | undefined;
  reply: (r: Reply) => void;
}

export interface RecurServer {
  /** The Hono app (its `fetch` serves a Request; `listen` puts it on a port). */
  readonly app: Hono;
  readonly store: StreamStore;
  readonly metrics: ServeMetrics;
  readonly options: Readonly<Options>;
  /** Stop batching (steps still queued are answered first) and close the store. */
  close(): Promise<void>;
}

/**
 * The server for these models. Connects to Redis first when `redis` is set (rejects with
 * StoreUnavailableError naming the URL when it cannot).
 */
export async function createServer(models: readonly ServedModelInput[], options: ServerOptions = {}): Promise<RecurServer> {
  const o = parseOptions(options);
  if (!Array.isArray(models) || models.length === 0) throw new ServeConfigError('createServer: give at least one model ({name, task})');
  const served = new Map<string, ServedModel>();
  for (const m of models) {
    if (typeof m?.name !== 'string' || !MODEL_NAME.test(m.name)) throw new ServeConfigError(`createServer: model name ${JSON.stringify(m?.name)} must be 1..64 letters, digits, '.', '_' or '-' (starting with a letter or digit)`);
    if (served.has(m.name)) throw new ServeConfigError(`createServer: two models are named '${m.name}'`);
    const taskName = taskNameOf(m.task?.describe?.().config) ?? m.task?.name;
    const spec = getTaskSpec(taskName);
    m.task.model.eval();
    served.set(m.name, { name: m.name, spec, task: m.task, stream: streamOf(m.task, { maxInputLength: o.maxInputLength, top: o.top }) });
  }
  const store: StreamStore = o.redis
    ? await RedisStore.connect({ url: o.redis, ttlMs: o.ttlSeconds * 1000, prefix: o.redisPrefix })
    : new MemoryStore(o.ttlSeconds * 1000);
  const metrics = new ServeMetrics();
  const batcher = new StepBatcher(o, store, served, metrics);
  const app = buildApp(o, store, served, metrics, batcher);
  return {
    app,
    store,
    metrics,
    options: o,
    async close() {
      await batcher.close();
      await store.close();
    },
  };
}

/** A model by the request's `model` field; without one, the only model served. */
function pickModel(served: Map<string, ServedModel>, name: string | undefined): ServedModel | Reply {
  if (name === undefined) {
    if (served.size === 1) return [...served.values()][0]!;
    return { status: 400, body: { error: `body field 'model' is required: this server serves ${[...served.keys()].join(', ')}` } };
  }
  const m = served.get(name);
  return m ?? { status: 404, body: { error: `no model '${name}' (served: ${[...served.keys()].join(', ')})` } };
}

const unavailable = (e: StoreUnavailableError): Reply => ({ status: 503, body: { error: `stream state store unavailable: ${e.message}` } });

function buildApp(o: Options, store: StreamStore, served: Map<string, ServedModel>, metrics: ServeMetrics, batcher: StepBatcher): Hono {
  const app = new Hono();
  const send = (c: Context, r: Reply) => {
    if (r.status === 503) {
      c.header('Retry-After', '1');
      metrics.storeErrors.inc();
    }
    if (r.status === 409) metrics.conflicts.inc();
    return r.status === 204 ? c.body(null, 204) : c.json(r.body, r.status);
  };
  const guard = async (c: Context, fn: () => Promise<Reply>) => {
    try {
      return send(c, await fn());
    } catch (e) {
      if (e instanceof StoreUnavailableError) return send(c, unavailable(e));
      throw e;
    }
  };

  app.use('*', async (c, next) => {
    const t0 = performance.now();
    await next();
    const route = c.req.routePath === '/*' ? 'other' : c.req.routePath;
    metrics.requests.inc({ route, method: c.req.method, status: String(c.res.status) });
    metrics.latency.observe((performance.now() - t0) / 1000, { route });
  });

  if (o.token !== undefined) {
    // compare digests in constant time: no timing signal about how much of a guess was right
    const want = createHash('sha256').update(o.token).digest();
    app.use('*', async (c, next) => {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header('authorization') ?? '');
      const got = createHash('sha256').update(m?.[1] ?? '').digest();
      if (!m || !timingSafeEqual(got, want)) {
        c.header('WWW-Authenticate', 'Bearer realm="recur"');
        return c.json({ error: m ? 'wrong bearer token' : 'this server needs an Authorization: Bearer <token> header' }, 401);
      }
      await next();
    });
  }

  app.use('*', bodyLimit({ maxSize: o.maxBodyBytes, onError: (c) => c.json({ error: `request body over ${o.maxBodyBytes} bytes` }, 413) }));

  /** The JSON body checked against a schema, or the 400 that says what is wrong with it. */
  async function body<S extends z.ZodType>(c: Context, schema: S, optional = false): Promise<z.output<S> | Reply> {
    const text = await c.req.text();
    if (optional && text.trim() === '') return schema.parse({});
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return { status: 400, body: { error: 'body is not valid JSON' } };
    }
    const r = schema.safeParse(json);
    if (!r.success) return { status: 400, body: { error: isRecord(json) ? issueText(r.error) : 'body must be a JSON object' } };
    return r.data;
  }
  const isReply = (x: unknown): x is Reply => isRecord(x) && typeof x.status === 'number' && isRecord(x.body);
  const streamId = (c: Context): string | Reply => {
    const id = c.req.param('id') ?? '';
    return STREAM_ID.test(id) ? id : { status: 400, body: { error: "a stream id is 1..128 letters, digits or '.', '_', ':', '-'" } };
  };

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', (c) => guard(c, async () => {
    await store.ping();
    return { status: 200, body: { status: 'ready', store: store.kind, models: [...served.keys()] } };
  }));
  app.get('/metrics', async (c) => {
    let active: number | null = null;
    try {
      active = await store.count();
    } catch {
      // the gauge is left out while the store is down; the scrape itself still succeeds
    }
    return c.text(metrics.render(active), 200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
  });
  app.get('/models', (c) => c.json({
    models: [...served.values()].map((m) => ({ name: m.name, task: m.spec.name, topology: m.spec.topology, stream: m.stream ? m.stream.describe : null })),
  }));

  app.post('/predict', (c) => guard(c, async () => {
    const b = await body(c, predictBody(o));
    if (isReply(b)) return b;
    const m = pickModel(served, b.model);
    if (isReply(m)) return m;
    let outputs: unknown;
    try {
      outputs = predictBatch(m.spec, m.task, b.inputs);
    } catch (e) {
      // predict throws typed errors on input it cannot read (a forecast row of the wrong width, ...)
      return { status: 400, body: { error: `predict: ${(e as Error).message}` } };
    }
    return { status: 200, body: { model: m.name, outputs } };
  }));

  app.post('/streams', (c) => guard(c, async () => {
    const b = await body(c, createBody, true);
    if (isReply(b)) return b;
    const m = pickModel(served, b.model);
    if (isReply(m)) return m;
    if (!m.stream) return { status: 400, body: { error: `model '${m.name}' (task ${m.spec.name}) cannot run as a stream; streams: ${[...served.values()].filter((s) => s.stream).map((s) => s.name).join(', ') || 'none'}` } };
    const id = b.id ?? randomUUID();
    if (!(await store.create(id, m.name))) return { status: 409, body: { error: `a stream '${id}' exists already` } };
    return { status: 201, body: { id, model: m.name, version: 0 } };
  }));

  app.get('/streams/:id', (c) => guard(c, async () => {
    const id = streamId(c);
    if (isReply(id)) return id;
    const [r] = await store.load([id]);
    return r ? { status: 200, body: { id, model: r.model, version: r.version } } : notFound(id, o);
  }));

  app.post('/streams/:id/step', async (c) => {
    const id = streamId(c);
    if (isReply(id)) return send(c, id);
    const b = await body(c, stepBody);
    if (isReply(b)) return send(c, b);
    if (b.input === undefined) return send(c, { status: 400, body: { error: "body field 'input' is required" } });
    return send(c, await batcher.step(id, b.input, b.version));
  });

  app.post('/streams/:id/reset', (c) => guard(c, async () => {
    const id = streamId(c);
    if (isReply(id)) return id;
    const b = await body(c, resetBody, true);
    if (isReply(b)) return b;
    const [r] = await store.load([id]);
    if (!r) return notFound(id, o);
    if (b.version !== undefined && b.version !== r.version) return { status: 409, body: { error: `version mismatch: the stream is at version ${r.version}, the request expected ${b.version}`, version: r.version } };
    const [res] = await store.commit([{ id, expected: r.version, state: null, last: null }]);
    if (res === 'missing') return notFound(id, o);
    if (res !== 'ok') return { status: 409, body: { error: 'the stream changed while it was being reset; retry', version: res!.current } };
    return { status: 200, body: { id, version: r.version + 1 } };
  }));

  app.delete('/streams/:id', (c) => guard(c, async () => {
    const id = streamId(c);
    if (isReply(id)) return id;
    if (!(await store.delete(id))) return notFound(id, o);
    return { status: 204, body: {} };
  }));

  app.notFound((c) => c.json({ error: `no endpoint ${c.req.method} ${new URL(c.req.url).pathname}` }, 404));
  app.onError((e, c) => {
    if (e instanceof StoreUnavailableError) return send(c, unavailable(e));
    return c.json({ error: `internal error: ${e.message}` }, 500);
  });
  return app;
}

function notFound(id: string, o: Options): Reply {
  return { status: 404, body: { error: `no stream '${id}' (never created, deleted, or expired ${o.ttlSeconds} s after its last step)` } };
}

// ---- the batcher: the steps of one tick, one store round trip each way, one pass per model --------

class StepBatcher {
  private queue: StepJob[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly running = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly o: Options, private readonly store: StreamStore, private readonly served: Map<string, ServedModel>, private readonly metrics: ServeMetrics) {}

  step(id: string, input: unknown, version: number | undefined): Promise<Reply> {
    if (this.closed) return Promise.resolve({ status: 503, body: { error: 'the server is shutting down' } });
    return new Promise((reply) => {
      this.queue.push({ id, input, version, reply });
      if (this.queue.length >= this.o.maxBatch) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.o.tickMs);
    });
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.queue.length > 0) {
      const jobs = this.queue.splice(0, this.o.maxBatch);
      const p = this.run(jobs).catch((e: unknown) => {
        // never leave a request hanging, never crash the process
        for (const j of jobs) j.reply({ status: 500, body: { error: `internal error: ${(e as Error).message}` } });
      });
      this.running.add(p);
      void p.finally(() => this.running.delete(p));
    }
  }

  private async run(jobs: StepJob[]): Promise<void> {
    let records: (StreamRecord | null)[];
    try {
      records = await this.store.load(jobs.map((j) => j.id));
    } catch (e) {
      const r = e instanceof StoreUnavailableError ? unavailable(e) : { status: 500 as const, body: { error: `internal error: ${(e as Error).message}` } };
      for (const j of jobs) j.reply(r);
      return;
    }
    const seen = new Set<string>();
    const groups = new Map<ServedModel, { job: StepJob; record: StreamRecord; input: unknown; inputJSON: string }[]>();
    jobs.forEach((job, i) => {
      const rec = records[i];
      if (!rec) return job.reply(notFound(job.id, this.o));
      if (seen.has(job.id)) return job.reply({ status: 409, body: { error: 'another step of this stream arrived at the same time and went first; retry (with version to be sure)', version: rec.version } });
      seen.add(job.id);
      const inputJSON = JSON.stringify(job.input);
      if (job.version !== undefined && job.version !== rec.version) {
        // the step that made the current version, asked again: its stored reply, not a second step
        if (job.version === rec.version - 1 && rec.last !== null) {
          const last = JSON.parse(rec.last) as { i: string; o: unknown };
          if (last.i === inputJSON) return job.reply({ status: 200, body: { id: job.id, version: rec.version, output: last.o, replayed: true } });
        }
        return job.reply({ status: 409, body: { error: `version mismatch: the stream is at version ${rec.version}, the request expected ${job.version}`, version: rec.version } });
      }
      const model = this.served.get(rec.model);
      if (!model?.stream) return job.reply({ status: 503, body: { error: `stream '${job.id}' belongs to model '${rec.model}', which this server does not serve` } });
      const parsed = model.stream.check(job.input);
      if (!parsed.ok) return job.reply({ status: 400, body: { error: `body field 'input': ${parsed.error} (model '${model.name}': ${model.stream.describe})` } });
      let g = groups.get(model);
      if (!g) groups.set(model, (g = []));
      g.push({ job, record: rec, input: parsed.value, inputJSON });
    });

    const commits: Commit[] = [];
    const pending: { job: StepJob; record: StreamRecord; output: unknown }[] = [];
    for (const [model, g] of groups) {
      let r: { outputs: unknown[]; states: string[] };
      try {
        r = model.stream!.step(g.map((e) => e.input), g.map((e) => e.record.state));
      } catch (e) {
        for (const { job } of g) job.reply({ status: 500, body: { error: `model '${model.name}': ${(e as Error).message}` } });
        continue;
      }
      this.metrics.batchSize.observe(g.length, { model: model.name });
      g.forEach((e, b) => {
        commits.push({ id: e.job.id, expected: e.record.version, state: r.states[b]!, last: JSON.stringify({ i: e.inputJSON, o: r.outputs[b] }) });
        pending.push({ job: e.job, record: e.record, output: r.outputs[b] });
      });
    }
    if (commits.length === 0) return;
    let results;
    try {
      results = await this.store.commit(commits);
    } catch (e) {
      const r = e instanceof StoreUnavailableError ? unavailable(e) : { status: 500 as const, body: { error: `internal error: ${(e as Error).message}` } };
      for (const p of pending) p.job.reply(r);
      return;
    }
    pending.forEach(({ job, record, output }, i) => {
      const res = results[i]!;
      if (res === 'ok') {
        this.metrics.steps.inc({ model: record.model });
        job.reply({ status: 200, body: { id: job.id, version: record.version + 1, output } });
      } else if (res === 'missing') job.reply(notFound(job.id, this.o));
      else job.reply({ status: 409, body: { error: 'another step of this stream was committed first; retry (with version to be sure)', version: res.current } });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.flush();
    await Promise.all([...this.running]);
  }
}

// ---- on a port ------------------------------------------------------------------------------------

export interface Listening {
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  port: number;
  /** Stop listening, answer the steps in flight, close the store. */
  close(): Promise<void>;
}

/** Serve on host:port (port 0: a free one). Rejects with the listen error (EADDRINUSE, EACCES). */
export async function listen(server: RecurServer, o: { port?: number; host?: string } = {}): Promise<Listening> {
  const host = o.host ?? '127.0.0.1';
  const http = await new Promise<ReturnType<typeof serveNode>>((resolve, reject) => {
    const s = serveNode({ fetch: server.app.fetch, port: o.port ?? 8080, hostname: host }, () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
  // Idle keep-alive connections are kept longer than a load balancer's idle timeout (60 s is the
  // common default): a server that closes first races the balancer's next request on that
  // connection, which then fails with a reset (Node's default is 5 s).
  const node = http as import('node:http').Server;
  node.keepAliveTimeout = 65_000;
  node.headersTimeout = 66_000;
  const port = (http.address() as AddressInfo).port;
  const shown = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}`,
    port,
    async close() {
      await new Promise<void>((done) => {
        http.close(() => done());
        if ('closeIdleConnections' in http) http.closeIdleConnections();
      });
      await server.close();
    },
  };
}
