// recur serve as processes: the embedded default (no Redis), then one and two processes sharing
// Redis under load (every stream's outputs identical to the same steps in-process), a server killed
// with SIGKILL mid-load (clients continue on the other), and Redis restarted mid-run (503 with a
// reason, then recovery). Loopback only; needs `npm run build` (bin/recur.mjs runs dist/).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildLMFromText } from '../src/models/lm.ts';
import { saveTask, loadTask } from '../src/models/files.ts';
import { streamOf } from '../src/models/stream.ts';
import { redisSkip, startRedis, type RedisServer } from './helpers/redis.ts';
import { post, postRetry, runStream, startServe, type ServeProcess } from './helpers/serve.ts';

const TEXT = 'Call me Ishmael. Some years ago, never mind how long precisely, having little money in my purse. '.repeat(6);
const STREAMS = 240; // ≥ 200 concurrent streams
const STEPS = 20;

let dir: string;
let modelPath: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'recur-serve-'));
  modelPath = join(dir, 'whale.safetensors');
  const { task } = buildLMFromText({ cell: 'lstm', embeddingDim: 8, hiddenSize: 24, numLayers: 2, seqLen: 8, batchSize: 2, stepsPerEpoch: 1, evalBatchSize: 2, seed: 9 }, TEXT);
  saveTask(task, modelPath);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Stream i's inputs: one or two characters a step, from its own place in the text. */
const inputsOf = (i: number): string[] => Array.from({ length: STEPS }, (_, t) => TEXT.slice((i * 13 + t * 2) % 500, (i * 13 + t * 2) % 500 + 1 + ((i + t) % 2)));

/** The same steps in this process, from the saved file (all streams stepped together per step). */
function reference(n: number): unknown[][] {
  const s = streamOf(loadTask('charlm', modelPath))!;
  const inputs = Array.from({ length: n }, (_, i) => inputsOf(i));
  let states: (string | null)[] = inputs.map(() => null);
  const outs: unknown[][] = inputs.map(() => []);
  for (let t = 0; t < STEPS; t++) {
    const r = s.step(inputs.map((x) => x[t]), states);
    states = r.states;
    r.outputs.forEach((o, i) => outs[i].push(JSON.parse(JSON.stringify(o))));
  }
  return outs;
}

test('recur serve without Redis: in memory, one process, stops on SIGTERM', async () => {
  const s = await startServe([modelPath]);
  try {
    assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const c = await post(`${s.url}/streams`, {});
    assert.equal(c.status, 201);
    assert.equal(c.json.model, 'whale');
    const want = reference(1)[0];
    const r = await runStream([s.url], 'whale', 'solo', inputsOf(0));
    assert.deepEqual(r.outputs, want);
    assert.equal((await fetch(`${s.url}/readyz`)).status, 200);
  } finally {
    assert.equal(await s.stop(), 0);
  }
});

