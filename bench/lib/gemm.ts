/**
 * GEMM micro-benchmark: SGEMM on each recur backend (through `Backend.gemm`) against NumPy's
 * OpenBLAS on the same shapes, in GFLOP/s.
 */
import { spawnSync } from 'node:child_process';
import { Rng, getBackend } from '../../src/index.ts';
import { cpuMs, errorMessage, median, round } from './measure.ts';

export interface GemmShape {
  name: string;
  /** What the shape is in W1 (LSTM H=256, B=32, T=64). */
  role: string;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
}

export const GEMM_SHAPES: readonly GemmShape[] = [
  { name: '512x512x512', role: 'square reference', M: 512, N: 512, K: 512, transA: false, transB: false },
  { name: '2048x1024x256 NT', role: 'W1 input projection X·W_ihᵀ (all steps)', M: 2048, N: 1024, K: 256, transA: false, transB: true },
  { name: '32x1024x256 NT', role: 'W1 recurrent step h·W_hhᵀ', M: 32, N: 1024, K: 256, transA: false, transB: true },
  { name: '32x256x1024 NN', role: 'W1 backward step dG·W_hh', M: 32, N: 256, K: 1024, transA: false, transB: false },
  { name: '1024x256x2048 TN', role: 'W1 weight gradient dGᵀ·H (all steps)', M: 1024, N: 256, K: 2048, transA: true, transB: false },
  { name: '2048x65x256 NT', role: 'W1 head X·W_outᵀ', M: 2048, N: 65, K: 256, transA: false, transB: true },
];

export interface GemmResult {
  shape: string;
  role: string;
  system: string;
  gflops?: number;
  us_per_call?: number;
  /** GFLOP/s per CPU-second of the process (robust to time slicing; for single-threaded runs). */
  gflops_cpu?: number;
  threads?: number;
  note?: string;
}

export const flopsOf = (s: GemmShape): number => 2 * s.M * s.N * s.K;

function timeCalls(call: () => void, minMs: number, chunkMs: number): { ms: number; cpuMs: number } {
  call();
  const w0 = performance.now();
  call();
  const one = Math.max(performance.now() - w0, 1e-3);
  const k = Math.max(1, Math.round(chunkMs / one));
  const chunks: number[] = [];
  const cpu: number[] = [];
  const t0 = performance.now();
  while (chunks.length < 5 || performance.now() - t0 < minMs) {
    const c = cpuMs();
    const s = performance.now();
    for (let i = 0; i < k; i++) call();
    chunks.push((performance.now() - s) / k);
    cpu.push((cpuMs() - c) / k);
  }
  return { ms: median(chunks), cpuMs: median(cpu) };
}

export function gemmRecur(system: string, backend: string, threads: number | null, shapes: readonly GemmShape[], minMs: number): GemmResult[] {
  const be = getBackend(backend);
  const rng = new Rng(7);
  const rand = (n: number): Float32Array => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = rng.uniform(-1, 1);
    return a;
  };
  const out: GemmResult[] = [];
  for (const s of shapes) {
    try {
      const A = be.fromArray(rand(s.M * s.K), 'float32');
      const B = be.fromArray(rand(s.K * s.N), 'float32');
      const C = be.alloc(s.M * s.N, 'float32');
      const lda = s.transA ? s.M : s.K;
      const ldb = s.transB ? s.K : s.N;
      const t = timeCalls(() => be.gemm(s.transA, s.transB, s.M, s.N, s.K, 1, A, 0, lda, B, 0, ldb, 0, C, 0, s.N), minMs, 60);
      out.push({
        shape: s.name, role: s.role, system, threads: threads ?? undefined, gflops: round(flopsOf(s) / t.ms / 1e6, 2), us_per_call: round(t.ms * 1000, 1),
        gflops_cpu: round(flopsOf(s) / t.cpuMs / 1e6, 2),
      });
    } catch (e) {
      out.push({ shape: s.name, role: s.role, system, note: `failed: ${errorMessage(e)}` });
    }
  }
  return out;
}

/** The NumPy side, run with `python3 -c`; prints one JSON object {numpy, shapes: [{name, us}]}. */
const NUMPY_SCRIPT = String.raw`
import json, sys, time
import numpy as np
shapes, min_s = json.loads(sys.argv[1]), float(sys.argv[2])
rng = np.random.default_rng(7)
res = []
def med(xs):
    xs = sorted(xs); n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2
for s in shapes:
    M, N, K = s['M'], s['N'], s['K']
    A = rng.uniform(-1, 1, (K, M) if s['transA'] else (M, K)).astype(np.float32)
    B = rng.uniform(-1, 1, (N, K) if s['transB'] else (K, N)).astype(np.float32)
    a, b = (A.T if s['transA'] else A), (B.T if s['transB'] else B)
    C = np.empty((M, N), np.float32)
    for _ in range(3): np.matmul(a, b, out=C)
    t = time.perf_counter(); np.matmul(a, b, out=C); one = max(time.perf_counter() - t, 1e-6)
    k = max(1, round(0.05 / one)); chunks = []; cpu = []; t0 = time.perf_counter()
    while len(chunks) < 5 or time.perf_counter() - t0 < min_s:
        c = time.process_time(); t = time.perf_counter()
        for _ in range(k): np.matmul(a, b, out=C)
        chunks.append((time.perf_counter() - t) / k); cpu.append((time.process_time() - c) / k)
    res.append({'name': s['name'], 'us': med(chunks) * 1e6, 'cpu_us': med(cpu) * 1e6})
print(json.dumps({'numpy': np.__version__, 'shapes': res}))
`;

export const PYTHON = '/usr/bin/python3';

/** Environment for native BLAS runs: the machine's OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed. */
export function blasEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

export function gemmNumpy(shapes: readonly GemmShape[], minMs: number, threads: number): { results: GemmResult[]; version?: string } {
  const system = `openblas-${threads}t`;
  const env = blasEnv({ OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) });
  const r = spawnSync(PYTHON, ['-c', NUMPY_SCRIPT, JSON.stringify(shapes), String(minMs / 1000)], { env, encoding: 'utf8', timeout: 300_000 });
  const fail = (why: string): { results: GemmResult[] } => ({ results: shapes.map((s) => ({ shape: s.name, role: s.role, system, note: why })) });
  if (r.error) return fail(`not available: ${errorMessage(r.error)}`);
  if (r.status !== 0) return fail(`not available: python3 exited with ${r.status}: ${(r.stderr || '').trim().split('\n').pop() ?? ''}`);
  try {
    const j = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as { numpy: string; shapes: { name: string; us: number; cpu_us: number }[] };
    const results = shapes.map((s) => {
      const m = j.shapes.find((x) => x.name === s.name);
      return m
        ? {
          shape: s.name, role: s.role, system, threads, gflops: round(flopsOf(s) / m.us / 1e3, 2), us_per_call: round(m.us, 1),
          gflops_cpu: round(flopsOf(s) / m.cpu_us / 1e3, 2),
        }
        : { shape: s.name, role: s.role, system, note: 'missing from the python output' };
    });
    return { results, version: j.numpy };
  } catch (e) {
    return fail(`unreadable python output: ${errorMessage(e)}`);
  }
}
