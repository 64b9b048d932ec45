/**
 * Pipelining across layers against layer-after-layer, on this machine's cores: a stack of LSTM
 * layers run two ways on the wasm backend with its default threads —
 *
 *   wavefront   pipelineLayers (the default): one thread per layer, layer l at step t while layer
 *               l+1 works on an earlier step; each layer's input GEMM runs 16 rows at a time and is
 *               split between the layer that produces its rows and the layer that consumes them
 *   layered     pipelineLayers: false: one layer after another, every step split by hidden units
 *               across all threads (one barrier per step)
 *
 * over training steps (forward + backward of the stack, gradients of everything) and forward-only
 * passes of 2-layer stacks (the wavefront runs one thread per layer, so on this 2-core machine it is
 * for two layers; a deeper stack on 2 threads runs layer after layer either way), at the shapes of the lecture's cases: the L2 workload's stack (H 256, B 32, T 64), a
 * wider one (H 512, B 8), batch-1 forward over a known sequence (a prompt) at H 128 and 256, and
 * a 1-step streaming call (where nothing can overlap, so the wavefront declines and both ways are
 * the same code). Input is a random [T, B, H] tensor (the stack alone, no embedding or head).
 * Reports the median time of each way over each run, the runs taken in turn (`--reps`), and the
 * ratio layered / wavefront (> 1: the wavefront is faster) with its spread over the runs.
 *
 *   node --import tsx bench/pipeline.ts [--reps 3] [--seconds 1.5] [--only L2-train,...]
 *
 * Reported, not asserted (speed is never a timed test).
 */
import { parseArgs } from 'node:util';
import { LSTM, Rng, backward, noGrad, sum, tensor } from '../src/index.ts';
import { createWasmBackend } from '../src/backend/wasm/index.ts';
import { registerBackend, setBackend } from '../src/backend/registry.ts';
import { median } from './lib/measure.ts';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '3' }, seconds: { type: 'string', default: '1.5' }, only: { type: 'string' } } });
const REPS = Number(values.reps), SECONDS = Number(values.seconds);

interface Shape {
  name: string;
  T: number;
  B: number;
  H: number;
  layers: number;
  train: boolean;
}

const SHAPES: Shape[] = [
  { name: 'L2-train', T: 64, B: 32, H: 256, layers: 2, train: true },
  { name: 'L2-forward', T: 64, B: 32, H: 256, layers: 2, train: false },
  { name: 'H512-train', T: 64, B: 8, H: 512, layers: 2, train: true },
  { name: 'b1-H128-forward', T: 64, B: 1, H: 128, layers: 2, train: false },
  { name: 'b1-H256-forward', T: 64, B: 1, H: 256, layers: 2, train: false },
  { name: 'b1-H256-stream', T: 1, B: 1, H: 256, layers: 2, train: false },
];

const only = values.only?.split(',');
const shapes = only ? SHAPES.filter((s) => only.includes(s.name)) : SHAPES;
if (shapes.length === 0) throw new Error(`--only: none of ${values.only} (shapes: ${SHAPES.map((s) => s.name).join(', ')})`);

const ways = [
  { name: 'wavefront', backend: await createWasmBackend({ pipelineLayers: true }) },
  { name: 'layered', backend: await createWasmBackend({ pipelineLayers: false }) },
];
for (const w of ways) {
  Object.defineProperty(w.backend, 'name', { value: `wasm-${w.name}` });
  registerBackend(w.backend);
}
// whether the wavefront ran (the backend declines where it would not pay: then both ways are the same code)
let waves = 0;
const stackForward = ways[0].backend.recurrentStackForward.bind(ways[0].backend);
ways[0].backend.recurrentStackForward = (...a) => (stackForward(...a) ? (waves++, true) : false);

/** Median ms of one step of `shape` on `backend`, after 3 warm-up steps, over at least SECONDS. */
function measure(shape: Shape, backend: string): number {
  setBackend(backend);
  const { T, B, H, layers, train } = shape;
  const rng = new Rng(1);
  const lstm = new LSTM({ inputSize: H, hiddenSize: H, numLayers: layers, rng });
  const x = tensor(Array.from({ length: T * B * H }, () => rng.uniform(-1, 1)), [T, B, H]);
  const step = (): void => {
    if (!train) {
      noGrad(() => lstm.forward(x));
      return;
    }
    backward(sum(lstm.forward(x).output));
    for (const p of lstm.parameters()) p.grad = null;
  };
  for (let i = 0; i < 3; i++) step();
  const times: number[] = [];
  const t0 = performance.now();
  while (performance.now() - t0 < SECONDS * 1000 || times.length < 5) {
    const a = performance.now();
    step();
    times.push(performance.now() - a);
  }
  return median(times);
}

const fmt = (v: number): string => (v >= 10 ? v.toFixed(1) : v.toFixed(3));
console.log(`threads: ${ways[0].backend.threads}; ${REPS} runs of each way in turn, median step time per run\n`);
console.log('| stack | wavefront ms | layered ms | layered / wavefront |');
console.log('|---|---|---|---|');
for (const shape of shapes) {
  const ms: Record<string, number[]> = { wavefront: [], layered: [] };
  waves = 0;
  for (let r = 0; r < REPS; r++) for (const w of ways) ms[w.name].push(measure(shape, w.backend.name));
  const declined = waves === 0 ? ' (declined: the same code both ways)' : '';
  const ratios = ms.layered.map((l, r) => l / ms.wavefront[r]);
  const span = (v: number[]): string => `${fmt(Math.min(...v))}–${fmt(Math.max(...v))}`;
  const label = `${shape.name} (${shape.layers}×LSTM H ${shape.H}, B ${shape.B}, T ${shape.T})`;
  console.log(`| ${label}${declined} | ${span(ms.wavefront)} | ${span(ms.layered)} | ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}× |`);
}
for (const w of ways) w.backend.dispose();
