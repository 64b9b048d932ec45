/**
 * Data-parallel training (src/train/data-parallel.ts, data-parallel-node.ts): the shard contract of
 * the tasks that shard, results identical bit for bit whether the shards run in this thread or in
 * 1, 2 or 3 worker threads, one shard equal to the plain Trainer, exact resumption across worker
 * counts, and the errors (a task that cannot shard, a replica that is not the model, a failing
 * shard in a worker, the CLI's flags).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadWasmBackend } from '../src/backend/wasm/index.ts';
import { setBackend } from '../src/backend/registry.ts';
import { encodeTask, getTaskSpec } from '../src/models/registry.ts';
import { Trainer, type TrainerOptions } from '../src/train/trainer.ts';
import { memoryStore } from '../src/train/run-store.ts';
import { combineShards, DataParallelError, DataParallelTask, inProcessShards, runShard, type ShardRunner } from '../src/train/data-parallel.ts';
import { workerShards } from '../src/train/data-parallel-node.ts';
import { taskRngs, type Task } from '../src/train/task.ts';
import { shardRanges, takeColumns } from '../src/data/batch.ts';
import { trainCommand } from '../src/cli/train-commands.ts';

await loadWasmBackend({ threads: 2 });
setBackend('wasm');

const dir = mkdtempSync(join(tmpdir(), 'recur-data-parallel-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const REGISTRY = new URL('../src/models/registry.ts', import.meta.url).href;
const quiet = { progress: false, log: () => {} } as const;

/** Small versions of the tasks that shard: charlm (no dropout) and classify-names (dropout 0.5). */
const SMALL: Record<string, Record<string, unknown>> = {
  charlm: { embeddingDim: 8, hiddenSize: 24, seqLen: 12, batchSize: 10, stepsPerEpoch: 6, evalBatchSize: 4 },
  'classify-names': { embeddingDim: 8, hiddenSize: 16, dropout: 0.5, batchSize: 24, epochs: 1 },
};

function build(name: string, extra: Record<string, unknown> = {}) {
  return getTaskSpec(name).build({ ...SMALL[name], ...extra });
}

interface Run {
  losses: number[];
  weights: number[][];
}

/** Train `steps` steps of `name`, sharded as `shards` and run where `where` says; the losses and final weights. */
async function train(name: string, steps: number, where: 'plain' | 'here' | number, shards = 4, extra: Record<string, unknown> = {}): Promise<Run> {
  const built = build(name, extra);
  let runner: Awaited<ReturnType<typeof workerShards>> | undefined;
  let task: Task<unknown> = built.task;
  if (typeof where === 'number') runner = await workerShards(built.task, { workers: where, replica: { module: REGISTRY, export: 'taskReplica', arg: encodeTask(built.task) } });
  if (where !== 'plain') task = new DataParallelTask(built.task, { shards, runner });
  const losses: number[] = [];
  try {
    await new Trainer(task, { ...(built.trainOptions as TrainerOptions), ...quiet, epochs: undefined, maxSteps: steps, callbacks: [{ onStepEnd: (s) => void losses.push(s.loss) }] }).fit(built.train, null);
  } finally {
    await runner?.close();
  }
  return { losses, weights: built.task.model.parameters().map((p) => Array.from(p.toArray())) };
}

test('shardRanges and takeColumns: contiguous near-equal shards of a time-major batch', () => {
  assert.deepEqual(shardRanges(10, 4, 't'), [[0, 2], [2, 5], [5, 7], [7, 10]]);
  assert.deepEqual(shardRanges(3, 4, 't'), [[0, 1], [1, 2], [2, 3]]); // a small last batch: one sample each
  assert.deepEqual(shardRanges(5, 1, 't'), [[0, 5]]);
  assert.throws(() => shardRanges(5, 0, 'charlm'), /charlm: the number of shards must be a positive integer, got 0/);
  // [T=2, B=3, inner=2] → samples 1…2
  const a = Int32Array.from({ length: 12 }, (_, i) => i);
  assert.deepEqual(Array.from(takeColumns(a, 2, 3, 1, 3, 2)), [2, 3, 4, 5, 8, 9, 10, 11]);
});

for (const name of Object.keys(SMALL)) {
  test(`${name}: the shard contract — the count-weighted shards give the batch's loss and gradients`, () => {
    const { task, train: data } = build(name, name === 'classify-names' ? { dropout: 0 } : {});
    task.model.train();
    const batch = data.get(0, 0);
    const whole = runShard(task, taskRngs(task as Task<unknown>), 1, 0, batch);
    const parts = task.shard!(batch, 3);
    assert.equal(parts.length, 3);
    const c = combineShards(inProcessShards(task).run(parts, 1), whole.grads.length);
    assert.equal(c.count, whole.count);
    assert.ok(Math.abs(c.loss - whole.loss) < 1e-6 * Math.abs(whole.loss), `${c.loss} vs ${whole.loss}`);
    let worst = 0;
    whole.grads.forEach((g, i) => {
      const s = c.grads[i]!;
      for (let j = 0; j < g!.length; j++) worst = Math.max(worst, Math.abs(s[j] - g![j]) / (1e-3 + Math.abs(g![j])));
    });
    assert.ok(worst < 1e-4, `worst relative gradient difference ${worst}`);
  });

  test(`${name}: 4 shards give the same losses and weights bit for bit in this thread and in 1, 2 and 3 workers`, async () => {
    const here = await train(name, 4, 'here');
    for (const workers of [1, 2, 3]) {
      const there = await train(name, 4, workers);
      assert.deepEqual(there.losses, here.losses, `${workers} workers`);
      assert.deepEqual(there.weights, here.weights, `${workers} workers`);
    }
    // and the shards matter: 2 shards is another computation (to rounding, or other dropout masks)
    assert.notDeepEqual((await train(name, 4, 'here', 2)).weights, here.weights);
  });
}

