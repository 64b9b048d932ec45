/**
 * Batch scoring through Redis with real processes, on loopback: `recur worker` processes and
 * `recur score --redis` against a real redis-server (test/helpers/redis.ts). The faults the design
 * promises to survive are done for real: a worker killed with SIGKILL mid-job, Redis killed and
 * restarted empty mid-run, Redis gone for good, a job that keeps failing.
 */
import { test, after, afterEach, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { redisSkip, startRedis, type RedisServer } from './helpers/redis.ts';
import { type ChunkData } from '../src/serve/queue.ts';
import { RedisQueue, startRedisWorker } from '../src/serve/queue-redis.ts';
import { queueName, scoreInput, sha256 } from '../src/serve/score.ts';

const BIN = fileURLToPath(new URL('../bin/recur.mjs', import.meta.url));
const DIR = mkdtempSync(join(tmpdir(), 'recur-score-redis-'));
const children: ChildProcess[] = [];
let redis: RedisServer | undefined;
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await redis?.stop();
  rmSync(DIR, { recursive: true, force: true });
});

const env = { ...process.env, RECUR_DEBUG: '', RECUR_THREADS: '1' };

function recurSync(args: string[], input?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: DIR, encoding: 'utf8', timeout: 60_000, input, env });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A `recur` process in the background: its stderr so far, a wait for a line, and its exit. */
interface Proc {
  child: ChildProcess;
  stderr(): string;
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  exit: Promise<number | null>;
}

/** Workers of the running test, stopped after it whatever its outcome (a stray one would take the next test's jobs). */
const workers: ChildProcess[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => { c.once('exit', r); c.kill('SIGKILL'); }))));
});

function recur(args: string[]): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: DIR, env, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  if (args[0] === 'worker') workers.push(child);
  let err = '';
  const waiters: { re: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    for (const w of [...waiters]) {
      const m = w.re.exec(err);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    stderr: () => err,
    exit,
    waitFor: (re, timeoutMs = 30_000) => new Promise((resolve, reject) => {
      const m = re.exec(err);
      if (m) return resolve(m);
      const timer = setTimeout(() => reject(new Error(`no ${re} within ${timeoutMs} ms; stderr:\n${err}`)), timeoutMs);
      waiters.push({ re, resolve: (x) => { clearTimeout(timer); resolve(x); } });
      void exit.then(() => setTimeout(() => reject(new Error(`exited before ${re}; stderr:\n${err}`)), 50));
    }),
  };
}

const FAST = ['--lock-ms', '2000', '--stalled-ms', '1000'];
let model = '';
let queue = '';
let url = '';
const NAMES = ['Anna', 'Boris', 'Chloe', 'Dmitri', 'Emma', 'Farid', 'Greta', 'Hiroshi', 'Ines', 'Jonas', 'Kwame', 'Lena'];
const inputsOf = (n: number): string[] => Array.from({ length: n }, (_, i) => `${NAMES[i % NAMES.length]}${'abcde'.slice(0, i % 6)}`);
/** `recur predict` on the same inputs: what every scoring run must reproduce. */
const predicted = new Map<number, string[]>();

function writeInput(file: string, inputs: string[]): void {
  writeFileSync(join(DIR, file), `${inputs.map((s) => JSON.stringify(s)).join('\n')}\n`);
  if (!predicted.has(inputs.length)) {
    const p = recurSync(['predict', 'classify-names', '--model', model], `${inputs.join('\n')}\n`);
    assert.equal(p.code, 0, p.stderr);
    predicted.set(inputs.length, p.stdout.trim().split('\n'));
  }
}

/** The output has each input line exactly once, in order, with `recur predict`'s output. */
function assertExactlyOnce(file: string, n: number): void {
  const rec = readFileSync(join(DIR, file), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { line: number; output?: string; error?: string });
  assert.deepEqual(rec.map((r) => r.line), Array.from({ length: n }, (_, i) => i + 1), 'each line once, in order');
  assert.deepEqual(rec.map((r) => r.output), predicted.get(n));
}

