// recur serve, in process (the Hono app's fetch, no network; memory store): the API, its errors
// (every bad request gets the right 4xx and the server keeps answering), versions, batching.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildLMFromText } from '../src/models/lm.ts';
import { ForecastTask } from '../src/models/forecaster.ts';
import { streamOf } from '../src/models/stream.ts';
import { createServer, type RecurServer } from '../src/serve/server.ts';
import { MemoryStore } from '../src/serve/store.ts';

const TEXT = 'the cat sat on the mat. the rat sat on the cat. '.repeat(12);
const lm = () => buildLMFromText({ cell: 'lstm', embeddingDim: 6, hiddenSize: 10, numLayers: 1, seqLen: 8, batchSize: 2, stepsPerEpoch: 1, evalBatchSize: 2, seed: 3 }, TEXT).task;
const forecast = () => new ForecastTask({
  task: 'forecast', arch: 'rnn-forecaster', columns: ['a', 'b'], norm: { columns: ['a', 'b'], mean: [0, 0], std: [1, 1] },
  cell: 'gru', hiddenSize: 6, numLayers: 1, dropout: 0, residual: true, deltaScale: [0.5, 0.5], context: 4,
}, 2);

async function call(s: RecurServer, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const init: RequestInit = { method, headers: { 'content-type': 'application/json', ...headers } };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const res = await s.app.fetch(new Request(`http://x${path}`, init));
  const text = await res.text();
  let json: any = null;
  try { json = JSON.parse(text); } catch { /* metrics are text */ }
  return { status: res.status, json, text, headers: res.headers };
}

test('serve: streams step like the library, batched; versions, replay and conflicts', async () => {
  const task = lm();
  const s = await createServer([{ name: 'lm', task }, { name: 'fc', task: forecast() }], { tickMs: 5 });
  try {
    const ref = streamOf(task)!;
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await call(s, 'POST', '/streams', { model: 'lm' });
      assert.equal(r.status, 201);
      assert.equal(r.json.version, 0);
      ids.push(r.json.id);
    }
    const texts = ['the cat', 'a rat s', 'mat. th', 'on the ', 'sat sat', 'cat.  t'];
    const refStates: (string | null)[] = texts.map(() => null);
    for (let t = 0; t < 7; t++) {
      // all six in flight at once: one tick, one pass
      const replies = await Promise.all(ids.map((id, i) => call(s, 'POST', `/streams/${id}/step`, { input: texts[i][t], version: t })));
      replies.forEach((r, i) => {
        assert.equal(r.status, 200, JSON.stringify(r.json));
        assert.equal(r.json.version, t + 1);
        const want = ref.step([texts[i][t]], [refStates[i]]);
        refStates[i] = want.states[0];
        assert.deepEqual(r.json.output, JSON.parse(JSON.stringify(want.outputs[0])));
      });
    }
    const metrics = (await call(s, 'GET', '/metrics')).text;
    assert.match(metrics, /recur_stream_batch_size_bucket\{model="lm",le="4"\} 0/); // every tick held all 6
    assert.match(metrics, /recur_stream_batch_size_count\{model="lm"\} 7/);
    assert.match(metrics, /recur_streams_active 6/);
    assert.match(metrics, /recur_http_requests_total\{route="\/streams\/:id\/step",method="POST",status="200"\} 42/);

    // the reply of the step that made the current version, asked again: replayed, not re-applied
    const again = await call(s, 'POST', `/streams/${ids[0]}/step`, { input: 't', version: 6 });
    assert.equal(again.status, 200);
    assert.equal(again.json.replayed, true);
    assert.equal(again.json.version, 7);
    // the same version with another input is a conflict; so is a stale or future version
    assert.equal((await call(s, 'POST', `/streams/${ids[0]}/step`, { input: 'x', version: 6 })).status, 409);
    const stale = await call(s, 'POST', `/streams/${ids[0]}/step`, { input: 'x', version: 2 });
    assert.equal(stale.status, 409);
    assert.equal(stale.json.version, 7);
    // two steps of one stream at once: one wins, the other is refused
    const both = await Promise.all([call(s, 'POST', `/streams/${ids[1]}/step`, { input: 'a' }), call(s, 'POST', `/streams/${ids[1]}/step`, { input: 'b' })]);
    assert.deepEqual(both.map((r) => r.status).sort(), [200, 409]);
    assert.equal((await call(s, 'GET', `/streams/${ids[1]}`)).json.version, 8);

    // reset: back to zeros (the next step equals a fresh stream's), version moves on
    const reset = await call(s, 'POST', `/streams/${ids[2]}/reset`);
    assert.equal(reset.status, 200);
    assert.equal(reset.json.version, 8);
    const afterReset = await call(s, 'POST', `/streams/${ids[2]}/step`, { input: 'm' });
    assert.deepEqual(afterReset.json.output, JSON.parse(JSON.stringify(ref.step(['m'], [null]).outputs[0])));
    assert.equal((await call(s, 'DELETE', `/streams/${ids[3]}`)).status, 204);
    assert.equal((await call(s, 'POST', `/streams/${ids[3]}/step`, { input: 'a' })).status, 404);
    assert.equal((await call(s, 'DELETE', `/streams/${ids[3]}`)).status, 404);

    // a forecast stream next to it
    const fc = await call(s, 'POST', '/streams', { model: 'fc', id: 'sensor-1' });
    assert.equal(fc.json.id, 'sensor-1');
    assert.equal((await call(s, 'POST', '/streams', { model: 'fc', id: 'sensor-1' })).status, 409);
    const f1 = await call(s, 'POST', '/streams/sensor-1/step', { input: [1.5, -2] });
    assert.equal(f1.status, 200);
    assert.equal(f1.json.output.next.length, 2);
    assert.equal((await call(s, 'POST', '/streams/sensor-1/step', { input: [1.5] })).status, 400);
  } finally {
    await s.close();
  }
});

