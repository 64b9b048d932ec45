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
