/**
 * Many-to-many (aligned) regression: per-step forecasting of a multivariate series.
 *
 *   [x_t ; (x_t − x_{t−1}) / s] (F normalised features and their last change) → RNN/LSTM/GRU → h_t
 *   → Linear(H, F) → Δ_t;   x̂_{t+1} = x_t + s ⊙ Δ_t
 *
 * The model predicts the CHANGE to the next step (a residual on the last value), in units of the
 * typical one-step change of each feature on the training data (`deltaScale`, the RMS of the
 * normalised first differences — tiny next to the level's spread), so an untrained
 * model starts near the naive last-value forecast and training has to beat it; the held-out report
 * says by how much: `mse` (normalised units, averaged over features and scored steps), `naiveMse`
 * (x̂_{t+1} = x_t on the same steps) and `skill` = 1 − mse / naiveMse (> 0: better than naive).
 *
 * Training uses normal behaviour only: steps a series flags as anomalous (the sensor data set's
 * injected faults) are left out of training windows and of the statistics below.
 *
 * Normalisation: per-feature mean/std fitted on the TRAINING rows only and stored in the model
 * config (`norm`), so `predict` takes and returns raw units.
 *
 * Evaluation reads each held-out segment after a context of the `context` steps that precede it
 * (the end of the training segment), so the state is warm when scoring starts; only targets inside
 * the held-out segment are scored.
 *
 * PyTorch equivalent (same parameter names): rnn = nn.LSTM(2F, H, L), head = nn.Linear(H, F).
 * (With residual false the head predicts the next level directly: x̂_{t+1} = Δ_t.)
 */
import { z } from 'zod';
import { Tensor, tensor, zeros } from '../tensor/tensor.ts';
import { concat, slice } from '../autograd/ops/shape.ts';
import { Rng } from '../tensor/rng.ts';
import { add, mul, square, sub, sum } from '../autograd/ops/elementwise.ts';
import { Module, withEval } from '../nn/module.ts';
import { Linear } from '../nn/layers.ts';
import type { RecurrentBase } from '../nn/recurrent.ts';
import type { BatchSource, StepResult, Task } from '../train/task.ts';
import { asStateDict, type ModelFile } from '../io/model.ts';
import { ListSource, SampledSource } from '../data/batch.ts';
import { checkNormStats, DataError, denormalizeRow, fitNormStats, normalizeRows, parseNumberCell, type NormStats } from '../data/loaders.ts';
import type { Series } from '../data/datasets.ts';
import { makeRecurrent, type CellKind, type LoadTaskOptions } from './common.ts';
import type { Limits } from '../io/limits.ts';
import { checkModelTensors, linearShapes, parseConfig, recurrentShapes, TaskConfigError, type ParamShapes } from './task-options.ts';
import { arch, FIELDS, numbers, pick, strings } from './fields.ts';
import { sentence, type SameKeys } from '../util/schema.ts';
import { brief, isRecord } from '../util/options.ts';

export class RNNForecaster extends Module {
  readonly rnn: RecurrentBase;
  readonly head: Linear;

  private readonly scale: Tensor;
  private readonly invScale: Tensor;

  /** deltaScale: per-feature typical size of a one-step change; the head predicts Δ in those units. */
  constructor(readonly o: { features: number; hiddenSize: number; numLayers: number; cell: CellKind; dropout: number; residual: boolean; deltaScale: readonly number[]; rng: Rng }) {
    super();
    this.rnn = this.registerModule('rnn', makeRecurrent(o.cell, { inputSize: 2 * o.features, hiddenSize: o.hiddenSize, numLayers: o.numLayers, dropout: o.dropout, rng: o.rng }));
    this.head = this.registerModule('head', new Linear(o.hiddenSize, o.features, { rng: o.rng }));
    if (o.deltaScale.length !== o.features) throw new RangeError(`RNNForecaster: deltaScale has ${o.deltaScale.length} entries for ${o.features} features`);
    const w = this.head.weight;
    this.scale = tensor(o.deltaScale, [o.features], { dtype: w.dtype, backend: w.backend });
    this.invScale = tensor(o.deltaScale.map((v) => 1 / v), [o.features], { dtype: w.dtype, backend: w.backend });
  }

