/**
 * Timing: warm-up, then timed steps until a time/step budget is met; the reported figure is the
 * median. Shared by the recur runner and the TensorFlow.js child process (the PyTorch child
 * follows the same rules in Python).
 */
import { trainFlops, type Workload } from './workloads.ts';

export interface Policy {
  /** Warm-up: at least this many steps and at least this many ms. */
  warmupSteps: number;
  warmupMs: number;
  /** Timed: at least minSteps and minMs; stop at maxSteps, or once maxMs have passed (≥ 1 step). */
  minSteps: number;
  minMs: number;
  maxMs: number;
  maxSteps: number;
  /** Skip a workload whose estimated step time (from a measured one, scaled by FLOPs) exceeds this. */
  maxEstStepMs: number;
  /**
   * No separate warm-up when the estimated step time exceeds this: the system's kernels are already
   * warm from the smaller workloads before it, and one more minute-long step would buy nothing.
   */
  noWarmupAboveMs: number;
  /**
   * Streaming: warm-up calls (at most streamWarmupMs of them, at least 3), then chunks of calls (each
   * about chunkMs long) until both minimums.
   */
  streamWarmup: number;
  streamWarmupMs: number;
  streamMinChunks: number;
  streamMinMs: number;
  streamChunkMs: number;
}

export const FULL: Policy = {
  warmupSteps: 1, warmupMs: 1000,
  minSteps: 3, minMs: 2500, maxMs: 8000, maxSteps: 30,
  maxEstStepMs: 75000,
  noWarmupAboveMs: 20000,
  streamWarmup: 50, streamWarmupMs: 1000, streamMinChunks: 7, streamMinMs: 1000, streamChunkMs: 100,
};

export const QUICK: Policy = {
  warmupSteps: 1, warmupMs: 0,
  minSteps: 1, minMs: 0, maxMs: 2000, maxSteps: 3,
  maxEstStepMs: 3000,
  noWarmupAboveMs: 20000,
  streamWarmup: 10, streamWarmupMs: 200, streamMinChunks: 3, streamMinMs: 100, streamChunkMs: 30,
};

/** What every system reports for one workload. */
export interface RunResult {
  workload: string;
  system: string;
  status: 'ok' | 'skipped' | 'failed' | 'not available';
  train_tok_s?: number;
  ms_per_step?: number;
  steps?: number;
  warmup_steps?: number;
  step_ms?: number[];
  /** Median process CPU time per timed step (all threads of the process). */
  cpu_ms_per_step?: number;
  /** Median of CPU time ÷ wall time over the timed steps: ≈ threads kept busy; < 1 for a single thread = starved. */
  cpu_share?: number;
  /** Threads the system computes with (1 for the JavaScript systems, TF.js wasm in Node, pytorch-1t). */
  threads?: number;
  stream_us_per_step?: number;
  /** Median process CPU time per streaming call. */
  stream_cpu_us_per_step?: number;
  stream_calls?: number;
  loss_first?: number;
  loss_last?: number;
  note?: string;
}

export interface TrainTiming {
  warmupSteps: number;
  stepMs: number[];
  medianMs: number;
  medianCpuMs: number;
  cpuShare: number;
  lossFirst: number;
  lossLast: number;
}

/** Process CPU time (user + system, all threads) in ms. */
export function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** step() performs one training step and returns its loss (or a promise of it). */
export async function timeTraining(step: () => number | Promise<number>, p: Policy, estMs: number | null = null): Promise<TrainTiming> {
  let lossFirst = NaN, lossLast = NaN;
  let warm = 0;
  const skipWarmup = estMs !== null && estMs > p.noWarmupAboveMs;
  const w0 = performance.now();
  while (!skipWarmup && (warm < p.warmupSteps || performance.now() - w0 < p.warmupMs)) {
    const l = await step();
    if (warm === 0) lossFirst = l;
    lossLast = l;
    warm++;
  }
  const stepMs: number[] = [];
  const cpu: number[] = [];
  const t0 = performance.now();
  for (;;) {
    const c = cpuMs();
    const s = performance.now();
    lossLast = await step();
    const e = performance.now();
    cpu.push(cpuMs() - c);
    if (stepMs.length === 0 && warm === 0) lossFirst = lossLast;
    stepMs.push(e - s);
    const elapsed = e - t0;
    if (stepMs.length >= p.maxSteps || elapsed >= p.maxMs) break;
    if (stepMs.length >= p.minSteps && elapsed >= p.minMs) break;
  }
  return {
    warmupSteps: warm, stepMs, medianMs: median(stepMs), medianCpuMs: median(cpu),
    cpuShare: median(cpu.map((c, i) => c / stepMs[i])), lossFirst, lossLast,
  };
}