test('recur serve: bad command lines and files fail with a reason', async () => {
  const help = spawnSync(process.execPath, [fileURLToPath(new URL('../bin/recur.mjs', import.meta.url)), 'serve', '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /recur serve MODEL\.\.\. \[options\]/);
  assert.match(help.stdout, /--redis URL/);
  await assert.rejects(startServe([]), /give at least one model file/);
  await assert.rejects(startServe([join(dir, 'missing.safetensors')]), /missing\.safetensors/);
  await assert.rejects(startServe([modelPath, '--tick-ms', '-3']), /--tick-ms must be/);
  await assert.rejects(startServe([modelPath, '--redis', 'redis://127.0.0.1:1']), /cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
});

test('load: 240 streams × 20 steps against 1 and then 2 processes sharing Redis = in-process', { skip: redisSkip, timeout: 120_000 }, async () => {
  const redis = await startRedis();
  const servers: ServeProcess[] = [];
  try {
    const want = reference(STREAMS);
    servers.push(await startServe([modelPath, '--redis', redis.url]));
    const one = await Promise.all(Array.from({ length: STREAMS }, (_, i) => runStream([servers[0].url], 'whale', `one-${i}`, inputsOf(i))));
    one.forEach((r, i) => assert.deepEqual(r.outputs, want[i], `stream ${i}, 1 process`));
    servers.push(await startServe([modelPath, '--redis', redis.url]));
    // each stream alternates between the processes: every step continues the other's state
    const urls = servers.map((s) => s.url);
    const two = await Promise.all(Array.from({ length: STREAMS }, async (_, i) => {
      const inputs = inputsOf(i);
      const id = `two-${i}`;
      assert.equal((await post(`${urls[i % 2]}/streams`, { model: 'whale', id })).status, 201);
      const outputs: unknown[] = [];
      for (let t = 0; t < STEPS; t++) {
        const r = await postRetry(`${urls[(i + t) % 2]}/streams/${id}/step`, { input: inputs[t], version: t });
        assert.equal(r.status, 200, JSON.stringify(r.json));
        outputs.push(r.json.output);
      }
      return outputs;
    }));
    two.forEach((o, i) => assert.deepEqual(o, want[i], `stream ${i}, 2 processes`));
    const metrics = await (await fetch(`${urls[1]}/metrics`)).text();
    assert.match(metrics, new RegExp(`recur_streams_active ${2 * STREAMS}\\b`));

    // one stream stepped by many clients at once through both processes: each step is committed
    // or refused (409), never lost — the version counts exactly the 200s
    assert.equal((await post(`${urls[0]}/streams`, { id: 'contended' })).status, 201);
    let committed = 0;
    for (let round = 0; round < 3; round++) {
      const replies = await Promise.all(Array.from({ length: 16 }, (_, k) => post(`${urls[k % 2]}/streams/contended/step`, { input: 'ab'[k % 2] })));
      assert.ok(replies.every((r) => r.status === 200 || r.status === 409), JSON.stringify(replies.map((r) => r.status)));
      committed += replies.filter((r) => r.status === 200).length;
      assert.ok(replies.some((r) => r.status === 409), 'concurrent steps of one stream were refused, not queued blindly');
    }
    const contended = await fetch(`${urls[1]}/streams/contended`).then((r) => r.json());
    assert.equal(contended.version, committed, 'every 200 is exactly one committed version');
  } finally {
    await Promise.all(servers.map((s) => s.kill()));
    await redis.stop();
  }
});

test('fault: SIGKILL one of two servers mid-load; every stream continues on the other, outputs identical', { skip: redisSkip, timeout: 120_000 }, async () => {
  const redis = await startRedis();
  const a = await startServe([modelPath, '--redis', redis.url]);
  const b = await startServe([modelPath, '--redis', redis.url]);
  try {
    const want = reference(STREAMS);
    let done = 0;
    const clients = Array.from({ length: STREAMS }, (_, i) => runStream(i % 2 ? [a.url, b.url] : [b.url, a.url], 'whale', `k-${i}`, inputsOf(i)).finally(() => done++));
    // kill A once the load is under way (about a third of the streams' steps in)
    const killedAt = await new Promise<number>((resolve) => {
      const poll = setInterval(async () => {
        const m = await (await fetch(`${b.url}/metrics`)).text();
        const steps = Number(/recur_stream_steps_total\{model="whale"\} (\d+)/.exec(m)?.[1] ?? 0);
        if (steps > (STREAMS * STEPS) / 6) {
          clearInterval(poll);
          // the time the kill is sent: no stream can fail over before it (the time kill() resolves,
          // when the process's exit has been seen, can come after clients have already recovered)
          const sent = Date.now();
          await a.kill();
          resolve(sent);
        }
      }, 20);
    });
    assert.ok(done < STREAMS, 'the kill came before the load was over');
    const reports = await Promise.all(clients);
    reports.forEach((r, i) => assert.deepEqual(r.outputs, want[i], `stream ${i}`));
    const failedOver = reports.filter((r) => r.failedAt !== null);
    assert.ok(failedOver.length >= STREAMS / 4, `${failedOver.length} streams failed over`);
    for (const r of failedOver) assert.ok(r.recoveredAt! >= killedAt, `recovered at ${r.recoveredAt}, before the kill at ${killedAt}`);
  } finally {
    await a.kill();
    await b.kill();
    await redis.stop();
  }
});

test('fault: Redis restarted mid-run → 503 with a reason, /readyz 503, then recovery', { skip: redisSkip, timeout: 60_000 }, async () => {
  const redis: RedisServer = await startRedis();
  const s = await startServe([modelPath, '--redis', redis.url]);
  try {
    assert.equal((await post(`${s.url}/streams`, { id: 'r1' })).status, 201);
    assert.equal((await post(`${s.url}/streams/r1/step`, { input: 'C' })).status, 200);
    await redis.kill();
    const down = await post(`${s.url}/streams/r1/step`, { input: 'a' });
    assert.equal(down.status, 503);
    assert.match(down.json.error, /stream state store unavailable: Redis (read|write) failed/);
    const ready = await fetch(`${s.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.equal(ready.headers.get('retry-after'), '1');
    assert.equal((await post(`${s.url}/streams`, { id: 'r2' })).status, 503);
    assert.equal((await fetch(`${s.url}/healthz`)).status, 200); // alive, just not ready
    await redis.restart();
    const t0 = Date.now();
    while ((await fetch(`${s.url}/readyz`)).status !== 200) {
      assert.ok(Date.now() - t0 < 15_000, 'ready again within 15 s of Redis coming back');
      await new Promise((r) => setTimeout(r, 50));
    }
    // nothing was persisted: the old stream is gone (404, not a wrong answer); new ones work
    const gone = await post(`${s.url}/streams/r1/step`, { input: 'a' });
    assert.equal(gone.status, 404);
    assert.equal((await post(`${s.url}/streams`, { id: 'r1' })).status, 201);
    assert.equal((await post(`${s.url}/streams/r1/step`, { input: 'C', version: 0 })).status, 200);
  } finally {
    await s.kill();
    await redis.stop();
  }
});

test('RedisStore: compare-and-set across connections, expiry, count', { skip: redisSkip, timeout: 30_000 }, async () => {
  const { RedisStore } = await import('../src/serve/store.ts');
  const redis = await startRedis();
  const a = await RedisStore.connect({ url: redis.url, ttlMs: 400 });
  const b = await RedisStore.connect({ url: redis.url, ttlMs: 400 });
  try {
    assert.equal(await a.create('x', 'm'), true);
    assert.equal(await b.create('x', 'm'), false);
    // two processes read version 0 and both try to commit: exactly one wins
    const [ra, rb] = await Promise.all([a.commit([{ id: 'x', expected: 0, state: 'A', last: 'la' }]), b.commit([{ id: 'x', expected: 0, state: 'B', last: 'lb' }])]);
    assert.deepEqual([ra[0], rb[0]].sort((p, q) => JSON.stringify(p).localeCompare(JSON.stringify(q))), ['ok', { current: 1 }]);
    const [rec] = await b.load(['x']);
    assert.equal(rec!.version, 1);
    assert.equal(rec!.state, ra[0] === 'ok' ? 'A' : 'B');
    assert.deepEqual(await a.commit([{ id: 'y', expected: 0, state: null, last: null }]), ['missing']);
    assert.equal(await a.count(), 1);
    await new Promise((r) => setTimeout(r, 600));
    assert.deepEqual(await a.load(['x']), [null]);
    assert.equal(await a.count(), 0);
  } finally {
    await a.close();
    await b.close();
    await redis.stop();
  }
});
