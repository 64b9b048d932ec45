/**
 * quickFit: a few hundred Adam steps with global-norm clipping on a task, for tests that only
 * need a trained model. It is the Trainer (fitSync) with a loss recorder, not a loop of its own;
 * its losses are those of the plain loop it replaced (zero grads, step, backward, clip, Adam),
 * bit for bit.
 */
import type { BatchSource, Task } from '../../src/train/task.ts';
import { Trainer } from '../../src/train/trainer.ts';
import { LossRecorder } from '../../src/train/callbacks.ts';

export interface QuickFitOptions {
  /** Stop after this many optimizer steps … */
  steps?: number;
  /** … or after this many seconds (whichever comes first). */
  seconds?: number;
  /** Adam learning rate (default 1e-3). */
  lr?: number;
  /** Global gradient-norm clip (default 5). */
  clip?: number;
}

/** Train `task` on `train`, epoch after epoch, until the step or time budget; the per-step losses. */
export function quickFit<B>(task: Task<B>, train: BatchSource<B>, o: QuickFitOptions = {}): { losses: number[]; steps: number; seconds: number } {
  if (o.steps === undefined && o.seconds === undefined) throw new RangeError('quickFit: give steps or seconds');
  const losses = new LossRecorder();
  // warnings (persistent clipping on a tiny data set) are not what these tests look at
  const trainer = new Trainer(task, { optimizer: 'adam', lr: o.lr ?? 1e-3, clipNorm: o.clip ?? 5, maxSteps: o.steps ?? null, timeLimitSeconds: o.seconds ?? null, callbacks: [losses], log: () => {} });
  const r = trainer.fitSync(train);
  return { losses: losses.losses, steps: r.step, seconds: r.seconds };
}