export interface StreamTiming {
  usPerCall: number;
  cpuUsPerCall: number;
  calls: number;
}

/** call() runs one batch-1 streaming step. Returns the median over chunks of the mean time per call. */
export function timeStream(call: () => void, p: Policy): StreamTiming {
  const w0 = performance.now();
  let warm = 0;
  while (warm < p.streamWarmup && (warm < 3 || performance.now() - w0 < p.streamWarmupMs)) {
    call();
    warm++;
  }
  const perCall = Math.max((performance.now() - w0) / warm, 1e-3);
  const k = Math.max(1, Math.round(p.streamChunkMs / perCall));
  const chunks: number[] = [];
  const cpu: number[] = [];
  let calls = 0;
  const t0 = performance.now();
  while (chunks.length < p.streamMinChunks || performance.now() - t0 < p.streamMinMs) {
    const c = cpuMs();
    const s = performance.now();
    for (let i = 0; i < k; i++) call();
    chunks.push((performance.now() - s) / k);
    cpu.push((cpuMs() - c) / k);
    calls += k;
  }
  return { usPerCall: median(chunks) * 1000, cpuUsPerCall: median(cpu) * 1000, calls };
}

/**
 * Decides whether a workload is worth running on a system, from the step time measured for an
 * earlier workload on the same system scaled by the FLOP ratio. Returns the reason to skip, or null.
 */
export class CostModel {
  private ref: { flops: number; ms: number } | null = null;

  constructor(private readonly p: Policy) {}

  record(w: Workload, medianMs: number): void {
    if (this.ref === null && Number.isFinite(medianMs)) this.ref = { flops: trainFlops(w), ms: medianMs };
  }

  estimateMs(w: Workload): number | null {
    return this.ref === null ? null : (this.ref.ms * trainFlops(w)) / this.ref.flops;
  }

  skipReason(w: Workload): string | null {
    const est = this.estimateMs(w);
    if (est === null || est <= this.p.maxEstStepMs) return null;
    return `skipped: estimated ${(est / 1000).toFixed(0)} s/step (from its measured speed scaled by FLOPs) exceeds the ${(this.p.maxEstStepMs / 1000).toFixed(0)} s limit of this run`;
  }
}

export function trainResult(w: Workload, system: string, threads: number, t: TrainTiming): RunResult {
  return {
    workload: w.name,
    system,
    status: 'ok',
    threads,
    train_tok_s: Math.round((w.B * w.T) / (t.medianMs / 1000)),
    ms_per_step: round(t.medianMs, 1),
    steps: t.stepMs.length,
    warmup_steps: t.warmupSteps,
    step_ms: t.stepMs.map((x) => round(x, 1)),
    cpu_ms_per_step: round(t.medianCpuMs, 1),
    cpu_share: round(t.cpuShare, 2),
    loss_first: round(t.lossFirst, 4),
    loss_last: round(t.lossLast, 4),
    ...(t.warmupSteps === 0 ? { note: 'no separate warm-up step (estimated > 20 s/step; the kernels were warm from the smaller workloads before it)' } : {}),
  };
}

export function round(x: number, d: number): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

export function errorMessage(e: unknown): string {
  const m = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return m.split('\n')[0].slice(0, 300);
}
