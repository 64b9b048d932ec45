/**
 * Decoding options of a trained encoder–decoder at the command line: `recur eval seq2seq --set
 * beamWidth=N` decodes with a beam of N whatever the run was trained with, and without --set the
 * run's own (saved) beam width applies; `recur predict --set` likewise. The CLI's figures are checked
 * against the library's on the same model file and data (both on the reference backend).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModelFile } from '../src/io/files.ts';
import { seq2seqTaskSpec, Seq2SeqTask } from '../src/models/seq2seq.ts';
import { withEval } from '../src/nn/module.ts';

const BIN = fileURLToPath(new URL('../bin/recur.mjs', import.meta.url));
const recur = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, RECUR_BACKEND: 'js', RECUR_DEBUG: '' } });

// A tiny G2P model that trains in seconds; under-trained, so greedy and beam decoding disagree.
const TINY = { trainLimit: 48, testSize: 300, valSize: 100, embeddingDim: 16, encoderHidden: 24, decoderHidden: 48, attnDim: 24, batchSize: 16, maxWordLength: 6, lr: 0.01 };

test('recur eval/predict seq2seq: --set beamWidth overrides the beam width the run was trained with', () => {
  const dir = mkdtempSync(join(tmpdir(), 'recur-decoding-'));
  try {
    const sets = Object.entries(TINY).flatMap(([k, v]) => ['--set', `${k}=${v}`]);
    // trained with beamWidth 3: its evaluations, and a later `recur eval`, decode with a beam of 3
    const t = recur(['train', 'seq2seq', '--run-dir', dir, '--epochs', '4', '--set', 'beamWidth=3', ...sets]);
    assert.equal(t.status, 0, t.stderr);
    const model = join(dir, 'model.safetensors');

    // the library's figures for this file on the same test data, greedy and with a beam of 3
    const { test: data } = seq2seqTaskSpec.build({ ...TINY, beamWidth: 3 });
    const task = seq2seqTaskSpec.load(loadModelFile(model)).task as Seq2SeqTask;
    const score = (beamWidth: number) => {
      task.beamWidth = beamWidth;
      return withEval(task.model, () => task.evaluate(data!));
    };
    const greedy = score(1);
    const beam = score(3);
    assert.notDeepEqual(greedy, beam, 'the test needs a model whose greedy and beam decodings differ');

    const evalJSON = (...extra: string[]) => {
      const r = recur(['eval', 'seq2seq', '--model', model, '--json', ...extra]);
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout).metrics;
    };
    assert.deepEqual(evalJSON(), beam, 'the run was trained with beamWidth 3');
    assert.deepEqual(evalJSON('--set', 'beamWidth=1'), greedy, '--set beamWidth=1 decodes greedily');
    assert.deepEqual(evalJSON('--set', 'beamWidth=3'), beam);
    const bad = recur(['eval', 'seq2seq', '--model', model, '--set', 'beamWidth=0']);
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /option 'beamWidth' must be a positive integer, got 0/);

    // predict: the same words, decoded as the library decodes them at each beam width
    const words = ['cat', 'dog', 'house', 'table'];
    for (const beamWidth of [1, 3]) {
      task.beamWidth = beamWidth;
      const want = withEval(task.model, () => task.predict(words));
      const r = recur(['predict', 'seq2seq', '--model', model, '--set', `beamWidth=${beamWidth}`, ...words]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, want.map((p) => `${p}\n`).join(''));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
