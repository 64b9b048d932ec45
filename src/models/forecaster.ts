/**
 * Many-to-many (aligned) regression: per-step forecasting of a multivariate series.
 *
 *   (x_t − x_{t−1}) / s (the last change of the F normalised features) → RNN/LSTM/GRU → h_t
 *   → Linear(H, F) → Δ_t;   x̂_{t+1} = x_t + s ⊙ Δ_t
 *
 * Why the model reads changes only (`inputs: 'change'`, the default since the sensor-network task
 * was redesigned): the sensor series drift — the held-out stretch of each mote sits at other levels,
 * and in other regimes, than its training stretch — and a model that also reads the level (`inputs:
 * 'level+change'`, the first design, which files without an `inputs` key keep) learns level-keyed
 * drifts of the training trajectory that do not transfer: it lost to the last value on the test
 * split (temperature 15.6% worse after 2 epochs, and worse the longer it trained). On changes alone
 * the same LSTM learns the short-range dynamics (humidity changes persist, temperature steps
 * flicker back by one quantisation step) and beats the last value for both variables.
 *
 * Training loss weighting: the motes' typical one-step changes differ up to 2.4× in size, so a
 * plain MSE is dominated by the busiest windows, whose dynamics (trending) are not those of the
 * quiet ones (flicker). Each training window's squared errors of a feature are weighted by s² /
 * (its mean squared one-step change + 0.01 s²): every window counts about equally, whatever its
 * volatility. Only the training loss is weighted; evaluation reports plain errors.
 *
 * The model predicts the CHANGE to the next step (a residual on the last value), in units of the
 * typical one-step change of each feature on the training data (`deltaScale`, the RMS of the
 * normalised first differences — tiny next to the level's spread), so an untrained
 * model starts near the naive last-value forecast and training has to beat it; the held-out report
 * says by how much (all in normalised units, over the scored steps; the first is the primary):
 *   mse, mae                  the model, averaged over features
 *   last_mse, last_mae        the last-value baseline x̂_{t+1} = x_t
 *   ma_mse, ma_mae            the moving-average baseline x̂_{t+1} = mean(x_{t−k+1} … x_t), k =
 *                             MA_WINDOW = 10 observed steps (fewer only at the very start of a
 *                             series without context)
 *   skill                     1 − mse / last_mse (> 0: better than the last value)
 * then the same seven per feature, as `<key>.<column>` (mse.humidity, …, skill.humidity). The
 * forecast is one step ahead, so these are the horizon-1 figures. The loss is squared error, so
 * the model forecasts a conditional mean: on readings quantised to 0.01 whose change is often
 * exactly 0 (the sensor data), the last value can keep the lower MAE while the model has the lower
 * MSE (it does on the sensor test split: MSE about 10% lower, MAE 3–5% higher).
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
 * PyTorch equivalent (same parameter names): rnn = nn.LSTM(F, H, L) (nn.LSTM(2F, H, L) reading
 * [x_t ; Δx_t / s] with inputs 'level+change'), head = nn.Linear(H, F).
 * (With residual false the head predicts the next level directly: x̂_{t+1} = Δ_t.)
 */
import { z } from 'zod';
import type { Backend } from '../backend/interface.ts';
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
import { arch, FIELDS, numbers, oneOf, pick, strings } from './fields.ts';
import { sentence, type SameKeys } from '../util/schema.ts';
import { brief, isRecord } from '../util/options.ts';

/** What the recurrent layer reads each step: the last change only, or the level and the last change (the first design). */
export const FORECAST_INPUTS = ['change', 'level+change'] as const;
export type ForecastInputs = (typeof FORECAST_INPUTS)[number];
const inputsField = oneOf(FORECAST_INPUTS).describe("what the model reads each step: 'change' (the last change of each feature) or 'level+change' (also the level; the first design)");

/** The moving-average baseline's window: the mean of the last MA_WINDOW observed values. */
export const MA_WINDOW = 10;

export class RNNForecaster extends Module {
  readonly rnn: RecurrentBase;
  readonly head: Linear;

  /**
   * deltaScale and its inverse as tensors, per backend: the model moves between backends (Module.to,
   * the Trainer's host copy of a GPU model, the automatic backend choice) and a tensor made once at
   * construction would stay behind on the first.
   */
  private readonly scales = new Map<Backend, { scale: Tensor; invScale: Tensor }>();

  /** The recurrent layer's input: the last change, after the level with 'level+change'. */
  readonly inputs: ForecastInputs;

  /**
   * deltaScale: per-feature typical size of a one-step change; the head predicts Δ in those units.
   * inputs: default 'level+change' (what models built before the option existed read).
   */
  constructor(readonly o: { features: number; hiddenSize: number; numLayers: number; cell: CellKind; dropout: number; residual: boolean; deltaScale: readonly number[]; inputs?: ForecastInputs; rng: Rng }) {
    super();
    this.inputs = o.inputs ?? 'level+change';
    this.rnn = this.registerModule('rnn', makeRecurrent(o.cell, { inputSize: forecastInputSize(this.inputs, o.features), hiddenSize: o.hiddenSize, numLayers: o.numLayers, dropout: o.dropout, rng: o.rng }));
    this.head = this.registerModule('head', new Linear(o.hiddenSize, o.features, { rng: o.rng }));
    if (o.deltaScale.length !== o.features) throw new RangeError(`RNNForecaster: deltaScale has ${o.deltaScale.length} entries for ${o.features} features`);
  }

