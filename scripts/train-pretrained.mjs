#!/usr/bin/env node
// Retrains the models that ship in pretrained/ and rewrites pretrained/manifest.json: for each,
// `recur train` with the command below (fixed seeds: the run is reproducible on the same thread
// count), its best model (on the validation data) copied in, and its figures on the whole test split
// and on the fixed subset the package's tests check (test/pretrained.test.ts).
//
//   npm run build && RECUR_THREADS=2 node scripts/train-pretrained.mjs [--only TASK ...] [--keep-model]
//
// --only retrains the named tasks (classify-names, namegen, seq2seq); the others keep their files.
// --keep-model trains nothing: the files in pretrained/ are re-measured and the manifest rewritten.
// seq2seq takes about 50 minutes on two cores; the names models take seconds.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const { PRETRAINED_DIR, pretrainedModels, evaluatePretrained, readTrainingState, writeFileAtomic } = await import(new URL('../dist/node.js', import.meta.url).href);

/**
 * What ships: the task, its file, the `recur train` arguments, the options it is used with beyond
 * those it was trained with (decoding), and how many test batches the package's test rescores.
 */
const RECIPES = [
  { task: 'classify-names', file: 'classify-names.safetensors', args: ['--seed', '1'], use: {}, checkBatches: 8 },
  { task: 'namegen', file: 'namegen.safetensors', args: ['--seed', '1'], use: {}, checkBatches: 8 },
  // Beam search of width 5 at test time: see the README's G2P section for what each lever gave.
  { task: 'seq2seq', file: 'g2p.safetensors', args: ['--seed', '1'], use: { beamWidth: 5 }, checkBatches: 2 },
];

const { values } = parseArgs({ options: { only: { type: 'string', multiple: true }, 'keep-model': { type: 'boolean' } } });
const only = values.only ?? RECIPES.map((r) => r.task);
for (const t of only) if (!RECIPES.some((r) => r.task === t)) throw new Error(`--only: no pretrained model for '${t}' (known: ${RECIPES.map((r) => r.task).join(', ')})`);
const previous = new Map((() => {
  try {
    return pretrainedModels().map((m) => [m.task, m]);
  } catch {
    return [];
  }
})());

const sha256 = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');
const recur = (args) => spawnSync(process.execPath, [join(root, 'bin', 'recur.mjs'), ...args], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
const writeManifest = (models) => writeFileAtomic(join(PRETRAINED_DIR, 'manifest.json'), `${JSON.stringify({ models }, null, 2)}\n`);
const entries = [];
for (const recipe of RECIPES) {
  const command = ['recur', 'train', recipe.task, ...recipe.args].join(' ');
  let options;
  if (only.includes(recipe.task) && !values['keep-model']) {
    const runDir = mkdtempSync(join(tmpdir(), `recur-${recipe.task}-`));
    console.error(`${command}  (run directory ${runDir})`);
    const r = spawnSync(process.execPath, [join(root, 'bin', 'recur.mjs'), 'train', recipe.task, ...recipe.args, '--run-dir', runDir, '--overwrite'], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`${command} failed (exit ${r.status})`);
    // the task options the run was trained with: they rebuild its data and its split
    options = { ...readTrainingState(runDir).meta.taskOptions, ...recipe.use };
    writeFileAtomic(join(PRETRAINED_DIR, recipe.file), readFileSync(join(runDir, 'best.safetensors')));
    rmSync(runDir, { recursive: true, force: true });
  } else {
    const old = previous.get(recipe.task);
    if (!old) throw new Error(`pretrained/manifest.json has no ${recipe.task} entry to keep: retrain it (--only ${recipe.task})`);
    options = { ...old.options, ...recipe.use };
  }
  const path = join(PRETRAINED_DIR, recipe.file);
  entries.push({ task: recipe.task, file: recipe.file, bytes: statSync(path).size, sha256: sha256(path), options, command, test: {}, check: { batches: recipe.checkBatches, metrics: {} } });
}
// The files are in place; measure them as a user would see them: `recur eval TASK` without --model
// scores the shipped model (on the fast backend) over the whole test split, and the fixed subset is
// scored in this process the way test/pretrained.test.ts rescores it.
writeManifest(entries);
for (const entry of entries) {
  console.error(`${entry.task}: recur eval ${entry.task} (the whole test split)`);
  const r = recur(['eval', entry.task, '--json']);
  if (r.status !== 0) throw new Error(`recur eval ${entry.task} failed (exit ${r.status})`);
  entry.test = JSON.parse(r.stdout).metrics;
  entry.check.metrics = evaluatePretrained(entry, { batches: entry.check.batches });
  console.error(`  test ${JSON.stringify(entry.test)}; check subset ${JSON.stringify(entry.check.metrics)}`);
}
writeManifest(entries);
console.error(`pretrained/manifest.json: ${entries.length} models, ${entries.reduce((a, e) => a + e.bytes, 0)} bytes`);
