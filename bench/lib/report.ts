/** The printed tables (Markdown, so they paste into BENCHMARKS.md as they are). */
import type { GemmResult } from './gemm.ts';
import type { RunResult } from './measure.ts';
import type { Workload } from './workloads.ts';

const fmtInt = (x: number | undefined): string => (x === undefined ? '–' : Math.round(x).toLocaleString('en-US'));
const fmt1 = (x: number | undefined): string => (x === undefined ? '–' : x >= 100 ? x.toFixed(0) : x.toFixed(1));
const ratio = (a: number | undefined, b: number | undefined): string =>
  a === undefined || b === undefined || !(a > 0) || !(b > 0) ? '–' : `${(a / b).toFixed(a / b >= 10 ? 1 : 2)}×`;

type Metric = (r: RunResult) => number | undefined;

interface Basis {
  /** Tokens per second of training. */
  tok: Metric;
  /** Microseconds per streaming call. */
  stream: Metric;
}

const WALL: Basis = { tok: (r) => r.train_tok_s, stream: (r) => r.stream_us_per_step };

/** Per CPU-second of the process: B·T / CPU time per step. Meaningful for single-threaded systems only. */
export const cpuBasis = (workloads: readonly Workload[]): Basis => ({
  tok: (r) => {
    const w = workloads.find((x) => x.name === r.workload);
    return w && r.cpu_ms_per_step ? (w.B * w.T) / (r.cpu_ms_per_step / 1000) : undefined;
  },
  stream: (r) => r.stream_cpu_us_per_step,
});

/**
 * workload × system: train tokens/s, ms/step (timed steps), stream µs/step, and for recur rows the
 * speed ratios recur ÷ anchor (train: tokens/s ratio; stream: inverse latency ratio), > 1 = recur faster.
 * With `cpu`, the figures are per CPU-second of the process and only single-threaded runs are shown.
 */
export function resultsTable(
  workloads: readonly Workload[], results: readonly RunResult[], systems: readonly string[], notes: string[], cpu = false,
): string {
  const basis = cpu ? cpuBasis(workloads) : WALL;
  const lines = cpu
    ? [
      '| workload | system | train tok per CPU-s | CPU ms/step | stream CPU µs/step | train vs PyTorch 1t | train vs TF.js wasm | stream vs PyTorch 1t | stream vs TF.js wasm |',
      '|---|---|---:|---:|---:|---:|---:|---:|---:|',
    ]
    : [
      '| workload | system | threads | train tok/s | ms/step (n) | CPU/wall | stream µs/step | train vs PyTorch | train vs TF.js wasm | stream vs PyTorch | stream vs TF.js wasm |',
      '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ];
  const noteRef = (text: string): string => {
    let i = notes.indexOf(text);
    if (i < 0) i = notes.push(text) - 1;
    return `[${i + 1}]`;
  };
  const blank = cpu ? 6 : 8;
  for (const w of workloads) {
    const ok = results.filter((r) => r.workload === w.name && r.status === 'ok' && (!cpu || r.threads === 1));
    const get = (sys: string): RunResult | undefined => ok.find((r) => r.system === sys);
    // Wall clock: the stronger PyTorch configuration, separately for training and streaming.
    // CPU time: the single-threaded one.
    const torchRuns = ok.filter((r) => r.system.startsWith('pytorch'));
    const best = (m: Metric, better: (a: number, b: number) => boolean): RunResult | undefined =>
      torchRuns.filter((r) => m(r) !== undefined).reduce<RunResult | undefined>((acc, r) => (acc === undefined || better(m(r)!, m(acc)!) ? r : acc), undefined);
    const torchTrain = cpu ? get('pytorch-1t') : best(basis.tok, (a, b) => a > b);
    const torchStream = cpu ? get('pytorch-1t') : best(basis.stream, (a, b) => a < b);
    const tfw = get('tfjs-wasm');
    for (const sys of systems) {
      const label = `${w.name} (${w.label})`;
      const any = results.find((x) => x.workload === w.name && x.system === sys);
      if (!any) continue;
      if (any.status !== 'ok') {
        if (!cpu) lines.push(`| ${label} | ${sys} | ${any.status} ${noteRef(any.note ?? any.status)} |${' |'.repeat(blank + 1)}`);
        continue;
      }
      const r = get(sys);
      if (!r) continue;
      const isRecur = sys.startsWith('recur-');
      const tr = (a: RunResult | undefined): string => (isRecur && a ? ratio(basis.tok(r), basis.tok(a)) : '');
      const st = (a: RunResult | undefined): string => (isRecur && a ? ratio(basis.stream(a), basis.stream(r)) : '');
      const extra = r.note && !cpu ? ` ${noteRef(r.note)}` : '';
      const tail = `${fmt1(basis.stream(r))} | ${tr(torchTrain)} | ${tr(tfw)} | ${st(torchStream)} | ${st(tfw)} |`;
      if (cpu) lines.push(`| ${label} | ${sys} | ${fmtInt(basis.tok(r))} | ${fmt1(r.cpu_ms_per_step)} | ${tail}`);
      else {
        const thr = r.threads === undefined || r.threads === null || Number.isNaN(r.threads) ? '?' : String(r.threads);
        lines.push(`| ${label} | ${sys}${extra} | ${thr} | ${fmtInt(r.train_tok_s)} | ${fmt1(r.ms_per_step)} (${r.steps}) | ${r.cpu_share?.toFixed(2) ?? '–'} | ${tail}`);
      }
    }
  }
  return lines.join('\n');
}

/**
 * GEMM: one row per shape, GFLOP/s per system and recur's fraction of OpenBLAS. Wall clock: of the
 * faster OpenBLAS run; with `cpu`, per CPU-second, single-threaded runs only, of OpenBLAS on 1 thread.
 */
export function gemmTable(gemm: readonly GemmResult[], cpu = false): string {
  const rows = cpu ? gemm.filter((g) => g.threads === 1) : gemm;
  const shapes = [...new Set(gemm.map((g) => g.shape))];
  const systems = [...new Set(rows.map((g) => g.system))];
  const recur = systems.filter((s) => s.startsWith('recur-'));
  const blas = systems.filter((s) => !s.startsWith('recur-'));
  const val = (g: GemmResult | undefined): number | undefined => (cpu ? g?.gflops_cpu : g?.gflops);
  const unit = cpu ? 'GFLOP per CPU-s' : 'GFLOP/s';
  const head = ['shape (M×N×K, op)', 'role in W1', ...recur.map((s) => `${s} ${unit} (fraction of OpenBLAS)`), ...blas.map((s) => `${s} ${unit}`)];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`];
  for (const sh of shapes) {
    const row = (s: string): GemmResult | undefined => rows.find((g) => g.shape === sh && g.system === s);
    const peaks = blas.map((s) => val(row(s))).filter((x): x is number => x !== undefined);
    const peak = peaks.length ? Math.max(...peaks) : undefined;
    const cells = [sh, gemm.find((g) => g.shape === sh)?.role ?? ''];
    for (const s of recur) {
      const g = row(s);
      const v = val(g);
      cells.push(v === undefined ? (g?.note ?? '–') : `${v.toFixed(1)} (${peak ? (v / peak).toFixed(3) : '–'})`);
    }
    for (const s of blas) {
      const v = val(row(s));
      cells.push(v === undefined ? (row(s)?.note ?? '–') : v.toFixed(1));
    }
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}
