/**
 * Batch scoring without Redis: the input format, the job ids, a chunk's per-input errors, the
 * embedded queue's retries and dead letters, and `recur score` in embedded mode against
 * `recur predict` on the same inputs. (With Redis and real worker processes: score.redis.test.ts.)
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deriveRunId, makeJobs, parseInputLines, scoreChunk, scoreInput, ScoreError } from '../src/serve/score.ts';
import { MemoryQueue, type ChunkData } from '../src/serve/queue.ts';
import type { Predictor } from '../src/models/files.ts';

const BIN = fileURLToPath(new URL('../bin/recur.mjs', import.meta.url));
const DIR = mkdtempSync(join(tmpdir(), 'recur-score-'));
after(() => rmSync(DIR, { recursive: true, force: true }));

function recur(args: string[], input?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: DIR, encoding: 'utf8', timeout: 60_000, input, env: { ...process.env, RECUR_DEBUG: '' } });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A predictor that upper-cases, and refuses any input with a digit (as a model refuses an unknown character). */
const upper: Predictor = {
  task: 'upper',
  predict: (inputs) => {
    const bad = inputs.find((s) => /\d/.test(s));
    if (bad !== undefined) throw new Error(`cannot take '${bad}'`);
    return inputs.map((s) => s.toUpperCase());
  },
};

test('input lines: a JSON string or {"input": ...}; everything else an error naming the problem', () => {
  const lines = parseInputLines('"Anna"\n{"id": 7, "input": "Bo"}\n\nnot json\n[1]\n{"input": 3}\n{"text": "x"}\r\n"Cy"\r\n');
  assert.equal(lines.length, 8, 'the final newline starts no line');
  assert.deepEqual(lines[0], { line: 1, input: 'Anna' });
  assert.deepEqual(lines[1], { line: 2, input: 'Bo', id: 7 });
  assert.match((lines[2] as { error: string }).error, /^blank line/);
  assert.match((lines[3] as { error: string }).error, /^not JSON/);
  assert.match((lines[4] as { error: string }).error, /got an array/);
  assert.match((lines[5] as { error: string }).error, /string 'input', got number/);
  assert.match((lines[6] as { error: string }).error, /string 'input', got none/);
  assert.deepEqual(lines[7], { line: 8, input: 'Cy' });
});

test('job ids: the same run and inputs give the same ids; other inputs other ids; no ":"', () => {
  const lines = parseInputLines(Array.from({ length: 10 }, (_, i) => JSON.stringify(`n${i}`)).join('\n'));
  const a = makeJobs('run1', lines, 4);
  assert.deepEqual(a.map((j) => j.data.inputs.length), [4, 4, 2]);
  assert.deepEqual(a.map((j) => j.data.lines), [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]);
  assert.deepEqual(makeJobs('run1', lines, 4).map((j) => j.id), a.map((j) => j.id));
  const changed = parseInputLines(Array.from({ length: 10 }, (_, i) => JSON.stringify(i === 5 ? 'other' : `n${i}`)).join('\n'));
  const b = makeJobs('run1', changed, 4);
  assert.equal(b[0]!.id, a[0]!.id);
  assert.notEqual(b[1]!.id, a[1]!.id, 'a chunk with other inputs has another id');
  for (const j of a) assert.doesNotMatch(j.id, /:/);
  assert.notEqual(deriveRunId('m1', 'x', 4), deriveRunId('m2', 'x', 4));
  assert.notEqual(deriveRunId('m1', 'x', 4), deriveRunId('m1', 'x', 5));
});

test('a chunk: an input the model refuses gets its own error, the others their outputs', async () => {
  const r = await scoreChunk(upper, ['ab', 'c1', 'de', 'f'], 2);
  assert.deepEqual(r.outputs, ['AB', null, 'DE', 'F']);
  assert.equal(r.errors[0], null);
  assert.match(r.errors[1]!, /cannot take 'c1'/);
  // a model that fails on every batch but answers each input alone: the chunk still gets every output
  let calls = 0;
  const batchBug: Predictor = { task: 'b', predict: (inputs) => { calls++; if (inputs.length > 1) throw new Error('batch bug'); return inputs; } };
  assert.deepEqual((await scoreChunk(batchBug, ['a', 'b', 'c'], 8)).outputs, ['a', 'b', 'c']);
  assert.equal(calls, 4, 'the batch, then each input alone');
});

test('embedded queue: a job is retried with backoff; one that keeps failing ends in the dead letters', async () => {
  const text = ['"a"', '"b"', '"c"', 'oops', '"d"', '"e"'].join('\n');
  const tries = new Map<number, number>();
  const flaky = async (d: ChunkData) => {
    const n = (tries.get(d.chunk) ?? 0) + 1;
    tries.set(d.chunk, n);
    if (d.chunk === 0 && n < 3) throw new Error('transient');
    if (d.chunk === 1) throw new Error('always fails');
    return scoreChunk(upper, d.inputs, 8);
  };
  const queue = new MemoryQueue('q', flaky, { attempts: 3, backoffMs: 5 });
  const out = join(DIR, 'flaky.jsonl');
  const s = await scoreInput({ queue, inputText: text, outPath: out, modelSha: 'x', options: { chunkSize: 3, attempts: 3, backoffMs: 5, pollMs: 10 } });
  assert.deepEqual([...tries.entries()], [[0, 3], [1, 3]]);
  const rec = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(rec.slice(0, 3), [{ line: 1, output: 'A' }, { line: 2, output: 'B' }, { line: 3, output: 'C' }]);
  assert.equal(rec[3].line, 4);
  assert.match(rec[3].error, /not JSON/);
  assert.deepEqual(rec.slice(4).map((r) => r.line), [5, 6]);
  for (const r of rec.slice(4)) assert.equal(r.error, 'the job failed after 3 attempts: always fails');
  assert.equal(s.errors, 3);
  assert.deepEqual(queue.deadLetters.map((d) => [d.line, d.input]), [[4, undefined], [5, 'd'], [6, 'e']]);
});

