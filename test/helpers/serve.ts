/**
 * `recur serve` as separate processes for the tests and bench/serve.ts: start one on a free port
 * (bin/recur.mjs, so dist/ must be built), kill it as a crash would, and a stream client that
 * retries a step on the next server with the version it expects (a replay or a fresh step: never
 * one applied twice).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/recur.mjs', import.meta.url));

export interface ServeProcess {
  url: string;
  proc: ChildProcess;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<void>;
  /** SIGTERM; resolves to the exit code. */
  stop(): Promise<number | null>;
  /** What it wrote to stderr. */
  stderr(): string;
}

/** Start `recur serve ARGS --port 0` (the reference backend: outputs comparable to in-process ones). */
export async function startServe(args: string[], env: Record<string, string> = {}): Promise<ServeProcess> {
  const proc = spawn(process.execPath, [BIN, 'serve', ...args, '--port', '0'], {
    env: { ...process.env, RECUR_BACKEND: 'js', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`recur serve did not start in 30 s: ${err}`)), 30_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /recur serve: (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`recur serve exited (${code}) before listening: ${err}`));
    });
  });
  const exited = new Promise<number | null>((resolve) => {
    if (proc.exitCode !== null) resolve(proc.exitCode);
    else proc.once('exit', (code) => resolve(code));
  });
  return {
    url,
    proc,
    kill: async () => { proc.kill('SIGKILL'); await exited; },
    stop: async () => { proc.kill('SIGTERM'); return exited; },
    stderr: () => err,
  };
}

// node:http with keep-alive: several times less client CPU per request than fetch, which matters
// when the client shares two cores with the servers it loads
const agent = new Agent({ keepAlive: true, maxSockets: 512 });

/** POST a JSON body; resolves to the status and parsed reply, rejects when no reply comes. */
export function post(url: string, body: unknown): Promise<{ status: number; json: any }> {
  const data = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': data.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json: any = null;
        try { json = JSON.parse(text); } catch { json = { text }; }
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

/**
 * `post`, retried on the same server when no reply comes (a reset connection): safe for a step that
 * names its version — a step the server committed before the reset is replayed, not applied again.
 */
export async function postRetry(url: string, body: unknown, tries = 5): Promise<{ status: number; json: any }> {
  for (let i = 1; ; i++) {
    try {
      return await post(url, body);
    } catch (e) {
      if (i >= tries) throw e;
      await new Promise((r) => setTimeout(r, 20 * i));
    }
  }
}

export interface ClientReport {
  /** The output of every step, in order. */
  outputs: unknown[];
  /** Latency of each successful step (ms), retries included. */
  latencies: number[];
  /** Steps that needed a retry (a network error, 503, or 409 on a replay race). */
  retries: number;
  /** Replies marked replayed (the step had been committed by a server that died before replying). */
  replays: number;
  /** When the first failure happened and when the step after it succeeded (ms since the epoch). */
  failedAt: number | null;
  recoveredAt: number | null;
}

/**
 * One stream: create it on the first server, then send `inputs` one step at a time, each with the
 * version it expects. A failed request (no answer, or 503) is retried on the next server in `urls`,
 * which the client then keeps. Gives up after `maxTries` tries of one step.
 */
export async function runStream(urls: string[], model: string, id: string, inputs: unknown[], maxTries = 50): Promise<ClientReport> {
  let server = 0;
  const r: ClientReport = { outputs: [], latencies: [], retries: 0, replays: 0, failedAt: null, recoveredAt: null };
  const send = async (path: string, body: unknown): Promise<any> => {
    for (let attempt = 0; ; attempt++) {
      let status = 0;
      let json: any = null;
      try {
        ({ status, json } = await post(`${urls[server]}${path}`, body));
      } catch {
        status = 0; // connection refused or reset: the server is gone
      }
      if (status === 200 || status === 201) {
        if (attempt > 0 && r.recoveredAt === null) r.recoveredAt = Date.now();
        return json;
      }
      if (status === 0 || status === 503) {
        r.retries++;
        r.failedAt ??= Date.now();
        server = (server + 1) % urls.length;
        if (attempt + 1 >= maxTries) throw new Error(`stream ${id}: ${path} failed ${maxTries} times (last: ${status} ${JSON.stringify(json)})`);
        await new Promise((res) => setTimeout(res, 20 * Math.min(attempt + 1, 10)));
        continue;
      }
      if (status === 409 && path === '/streams' && attempt > 0) {
        // created by the try that lost its reply: this stream has recovered too
        r.recoveredAt ??= Date.now();
        return { id };
      }
      throw new Error(`stream ${id}: ${path} → ${status} ${JSON.stringify(json)}`);
    }
  };
  await send('/streams', { model, id });
  for (let t = 0; t < inputs.length; t++) {
    const t0 = performance.now();
    const reply = await send(`/streams/${id}/step`, { input: inputs[t], version: t });
    r.latencies.push(performance.now() - t0);
    if (reply.version !== t + 1) throw new Error(`stream ${id}: step ${t} made version ${reply.version}`);
    if (reply.replayed) r.replays++;
    r.outputs.push(reply.output);
  }
  return r;
}