  /** deltaScale (s) and 1/s on the backend and in the dtype of `like`. */
  private scalesFor(like: Tensor): { scale: Tensor; invScale: Tensor } {
    let c = this.scales.get(like.backend);
    if (!c || c.scale.dtype !== like.dtype) {
      const opts = { dtype: like.dtype, backend: like.backend };
      c = { scale: tensor(this.o.deltaScale, [this.o.features], opts), invScale: tensor(this.o.deltaScale.map((v) => 1 / v), [this.o.features], opts) };
      this.scales.set(like.backend, c);
    }
    return c;
  }

  /** x: [T, B, F] levels → next-step predictions [T, B, F]. */
  forward(x: Tensor, lengths: ArrayLike<number> | null = null): Tensor {
    const [T, B, F] = x.shape;
    // The last change (0 at t = 0), read in deltaScale units, after the level with 'level+change'.
    const zero = zeros([1, B, F], { dtype: x.dtype, backend: x.backend });
    const dx = T === 1 ? zero : concat([zero, sub(slice(x, 0, 1, T - 1), slice(x, 0, 0, T - 1))], 0);
    const r = this.rnn.forward(this.recurrentInput(x, dx), { lengths });
    return this.forecast(x, this.head.forward(r.output));
  }

  /** Levels x and their last changes dx (normalised, [T, B, F]) → what the recurrent layer reads. */
  recurrentInput(x: Tensor, dx: Tensor): Tensor {
    const change = mul(dx, this.scalesFor(dx).invScale);
    return this.inputs === 'change' ? change : concat([x, change], 2);
  }

  /** The head's output d at levels x → the next-step forecast (x + s ⊙ d with residual). */
  forecast(x: Tensor, d: Tensor): Tensor {
    return this.o.residual ? add(x, mul(d, this.scalesFor(d).scale)) : d;
  }
}

/** Values the recurrent layer reads per step. */
export function forecastInputSize(inputs: ForecastInputs, features: number): number {
  return inputs === 'change' ? features : 2 * features;
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
  /** What the model reads (absent in files written before the option: 'level+change'). */
  inputs?: ForecastInputs;
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
  /** [B, F] training-loss weight of each sequence's feature (absent: 1); see the file comment. */
  weight?: Float32Array;
}

export class ForecastTask implements Task<SeriesBatch> {
  readonly name: string;
  readonly model: RNNForecaster;
  readonly higherIsBetter = false;
  readonly F: number;

  constructor(readonly config: ForecastConfig, seed = 0) {
    this.name = config.task;
    this.F = config.columns.length;
    this.model = new RNNForecaster({ features: this.F, hiddenSize: config.hiddenSize, numLayers: config.numLayers, cell: config.cell, dropout: config.dropout, residual: config.residual, deltaScale: config.deltaScale, inputs: config.inputs, rng: new Rng(seed) });
  }

  private t(values: Float32Array, shape: number[]): Tensor {
    const p = this.model.head.weight;
    return tensor(values, shape, { dtype: p.dtype, backend: p.backend });
  }

  /** Training loss: the squared errors over scored steps, weighted per window and feature (b.weight), mean per scored value. */
  step(b: SeriesBatch): StepResult {
    const { T, B } = b;
    const F = this.F;
    const pred = this.model.forward(this.t(b.x, [T, B, F]), b.lengths);
    const sq = mul(square(sub(pred, this.t(b.y, [T, B, F]))), this.t(b.mask, [T, B, 1]));
    const weighted = b.weight ? mul(sq, this.t(b.weight, [1, B, F])) : sq;
    return { loss: mul(sum(weighted), 1 / (b.count * this.F)), count: b.count };
  }