test('serve: bad requests get the right 4xx with a reason, and the server keeps answering', async () => {
  const s = await createServer([{ name: 'lm', task: lm() }, { name: 'fc', task: forecast() }], { maxBodyBytes: 1024, maxInputLength: 16, maxPredictInputs: 3 });
  try {
    const { json: { id } } = await call(s, 'POST', '/streams', { model: 'lm' });
    const cases: [string, string, unknown, number, RegExp][] = [
      ['POST', `/streams/${id}/step`, '{"input": "a"', 400, /not valid JSON/],
      ['POST', `/streams/${id}/step`, '[1,2]', 400, /JSON object/],
      ['POST', `/streams/${id}/step`, {}, 400, /'input' is required/],
      ['POST', `/streams/${id}/step`, { input: 'a', extra: 1 }, 400, /unknown field 'extra'/],
      ['POST', `/streams/${id}/step`, { input: 'a', version: -1 }, 400, /version.*integer ≥ 0/],
      ['POST', `/streams/${id}/step`, { input: '' }, 400, /one or more characters/],
      ['POST', `/streams/${id}/step`, { input: 'x'.repeat(17) }, 400, /at most 16 characters/],
      ['POST', `/streams/${id}/step`, { input: 7 }, 400, /input/],
      ['POST', `/streams/${id}/step`, { input: 'y'.repeat(2000) }, 413, /over 1024 bytes/],
      ['POST', '/streams/no-such-stream/step', { input: 'a' }, 404, /no stream 'no-such-stream'/],
      ['POST', `/streams/${'z'.repeat(200)}/step`, { input: 'a' }, 400, /stream id/],
      ['GET', '/streams/nope', undefined, 404, /no stream/],
      ['POST', '/streams', {}, 400, /'model' is required: this server serves lm, fc/],
      ['POST', '/streams', { model: 'other' }, 404, /no model 'other'/],
      ['POST', '/streams', { model: 'lm', id: 'a b' }, 400, /field 'id'/],
      ['POST', '/predict', { model: 'lm', inputs: ['a', 'b', 'c', 'd'] }, 400, /at most 3 inputs/],
      ['POST', '/predict', { model: 'lm', inputs: 'abc' }, 400, /list of strings/],
      ['POST', '/predict', { model: 'fc', inputs: ['1,2,3'] }, 400, /predict: .*3 values, expected 2/],
      ['GET', '/nowhere', undefined, 404, /no endpoint GET \/nowhere/],
    ];
    for (const [method, path, body, status, message] of cases) {
      const r = await call(s, method, path, body);
      assert.equal(r.status, status, `${method} ${path} ${JSON.stringify(body)?.slice(0, 40)} → ${r.status} ${r.text}`);
      assert.match(r.json.error, message);
    }
    // still serving, and the stream untouched by the refused steps
    assert.equal((await call(s, 'GET', '/healthz')).status, 200);
    assert.equal((await call(s, 'GET', `/streams/${id}`)).json.version, 0);
    const p = await call(s, 'POST', '/predict', { model: 'fc', inputs: ['1,2;1.5,2.5'] });
    assert.equal(p.status, 200);
    assert.match(p.json.outputs[0], /^-?[\d.]+,-?[\d.]+$/);
    const models = await call(s, 'GET', '/models');
    assert.deepEqual(models.json.models.map((m: any) => [m.name, m.task, m.stream !== null]), [['lm', 'charlm', true], ['fc', 'forecast', true]]);
  } finally {
    await s.close();
  }
});