  /** x: [T, B, F] levels → next-step predictions [T, B, F]. */
  forward(x: Tensor, lengths: ArrayLike<number> | null = null): Tensor {
    const [T, B, F] = x.shape;
    // Inputs: the level and its last change in deltaScale units (0 at t = 0).
    const zero = zeros([1, B, F], { dtype: x.dtype, backend: x.backend });
    const dx = T === 1 ? zero : concat([zero, sub(slice(x, 0, 1, T - 1), slice(x, 0, 0, T - 1))], 0);
    const r = this.rnn.forward(concat([x, mul(dx, this.invScale)], 2), { lengths });
    const d = this.head.forward(r.output);
    return this.o.residual ? add(x, mul(d, this.scale)) : d;
  }
}

export interface ForecastConfig {
  task: string;
  arch: 'rnn-forecaster';
  columns: string[];
  norm: NormStats;
  cell: CellKind;
  hiddenSize: number;
  numLayers: number;
  dropout: number;
  residual: boolean;
  /** Per feature: RMS one-step change (normalised units) on the training rows; Δ is predicted in these units. */
  deltaScale: number[];
  /** Steps of history read before a held-out segment is scored. */
  context: number;
}

export interface SeriesBatch {
  /** [T, B, F] normalised inputs */
  x: Float32Array;
  /** [T, B, F] normalised next-step targets */
  y: Float32Array;
  /** [T, B] 1 where the target is scored */
  mask: Float32Array;
  lengths: Int32Array;
  T: number;
  B: number;
  /** Scored steps. */
  count: number;
}

export class ForecastTask implements Task<SeriesBatch> {
  readonly name: string;
  readonly model: RNNForecaster;
  readonly higherIsBetter = false;
  readonly F: number;

  constructor(readonly config: ForecastConfig, seed = 0) {
    this.name = config.task;
    this.F = config.columns.length;
    this.model = new RNNForecaster({ features: this.F, hiddenSize: config.hiddenSize, numLayers: config.numLayers, cell: config.cell, dropout: config.dropout, residual: config.residual, deltaScale: config.deltaScale, rng: new Rng(seed) });
  }

  private t(values: Float32Array, shape: number[]): Tensor {
    const p = this.model.head.weight;
    return tensor(values, shape, { dtype: p.dtype, backend: p.backend });
  }

  /** The model's squared errors over scored steps: a tensor [T, B, F], masked. */
  private errors(b: SeriesBatch): Tensor {
    const { T, B } = b;
    const F = this.F;
    const x = this.t(b.x, [T, B, F]);
    const pred = this.model.forward(x, b.lengths);
    const sq = square(sub(pred, this.t(b.y, [T, B, F])));
    return mul(sq, this.t(b.mask, [T, B, 1]));
  }

  /** The naive (last-value) forecast's squared errors over scored steps, per feature (evaluation only). */
  private naiveErrors(b: SeriesBatch): number[] {
    const F = this.F;
    const naive = new Array<number>(F).fill(0);
    for (let i = 0; i < b.T * b.B; i++) {
      if (b.mask[i] === 0) continue;
      for (let f = 0; f < F; f++) naive[f] += (b.x[i * F + f] - b.y[i * F + f]) ** 2;
    }
    return naive;
  }

  step(b: SeriesBatch): StepResult {
    const sq = this.errors(b);
    return { loss: mul(sum(sq), 1 / (b.count * this.F)), count: b.count };
  }