test('scoreInput: options are checked by name', async () => {
  const queue = new MemoryQueue('q', async () => ({ outputs: [], errors: [] }), { attempts: 1, backoffMs: 0 });
  await assert.rejects(scoreInput({ queue, inputText: '"a"', outPath: join(DIR, 'x'), modelSha: 'x', options: { chunkSize: 0 } }),
    (e: Error) => e instanceof ScoreError && /'chunkSize' must be an integer in 1\.\.100000, got 0/.test(e.message));
  await assert.rejects(scoreInput({ queue, inputText: '"a"', outPath: join(DIR, 'x'), modelSha: 'x', options: { chunk: 3 } as never }), /unknown option 'chunk'/);
});

let model = '';
const NAMES = ['Anna', 'Boris', 'Chloe', 'Dmitri', 'Emma', 'Farid', 'Greta', 'Hiroshi', 'Ines', 'Jonas', 'Kwame', 'Lena'];

before(() => {
  const r = recur(['train', 'classify-names', '--max-steps', '5', '--run-dir', 'run']);
  assert.equal(r.code, 0, r.stderr);
  model = join(DIR, 'run', 'model.safetensors');
});

test('recur score (embedded): one record per line, in order, equal to recur predict; bad lines are error records', () => {
  const inputs = Array.from({ length: 300 }, (_, i) => `${NAMES[i % NAMES.length]}${'a'.repeat(i % 5)}`);
  const lines = inputs.map((s, i) => (i % 3 === 0 ? JSON.stringify({ id: `k${i}`, input: s }) : JSON.stringify(s)));
  lines.splice(10, 0, '{"input": ');
  lines.splice(20, 0, '42');
  lines.splice(30, 0, '""'); // valid JSON, but the model refuses an empty name
  writeFileSync(join(DIR, 'in.jsonl'), `${lines.join('\n')}\n`);
  const r = recur(['score', model, '--input', 'in.jsonl', '--out', 'out.jsonl', '--chunk', '37', '--dead-letter', 'dead.jsonl', '-q']);
  assert.equal(r.code, 1, 'exit 1: some lines have errors');
  assert.match(r.stderr, /303 lines in .* 300 scored, 3 errors/);
  const predicted = recur(['predict', 'classify-names', '--model', model], `${inputs.join('\n')}\n`);
  assert.equal(predicted.code, 0, predicted.stderr);
  const expected = predicted.stdout.trim().split('\n');
  const rec = readFileSync(join(DIR, 'out.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(rec.map((x) => x.line), Array.from({ length: 303 }, (_, i) => i + 1));
  assert.match(rec[10].error, /not JSON/);
  assert.match(rec[20].error, /got number/);
  assert.match(rec[30].error, /^the model refused this input: classify-names: .*no tokens/);
  const ok = rec.filter((x) => x.error === undefined);
  assert.deepEqual(ok.map((x) => x.output), expected);
  assert.equal(ok[0].id, 'k0');
  assert.equal(ok[1].id, undefined);
  const dead = readFileSync(join(DIR, 'dead.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(dead.map((d) => d.line), [11, 21, 31]);
  assert.deepEqual(readdirSync(DIR).filter((f) => f.includes('.tmp')), [], 'no temporary file left');
});

test('recur score: bad command lines and files name the problem', () => {
  writeFileSync(join(DIR, 'one.jsonl'), '"Anna"\n');
  // (first a good one: off a terminal the progress bar is a plain line, the last one at 100%)
  const ok = recur(['score', model, '--input', 'one.jsonl', '--out', 'one.out.jsonl']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stderr, /^\[#{24}\] 1\/1 lines {2}\d+\/s {2}ETA 0:00$/m);
  let r = recur(['score', model, '--input', 'one.jsonl', '--out', 'o.jsonl', '--chunk', '0']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^recur score: --chunk must be an integer in 1\.\.100000, got 0\n/);
  r = recur(['score', model, '--out', 'o.jsonl']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--input FILE is required/);
  r = recur(['score', model, '--input', 'missing.jsonl', '--out', 'o.jsonl']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /missing\.jsonl/);
  r = recur(['score', model, '--input', 'one.jsonl', '--out', 'o.jsonl', '--redis', 'http://x']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /redis:\/\//);
  r = recur(['worker', model]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--redis URL is required/);
  r = recur(['score', model, '--input', 'one.jsonl', '--out', 'o.jsonl', '--task', 'charlm']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /this is a classify-names model, not a charlm model/);
  assert.equal(existsSync(join(DIR, 'o.jsonl')), false);
  r = recur(['score', model, '--input', 'one.jsonl', '--out', 'nowhere/o.jsonl']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, "recur score: cannot write 'nowhere/o.jsonl': the folder 'nowhere' does not exist\n");
});