/** Workers ready: BullMQ names their connections, and the queue counts them. */
async function waitForWorkers(n: number): Promise<void> {
  const q = new RedisQueue(queue, url, { attempts: 1, backoffMs: 0 });
  try {
    for (let i = 0; i < 300 && (await q.workers()) < n; i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok((await q.workers()) >= n, `${n} workers connected`);
  } finally {
    await q.close();
  }
}

before(async () => {
  if (redisSkip) return;
  redis = await startRedis();
  url = redis.url;
  const r = recurSync(['train', 'classify-names', '--max-steps', '5', '--run-dir', 'run']);
  assert.equal(r.code, 0, r.stderr);
  model = join(DIR, 'run', 'model.safetensors');
  queue = queueName(sha256(readFileSync(model)));
});


test('two workers share the queue: each input exactly once, equal to recur predict; bad lines dead-lettered', { skip: redisSkip, timeout: 60_000 }, async () => {
  const inputs = inputsOf(4000);
  writeInput('two.jsonl', inputs);
  writeFileSync(join(DIR, 'two-bad.jsonl'), `${readFileSync(join(DIR, 'two.jsonl'), 'utf8')}not json\n`);
  // every test's workers check for stalled jobs every second: Redis keeps the last check's interval as a lock, so one slow checker would delay the next test's takeover
  const w1 = recur(['worker', model, '--redis', url, ...FAST]);
  const w2 = recur(['worker', model, '--redis', url, ...FAST]);
  await waitForWorkers(2);
  const s = recur(['score', model, '--input', 'two-bad.jsonl', '--out', 'two.out.jsonl', '--redis', url, '--chunk', '100']);
  assert.equal(await s.exit, 1, s.stderr());
  assert.match(s.stderr(), /4,001 lines in .*: 4,000 scored, 1 errors/);
  const all = readFileSync(join(DIR, 'two.out.jsonl'), 'utf8').trim().split('\n');
  assert.match(JSON.parse(all[4000]!).error, /not JSON/);
  writeFileSync(join(DIR, 'two.out.jsonl'), `${all.slice(0, 4000).join('\n')}\n`);
  assertExactlyOnce('two.out.jsonl', 4000);
  const jobs = (p: Proc) => (p.stderr().match(/ done \(/g) ?? []).length;
  assert.equal(jobs(w1) + jobs(w2), 40, 'each of the 40 jobs processed once (no fault, no retry)');
  assert.ok(jobs(w1) > 0 && jobs(w2) > 0, `both workers took jobs (${jobs(w1)} and ${jobs(w2)})`);
  const q = new RedisQueue(queue, url, { attempts: 1, backoffMs: 0 });
  const dead = await q.deadLetters();
  await q.close();
  assert.deepEqual(dead.map((d) => d.line), [4001]);
  for (const w of [w1, w2]) w.child.kill('SIGTERM');
  assert.deepEqual(await Promise.all([w1.exit, w2.exit]), [0, 0]);
  assert.match(w1.stderr(), /stopped\n$/);
});

test('a worker killed with SIGKILL mid-job: another takes the job over, each input exactly once', { skip: redisSkip, timeout: 60_000 }, async () => {
  const inputs = inputsOf(12_000);
  writeInput('kill.jsonl', inputs);
  const victim = recur(['worker', model, '--redis', url, ...FAST, '--batch', '16']);
  await waitForWorkers(1);
  const s = recur(['score', model, '--input', 'kill.jsonl', '--out', 'kill.out.jsonl', '--redis', url, '--chunk', '6000']);
  const [, jobId] = await victim.waitFor(/job (\S+) started/);
  victim.child.kill('SIGKILL');
  await victim.exit;
  assert.doesNotMatch(victim.stderr(), new RegExp(`job ${jobId} done`), 'killed before it finished the job');
  const heir = recur(['worker', model, '--redis', url, ...FAST]);
  assert.equal(await s.exit, 0, s.stderr());
  assert.match(heir.stderr(), new RegExp(`job ${jobId} started`), 'the killed job ran again on the other worker');
  assertExactlyOnce('kill.out.jsonl', 12_000);
  heir.child.kill('SIGTERM');
  assert.equal(await heir.exit, 0);
});

test('the submitter killed mid-run: the same command again collects the finished jobs, none runs twice', { skip: redisSkip, timeout: 60_000 }, async () => {
  writeInput('resume.jsonl', inputsOf(10_000));
  const w = recur(['worker', model, '--redis', url, ...FAST]);
  await waitForWorkers(1);
  const args = ['score', model, '--input', 'resume.jsonl', '--out', 'resume.out.jsonl', '--redis', url, '--chunk', '250'];
  const first = recur(args);
  await w.waitFor(/ done \(/);
  first.child.kill('SIGKILL');
  await first.exit;
  const again = recur(args);
  assert.equal(await again.exit, 0, again.stderr());
  assertExactlyOnce('resume.out.jsonl', 10_000);
  const done = w.stderr().match(/job (\S+) done/g) ?? [];
  assert.equal(done.length, 40, 'each of the 40 jobs processed once across both submissions');
  assert.equal(new Set(done).size, 40);
});

test('Redis killed and restarted empty mid-run: both sides say so, then the run completes', { skip: redisSkip, timeout: 60_000 }, async () => {
  const inputs = inputsOf(20_000);
  writeInput('restart.jsonl', inputs);
  const w = recur(['worker', model, '--redis', url, ...FAST]);
  await waitForWorkers(1);
  const s = recur(['score', model, '--input', 'restart.jsonl', '--out', 'restart.out.jsonl', '--redis', url, '--chunk', '250', '--redis-timeout', '30']);
  await w.waitFor(/ done \(/);
  await redis!.kill();
  await s.waitFor(/is unreachable/);
  await new Promise((r) => setTimeout(r, 1000));
  await redis!.restart();
  assert.equal(await s.exit, 0, s.stderr());
  assert.match(s.stderr(), /recur score: Redis at redis:\/\/127\.0\.0\.1:\d+ is unreachable \(.+\); retrying for up to 30 s/);
  assert.match(s.stderr(), /is reachable again after/);
  assert.match(s.stderr(), /vanished from Redis .*enqueued again/);
  assert.match(w.stderr(), /Redis error \(.+\); reconnecting/);
  assertExactlyOnce('restart.out.jsonl', 20_000);
  w.child.kill('SIGTERM');
  assert.equal(await w.exit, 0);
});

test('Redis gone for good: the submitter gives up after --redis-timeout with the reason', { skip: redisSkip, timeout: 60_000 }, async () => {
  writeInput('gone.jsonl', inputsOf(4000));
  const s = recur(['score', model, '--input', 'gone.jsonl', '--out', 'gone.out.jsonl', '--redis', url, '--chunk', '100', '--redis-timeout', '2']);
  await s.waitFor(/run submitted/);
  await redis!.kill(); // no worker: nothing can finish before this
  assert.equal(await s.exit, 1);
  assert.match(s.stderr(), /recur score: Redis at \S+ has been unreachable for 2 s \(.+\); .*run the same command again to resume/);
  await redis!.restart();
});

test('a job that keeps failing is retried with backoff, then its lines are dead letters', { skip: redisSkip, timeout: 60_000 }, async () => {
  const name = 'recur-score-test-failing';
  const tries: Record<number, number[]> = { 0: [], 1: [] };
  const worker = startRedisWorker(name, url, async (d: ChunkData) => {
    tries[d.chunk]!.push(Date.now());
    if (d.chunk === 1) throw new Error('disk on fire');
    return { outputs: d.inputs.map((s) => s.toUpperCase()), errors: d.inputs.map(() => null) };
  }, { concurrency: 1, lockMs: 5000, stalledMs: 5000, batchSize: 64 });
  const q = new RedisQueue(name, url, { attempts: 3, backoffMs: 100 });
  try {
    const out = join(DIR, 'failing.out.jsonl');
    const s = await scoreInput({ queue: q, inputText: '"a"\n"b"\n"c"\n"d"\n', outPath: out, modelSha: 'test', options: { chunkSize: 2, attempts: 3, backoffMs: 100, pollMs: 50 } });
    assert.equal(tries[0]!.length, 1, 'chunk 0 once');
    assert.equal(tries[1]!.length, 3, 'chunk 1 three times');
    const [t1, t2, t3] = tries[1]!;
    assert.ok(t2! - t1! >= 90 && t3! - t2! >= 190, `backoff 100 ms, then 200 ms (waited ${t2! - t1!} and ${t3! - t2!})`);
    assert.equal(s.errors, 2);
    const rec = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(rec.slice(0, 2), [{ line: 1, output: 'A' }, { line: 2, output: 'B' }]);
    for (const r of rec.slice(2)) assert.equal(r.error, 'the job failed after 3 attempts: disk on fire');
    const dead = await q.deadLetters();
    assert.deepEqual(dead.map((d) => [d.line, d.input]), [[3, 'c'], [4, 'd']]);
  } finally {
    await q.close();
    await worker.close();
  }
});