test('serve: a bearer token guards every endpoint', async () => {
  const token = 'a-long-enough-secret-token';
  const s = await createServer([{ name: 'lm', task: lm() }], { token });
  try {
    for (const path of ['/healthz', '/readyz', '/metrics', '/models']) {
      assert.equal((await call(s, 'GET', path)).status, 401, path);
      assert.equal((await call(s, 'GET', path, undefined, { authorization: 'Bearer wrong-token-wrong-token' })).status, 401, path);
      assert.equal((await call(s, 'GET', path, undefined, { authorization: `Bearer ${token}` })).status, 200, path);
    }
    const r = await call(s, 'POST', '/streams', {});
    assert.equal(r.status, 401);
    assert.match(r.json.error, /Authorization: Bearer/);
    assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="recur"');
    assert.equal((await call(s, 'POST', '/streams', {}, { authorization: `Bearer ${token}` })).status, 201);
  } finally {
    await s.close();
  }
  await assert.rejects(createServer([{ name: 'lm', task: lm() }], { token: 'short' }), /option 'token' must be a string of at least 16 characters, got another/);
  await assert.rejects(createServer([{ name: 'lm', task: lm() }], { tickMs: -1 } as never), /option 'tickMs'/);
  await assert.rejects(createServer([{ name: 'lm', task: lm() }], { nope: 1 } as never), /unknown option 'nope'/);
  await assert.rejects(createServer([], {}), /at least one model/);
});

test('MemoryStore: compare-and-set, expiry', async () => {
  let now = 1000;
  const st = new MemoryStore(5000, () => now);
  assert.equal(await st.create('a', 'm'), true);
  assert.equal(await st.create('a', 'm'), false);
  assert.deepEqual(await st.commit([{ id: 'a', expected: 0, state: 's1', last: null }, { id: 'a', expected: 0, state: 's2', last: null }, { id: 'b', expected: 0, state: null, last: null }]), ['ok', { current: 1 }, 'missing']);
  assert.deepEqual(await st.load(['a', 'b']), [{ model: 'm', version: 1, state: 's1', last: null }, null]);
  now += 4999;
  assert.equal(await st.count(), 1);
  now += 2;
  assert.deepEqual(await st.load(['a']), [null]);
  assert.equal(await st.count(), 0);
});
