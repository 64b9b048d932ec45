/**
 * Full BPTT over one very long sequence, with and without activation checkpointing
 * (`backwardCheckpointed`, src/train/tbptt.ts): a character LM (Embedding 64 → 32 → LSTM H → Linear
 * H → 64, summed cross-entropy over every step) takes one Adam step on B streams of T random
 * tokens, the gradient reaching back over all T steps.
 *
 *   node --import tsx bench/long-sequence.ts                       the sweep below, one process per row
 *   node --import tsx bench/long-sequence.ts --T 100000 --k 316    one run (k 0: no checkpointing)
 *
 * Sweep: T = 100,000, H 256, B 8 for k = 100, 316, 1,000, 3,162; without checkpointing at
 * T = 1,000, 3,000 and 10,000 (at T = 100,000 it would need about 11 GiB, 114 KiB a step, more
 * than a wasm32 memory can hold). Each row runs in its own process, so its memory is its own:
 * "wasm memory" is the backend's linear memory at the end (it only grows, so it is the peak) and
 * "peak RSS" the process's. Times are wall-clock seconds on the wasm backend (2 threads); they are
 * reported, not asserted.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Adam, Embedding, LSTM, Linear, Rng, Tensor, backward, crossEntropy, registerBackend, setBackend, zeros } from '../src/index.ts';
import { backwardCheckpointed } from '../src/train/tbptt.ts';
import { createWasmBackend } from '../src/backend/wasm/index.ts';

const V = 64, E = 32;

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? def : Number(process.argv[i + 1]);
}

interface Row { T: number; k: number; H: number; B: number; segments: number; lossPerStep: number; seconds: number; wasmMiB: number; rssMiB: number }

async function one(T: number, k: number, H: number, B: number): Promise<Row> {
  const be = await createWasmBackend();
  registerBackend(be);
  setBackend(be.name);
  const rng = new Rng(1);
  const embed = new Embedding(V, E, { rng });
  const lstm = new LSTM({ inputSize: E, hiddenSize: H, rng });
  const head = new Linear(H, V, { rng });
  const ids = Int32Array.from({ length: (T + 1) * B }, () => rng.int(V));
  const opt = new Adam([...embed.parameters(), ...lstm.parameters(), ...head.parameters()], { lr: 1e-3 });
  const run = (t0: number, t1: number, [h, c]: readonly Tensor[]) => {
    const r = lstm.forward(embed.forward(ids.subarray(t0 * B, t1 * B), [t1 - t0, B]), { h, c });
    return { loss: crossEntropy(head.forward(r.output), ids.subarray((t0 + 1) * B, (t1 + 1) * B), { reduction: 'sum' }), state: [r.h, r.c!] };
  };
  const start = performance.now();
  opt.zeroGrad();
  let loss: number, segments: number;
  if (k > 0) {
    ({ loss, segments } = backwardCheckpointed(T, k, [zeros([1, B, H]), zeros([1, B, H])], run));
  } else {
    const r = run(0, T, [zeros([1, B, H]), zeros([1, B, H])]);
    loss = r.loss.item();
    segments = 1;
    backward(r.loss);
  }
  opt.step();
  const seconds = (performance.now() - start) / 1000;
  const MiB = 2 ** 20;
  return { T, k, H, B, segments, lossPerStep: loss / (T * B), seconds, wasmMiB: be.stats().memoryBytes / MiB, rssMiB: (process.resourceUsage().maxRSS * 1024) / MiB };
}

if (process.argv.includes('--T')) {
  console.log(JSON.stringify(await one(arg('T', 100000), arg('k', 316), arg('H', 256), arg('B', 8))));
} else {
  const self = fileURLToPath(import.meta.url);
  const configs: [number, number][] = [[1000, 0], [3000, 0], [10000, 0], [100000, 100], [100000, 316], [100000, 1000], [100000, 3162]];
  console.log('| T | k (0: no checkpointing) | segments | seconds | wasm memory (MiB) | peak RSS (MiB) | loss per step |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|');
  for (const [T, k] of configs) {
    const out = execFileSync(process.execPath, ['--import', 'tsx', self, '--T', String(T), '--k', String(k)], { encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').pop()!) as Row;
    console.log(`| ${r.T.toLocaleString('en')} | ${r.k} | ${r.segments} | ${r.seconds.toFixed(1)} | ${r.wasmMiB.toFixed(0)} | ${r.rssMiB.toFixed(0)} | ${r.lossPerStep.toFixed(4)} |`);
  }
}
