/**
 * Which backend trains this task faster, measured on the task itself: the automatic choice between
 * the CPU (wasm) and a GPU (WebGPU). A fixed crossover would be a guess: where a GPU overtakes the
 * wasm backend depends on the GPU, the CPU's cores, the cell, H, B and T — a small model loses on
 * a GPU to the fixed cost of the dispatches of every time step, a large one wins. So, as
 * cuDNN's benchmark mode does for its algorithms, the choice times the real training step on each
 * candidate and keeps the faster:
 *
 *   for each candidate: move the model there, run one step untimed (the GPU compiles its
 *   pipelines, every backend sizes its workspaces), then time steps until `minSeconds` have
 *   passed or `maxSteps` were run; its figure is the median step.
 *
 * A step here is the forward pass, the loss, backward and the read of the loss (which on a GPU
 * waits for all of it) — the training step without the optimizer's update, so no weight changes.
 * The update is element-wise over the parameters, a small part of a step on either side. Dropout
 * draws and a carried state (truncated BPTT) are put back after each candidate, so a run that
 * starts after the choice is the run that would have started without it, on the backend chosen.
 *
 * Call it before making the Trainer (an optimizer keeps its state on the backend it was made on).
 * A candidate that fails (a cell whose steps read the host, a device lost) is left out with its
 * reason; if every one fails, the model goes back where it was and the first failure is thrown.
 * The model ends on the winner, which becomes the default backend (the task's batches are made
 * there).
 */
import { z } from 'zod';
import type { Backend } from '../backend/interface.ts';
import { getBackend, listBackends, setBackend } from '../backend/registry.ts';
import { backward } from '../autograd/tape.ts';
import { brief } from '../util/options.ts';
import { problemOf } from '../util/schema.ts';
import { checkStepResult, taskRngs, type Task } from './task.ts';

export interface FastestBackendOptions {
  /** Time each candidate for at least this long, in seconds (default 0.3), … */
  minSeconds?: number;
  /** … or for this many steps, whichever comes first (default 10); at least one step is timed. */
  maxSteps?: number;
  /** The clock, in seconds (default `performance.now() / 1000`): for a caller with its own timer, and for tests. */
  clock?: () => number;
}

export interface BackendTrial {
  backend: string;
  /** The median step in seconds; null when the candidate failed. */
  secondsPerStep: number | null;
  /** Steps timed (after the untimed first one). */
  steps: number;
  /** Why the candidate was left out. */
  error?: string;
}

export interface BackendChoice {
  backend: Backend;
  trials: BackendTrial[];
}

const optionsSchema = z.strictObject({
  minSeconds: z.number({ error: 'a finite number >= 0' }).min(0, { error: 'a finite number >= 0' }).default(0.3),
  maxSteps: z.int({ error: 'a positive integer' }).min(1, { error: 'a positive integer' }).default(10),
  clock: z.custom<() => number>((v) => typeof v === 'function', { error: 'a function returning seconds' }).default(() => () => performance.now() / 1000),
});

function parseOptions(options: unknown): z.output<typeof optionsSchema> {
  if (options !== undefined && (options === null || typeof options !== 'object')) throw new TypeError(`fastestBackend: options must be an object, got ${brief(options, "'")}`);
  const r = optionsSchema.safeParse(options ?? {});
  if (r.success) return r.data;
  const p = problemOf(optionsSchema, r.error, options);
  if (p.kind === 'unknownKey') throw new TypeError(`fastestBackend: unknown option '${p.key}' (known: ${p.known.join(', ')})`);
  throw new TypeError(`fastestBackend: option '${String(p.path[0])}' must be ${p.kind === 'value' ? p.expected : 'valid'}, got ${brief(p.kind === 'value' ? p.got : undefined, "'")}`);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Time `task`'s training step on `batch` on each candidate (registered backends) and keep the model on the fastest; see the file comment. */
export async function fastestBackend<B>(task: Task<B>, batch: B, candidates: readonly Backend[], options?: FastestBackendOptions): Promise<BackendChoice> {
  const o = parseOptions(options);
  if (!Array.isArray(candidates) || candidates.length === 0) throw new TypeError('fastestBackend: candidates must be a non-empty array of backends');
  for (const be of candidates) {
    if (!listBackends().includes(be?.name) || getBackend(be.name) !== be) throw new TypeError(`fastestBackend: candidate ${brief(be?.name, "'")} is not a registered backend (registerBackend it first)`);
  }
  const model = task.model;
  const rngs = [...taskRngs(task).values()].map((r) => [r, r.getState()] as const);
  const carry = task.getCarry?.();
  const wasTraining = model.training;
  const home = model.parameters()[0]?.backend ?? getBackend();
  const homeDefault = getBackend();
  const restore = (): void => {
    for (const [r, s] of rngs) r.setState(s);
    task.setCarry?.(carry);
    model.zeroGrad();
  };
  const step = async (): Promise<void> => {
    model.zeroGrad();
    const r = checkStepResult('fastestBackend', task as Task<unknown>, task.step(batch));
    backward(r.loss);
    await r.loss.data(); // on a GPU: waits for the forward and backward passes recorded before it
  };

  const trials: BackendTrial[] = [];
  let firstError: unknown = null;
  try {
    model.train();
    for (const be of candidates) {
      try {
        await model.to(be);
        setBackend(be.name);
        await step();
        const times: number[] = [];
        const start = o.clock();
        let elapsed = 0;
        while (times.length < o.maxSteps && (times.length === 0 || elapsed < o.minSeconds)) {
          const t0 = o.clock();
          await step();
          const t1 = o.clock();
          times.push(t1 - t0);
          elapsed = t1 - start;
        }
        trials.push({ backend: be.name, secondsPerStep: median(times), steps: times.length });
      } catch (e) {
        firstError ??= e;
        trials.push({ backend: be.name, secondsPerStep: null, steps: 0, error: (e as Error).message });
      } finally {
        restore();
      }
    }
    const timed = trials.filter((t) => t.secondsPerStep !== null);
    if (timed.length === 0) {
      await model.to(home);
      setBackend(homeDefault.name);
      throw firstError;
    }
    const best = timed.reduce((a, b) => (b.secondsPerStep! < a.secondsPerStep! ? b : a));
    const winner = candidates.find((be) => be.name === best.backend)!;
    await model.to(winner);
    setBackend(winner.name);
    return { backend: winner, trials };
  } finally {
    model.train(wasTraining);
  }
}
