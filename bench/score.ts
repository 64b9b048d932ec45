/**
 * Batch-scoring throughput: `node --import tsx bench/score.ts [--lines N] [--chunk N] [--repeats N]`
 * (after `npm run build`: it runs the CLI, bin/recur.mjs, as a user would).
 *
 * Trains a small classify-names model (a few steps: throughput does not depend on its quality),
 * writes N JSONL input lines, and scores them with `recur score` three ways: embedded (one
 * process, no Redis), and through a local redis-server with 1 and with 2 `recur worker`
 * processes already running (their model load is not counted). The figure is the one
 * `recur score` prints: input lines over the time from reading the input to the atomic write of
 * the output, so it includes queueing, polling and assembly. Bounded: about 30 s of work at the
 * defaults. Redis comes from the tests' helper (test/helpers/redis.ts): Debian's redis-server.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpus, loadavg, tmpdir } from 'node:os';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startRedis } from '../test/helpers/redis.ts';
import { RedisQueue } from '../src/serve/queue-redis.ts';
import { queueName, sha256 } from '../src/serve/score.ts';

const BIN = fileURLToPath(new URL('../bin/recur.mjs', import.meta.url));
const { values } = parseArgs({ options: { lines: { type: 'string', default: '20000' }, chunk: { type: 'string', default: '256' }, repeats: { type: 'string', default: '2' } } });
const LINES = Number(values.lines);
const CHUNK = Number(values.chunk);
const REPEATS = Number(values.repeats);
const DIR = mkdtempSync(join(tmpdir(), 'recur-bench-score-'));
const env = { ...process.env, RECUR_DEBUG: '' };

function recur(args: string[]): string {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: DIR, encoding: 'utf8', env, timeout: 120_000 });
  if (r.status === null || r.status > 1) throw new Error(`recur ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stderr;
}

/** Lines/s as `recur score` reports it. */
function score(extra: string[]): number {
  const err = recur(['score', 'model.safetensors', '--input', 'in.jsonl', '--out', 'out.jsonl', '--chunk', String(CHUNK), '-q', ...extra]);
  const m = /\((\d+) lines\/s\)/.exec(err);
  if (!m) throw new Error(`no rate in: ${err}`);
  return Number(m[1]);
}

const names = ['Anna', 'Boris', 'Chloe', 'Dmitri', 'Emma', 'Farid', 'Greta', 'Hiroshi', 'Ines', 'Jonas', 'Kwame', 'Lena'];
recur(['train', 'classify-names', '--max-steps', '5', '--run-dir', 'run']);
writeFileSync(join(DIR, 'model.safetensors'), readFileSync(join(DIR, 'run', 'model.safetensors')));
writeFileSync(join(DIR, 'in.jsonl'), Array.from({ length: LINES }, (_, i) => `${JSON.stringify(names[i % names.length] + 'abcdefgh'.slice(0, i % 9))}\n`).join(''));
const queue = queueName(sha256(readFileSync(join(DIR, 'model.safetensors'))));

const redis = await startRedis();
const workers: ChildProcess[] = [];
async function startWorkers(n: number): Promise<void> {
  for (let i = workers.length; i < n; i++) workers.push(spawn(process.execPath, [BIN, 'worker', 'model.safetensors', '--redis', redis.url, '-q'], { cwd: DIR, env, stdio: 'ignore' }));
  const q = new RedisQueue(queue, redis.url, { attempts: 1, backoffMs: 0 });
  while ((await q.workers()) < n) await new Promise((r) => setTimeout(r, 100));
  await q.close();
}

const rows: [string, number[]][] = [];
try {
  const best = (f: () => number): number[] => Array.from({ length: REPEATS }, f);
  rows.push(['embedded (one process, no Redis)', best(() => score([]))]);
  await startWorkers(1);
  rows.push(['Redis, 1 worker', best(() => score(['--redis', redis.url]))]);
  await startWorkers(2);
  rows.push(['Redis, 2 workers', best(() => score(['--redis', redis.url]))]);
} finally {
  for (const w of workers) w.kill('SIGTERM');
  await redis.stop();
  rmSync(DIR, { recursive: true, force: true });
}
process.stdout.write(`${LINES} lines, chunks of ${CHUNK}, ${cpus().length} CPUs, load average ${loadavg()[0]!.toFixed(1)} at the end\n\n`);
process.stdout.write('| mode | lines/s (each run) | best |\n|---|---|---|\n');
for (const [mode, r] of rows) process.stdout.write(`| ${mode} | ${r.join(', ')} | ${Math.max(...r)} |\n`);
