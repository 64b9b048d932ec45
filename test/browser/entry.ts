/**
 * The page script of test/browser.test.ts, bundled by esbuild (format esm, platform browser) at test
 * time: creates the wasm backend in the browser, runs small LSTM and GRU layers forward and backward
 * on it and on the 'js' reference backend from the same weights and data, and publishes the result
 * as `window.__recurResult` (the test reads it). Options come from the page's query string:
 * `?threads=N` (asked of the backend) and `?minWork=W` (its threadMinWork).
 */
import {
  GRU, LSTM, Rng, add, backward, getBackend, mul, registerBackend, setBackend, sum, tensor, type RecurrentBase, type Tensor,
} from '../../src/index.ts';
import { createWasmBackend, wasmSupport } from '../../src/backend/wasm/index.ts';

export interface CaseResult {
  name: string;
  /** Number of values compared (outputs, final states and every gradient). */
  values: number;
  /** max |wasm − js| over them */
  maxAbsDiff: number;
  /** max |wasm − js| / (1 + |js|), what the tolerance applies to */
  maxRelErr: number;
  /** The quantity holding maxRelErr. */
  worst: string;
}

export interface BrowserResult {
  ok: true;
  support: { simd: boolean; relaxedSimd: boolean; threads: boolean };
  crossOriginIsolated: boolean;
  sharedArrayBuffer: boolean;
  threads: number;
  variant: string;
  cases: CaseResult[];
  ms: number;
}

interface Case {
  mode: 'LSTM' | 'GRU';
  H: number;
  lengths: number[] | null;
  withState: boolean;
  bidirectional: boolean;
}

const T = 6, B = 4, I = 5, SEED = 1234;
const CASES: Case[] = [
  // H = 16: the backend's fused steps; H = 13: the generic time loop (a GEMM and a cell kernel per step)
  { mode: 'LSTM', H: 16, lengths: null, withState: false, bidirectional: false },
  { mode: 'LSTM', H: 13, lengths: [6, 5, 3, 1], withState: true, bidirectional: true },
  { mode: 'GRU', H: 16, lengths: null, withState: true, bidirectional: false },
  { mode: 'GRU', H: 13, lengths: [6, 4, 2, 1], withState: false, bidirectional: true },
];

function runCase(backend: string, c: Case): Map<string, Float64Array> {
  const prev = getBackend().name;
  setBackend(backend);
  try {
    const D = c.bidirectional ? 2 : 1;
    const opts = { inputSize: I, hiddenSize: c.H, bidirectional: c.bidirectional, dtype: 'float32' as const, rng: new Rng(SEED) };
    const layer: RecurrentBase = c.mode === 'LSTM' ? new LSTM(opts) : new GRU(opts);
    const rng = new Rng(SEED + 1);
    const rand = (shape: number[], requiresGrad: boolean): Tensor => {
      const n = shape.reduce((a, b) => a * b, 1);
      return tensor(Array.from({ length: n }, () => rng.uniform(-1, 1)), shape, { dtype: 'float32', requiresGrad });
    };
    const x = rand([T, B, I], true);
    const h0 = c.withState ? rand([D, B, c.H], true) : null;
    const c0 = c.withState && c.mode === 'LSTM' ? rand([D, B, c.H], true) : null;
    const out = layer.forward(x, { h: h0, c: c0, lengths: c.lengths });
    const gy = rand([T, B, D * c.H], false), gh = rand([D, B, c.H], false), gc = rand([D, B, c.H], false);
    let loss = add(sum(mul(out.output, gy)), sum(mul(out.h, gh)));
    if (out.c) loss = add(loss, sum(mul(out.c, gc)));
    backward(loss);
    const v = new Map<string, Float64Array>();
    v.set('y', Float64Array.from(out.output.toArray()));
    v.set('hN', Float64Array.from(out.h.toArray()));
    if (out.c) v.set('cN', Float64Array.from(out.c.toArray()));
    v.set('dx', Float64Array.from(x.grad!.toArray()));
    if (h0) v.set('dh0', Float64Array.from(h0.grad!.toArray()));
    if (c0) v.set('dc0', Float64Array.from(c0.grad!.toArray()));
    for (const [name, p] of layer.namedParameters()) v.set(`d${name}`, Float64Array.from(p.grad!.toArray()));
    return v;
  } finally {
    setBackend(prev);
  }
}

function compare(name: string, wasm: Map<string, Float64Array>, js: Map<string, Float64Array>): CaseResult {
  const r: CaseResult = { name, values: 0, maxAbsDiff: 0, maxRelErr: 0, worst: '' };
  if ([...wasm.keys()].sort().join() !== [...js.keys()].sort().join()) throw new Error(`${name}: different quantities on wasm and js`);
  for (const [k, e] of js) {
    const a = wasm.get(k)!;
    if (a.length !== e.length) throw new Error(`${name} ${k}: ${a.length} values on wasm, ${e.length} on js`);
    for (let i = 0; i < e.length; i++) {
      const d = Math.abs(a[i] - e[i]);
      // NaN-safe: a NaN difference makes the case fail
      const rel = Number.isNaN(d) ? Infinity : d / (1 + Math.abs(e[i]));
      r.maxAbsDiff = Math.max(r.maxAbsDiff, Number.isNaN(d) ? Infinity : d);
      if (rel > r.maxRelErr || r.worst === '') { r.maxRelErr = Math.max(r.maxRelErr, rel); r.worst = `${k}[${i}]`; }
      r.values++;
    }
  }
  return r;
}

async function main(): Promise<BrowserResult> {
  const t0 = performance.now();
  const q = new URLSearchParams(location.search);
  const threads = Number(q.get('threads') ?? '2');
  const minWork = q.get('minWork');
  const support = await wasmSupport();
  const be = await createWasmBackend({ threads, ...(minWork !== null ? { threadMinWork: Number(minWork) } : {}) });
  registerBackend(be);
  const cases: CaseResult[] = [];
  try {
    for (const c of CASES) {
      const name = `${c.mode} H=${c.H}${c.bidirectional ? ' bidirectional' : ''}${c.lengths ? ' lengths' : ''}${c.withState ? ' state' : ''}`;
      cases.push(compare(name, runCase('wasm', c), runCase('js', c)));
    }
  } finally {
    be.dispose();
  }
  return {
    ok: true,
    support,
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    sharedArrayBuffer: typeof SharedArrayBuffer !== 'undefined',
    threads: be.threads,
    variant: be.variant,
    cases,
    ms: Math.round(performance.now() - t0),
  };
}

const w = globalThis as unknown as { __recurResult?: unknown };
main().then(
  (r) => { w.__recurResult = r; },
  (e: unknown) => {
    w.__recurResult = { ok: false, error: e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e) };
  },
);
