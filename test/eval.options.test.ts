/**
 * `recur eval` rebuilds the held-out data with the task options the model was trained with (the
 * checkpoint in the model's run directory), with any `--set` given to eval on top. A classifier
 * trained with a small vocabulary (`maxVocab`) must be scored on data encoded with that vocabulary,
 * not the default one.
 */
import { loadModelFile } from '../src/io/files.ts';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evalCommand, trainCommand } from '../src/cli/train-commands.ts';
import { getTaskSpec } from '../src/models/registry.ts';
import { writeMail } from './helpers/mail.ts';

const root = mkdtempSync(join(tmpdir(), 'recur-eval-options-'));
after(() => rmSync(root, { recursive: true, force: true }));

function capture() {
  const out: string[] = [];
  return { out, deps: { stdout: (t: string) => void out.push(t), stderr: () => {}, progress: false as const } };
}


const data = join(root, 'mail.jsonl');
const runDir = join(root, 'run');
// Non-default options: a vocabulary capped at 6 entries (pad, unk and the 7 commonest words; the default, 20000, holds every word) and
// minCount 1 (default 2) change the token ids; batchSize 8 (default 32) changes the batching.
const trained = { data, maxVocab: 9, minCount: 1, embeddingDim: 8, hiddenSize: 8, batchSize: 8 };
let trainTestLine = '';

function formatMetrics(m: Record<string, number>): string {
  return Object.entries(m)
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toPrecision(4)}`)
    .join(', ');
}

test('recur train classify-spam with non-default task options', async () => {
  writeMail(data);
  const c = capture();
  const sets = Object.entries(trained).flatMap(([k, v]) => ['--set', `${k}=${v}`]);
  assert.equal(await trainCommand(['classify-spam', '--epochs', '3', '--lr', '0.02', '--run-dir', runDir, ...sets], c.deps), 0);
  const m = /\n {2}test: (.*)\n/.exec(c.out.join(''));
  assert.ok(m, c.out.join(''));
  trainTestLine = m[1];
});

test('recur eval uses the task options saved with the run (same metrics as the training run)', async () => {
  const model = join(runDir, 'model.safetensors');
  const e = capture();
  // Only the data file is named again; maxVocab, minCount and batchSize come from the checkpoint.
  assert.equal(await evalCommand(['classify-spam', '--model', model, '--set', `data=${data}`, '--json'], e.deps), 0);
  const j = JSON.parse(e.out.join('')) as { split: string; metrics: Record<string, number> };
  assert.equal(j.split, 'test');
  assert.equal(formatMetrics(j.metrics), trainTestLine);
  // … and exactly the metrics of the loaded model on data built with the training options.
  const spec = getTaskSpec('classify-spam');
  const direct = spec.load(loadModelFile(model)).task.evaluate(spec.build(trained).test!);
  assert.deepEqual(j.metrics, JSON.parse(JSON.stringify(direct)));

  // Without any --set: the data option is saved too.
  const e2 = capture();
  assert.equal(await evalCommand(['classify-spam', '--model', model, '--json'], e2.deps), 0);
  assert.deepEqual(JSON.parse(e2.out.join('')).metrics, j.metrics);
});

test('recur eval: --set overrides a saved task option', async () => {
  const model = join(runDir, 'best.safetensors');
  const saved = capture();
  assert.equal(await evalCommand(['classify-spam', '--model', model], saved.deps), 0);
  assert.match(saved.out.join(''), /classify-spam on the test data \(3 batches\):/);
  const over = capture();
  assert.equal(await evalCommand(['classify-spam', '--model', model, '--set', 'batchSize=16'], over.deps), 0);
  assert.match(over.out.join(''), /classify-spam on the test data \(2 batches\):/);
});

test('recur eval of a model file outside its run directory: the defaults plus --set', async () => {
  const other = join(root, 'elsewhere');
  mkdirSync(other);
  const model = join(other, 'model.safetensors');
  copyFileSync(join(runDir, 'model.safetensors'), model);
  const sets = Object.entries(trained).flatMap(([k, v]) => ['--set', `${k}=${v}`]);
  const e = capture();
  assert.equal(await evalCommand(['classify-spam', '--model', model, ...sets, '--json'], e.deps), 0);
  assert.equal(formatMetrics(JSON.parse(e.out.join('')).metrics), trainTestLine);
});