  /** mse, naiveMse and skill over all features, then skill per feature ('skill.<column>'). */
  evaluate(data: BatchSource<SeriesBatch>): Record<string, number> {
    const F = this.F;
    const sse = new Array<number>(F).fill(0), naive = new Array<number>(F).fill(0);
    let n = 0;
    withEval(this.model, () => {
      for (let i = 0; i < data.numBatches; i++) {
        const b = data.get(0, i);
        const sq = this.errors(b).toArray();
        const bn = this.naiveErrors(b);
        for (let k = 0; k < sq.length; k++) sse[k % F] += sq[k];
        for (let f = 0; f < F; f++) naive[f] += bn[f];
        n += b.count;
      }
    });
    const total = (a: number[]): number => a.reduce((x, y) => x + y, 0);
    const out: Record<string, number> = { mse: total(sse) / (n * F), naiveMse: total(naive) / (n * F), skill: 1 - total(sse) / total(naive) };
    this.config.columns.forEach((c, f) => (out[`skill.${c}`] = 1 - sse[f] / naive[f]));
    return out;
  }

  describe(): { config: ForecastConfig } {
    return { config: JSON.parse(JSON.stringify(this.config)) as ForecastConfig };
  }

  normalize(rows: readonly (readonly number[])[]): number[][] {
    return normalizeRows(rows, this.config.norm);
  }

  /** Sequences of normalised rows → one padded batch; targets are the next rows; steps t ≥ scoreFrom[k] − 1 are scored. */
  collate(seqs: readonly (readonly (readonly number[])[])[], scoreFrom: readonly number[]): SeriesBatch {
    const B = seqs.length;
    const F = this.F;
    let T = 0;
    for (const s of seqs) T = Math.max(T, s.length - 1);
    const x = new Float32Array(T * B * F), y = new Float32Array(T * B * F), mask = new Float32Array(T * B);
    const lengths = new Int32Array(B);
    let count = 0;
    seqs.forEach((s, b) => {
      const n = s.length - 1;
      if (n < 1) throw new RangeError(`${this.name}: a sequence needs at least 2 steps, got ${s.length}`);
      lengths[b] = n;
      for (let t = 0; t < n; t++) {
        const o = (t * B + b) * F;
        for (let f = 0; f < F; f++) {
          x[o + f] = s[t][f];
          y[o + f] = s[t + 1][f];
        }
        if (t + 1 >= scoreFrom[b]) {
          mask[t * B + b] = 1;
          count++;
        }
      }
    });
    if (count === 0) throw new RangeError(`${this.name}: no step is scored in this batch`);
    return { x, y, mask, lengths, T, B, count };
  }

  /**
   * Parse a predict input: rows separated by ';' or newlines, values by ',' (raw units, in the
   * config's column order).
   */
  parseInput(s: string, what = 'input'): number[][] {
    const rows = s.split(/[;\n]/).map((r) => r.trim()).filter((r) => r.length > 0);
    if (rows.length === 0) throw new DataError(`${this.name}: ${what} is empty (expected rows like "45.1,27.9; 45.2,27.9")`);
    return rows.map((r, i) => {
      const cells = r.split(',');
      if (cells.length !== this.F) throw new DataError(`${this.name}: ${what}, row ${i + 1} has ${cells.length} values, expected ${this.F} (${this.config.columns.join(', ')})`);
      return cells.map((c, f) => parseNumberCell(c, `${this.name}: ${what}, row ${i + 1}, column '${this.config.columns[f]}'`));
    });
  }

  /** For each input history, the forecast of the next step in raw units ("v1,v2,…"). */
  predict(inputs: readonly string[]): string[] {
    return withEval(this.model, () =>
      inputs.map((s, i) => {
        const rows = this.normalize(this.parseInput(s, `input ${i}`));
        const T = rows.length;
        const x = this.t(Float32Array.from(rows.flat()), [T, 1, this.F]);
        const pred = this.model.forward(x).toArray();
        const last = pred.subarray((T - 1) * this.F, T * this.F);
        return denormalizeRow(last, this.config.norm).map((v) => Number(v.toFixed(4))).join(',');
      }),
    );
  }
}

