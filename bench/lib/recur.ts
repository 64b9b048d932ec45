/**
 * recur on one backend: the training step and the streaming step of a workload, and the
 * configurations (backends and their options) the harness runs.
 */
import {
  Adam, Embedding, GRU, LSTM, Linear, RNN, Rng, backward, clipGradNorm, clipGradNormReading, crossEntropy, getBackend, runAsync, setBackend,
  type RecurrentBase, type Tensor,
} from '../../src/index.ts';
import { loadWasmBackend, type WasmBackendOptions } from '../../src/backend/wasm/index.ts';
import { TokenStream } from '../../src/infer/token-stream.ts';
import { CostModel, errorMessage, round, timeStream, timeTraining, trainResult, type Policy, type RunResult } from './measure.ts';
import type { Workload } from './workloads.ts';

/** One way of running recur: a backend, loaded with some options. */
export interface RecurConfig {
  /** Name in the tables: recur-js, recur-wasm, recur-wasm-1t. */
  system: string;
  /** Loads the backend (registering it) and says how it came up; throws when it cannot. */
  load: () => Promise<LoadedBackend>;
  /**
   * Ablation: hide the embedding lookup from the recurrent layer (`x.lookup = null`), so its input
   * projection and gradients run over all T·B rows instead of the V table rows (src/cells/recurrent.ts).
   */
  rowProjection?: boolean;
}

export interface LoadedBackend {
  /** The registry name to run on ('js', 'wasm'). */
  backend: string;
  /** Threads it computes with, when it says (a numeric `threads` field); js is single-threaded. */
  threads: number | null;
  note: string;
  /** Releases it (worker threads, memory) once its runs are done. */
  dispose: () => void;
}

/** How a configuration came up, for the report and the JSON. */
export interface BackendStatus {
  system: string;
  available: boolean;
  backend: string | null;
  threads: number | null;
  /** Why it is not available, or how it was loaded. */
  note: string;
}

/**
 * The recur configurations to run: the reference `js` backend, and the WebAssembly backend
 * (`loadWasmBackend(opts)`, registering a backend named 'wasm') on one thread (like for like with
 * the single-threaded systems) and with its default thread count — or once, when `wasmOpts` fixes
 * the threads — plus the recur-wasm-rows and recur-wasm-layered ablations. A backend that fails to load is reported as not
 * available, with the reason.
 */
export function recurConfigs(wasmOpts: Record<string, unknown>): RecurConfig[] {
  const js: RecurConfig = {
    system: 'recur-js',
    load: async () => ({ backend: 'js', threads: 1, note: 'reference TypeScript backend (single-threaded)', dispose: () => {} }),
  };
  const wasm = (system: string, opts: Record<string, unknown>): RecurConfig => ({
    system,
    load: async () => {
      const be = await loadWasmBackend(opts as WasmBackendOptions);
      return {
        backend: be.name,
        threads: be.threads,
        note: `loadWasmBackend(${JSON.stringify(opts)}): ${JSON.stringify({ name: be.name, variant: be.variant, threads: be.threads })}`,
        dispose: () => be.dispose(),
      };
    },
  });
  const rows: RecurConfig = { ...wasm('recur-wasm-rows', wasmOpts), rowProjection: true };
  // ablation: stacks run layer after layer, each step split across the threads (no wavefront)
  const layered = wasm('recur-wasm-layered', { ...wasmOpts, pipelineLayers: false });
  // WebGPU in Node through the `webgpu` package (Dawn); run only when named (--systems recur-webgpu):
  // on a machine without a GPU its adapter is a CPU implementation, and the note says so
  const webgpu: RecurConfig = {
    system: 'recur-webgpu',
    load: async () => {
      const { create } = await import('webgpu');
      const { loadWebGpuBackend } = await import('../../src/backend/webgpu/index.ts');
      const a = (await loadWebGpuBackend({ gpu: create([]) })).adapter;
      const what = [a.vendor, a.architecture, a.description].filter(Boolean).join(' ');
      return { backend: 'webgpu', threads: null, note: `loadWebGpuBackend: ${what}${a.software ? ' — a software adapter (the CPU): not a GPU figure' : ''}`, dispose: () => {} };
    },
  };
  if (wasmOpts.threads !== undefined) return [js, wasm('recur-wasm', wasmOpts), rows, layered, webgpu];
  return [js, wasm('recur-wasm-1t', { ...wasmOpts, threads: 1 }), wasm('recur-wasm', wasmOpts), rows, layered, webgpu];
}