test('one shard in this thread equals the plain Trainer bit for bit; four shards equal it to rounding', async () => {
  const plain = await train('charlm', 5, 'plain');
  assert.deepEqual(await train('charlm', 5, 'here', 1), plain);
  const four = await train('charlm', 5, 'here', 4);
  four.losses.forEach((l, i) => assert.ok(Math.abs(l - plain.losses[i]) < 1e-5, `step ${i + 1}: ${l} vs ${plain.losses[i]}`));
});

test('a sharded run resumed from its checkpoint in workers continues exactly (the shard seeds are checkpointed)', async () => {
  const store = memoryStore();
  const run = async (steps: number, where: 'here' | number, resume?: string): Promise<number[]> => {
    const built = build('classify-names');
    const runner = typeof where === 'number' ? await workerShards(built.task, { workers: where, replica: { module: REGISTRY, export: 'taskReplica', arg: encodeTask(built.task) } }) : undefined;
    const losses: number[] = [];
    try {
      const t = new Trainer(new DataParallelTask(built.task, { shards: 4, runner }), {
        ...(built.trainOptions as TrainerOptions), ...quiet, epochs: undefined, maxSteps: steps, store, runDir: resume ?? 'r', checkpoint: { every: 3 }, callbacks: [{ onStepEnd: (s) => void losses.push(s.loss) }],
      });
      assert.ok(t.rngNames.includes('task.dataParallelRng'));
      await t.fit(built.train, null, resume ? { resume } : {});
    } finally {
      await runner?.close();
    }
    return losses;
  };
  const straight = await run(6, 'here');
  await run(3, 'here');
  assert.deepEqual(await run(6, 2, 'r'), straight.slice(3));
});

test('errors: a task that cannot shard, a replica that is not the model, a shard failing in a worker', async () => {
  const ff = getTaskSpec('feedforward').build({ epochs: 1 });
  assert.throws(() => new DataParallelTask(ff.task, { shards: 2 }), (e: Error) => e instanceof DataParallelError && /task 'feedforward' cannot cut its batches into shards/.test(e.message));
  const names = build('classify-names');
  assert.throws(() => new DataParallelTask(names.task, { shards: 0 }), /shards must be a positive integer, got 0/);
  await assert.rejects(workerShards(names.task, { workers: 0, replica: { module: REGISTRY, export: 'taskReplica' } }), /workers must be a positive integer, got 0/);
  await assert.rejects(workerShards(names.task, { workers: 1, replica: { module: REGISTRY, export: 'nothing' } }), /worker 0 did not start: .*exports no function 'nothing'/);
  const bigger = build('classify-names', { hiddenSize: 17 });
  await assert.rejects(workerShards(names.task, { workers: 1, replica: { module: REGISTRY, export: 'taskReplica', arg: encodeTask(bigger.task) } }), /its replica's parameters \(.*rnn\.weight_hh_l0:867.*\) are not the model's \(.*rnn\.weight_hh_l0:768/);
  // a shard whose ids are outside the vocabulary fails in its worker; the step names the worker
  const runner: ShardRunner<unknown> & { close(): Promise<void> } = await workerShards(names.task, { workers: 2, replica: { module: REGISTRY, export: 'taskReplica', arg: encodeTask(names.task) } });
  try {
    const good = names.task.shard!(names.train.get(0, 0), 2);
    const bad = { ...(good[1] as object), ids: (good[1] as { ids: Int32Array }).ids.map(() => 1e6) };
    assert.throws(() => runner.run([good[0], bad], 7), (e: Error) => e instanceof DataParallelError && /worker 1: .*1000000/.test(e.message) && !/worker 0/.test(e.message));
    // the pool still works after a failed step
    assert.equal(runner.run(good, 7).length, 2);
  } finally {
    await runner.close();
  }
  assert.throws(() => runner.run([], 0), /the workers were closed/);
});

test('recur train --workers/--shards: same run as in one thread; bad combinations refused', async () => {
  const out: string[] = [];
  const deps = { stdout: (t: string) => void out.push(t), stderr: () => {}, progress: false as const };
  const small = ['--set', 'hiddenSize=16', '--set', 'embeddingDim=8', '--max-steps', '3'];
  const trainLine = (): string => out.join('').match(/training loss \S+/)![0];
  assert.equal(await trainCommand(['classify-names', ...small, '--shards', '4', '--run-dir', join(dir, 'a')], deps), 0);
  assert.match(out.join(''), /4 shards per batch, in this thread/);
  const here = trainLine();
  out.length = 0;
  assert.equal(await trainCommand(['classify-names', ...small, '--workers', '2', '--run-dir', join(dir, 'b')], deps), 0);
  assert.match(out.join(''), /4 shards per batch, in 2 worker threads/);
  assert.equal(trainLine(), here);
  await assert.rejects(trainCommand(['classify-names', ...small, '--workers', '5', '--run-dir', join(dir, 'c')], deps), /--workers 5 is more than the 4 shards of each batch/);
  await assert.rejects(trainCommand(['classify-names', '--dry-run', '--workers', '2'], deps), /--dry-run measures the plain training step; it does not go with --workers or --shards/);
  await assert.rejects(trainCommand(['classify-names', '--resume', join(dir, 'b'), '--shards', '2', '--max-steps', '4'], deps), /--shards cannot change when resuming \(the run uses 4\)/);
  await assert.rejects(trainCommand(['feedforward', '--workers', '2', '--max-steps', '1', '--run-dir', join(dir, 'd')], deps), /task 'feedforward' cannot cut its batches into shards/);
});
