/**
 * `recur serve` under load: `node --import tsx bench/serve.ts [--streams N] [--steps T] [--hidden H]`
 * (needs `npm run build`: the servers are bin/recur.mjs processes; and redis-server for the Redis rows).
 *
 * N concurrent stream clients (default 1000) each create a stream and send T steps (default 20) of
 * one character to a character LM (Embedding 32 → LSTM H (default 128) → Linear; random weights:
 * speed does not depend on them), each step naming the version it expects, over loopback HTTP with
 * keep-alive. Scenarios:
 *   memory, 1 process      the embedded default
 *   redis, 1 process       state in Redis (one read and one compare-and-set round trip per tick)
 *   redis, 2 processes     streams spread over two processes sharing Redis
 *   kill -9                two processes; one is SIGKILLed a third of the way in; its clients retry
 *                          on the other. Recovery = from the kill to each failed-over client's next
 *                          successful step (median and max over those clients).
 * Reports steps/s (all streams, wall clock from the first create to the last reply), p50/p99 step
 * latency (client side, retries included), and the mean batch per tick from the servers' metrics.
 * Servers run the reference backend (RECUR_BACKEND=js) unless --backend wasm; --only memory,redis1,
 * redis2,kill picks scenarios. Bounded: 4 × N × T
 * requests (80 000 by default). The client shares the machine with the servers and Redis.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildLMFromText } from '../src/models/lm.ts';
import { saveTask } from '../src/models/files.ts';
import { redisInstalled, startRedis } from '../test/helpers/redis.ts';
import { post, runStream, startServe, type ClientReport, type ServeProcess } from '../test/helpers/serve.ts';

const { values } = parseArgs({ options: { streams: { type: 'string', default: '1000' }, steps: { type: 'string', default: '20' }, hidden: { type: 'string', default: '128' }, backend: { type: 'string', default: 'js' }, only: { type: 'string', default: 'memory,redis1,redis2,kill' } } });
const ONLY = new Set(values.only!.split(','));
const STREAMS = Number(values.streams), STEPS = Number(values.steps), HIDDEN = Number(values.hidden);
if (![STREAMS, STEPS, HIDDEN].every((n) => Number.isInteger(n) && n > 0)) throw new Error('--streams, --steps and --hidden take positive integers');
const env = { RECUR_BACKEND: values.backend! };

const TEXT = 'Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, and nothing particular to interest me on shore. '.repeat(4);
const dir = mkdtempSync(join(tmpdir(), 'recur-bench-serve-'));
const model = join(dir, 'lm.safetensors');
saveTask(buildLMFromText({ cell: 'lstm', embeddingDim: 32, hiddenSize: HIDDEN, numLayers: 1, seqLen: 8, batchSize: 2, stepsPerEpoch: 1, evalBatchSize: 2, seed: 1 }, TEXT).task, model);
const inputsOf = (i: number): string[] => Array.from({ length: STEPS }, (_, t) => TEXT[(i * 7 + t) % TEXT.length]!);

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

async function meanBatch(servers: ServeProcess[]): Promise<number> {
  let sum = 0, count = 0;
  for (const s of servers) {
    try {
      const m = await (await fetch(`${s.url}/metrics`)).text();
      sum += Number(/recur_stream_batch_size_sum\{model="lm"\} ([\d.e+]+)/.exec(m)?.[1] ?? 0);
      count += Number(/recur_stream_batch_size_count\{model="lm"\} (\d+)/.exec(m)?.[1] ?? 0);
    } catch { /* a killed server has no metrics */ }
  }
  return count ? sum / count : NaN;
}

interface Row { scenario: string; stepsPerS: number; p50: number; p99: number; batch: number; note: string }
const rows: Row[] = [];

async function scenario(name: string, servers: ServeProcess[], kill?: ServeProcess): Promise<void> {
  const urls = servers.map((s) => s.url);
  const t0 = performance.now();
  let killedAt = 0;
  const clients: Promise<ClientReport>[] = Array.from({ length: STREAMS }, (_, i) => runStream([...urls.slice(i % urls.length), ...urls.slice(0, i % urls.length)], 'lm', `${name.replace(/\W+/g, '-')}-${i}`, inputsOf(i), 200));
  if (kill) {
    await new Promise((r) => setTimeout(r, 50));
    // a third of the way in, by the steps committed on the survivor
    const other = servers.find((s) => s !== kill)!;
    for (;;) {
      const m = await (await fetch(`${other.url}/metrics`)).text();
      if (Number(/recur_stream_steps_total\{model="lm"\} (\d+)/.exec(m)?.[1] ?? 0) > (STREAMS * STEPS) / 6) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    killedAt = Date.now();
    await kill.kill();
  }
  const reports = await Promise.all(clients);
  const wall = (performance.now() - t0) / 1000;
  const lat = reports.flatMap((r) => r.latencies);
  let note = '';
  if (kill) {
    const rec = reports.filter((r) => r.recoveredAt !== null).map((r) => r.recoveredAt! - killedAt);
    const slowest = reports.reduce((a, r) => ((r.recoveredAt ?? 0) > (a.recoveredAt ?? 0) ? r : a));
    note = `${rec.length} streams failed over; recovery median ${quantile(rec, 0.5)} ms, p90 ${quantile(rec, 0.9)} ms, max ${Math.max(...rec)} ms ` +
      `(that client: first failure ${slowest.failedAt! - killedAt} ms after the kill, ${slowest.retries} retries); ${reports.reduce((s, r) => s + r.replays, 0)} replayed replies`;
  }
  rows.push({ scenario: name, stepsPerS: (STREAMS * STEPS) / wall, p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), batch: await meanBatch(servers), note });
  process.stderr.write(`${name}: done in ${wall.toFixed(1)} s\n`);
}

const started: ServeProcess[] = [];
const start = async (args: string[]) => {
  const s = await startServe([`lm=${model}`, ...args], env);
  started.push(s);
  return s;
};
try {
  if (ONLY.has('memory')) {
    const s = await start([]);
    await post(`${s.url}/streams`, { id: 'warm' }); // first request compiles the handlers
    await scenario('memory, 1 process', [s]);
    await s.stop();
  }
  if (redisInstalled && (ONLY.has('redis1') || ONLY.has('redis2') || ONLY.has('kill'))) {
    const redis = await startRedis();
    try {
      const a = await start(['--redis', redis.url]);
      if (ONLY.has('redis1')) await scenario('redis, 1 process', [a]);
      const b = await start(['--redis', redis.url]);
      if (ONLY.has('redis2')) await scenario('redis, 2 processes', [a, b]);
      if (ONLY.has('kill')) await scenario('redis, 2 processes, kill -9 one', [a, b], a);
    } finally {
      await redis.stop();
    }
  } else if (!redisInstalled) {
    process.stderr.write('redis-server is not installed: the Redis scenarios are skipped\n');
  }
} finally {
  for (const s of started) await s.kill();
  rmSync(dir, { recursive: true, force: true });
}

console.log(`recur serve: ${STREAMS} streams × ${STEPS} steps, charlm E=32 H=${HIDDEN} LSTM, backend ${values.backend}; ${cpus().length} cores, load average ${loadavg()[0]!.toFixed(1)} at the end\n`);
console.log('| scenario | steps/s | p50 step (ms) | p99 step (ms) | mean batch per tick | notes |');
console.log('|---|---:|---:|---:|---:|---|');
for (const r of rows) console.log(`| ${r.scenario} | ${r.stepsPerS.toFixed(0)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.batch.toFixed(1)} | ${r.note} |`);
