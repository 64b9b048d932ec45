/**
 * Many concurrent streams in one process: N users each send one character per tick to a character
 * LM (Embedding 32 → LSTM H → Linear; random weights: speed does not depend on them), states kept
 * per stream id (the JSON states of `streamOf`, as `recur serve` keeps them). Two ways to serve a
 * tick in which all N streams have a character waiting:
 *
 *   batched      one `step` call for all N streams: their states stacked into one [1, N] pass
 *   one by one   N `step` calls of one stream each, in arrival order
 *
 * Reports characters per second and the latency of a step — from the tick's start (when every
 * character has arrived) to the moment its stream's reply is ready: in the batched row every stream
 * waits for the whole pass; one by one, the i-th stream waits for the i streams before it.
 *
 *   node --import tsx bench/multi-stream.ts [--backend js|wasm] [--hidden 128] [--ticks 20]
 *
 * N = 1, 10, 100 and 1,000, each for max(--ticks, 5,000 / N) ticks after 3 warm-up ticks; the
 * percentiles are over all steps of all ticks.
 * Reported, not asserted. `bench/serve.ts` measures the same over HTTP with the server's batcher.
 */
import { parseArgs } from 'node:util';
import { registerBackend, setBackend } from '../src/index.ts';
import { createWasmBackend } from '../src/backend/wasm/index.ts';
import { buildLMFromText } from '../src/models/lm.ts';
import { streamOf } from '../src/models/stream.ts';

const { values } = parseArgs({ options: { backend: { type: 'string', default: 'wasm' }, hidden: { type: 'string', default: '128' }, ticks: { type: 'string', default: '20' } } });
const H = Number(values.hidden), TICKS = Number(values.ticks);
if (values.backend === 'wasm') {
  const be = await createWasmBackend();
  registerBackend(be);
  setBackend(be.name);
} else if (values.backend !== 'js') throw new Error('--backend is js or wasm');

const TEXT = 'Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, and nothing particular to interest me on shore. '.repeat(4);
const { task } = buildLMFromText({ cell: 'lstm', embeddingDim: 32, hiddenSize: H, numLayers: 1, seqLen: 8, batchSize: 2, stepsPerEpoch: 1, evalBatchSize: 2, seed: 1 }, TEXT);
const stream = streamOf(task)!;

function pct(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Serve TICKS ticks of N streams; returns characters/s and the step latencies (ms). */
function serve(N: number, batched: boolean): { perSec: number; latencies: number[] } {
  const states: (string | null)[] = new Array(N).fill(null);
  const latencies: number[] = [];
  let busy = 0;
  const ticks = Math.max(TICKS, Math.ceil(5000 / N));
  for (let tick = -3; tick < ticks; tick++) {
    const inputs = Array.from({ length: N }, (_, i) => TEXT[(i * 7 + tick + 3) % TEXT.length]);
    const start = performance.now();
    if (batched) {
      const r = stream.step(inputs, states);
      r.states.forEach((s, i) => (states[i] = s));
      const done = performance.now() - start;
      if (tick >= 0) for (let i = 0; i < N; i++) latencies.push(done);
    } else {
      for (let i = 0; i < N; i++) {
        states[i] = stream.step([inputs[i]], [states[i]]).states[0];
        if (tick >= 0) latencies.push(performance.now() - start);
      }
    }
    if (tick >= 0) busy += performance.now() - start;
  }
  return { perSec: (N * ticks) / (busy / 1000), latencies: latencies.sort((a, b) => a - b) };
}

console.log(`charlm E 32, LSTM H ${H}, backend ${values.backend}\n`);
console.log('| streams | mode | characters/s | p50 step (ms) | p99 step (ms) | batched ÷ one by one |');
console.log('|---:|---|---:|---:|---:|---:|');
for (const N of [1, 10, 100, 1000]) {
  const one = serve(N, false);
  const all = serve(N, true);
  for (const [mode, r] of [['one by one', one], ['batched', all]] as const) {
    const ratio = mode === 'batched' ? `${(all.perSec / one.perSec).toFixed(1)}× the rate` : '';
    console.log(`| ${N.toLocaleString('en')} | ${mode} | ${Math.round(r.perSec).toLocaleString('en')} | ${pct(r.latencies, 0.5).toFixed(2)} | ${pct(r.latencies, 0.99).toFixed(2)} | ${ratio} |`);
  }
}