  /** The model's and the baselines' errors on the held-out data (the keys in the file comment). */
  evaluate(data: BatchSource<SeriesBatch>): Record<string, number> {
    const sums = new ForecastErrorSums(this.F);
    withEval(this.model, () => {
      for (let i = 0; i < data.numBatches; i++) {
        const b = data.get(0, i);
        const pred = this.model.forward(this.t(b.x, [b.T, b.B, this.F]), b.lengths).toArray();
        sums.add(pred, b);
      }
    });
    return sums.metrics(this.config.columns);
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
    // absent in files written before the option: those models read 'level+change'
    inputs: inputsField.optional(),
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

/** The forecaster's own option field (`inputs`), for the registry's option set. */
export const FORECAST_FIELDS = { inputs: inputsField } as const;

/** Check a stored forecaster config; with `limits` (loading a file), sizes against them too. */
export function checkForecastConfig(c: unknown, where = 'forecast config', limits: Partial<Limits> | null = null): ForecastConfig {
  return parseConfig(where, forecastConfig, c, { limits });
}

/** The parameters a forecaster config implies (F = columns). */
export function forecastTensorShapes(c: ForecastConfig): ParamShapes {
  const F = c.columns.length;
  return [...recurrentShapes('rnn', c.cell, forecastInputSize(c.inputs ?? 'level+change', F), c.hiddenSize, c.numLayers, false), ...linearShapes('head', c.hiddenSize, F)];
}

/** How to build the forecaster: its config's model keys, and how windows and batches are made. */
export type ForecastBuildOptions = Pick<ForecastConfig, 'cell' | 'hiddenSize' | 'numLayers' | 'dropout' | 'residual' | 'context'> & { inputs: ForecastInputs; seqLen: number; batchSize: number; stepsPerEpoch: number; seed: number };

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
  const config: ForecastConfig = { task: name, arch: 'rnn-forecaster', columns: [...data.columns], norm, cell: o.cell, hiddenSize: o.hiddenSize, numLayers: o.numLayers, dropout: o.dropout, residual: o.residual, deltaScale, context: o.context, inputs: o.inputs };
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
    const batch = task.collate(seqs, seqs.map(() => 0));
    batch.weight = windowWeights(seqs, deltaScale);
    return batch;
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

/**
 * Per sequence and feature, the training-loss weight s² / (mean squared one-step change in the
 * window + 0.01 s²) (s = deltaScale): windows of every volatility count about equally (the file
 * comment says why); the 0.01 s² floor keeps a flat window from getting an unbounded weight.
 */
export function windowWeights(seqs: readonly (readonly (readonly number[])[])[], deltaScale: readonly number[]): Float32Array {
  const F = deltaScale.length;
  const w = new Float32Array(seqs.length * F);
  seqs.forEach((s, b) => {
    for (let f = 0; f < F; f++) {
      let ss = 0;
      for (let t = 1; t < s.length; t++) ss += (s[t][f] - s[t - 1][f]) ** 2;
      const s2 = deltaScale[f] ** 2;
      w[b * F + f] = s2 / (ss / Math.max(1, s.length - 1) + 0.01 * s2);
    }
  });
  return w;
}

/**
 * Per feature, sums of squared and absolute errors over scored steps of the model and of the two
 * baselines (last value; mean of the last MA_WINDOW observed values), and the metrics they give.
 */
export class ForecastErrorSums {
  /** [model, last value, moving average] × per feature */
  readonly sse: number[][];
  readonly sae: number[][];
  /** Scored steps. */
  n = 0;

  constructor(readonly F: number, readonly maWindow = MA_WINDOW) {
    this.sse = [0, 1, 2].map(() => new Array<number>(F).fill(0));
    this.sae = [0, 1, 2].map(() => new Array<number>(F).fill(0));
  }

  /** Add a batch's scored steps; pred: the model's forecasts [T, B, F] (normalised). */
  add(pred: ArrayLike<number>, b: SeriesBatch): void {
    const F = this.F, k = this.maWindow;
    if (pred.length !== b.T * b.B * F) throw new RangeError(`ForecastErrorSums: ${pred.length} predictions for a batch of ${b.T}×${b.B}×${F}`);
    for (let t = 0; t < b.T; t++) {
      for (let j = 0; j < b.B; j++) {
        if (b.mask[t * b.B + j] === 0) continue;
        this.n++;
        const o = (t * b.B + j) * F;
        const from = Math.max(0, t - k + 1);
        for (let f = 0; f < F; f++) {
          let ma = 0;
          for (let u = from; u <= t; u++) ma += b.x[(u * b.B + j) * F + f];
          ma /= t - from + 1;
          const y = b.y[o + f];
          [pred[o + f], b.x[o + f], ma].forEach((p, m) => {
            this.sse[m][f] += (p - y) ** 2;
            this.sae[m][f] += Math.abs(p - y);
          });
        }
      }
    }
  }

  /** mse, mae, last_mse, last_mae, ma_mse, ma_mae, skill over all features, then each as '<key>.<column>'. */
  metrics(columns: readonly string[]): Record<string, number> {
    const F = this.F, n = this.n;
    if (columns.length !== F) throw new RangeError(`ForecastErrorSums: ${columns.length} column names for ${F} features`);
    const group = (sse: number[][], sae: number[][], count: number): Record<string, number> => ({
      mse: sse[0].reduce((a, v) => a + v, 0) / count,
      mae: sae[0].reduce((a, v) => a + v, 0) / count,
      last_mse: sse[1].reduce((a, v) => a + v, 0) / count,
      last_mae: sae[1].reduce((a, v) => a + v, 0) / count,
      ma_mse: sse[2].reduce((a, v) => a + v, 0) / count,
      ma_mae: sae[2].reduce((a, v) => a + v, 0) / count,
      skill: 1 - sse[0].reduce((a, v) => a + v, 0) / sse[1].reduce((a, v) => a + v, 0),
    });
    const out = group(this.sse, this.sae, n * F);
    columns.forEach((c, f) => {
      const one = group(this.sse.map((r) => [r[f]]), this.sae.map((r) => [r[f]]), n);
      for (const [key, v] of Object.entries(one)) out[`${key}.${c}`] = v;
    });
    return out;
  }
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
