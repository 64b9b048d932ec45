#!/usr/bin/env node
// Measures the names classifiers over several random splits of the names, not only the fixed one:
// one test split holds 806 names, so a single accuracy moves by about a point from the split alone.
// For each split seed, every task trains with `recur train TASK --set splitSeed=K --seed 1` and is
// scored on that split's test names with `recur eval TASK --model … --json`; the table gives each
// accuracy, and each task's mean difference from the first task with its standard error over the
// splits (paired: the same test names for every task).
//
//   npm run build && node scripts/names-splits.mjs [--splits 11-20] [--tasks ngram-names,classify-names] [--jobs 2]
//
// --jobs runs that many trainings at once, each on one thread (RECUR_THREADS=1). On two cores the
// default (10 splits, the n-gram baseline and the RNN, 2 jobs) takes about 10 minutes.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../bin/recur.mjs', import.meta.url));
const { values } = parseArgs({ options: { splits: { type: 'string', default: '11-20' }, tasks: { type: 'string', default: 'ngram-names,classify-names' }, jobs: { type: 'string', default: '2' } } });

const range = /^(\d+)-(\d+)$/.exec(values.splits);
const splits = range ? Array.from({ length: Number(range[2]) - Number(range[1]) + 1 }, (_, i) => Number(range[1]) + i) : values.splits.split(',').map(Number);
if (splits.length < 2 || !splits.every((k) => Number.isInteger(k) && k >= 0)) throw new Error(`--splits: two or more split seeds, as 'A-B' or 'A,B,…' (got '${values.splits}')`);
const tasks = values.tasks.split(',');
const jobs = Number(values.jobs);
if (!(Number.isInteger(jobs) && jobs >= 1)) throw new Error(`--jobs: a positive integer (got '${values.jobs}')`);

const recur = (args) => run(process.execPath, [bin, ...args], { env: { ...process.env, RECUR_THREADS: '1' }, maxBuffer: 1 << 24 });

/** Test accuracy of `task` trained on split `k`. */
async function measure(task, k) {
  const dir = mkdtempSync(join(tmpdir(), `recur-${task}-split${k}-`));
  try {
    await recur(['train', task, '--set', `splitSeed=${k}`, '--seed', '1', '--run-dir', dir, '--overwrite']);
    const { stdout } = await recur(['eval', task, '--model', join(dir, 'model.safetensors'), '--json']);
    return JSON.parse(stdout).metrics.accuracy;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const work = splits.flatMap((k) => tasks.map((task) => ({ task, k })));
const acc = new Map(); // `${task} ${k}` → accuracy
let next = 0;
await Promise.all(Array.from({ length: Math.min(jobs, work.length) }, async () => {
  while (next < work.length) {
    const { task, k } = work[next++];
    acc.set(`${task} ${k}`, await measure(task, k));
    console.error(`split ${k}: ${task} ${(100 * acc.get(`${task} ${k}`)).toFixed(2)}%`);
  }
}));

const pct = (x) => (100 * x).toFixed(2);
const w = Math.max(...tasks.map((t) => t.length));
console.log(`test accuracy (%) per split seed, each task trained with --seed 1\n`);
console.log(`${'split'.padEnd(6)} ${tasks.map((t) => t.padStart(w)).join(' ')}`);
for (const k of splits) console.log(`${String(k).padEnd(6)} ${tasks.map((t) => pct(acc.get(`${t} ${k}`)).padStart(w)).join(' ')}`);
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
console.log(`${'mean'.padEnd(6)} ${tasks.map((t) => pct(mean(splits.map((k) => acc.get(`${t} ${k}`)))).padStart(w)).join(' ')}`);
for (const t of tasks.slice(1)) {
  const d = splits.map((k) => acc.get(`${t} ${k}`) - acc.get(`${tasks[0]} ${k}`));
  const m = mean(d);
  const se = Math.sqrt(d.reduce((s, x) => s + (x - m) ** 2, 0) / (d.length - 1) / d.length);
  console.log(`\n${t} − ${tasks[0]}: ${m >= 0 ? '+' : ''}${pct(m)} ± ${pct(se)} points (mean ± standard error over ${d.length} splits); ahead on ${d.filter((x) => x > 0).length} of ${d.length}`);
}