/**
 * What `recur.config` of the forecaster holds (fields of models/fields.ts). One input feature per
 * column (the model reads 2·F values a step), so the column count is limited as a layer width.
 */
const POSITIVE_NUMBERS = numbers(0, { minOpen: true });
const DELTA_FORM = "a list of finite numbers > 0 (one per entry of 'columns')";
const forecastConfig = z
  .strictObject({
    task: FIELDS.task,
    arch: arch('rnn-forecaster'),
    columns: strings(1, { limit: 'hiddenSize' }),
    norm: z.custom<NormStats>(isRecord, { error: 'normalisation stats {columns, mean, std}' }),
    ...pick('cell', 'hiddenSize', 'numLayers', 'dropout', 'residual', 'context'),
    // one per column: its form names the count, so the check below says it
    deltaScale: z.custom<number[]>(Array.isArray, { error: DELTA_FORM }).meta({ expected: DELTA_FORM }),
  })
  .check((ctx) => {
    const c = ctx.value;
    try {
      checkNormStats(c.norm, "'norm'");
    } catch (e) {
      ctx.issues.push(sentence(c, (e as Error).message));
      return;
    }
    if (c.norm.columns.join('\u0000') !== c.columns.join('\u0000')) ctx.issues.push(sentence(c, 'norm.columns must equal columns'));
    if (c.deltaScale.length !== c.columns.length || !POSITIVE_NUMBERS.safeParse(c.deltaScale).success) {
      ctx.issues.push(sentence(c, `'deltaScale' must be a list of ${c.columns.length} finite numbers > 0 (one per entry of 'columns'), got ${brief(c.deltaScale)}`));
    }
  }) satisfies z.ZodType<ForecastConfig>;
const configTypesMatch: SameKeys<ForecastConfig, z.output<typeof forecastConfig>> = true;

/** Check a stored forecaster config; with `limits` (loading a file), sizes against them too. */
export function checkForecastConfig(c: unknown, where = 'forecast config', limits: Partial<Limits> | null = null): ForecastConfig {
  return parseConfig(where, forecastConfig, c, { limits });
}

/** The parameters a forecaster config implies (F = columns). */
export function forecastTensorShapes(c: ForecastConfig): ParamShapes {
  const F = c.columns.length;
  return [...recurrentShapes('rnn', c.cell, 2 * F, c.hiddenSize, c.numLayers, false), ...linearShapes('head', c.hiddenSize, F)];
}

/** How to build the forecaster: its config's model keys, and how windows and batches are made. */
export type ForecastBuildOptions = Pick<ForecastConfig, 'cell' | 'hiddenSize' | 'numLayers' | 'dropout' | 'residual' | 'context'> & { seqLen: number; batchSize: number; stepsPerEpoch: number; seed: number };

export interface SeriesSplits {
  columns: string[];
  train: Series[];
  val: Series[];
  test?: Series[];
}

/**
 * Task + sources from chronologically split series (val/test series are matched to the training
 * series of the same name, whose end is their context).
 */
