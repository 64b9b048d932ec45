/**
 * Trainer callbacks and progress reporting.
 *
 * A callback is an object with any of the hooks below. Hooks run synchronously inside the training
 * loop, in the order the callbacks were given. A hook may ask training to stop by returning
 * `'stop'` (or `true`), or by calling `trainer.stop(reason)`; the loop then finishes the current
 * step, writes the final checkpoint and returns from `fit` with `stopReason: 'callback'` (or the
 * given reason).
 *
 * Order within one step: onStepEnd → (evaluation) onEvalEnd → (last batch of an epoch) onEpochEnd →
 * checkpoint. onFitEnd runs once, after the final checkpoint.
 */
import type { Trainer, FitResult } from './trainer.ts';

export interface StepInfo {
  /** Optimizer steps done, this one included (1 for the first step). */
  step: number;
  /** The epoch of the batch (0-based). */
  epoch: number;
  /** The batch index within the epoch. */
  batch: number;
  /** This step's loss. */
  loss: number;
  /** The learning rate this step used. */
  lr: number;
  /** Units (tokens or samples) in the batch. */
  count: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Whether norm clipping scaled the gradients. */
  clipped: boolean;
  metrics?: Record<string, number>;
  /** Seconds of training in this run (all sessions). */
  time: number;
}

export interface EvalInfo {
  step: number;
  epoch: number;
  metrics: Record<string, number>;
  /** The primary metric's name (the first key) and value. */
  primary: string;
  value: number;
  /** The best primary value so far (this one included). */
  best: number | null;
  improved: boolean;
  time: number;
}

export interface EpochInfo {
  step: number;
  /** The epoch that just ended (0-based). */
  epoch: number;
  /** Mean training loss over the epoch's steps run in this session. */
  meanLoss: number;
  /** The evaluation at the epoch end, if one ran. */
  evalMetrics: Record<string, number> | null;
  time: number;
}

/** Return 'stop' (or true) from a hook to end training after this step. */
export type HookResult = void | boolean | 'stop';

export interface Callback<B = unknown> {
  onFitStart?(trainer: Trainer<B>): HookResult;
  onStepEnd?(info: StepInfo, trainer: Trainer<B>): HookResult;
  onEvalEnd?(info: EvalInfo, trainer: Trainer<B>): HookResult;
  onEpochEnd?(info: EpochInfo, trainer: Trainer<B>): HookResult;
  onFitEnd?(result: FitResult, trainer: Trainer<B>): void;
}

/** Records every step's loss (and learning rate): `const rec = new LossRecorder(); trainer options {callbacks: [rec]}`. */
export class LossRecorder implements Callback {
  readonly steps: number[] = [];
  readonly losses: number[] = [];
  readonly lrs: number[] = [];

  onStepEnd(info: StepInfo): void {
    this.steps.push(info.step);
    this.losses.push(info.loss);
    this.lrs.push(info.lr);
  }
}

// ---- progress ------------------------------------------------------------------------------------

/** What a progress display is given (the CLI's `Progress` class accepts exactly this). */
export interface ProgressStats {
  step: number;
  /** Smoothed training loss. */
  loss: number;
  tokensPerSec: number;
  /** Seconds since this fit started. */
  elapsed: number;
  /** Fraction of the budget (epochs, steps or time, whichever is nearest) used, in [0, 1]. */
  fraction: number;
  /** Estimated seconds left. */
  eta: number;
}

/** A progress display: the Trainer calls update() every step and done() at the end. */
export interface ProgressSink {
  update(stats: ProgressStats, force?: boolean): void;
  /** Write a line without garbling the display (warnings go through this when present). */
  print?(text: string): void;
  done?(): void;
}

/**
 * The Trainer's built-in display for `progress: true`: one plain line every few seconds to a
 * writer (default: standard error). Terminal programs wanting a live bar pass their own sink.
 */
export class LineProgress implements ProgressSink {
  private last = -Infinity;
  private stats: ProgressStats | null = null;

  constructor(
    private readonly write: (line: string) => void = defaultWriter(),
    private readonly every = 5,
  ) {}

  update(s: ProgressStats, force = false): void {
    this.stats = s;
    if (!force && s.elapsed - this.last < this.every) return;
    this.last = s.elapsed;
    this.write(formatProgress(s));
  }

  print(text: string): void {
    this.write(text);
  }

  done(): void {
    if (this.stats && this.stats.elapsed !== this.last) this.write(formatProgress(this.stats));
  }
}

function defaultWriter(): (line: string) => void {
  const proc = (globalThis as { process?: { stderr?: { write(s: string): unknown } } }).process;
  if (proc?.stderr) return (line) => void proc.stderr!.write(`${line}\n`);
  return (line) => console.log(line);
}

function fmtTime(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return `${h > 0 ? `${h}:${String(m).padStart(2, '0')}` : String(m)}:${String(sec).padStart(2, '0')}`;
}

export function formatProgress(s: ProgressStats): string {
  const pct = `${Math.floor(Math.min(1, Math.max(0, s.fraction)) * 100)}%`;
  const loss = Number.isFinite(s.loss) ? s.loss.toFixed(4) : '-';
  return `${pct} step ${s.step} | loss ${loss} | ${Math.round(s.tokensPerSec)} tok/s | ${fmtTime(s.elapsed)} elapsed | ETA ${fmtTime(s.eta)}`;
}