/** Load one configuration; failures become a "not available" status instead of an exception. */
export async function loadConfig(c: RecurConfig): Promise<{ status: BackendStatus; loaded: LoadedBackend | null }> {
  try {
    const loaded = await c.load();
    return { status: { system: c.system, available: true, backend: loaded.backend, threads: loaded.threads, note: loaded.note }, loaded };
  } catch (e) {
    const why = `loading failed (${errorMessage(e)})`;
    return { status: { system: c.system, available: false, backend: null, threads: null, note: `not available: ${why}` }, loaded: null };
  }
}

interface Model {
  emb: Embedding;
  rnn: RecurrentBase;
  head: Linear;
  params: Tensor[];
}

function buildModel(w: Workload, seed: number): Model {
  const rng = new Rng(seed);
  const emb = new Embedding(w.V, w.H, { rng });
  const opts = { inputSize: w.H, hiddenSize: w.H, numLayers: w.layers, rng };
  const rnn = w.cell === 'lstm' ? new LSTM(opts) : w.cell === 'gru' ? new GRU(opts) : new RNN(opts);
  const head = new Linear(w.H, w.V, { rng });
  return { emb, rnn, head, params: [...emb.parameters(), ...rnn.parameters(), ...head.parameters()] };
}

function tokens(n: number, V: number, rng: Rng): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.int(V);
  return a;
}

/** Train + stream one workload on one recur backend (`rowProjection`: see RecurConfig). */
export async function runRecur(w: Workload, system: string, backend: string, threads: number, p: Policy, cost: CostModel, rowProjection = false): Promise<RunResult> {
  const skip = cost.skipReason(w);
  if (skip) return { workload: w.name, system, status: 'skipped', note: skip };
  const prev = getBackend().name;
  setBackend(backend);
  try {
    const m = buildModel(w, 0);
    const rng = new Rng(1);
    const x = tokens(w.T * w.B, w.V, rng);
    const y = tokens(w.T * w.B, w.V, rng);
    const opt = new Adam(m.params, { lr: 1e-3 });
    // a backend read asynchronously (WebGPU) awaits the gradient norm and the loss, as Trainer.fit does
    const async = getBackend(backend).readAsync !== undefined;
    const step = (): number | Promise<number> => {
      opt.zeroGrad();
      const e = m.emb.forward(x, [w.T, w.B]);
      if (rowProjection) e.lookup = null;
      const { output } = m.rnn.forward(e);
      const loss = crossEntropy(m.head.forward(output), y);
      backward(loss);
      if (!async) {
        clipGradNorm(m.params, 5);
        opt.step();
        return loss.item();
      }
      return (async () => {
        await runAsync(clipGradNormReading(m.params, 5));
        opt.step();
        return (await loss.data())[0];
      })();
    };
    const t = await timeTraining(step, p, cost.estimateMs(w));
    cost.record(w, t.medianMs);
    const r = trainResult(w, system, threads, t);
    if (!Number.isFinite(t.lossLast)) r.note = `loss is ${t.lossLast}`;

    // Streaming: batch 1, one token per call, state carried, no head (as the anchors), through
    // the token-streaming fast path (embedding × W_ih table, no per-step allocation).
    if (async) {
      r.note = 'streaming not timed: each step would wait for a GPU read-back (bench/webgpu.ts times it)';
      return r;
    }
    m.rnn.eval();
    const stream = new TokenStream(m.emb, m.rnn);
    const s = timeStream(() => {
      stream.push(3);
    }, p);
    r.stream_us_per_step = round(s.usPerCall, 1);
    r.stream_cpu_us_per_step = round(s.cpuUsPerCall, 1);
    r.stream_calls = s.calls;
    return r;
  } catch (e) {
    return { workload: w.name, system, status: 'failed', note: `failed: ${errorMessage(e)}` };
  } finally {
    setBackend(prev);
  }
}