export function buildForecast(name: string, o: ForecastBuildOptions, data: SeriesSplits): { task: ForecastTask; train: BatchSource<SeriesBatch>; val: BatchSource<SeriesBatch>; test?: BatchSource<SeriesBatch> } {
  const F = data.columns.length;
  for (const split of ['train', 'val', 'test'] as const) {
    for (const s of data[split] ?? []) {
      s.rows.forEach((r, i) => {
        if (r.length !== F) throw new DataError(`${name}: ${split} series '${s.name}' step ${i} has ${r.length} values, expected ${F} (${data.columns.join(', ')})`);
        r.forEach((v, f) => {
          if (!Number.isFinite(v)) throw new DataError(`${name}: ${split} series '${s.name}' step ${i}, column '${data.columns[f]}' is not a finite number (${v})`);
        });
      });
    }
  }
  const ok = (s: Series, t: number): boolean => !s.flags || !s.flags[t];
  const cleanRows = data.train.flatMap((s) => s.rows.filter((_, t) => ok(s, t)));
  if (cleanRows.length === 0) throw new DataError(`${name}: the training series have no unflagged steps`);
  const norm = fitNormStats(cleanRows, data.columns);
  const deltaScale = rmsStep(data.train.map((s) => ({ rows: normalizeRows(s.rows, norm), ok: (t: number) => ok(s, t) })), F);
  const config: ForecastConfig = { task: name, arch: 'rnn-forecaster', columns: [...data.columns], norm, cell: o.cell, hiddenSize: o.hiddenSize, numLayers: o.numLayers, dropout: o.dropout, residual: o.residual, deltaScale, context: o.context };
  checkForecastConfig(config);
  const task = new ForecastTask(config, o.seed);
  // Training windows: every start whose seqLen + 1 steps hold no flagged step.
  const T1 = o.seqLen + 1;
  const windows: { rows: number[][]; start: number }[] = [];
  for (const s of data.train) {
    const rows = task.normalize(s.rows);
    let bad = 0; // flagged steps in [start, start + T1)
    for (let t = 0; t < Math.min(T1, s.rows.length); t++) bad += ok(s, t) ? 0 : 1;
    for (let start = 0; start + T1 <= s.rows.length; start++) {
      if (bad === 0) windows.push({ rows, start });
      bad += (start + T1 < s.rows.length && !ok(s, start + T1) ? 1 : 0) - (ok(s, start) ? 0 : 1);
    }
  }
  if (windows.length === 0) throw new DataError(`${name}: no training series has seqLen + 1 = ${T1} consecutive unflagged steps`);
  const trainSource = new SampledSource(o.stepsPerEpoch, o.seed, (rng) => {
    const seqs: number[][][] = [];
    for (let b = 0; b < o.batchSize; b++) {
      const w = windows[rng.int(windows.length)];
      seqs.push(w.rows.slice(w.start, w.start + T1));
    }
    return task.collate(seqs, seqs.map(() => 0));
  });
  const evalSource = (held: Series[], history: Series[][]): BatchSource<SeriesBatch> => {
    const seqs: number[][][] = [];
    const from: number[] = [];
    for (const s of held) {
      const past = history.flatMap((h) => h.filter((x) => x.name === s.name).flatMap((x) => x.rows));
      const ctx = past.slice(Math.max(0, past.length - o.context));
      seqs.push(task.normalize([...ctx, ...s.rows]));
      from.push(ctx.length === 0 ? 1 : ctx.length);
    }
    return new ListSource([task.collate(seqs, from)]);
  };
  return {
    task,
    train: trainSource,
    val: evalSource(data.val, [data.train]),
    test: data.test && data.test.length ? evalSource(data.test, [data.train, data.val]) : undefined,
  };
}

/** Per feature, the RMS of one-step differences between unflagged steps (1 where there are none or all are 0). */
function rmsStep(series: readonly { rows: number[][]; ok: (t: number) => boolean }[], F: number): number[] {
  const ss = new Array<number>(F).fill(0);
  let n = 0;
  for (const { rows, ok } of series) {
    for (let t = 1; t < rows.length; t++) {
      if (!ok(t) || !ok(t - 1)) continue;
      for (let f = 0; f < F; f++) ss[f] += (rows[t][f] - rows[t - 1][f]) ** 2;
      n++;
    }
  }
  return ss.map((v) => (n > 0 && v > 0 ? Math.sqrt(v / n) : 1));
}

/** Rebuild the task from a decoded model file: config and tensors checked before the model is built. */
export function loadForecast(file: ModelFile, path = 'model file', opts: LoadTaskOptions = {}): ForecastTask {
  const limits = opts.limits ?? {};
  const config = checkForecastConfig(file.config, `${path}: config`, limits);
  checkModelTensors(path, forecastTensorShapes(config), file.tensors, { limits });
  const task = new ForecastTask(config);
  task.model.loadStateDict(asStateDict(file));
  return task;
}
