/**
 * Data parallelism against intra-op threading, on this machine's cores: training steps of the same
 * task run five ways —
 *
 *   1 thread        the plain Trainer, wasm backend with 1 thread
 *   2 threads       the plain Trainer, wasm backend with 2 threads (intra-op: each GEMM, cell step
 *                   and update split across the threads)
 *   4 shards here   4 shards per batch, one after another in this thread (2 wasm threads): what the
 *                   sharding itself costs (gradient accumulation)
 *   1 worker        4 shards in 1 worker thread (1 wasm thread), main thread with 2
 *   2 workers       4 shards in 2 worker threads (1 wasm thread each): data parallelism
 *   2 workers, 2 shards   the same with one shard per worker (another computation: the results
 *                   depend on the shards)
 *
 * on character LMs of several shapes (Embedding(V, H) → LSTM(H) → Linear(H, V), T × B windows, Adam,
 * clipping at 5 — W1's shape first) and on classify-names with its defaults (a bidirectional GRU of
 * 128 over names of a few characters, batch 32). Reports tokens per second (the median step time
 * over each run), each way run `--reps` times in turn; the spread is over the runs.
 *
 *   node --import tsx bench/data-parallel.ts [--reps 3] [--seconds 2] [--only W1,small,...]
 *
 * Reported, not asserted (speed is never a timed test).
 */
import { parseArgs } from 'node:util';
import { loadWasmBackend } from '../src/backend/wasm/index.ts';
import { setBackend } from '../src/backend/registry.ts';
import { buildLMFromText } from '../src/models/lm.ts';
import { encodeTask, getTaskSpec } from '../src/models/registry.ts';
import { Trainer, type TrainerOptions } from '../src/train/trainer.ts';
import { DataParallelTask } from '../src/train/data-parallel.ts';
import { workerShards } from '../src/train/data-parallel-node.ts';
import type { BatchSource, Task } from '../src/train/task.ts';
import { mobyDick } from '../src/data/datasets.ts';
import { median } from './lib/measure.ts';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '3' }, seconds: { type: 'string', default: '2' }, only: { type: 'string' } } });
const REPS = Number(values.reps), SECONDS = Number(values.seconds);

interface Shape {
  name: string;
  label: string;
  build(): { task: Task<unknown>; train: BatchSource<unknown>; trainOptions: TrainerOptions; tokens: number };
}

const TEXT = mobyDick().train.slice(0, 400_000);
const lm = (name: string, H: number, B: number, T: number): Shape => ({
  name,
  label: `LSTM H=${H} B=${B} T=${T}`,
  build() {
    const b = buildLMFromText({ cell: 'lstm', embeddingDim: H, hiddenSize: H, numLayers: 1, seqLen: T, batchSize: B, stepsPerEpoch: 1000, evalBatchSize: 2, seed: 1 }, TEXT);
    return { task: b.task as Task<unknown>, train: b.train as BatchSource<unknown>, trainOptions: { optimizer: 'adam', lr: 1e-3, clipNorm: 5 }, tokens: B * T };
  },
});
const SHAPES: Shape[] = [
  lm('W1', 256, 32, 64),
  lm('H128', 128, 128, 64),
  lm('small', 64, 256, 64),
  {
    name: 'names',
    label: 'classify-names defaults (biGRU H=128, B=32)',
    build() {
      const b = getTaskSpec('classify-names').build({});
      return { task: b.task, train: b.train, trainOptions: b.trainOptions as TrainerOptions, tokens: 32 };
    },
  },
];
const only = values.only ? new Set(values.only.split(',')) : null;

type Way = '1 thread' | '2 threads' | '4 shards here' | '1 worker' | '2 workers' | '2 workers, 2 shards';
const WAYS: Way[] = ['1 thread', '2 threads', '4 shards here', '1 worker', '2 workers', '2 workers, 2 shards'];
const REGISTRY = new URL('../src/models/registry.ts', import.meta.url).href;

/** Median step time (ms) of one run of `way` on `shape`: warm-up steps, then steps for about SECONDS. */
async function measure(shape: Shape, way: Way): Promise<{ ms: number; tokens: number }> {
  await loadWasmBackend({ threads: way === '1 thread' ? 1 : 2 });
  setBackend('wasm');
  const b = shape.build();
  const workers = way === '1 worker' ? 1 : way.startsWith('2 workers') ? 2 : 0;
  const runner = workers ? await workerShards(b.task, { workers, replica: { module: REGISTRY, export: 'taskReplica', arg: encodeTask(b.task) } }) : undefined;
  const task = way === '1 thread' || way === '2 threads' ? b.task : new DataParallelTask(b.task, { shards: way === '2 workers, 2 shards' ? 2 : 4, runner });
  const ends: number[] = [];
  const WARM = 3;
  let start = 0;
  try {
    const trainer = new Trainer(task, {
      ...b.trainOptions, epochs: undefined, maxSteps: 100_000, progress: false, log: () => {},
      callbacks: [{
        onStepEnd: () => {
          ends.push(performance.now());
          if (ends.length === WARM) start = ends[WARM - 1];
          return ends.length > WARM + 3 && ends[ends.length - 1] - start > SECONDS * 1000 ? 'stop' : undefined;
        },
      }],
    });
    await trainer.fit(b.train, null);
  } finally {
    await runner?.close();
  }
  const steps = ends.slice(WARM - 1);
  return { ms: median(steps.slice(1).map((t, i) => t - steps[i])), tokens: b.tokens };
}

const rows: string[] = [];
for (const shape of SHAPES) {
  if (only && !only.has(shape.name)) continue;
  const per = new Map<Way, number[]>(WAYS.map((w) => [w, []]));
  let tokens = 0;
  for (let r = 0; r < REPS; r++) {
    for (const way of WAYS) {
      const m = await measure(shape, way);
      tokens = m.tokens;
      per.get(way)!.push(m.ms);
      process.stderr.write(`${shape.name} ${way}: ${m.ms.toFixed(1)} ms/step\n`);
    }
  }
  const rate = (ms: number): string => Math.round((tokens / ms) * 1000).toLocaleString('en-US');
  const best2 = Math.min(...per.get('2 threads')!);
  rows.push(`| ${shape.name}: ${shape.label} | ${WAYS.map((w) => {
    const ms = per.get(w)!;
    const lo = Math.max(...ms), hi = Math.min(...ms);
    return `${rate(lo)}–${rate(hi)}`;
  }).join(' | ')} | ${(best2 / Math.min(...per.get('2 workers')!)).toFixed(2)}×, ${(best2 / Math.min(...per.get('2 workers, 2 shards')!)).toFixed(2)}× |`);
}
const unit = 'tokens/s (names: samples/s), slowest–fastest run';
console.log(`| workload | ${WAYS.join(' | ')} | 2 workers (4 shards, 2 shards) vs 2 threads, best runs |\n|---|${WAYS.map(() => '---|').join('')}---|`);
for (const r of rows) console.log(r);
console.log(`\n${unit}; ${REPS} runs of each way, each the median step over ≥ ${SECONDS} s after 3 warm-up steps.`);
