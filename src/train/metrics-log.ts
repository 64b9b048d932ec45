/**
 * The run's metrics log: `metrics.jsonl` in the run directory, one JSON object per line, appended
 * as training goes (so `tail -f`, `jq` and `recur plot` work on a live run).
 *
 * Entry kinds (field `type`):
 *   train    every `logEvery` steps: the mean loss over those steps, the learning rate, throughput,
 *            gradient norms (global, and per layer with gradNormLogging), the task's step metrics
 *   eval     after each evaluation: the validation metrics (the first is the primary one), the best
 *            primary value so far
 *   fit      when a fit starts or resumes (with the trainer options)
 *   warning  a gradient warning or other notice
 * Every entry has `step` (optimizer steps done), `epoch` and `time` (seconds of training in this run,
 * summed over resumes).
 *
 * Reading tolerates a torn last line (a run killed mid-write) and skips lines that are not JSON
 * objects, reporting how many it skipped.
 */
import { METRICS_FILE, type RunStore } from './run-store.ts';

export interface TrainLogEntry {
  type: 'train';
  step: number;
  epoch: number;
  time: number;
  /** Mean training loss over the steps since the previous train entry. */
  loss: number;
  /** The learning rate of the last of those steps. */
  lr: number;
  /** Units (tokens or samples) per second over those steps. */
  tokensPerSec: number;
  /** Global gradient norm (before clipping) of the last step. */
  gradNorm: number;
  /** Per-layer gradient norms of the last step (with gradNormLogging). */
  gradNorms?: Record<string, number>;
  /** Fraction of those steps on which norm clipping fired (when clipNorm is set). */
  clipped?: number;
  /** Means of the task's step metrics over those steps. */
  metrics?: Record<string, number>;
}

export interface EvalLogEntry {
  type: 'eval';
  step: number;
  epoch: number;
  time: number;
  metrics: Record<string, number>;
  /** The primary metric's name (the first key). */
  primary: string;
  best: number | null;
}

export interface FitLogEntry {
  type: 'fit';
  step: number;
  epoch: number;
  time: number;
  resumed: boolean;
  options: unknown;
}

export interface WarningLogEntry {
  type: 'warning';
  step: number;
  epoch: number;
  time: number;
  kind: string;
  message: string;
}

export type MetricsEntry = TrainLogEntry | EvalLogEntry | FitLogEntry | WarningLogEntry;

/** JSON with non-finite numbers written as strings ("NaN", "Infinity"), which JSON cannot hold. */
export function stringifyEntry(e: object): string {
  return JSON.stringify(e, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
}

/** The metrics log of run `dir` in `store`. */
export class MetricsLog {
  constructor(readonly store: RunStore, readonly dir: string) {}

  append(entry: MetricsEntry): void {
    this.store.append(this.dir, METRICS_FILE, `${stringifyEntry(entry)}\n`);
  }

  /** Start the log afresh (a new run in this folder). */
  clear(): void {
    this.store.write(this.dir, METRICS_FILE, new Uint8Array(0));
  }

  /**
   * Drop entries logged after `step` (a resumed run continues from its checkpoint, so what the
   * interrupted run logged past it is replaced by what the resumed run logs).
   */
  truncateAfter(step: number): void {
    const bytes = this.store.read(this.dir, METRICS_FILE);
    if (bytes === null) return;
    const kept: string[] = [];
    for (const line of new TextDecoder().decode(bytes).split('\n')) {
      if (line.trim() === '') continue;
      let s: unknown;
      try {
        s = (JSON.parse(line) as { step?: unknown }).step;
      } catch {
        continue; // a torn line
      }
      if (typeof s === 'number' && s > step) continue;
      kept.push(line);
    }
    this.store.write(this.dir, METRICS_FILE, new TextEncoder().encode(kept.length ? `${kept.join('\n')}\n` : ''));
  }
}

/** What one training step adds to a train entry: its values there (a Trainer step's info has them all). */
export type WindowStep = Pick<TrainLogEntry, 'epoch' | 'loss' | 'lr' | 'gradNorm' | 'metrics'> & { count: number; clipped: boolean; layerNorms?: Record<string, number> };

/**
 * The steps since the last train entry: `add` sums each step in, `flush` writes their train
 * entry (means over the steps; the last step's epoch, learning rate and gradient norms;
 * throughput since the window opened) and opens a new window.
 */
export class TrainWindow {
  private n = 0;
  private loss = 0;
  private count = 0;
  private clipped = 0;
  private metrics = new Map<string, number>();
  private last: WindowStep | null = null;
  private start: number;

  /** `clock`: seconds (for throughput); `clipping`: norm clipping is on (entries say how often it fired). */
  constructor(private readonly clock: () => number, private readonly clipping: boolean) {
    this.start = clock();
  }

  add(s: WindowStep): void {
    this.last = s;
    this.n++;
    this.loss += s.loss;
    this.count += s.count;
    if (s.clipped) this.clipped++;
    if (s.metrics) for (const [k, v] of Object.entries(s.metrics)) this.metrics.set(k, (this.metrics.get(k) ?? 0) + v);
  }

  /** Write the window's train entry, as of optimizer step `step` and run time `time` (nothing when it is empty). */
  flush(step: number, time: number, write: (entry: TrainLogEntry) => void): void {
    const s = this.last;
    if (this.n === 0 || !s) return;
    const n = this.n;
    const dt = this.clock() - this.start;
    const metrics: Record<string, number> = {};
    for (const [k, v] of this.metrics) metrics[k] = v / n;
    write({
      type: 'train', step, epoch: s.epoch, time,
      loss: this.loss / n, lr: s.lr, tokensPerSec: dt > 0 ? this.count / dt : 0, gradNorm: s.gradNorm,
      ...(s.layerNorms ? { gradNorms: s.layerNorms } : {}),
      ...(this.clipping ? { clipped: this.clipped / n } : {}),
      ...(this.metrics.size ? { metrics } : {}),
    });
    this.n = this.loss = this.count = this.clipped = 0;
    this.metrics = new Map();
    this.start = this.clock();
  }
}

export interface ParsedLog {
  entries: MetricsEntry[];
  /** Lines that were not JSON objects with a known `type` (e.g. a torn last line). */
  skipped: number;
}

function reviveNumber(v: unknown): unknown {
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  return v;
}

export function parseMetricsLog(text: string): ParsedLog {
  const entries: MetricsEntry[] = [];
  let skipped = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let e: unknown;
    try {
      e = JSON.parse(line, (_k, v) => reviveNumber(v));
    } catch {
      skipped++;
      continue;
    }
    if (e === null || typeof e !== 'object' || Array.isArray(e)) {
      skipped++;
      continue;
    }
    const t = (e as { type?: unknown }).type;
    if (t !== 'train' && t !== 'eval' && t !== 'fit' && t !== 'warning') {
      skipped++;
      continue;
    }
    entries.push(e as MetricsEntry);
  }
  return { entries, skipped };
}
