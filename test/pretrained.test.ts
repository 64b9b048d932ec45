/**
 * The models that ship in pretrained/: the manifest names exactly the files there, each file is the
 * one measured (size and SHA-256), they fit the package's size budget together, and each model's
 * held-out figures on a fixed subset of its test split are recomputed from the file and equal the
 * manifest's (scripts/train-pretrained.mjs measured them, and the whole split, on the same files).
 * Then the commands a user runs right after install: `recur predict TASK` without --model, `recur g2p`.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { evaluatePretrained, loadPretrained, PRETRAINED_DIR, pretrainedModels } from '../src/models/files.ts';
import { Seq2SeqTask } from '../src/models/seq2seq.ts';

const BIN = fileURLToPath(new URL('../bin/recur.mjs', import.meta.url));
const recur = (args: string[], input?: string) =>
  spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000, input, env: { ...process.env, RECUR_DEBUG: '' } });

/** The budget for the shipped models together. */
const BUDGET_BYTES = 5 * 1024 * 1024;
const models = pretrainedModels();

describe('shipped models', () => {
  test('the manifest lists exactly the files in pretrained/, as measured, within the size budget', () => {
    assert.deepEqual(models.map((m) => m.task).sort(), ['classify-names', 'namegen', 'seq2seq']);
    const files = readdirSync(PRETRAINED_DIR).filter((f) => f !== 'manifest.json').sort();
    assert.deepEqual(files, models.map((m) => m.file).sort());
    let total = 0;
    for (const m of models) {
      const bytes = readFileSync(join(PRETRAINED_DIR, m.file));
      assert.equal(statSync(join(PRETRAINED_DIR, m.file)).size, m.bytes, m.file);
      assert.equal(createHash('sha256').update(bytes).digest('hex'), m.sha256, `${m.file} is not the file that was measured`);
      total += m.bytes;
    }
    assert.ok(total <= BUDGET_BYTES, `${total} bytes > ${BUDGET_BYTES}`);
  });

  for (const m of models) {
    test(`${m.task}: the held-out figures of ${m.file} on its first ${m.check.batches} test batches are the manifest's`, () => {
      const got = evaluatePretrained(m, { batches: m.check.batches });
      assert.deepEqual(Object.keys(got), Object.keys(m.check.metrics));
      for (const [k, want] of Object.entries(m.check.metrics)) {
        assert.ok(Math.abs(got[k] - want) <= 1e-6 * Math.max(1, Math.abs(want)), `${k}: ${got[k]}, manifest ${want}`);
      }
    });
  }

  test('loadPretrained applies the options a model ships with (the G2P beam width)', () => {
    const task = loadPretrained('seq2seq') as Seq2SeqTask;
    assert.equal(task.beamWidth, models.find((m) => m.task === 'seq2seq')!.options.beamWidth);
  });
});

describe('right after install: recur predict TASK and recur g2p without --model', () => {
  test('recur predict classify-names / namegen', () => {
    const c = recur(['predict', 'classify-names', 'Alice', 'John']);
    assert.equal(c.status, 0, c.stderr);
    assert.equal(c.stdout, 'female\nmale\n');
    const n = recur(['predict', 'namegen', 'female', 'male']);
    assert.equal(n.status, 0, n.stderr);
    assert.match(n.stdout, /^[A-Z][a-z'-]+\n[A-Z][a-z'-]+\n$/);
    const none = recur(['predict', 'charlm', 'x']);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /--model FILE is required: no trained charlm model ships with recur \(shipped: classify-names, namegen, seq2seq\)/);
  });

  test('recur g2p: words from arguments or standard input, CMUdict notation; a bad word is named', () => {
    const r = recur(['g2p', 'cat', 'Phoenix']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'CAT  K AE T\nPHOENIX  F IY N IH K S\n');
    const s = recur(['g2p', '--beam-width', '1'], 'cat\n\nphoenix\n');
    assert.equal(s.status, 0, s.stderr);
    assert.match(s.stdout, /^CAT  [A-Z ]+\nPHOENIX  [A-Z ]+\n$/);
    const bad = recur(['g2p', 'cat', 'r2d2']);
    assert.equal(bad.status, 1);
    assert.equal(bad.stdout, 'CAT  K AE T\n');
    assert.match(bad.stderr, /^recur g2p: input 2 \("r2d2"\): .*character '2'/);
    assert.equal(recur(['g2p', '--beam-width', '0', 'cat']).status, 2);
  });
});
