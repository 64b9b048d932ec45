/**
 * Diagnostics of gradient flow through time: the adding problem (Hochreiter & Schmidhuber 1997;
 * Le et al. 2015) at several lags, with a vanilla RNN, an LSTM and a GRU trained on the same
 * budget (same hidden size, steps, batch size, learning rate, clipping).
 *
 * The adding problem at lag T: inputs [T, B, 2]; channel 0 holds U(0, 1) values, channel 1 marks
 * exactly two positions — one in the first half, one in the second. The target is the sum of the
 * two marked values, read from the final hidden state through a linear head; the loss is the MSE.
 * Always predicting 1 scores Var(U₁ + U₂) = 1/6 ≈ 0.167, the chance level. The first marker sits
 * up to T steps before the answer, so solving the task needs gradient to flow back that far.
 *
 * Gradient flow: ‖∂L/∂h_t‖ for t = 1 … T, measured on a fixed batch at initialisation and after
 * training. Training runs the fused layer (one op over the sequence); the measurement runs the
 * SAME parameters step by step (`recurrentLayer` with T = 1 per step) with an identity "tap" op on
 * every h_t, whose backward records the gradient arriving at h_t — from all later steps — before
 * passing it on.
 *
 * `renderDiagnoseSvg` draws the curves (hand-written SVG, no dependencies); `formatDiagnoseTable`
 * prints the table.
 */
import type { Data, DType } from '../backend/interface.ts';
import { Tensor, tensor } from '../tensor/tensor.ts';
import { Rng } from '../tensor/rng.ts';
import { accumulateGrad, backward, needsGrad, noGrad, record } from '../autograd/tape.ts';
import { mseLoss } from '../autograd/ops/nn.ts';
import { reshape } from '../autograd/ops/shape.ts';
import { recurrentLayer } from '../cells/recurrent.ts';
import { Module, checkOptions } from '../nn/module.ts';
import { Linear } from '../nn/layers.ts';
import { GRU, LSTM, RNN, type RecurrentBase } from '../nn/recurrent.ts';
import { Trainer } from '../train/trainer.ts';
import type { Callback, StepInfo } from '../train/callbacks.ts';
import type { BatchSource, Task } from '../train/task.ts';

export type DiagnoseCell = 'rnn' | 'lstm' | 'gru';
export const DIAGNOSE_CELLS: readonly DiagnoseCell[] = ['rnn', 'lstm', 'gru'];
/** Var(U₁ + U₂) for U ~ U(0, 1): the MSE of always answering 1. */
export const ADDING_CHANCE_MSE = 1 / 6;

export interface AddingBatch {
  T: number;
  B: number;
  /** [T, B, 2] time-major inputs. */
  x: Float32Array;
  /** [B] targets. */
  y: Float32Array;
}

/** One batch of the adding problem at lag T. */
export function addingBatch(rng: Rng, T: number, B: number): AddingBatch {
  if (!Number.isInteger(T) || T < 2) throw new RangeError(`addingBatch: lag T must be an integer ≥ 2, got ${T}`);
  const x = new Float32Array(T * B * 2);
  const y = new Float32Array(B);
  const half = Math.floor(T / 2);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) x[(t * B + b) * 2] = rng.random();
    const i = rng.int(half);
    const j = half + rng.int(T - half);
    x[(i * B + b) * 2 + 1] = 1;
    x[(j * B + b) * 2 + 1] = 1;
    y[b] = x[(i * B + b) * 2] + x[(j * B + b) * 2];
  }
  return { T, B, x, y };
}

/** A recurrent layer (1 layer, input 2) and a linear head on the final hidden state. */
export class AddingNet extends Module {
  readonly rnn: RecurrentBase;
  readonly head: Linear;

  constructor(readonly cell: DiagnoseCell, readonly hiddenSize: number, rng: Rng, forgetBias = 1, dtype?: DType) {
    super();
    const o = { inputSize: 2, hiddenSize, rng, dtype };
    // LSTM: a positive forget-gate bias (Gers et al. 2000; Jozefowicz et al. 2015)
    this.rnn = this.registerModule('rnn', cell === 'lstm' ? new LSTM({ ...o, forgetBias }) : cell === 'gru' ? new GRU(o) : new RNN(o));
    this.head = this.registerModule('head', new Linear(hiddenSize, 1, { rng, dtype }));
  }

  /** Predictions [B] from inputs [T, B, 2] (fused layer). */
  forward(b: AddingBatch): Tensor {
    const p = this.rnn.cells[0][0].weightIh;
    const x = new Tensor(p.backend.fromArray(b.x, p.dtype), [b.T, b.B, 2]);
    const r = this.rnn.forward(x);
    return reshape(this.head.forward(reshape(r.h, [b.B, this.hiddenSize])), [b.B]);
  }

  loss(b: AddingBatch): Tensor {
    const p = this.head.weight;
    return mseLoss(this.forward(b), tensor(b.y, [b.B], { dtype: p.dtype, backend: p.backend }));
  }

  /**
   * ∂L/∂h_t for t = 1 … T (each [B, H], L = batch-mean MSE) from running the same parameters one
   * step at a time with a tap on every hidden state, and the loss. Leaves no gradients behind.
   */
  hiddenGrads(b: AddingBatch): { grads: Data[]; loss: number } {
    const { T, B } = b;
    const H = this.hiddenSize;
    const params = this.rnn.cells[0];
    const p = params[0].weightIh;
    const be = p.backend;
    const grads: Data[] = new Array(T);
    let h: Tensor | null = null;
    let c: Tensor | null = null;
    for (let t = 0; t < T; t++) {
      const xt = new Tensor(be.fromArray(b.x.subarray(t * B * 2, (t + 1) * B * 2), p.dtype), [1, B, 2]);
      const r = recurrentLayer(this.rnn.mode, xt, params, h, c, null);
      h = tap(r.hN, (g) => (grads[t] = g));
      c = r.cN;
    }
    const pred = reshape(this.head.forward(reshape(h!, [B, H])), [B]);
    const loss = mseLoss(pred, tensor(b.y, [B], { dtype: p.dtype, backend: be }));
    backward(loss);
    this.zeroGrad();
    for (let t = 0; t < T; t++) grads[t] ??= new Float64Array(B * H); // no path (cannot happen here)
    return { grads, loss: loss.item() };
  }

  /** ‖∂L/∂h_t‖ (Frobenius norm over the batch) for t = 1 … T, and the loss. */
  hiddenGradNorms(b: AddingBatch): { norms: number[]; loss: number } {
    const { grads, loss } = this.hiddenGrads(b);
    return {
      norms: grads.map((g) => {
        let s = 0;
        for (let i = 0; i < g.length; i++) s += g[i] * g[i];
        return Math.sqrt(s);
      }),
      loss,
    };
  }
}

/**
 * Identity op whose backward hands the arriving gradient to `sink` (host copy) before passing it
 * through unchanged. Shares storage with x, like reshape.
 */
export function tap(x: Tensor, sink: (grad: Data) => void): Tensor {
  const out = new Tensor(x.storage, x.shape);
  if (needsGrad(x)) {
    record('tap', [x], [out], () => {
      const g = out.grad!;
      sink(g.backend.read(g.storage));
      accumulateGrad(x, g.storage, false);
    });
  }
  return out;
}

export interface DiagnoseOptions {
  /** Lags to test (default [10, 50, 100, 200]). */
  lags?: number[];
  cells?: DiagnoseCell[];
  /** Optimizer steps per (cell, lag) (default 3000). */
  steps?: number;
  batchSize?: number;
  hiddenSize?: number;
  lr?: number;
  /** Global gradient-norm clip (default 1). */
  clip?: number;
  /** LSTM forget-gate bias at initialisation (default 1). */
  forgetBias?: number;
  seed?: number;
  /** Held-out sequences for the final MSE (default 512). */
  evalSize?: number;
  /** Sequences in the gradient-norm measurement batch (default 64). */
  gradBatch?: number;
  /** Record the training loss every this many steps (default 20). */
  curveEvery?: number;
  log?: (line: string) => void;
}

export const DIAGNOSE_DEFAULTS = {
  lags: [10, 50, 100, 200], cells: ['rnn', 'lstm', 'gru'] as DiagnoseCell[], steps: 3000, batchSize: 64, hiddenSize: 32, lr: 1e-2, clip: 1, forgetBias: 1,
  seed: 1, evalSize: 512, gradBatch: 64, curveEvery: 20,
};

export interface DiagnoseRun {
  cell: DiagnoseCell;
  lag: number;
  /** Held-out MSE after training. */
  mse: number;
  /** Held-out MSE at initialisation. */
  mseInit: number;
  /** ‖∂L/∂h_t‖, t = 1 … T, at initialisation and after training. */
  gradInit: number[];
  gradFinal: number[];
  /** [step, running training MSE] every curveEvery steps. */
  curve: [number, number][];
  /** First step whose running training MSE fell below 0.01 (or null). */
  solvedAt: number | null;
  seconds: number;
}

export interface DiagnoseResult {
  options: Omit<Required<DiagnoseOptions>, 'log'>;
  runs: DiagnoseRun[];
  seconds: number;
}

function evalMse(net: AddingNet, data: AddingBatch): number {
  return noGrad(() => net.loss(data).item());
}

/**
 * The gradient probe: ‖∂L/∂h_t‖ on a fixed batch and the held-out MSE when training starts
 * (at initialisation) and when it ends (in eval mode).
 */
class HiddenGradProbe implements Callback<AddingBatch> {
  gradInit: number[] = [];
  gradFinal: number[] = [];
  mseInit = NaN;
  mse = NaN;

  constructor(private readonly net: AddingNet, private readonly gradData: AddingBatch, private readonly evalData: AddingBatch) {}

  onFitStart(): void {
    this.gradInit = this.net.hiddenGradNorms(this.gradData).norms;
    this.mseInit = evalMse(this.net, this.evalData);
  }

  onFitEnd(): void {
    this.net.eval();
    this.mse = evalMse(this.net, this.evalData);
    this.gradFinal = this.net.hiddenGradNorms(this.gradData).norms;
  }
}

/** The running mean training MSE every `every` steps (and at the last), and when it fell below 0.01. */
class LossCurve implements Callback<AddingBatch> {
  readonly points: [number, number][] = [];
  solvedAt: number | null = null;
  private sum = 0;
  private n = 0;

  constructor(private readonly every: number, private readonly last: number) {}

  onStepEnd(info: StepInfo): void {
    this.sum += info.loss;
    this.n++;
    if (info.step % this.every === 0 || info.step === this.last) {
      const m = this.sum / this.n;
      this.points.push([info.step, m]);
      if (this.solvedAt === null && m < 0.01) this.solvedAt = info.step;
      this.sum = 0;
      this.n = 0;
    }
  }
}

/** Train and measure every (cell, lag); deterministic for a seed. */
export function runDiagnose(options: DiagnoseOptions = {}): DiagnoseResult {
  checkOptions('diagnose', options, [...Object.keys(DIAGNOSE_DEFAULTS), 'log']);
  const { log, ...rest } = options;
  const o = { ...DIAGNOSE_DEFAULTS, ...rest };
  for (const lag of o.lags) if (!Number.isInteger(lag) || lag < 2) throw new RangeError(`diagnose: lags must be integers ≥ 2, got ${lag}`);
  for (const c of o.cells) if (!DIAGNOSE_CELLS.includes(c)) throw new TypeError(`diagnose: unknown cell '${c}' (known: ${DIAGNOSE_CELLS.join(', ')})`);
  for (const k of ['steps', 'batchSize', 'hiddenSize', 'evalSize', 'gradBatch', 'curveEvery'] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new RangeError(`diagnose: '${k}' must be a positive integer, got ${o[k]}`);
  }
  if (!(o.lr > 0)) throw new RangeError(`diagnose: 'lr' must be > 0, got ${o.lr}`);
  // clip 0 would scale every gradient to 0 (no learning at all), never what is meant
  if (!(o.clip > 0)) throw new RangeError(`diagnose: 'clip' must be > 0, got ${o.clip}`);
  const t0 = performance.now();
  const runs: DiagnoseRun[] = [];
  for (const lag of o.lags) {
    const evalData = addingBatch(new Rng(o.seed * 7 + lag * 131 + 1), lag, o.evalSize);
    const gradData = addingBatch(new Rng(o.seed * 7 + lag * 131 + 2), lag, o.gradBatch);
    for (const cell of o.cells) {
      const t1 = performance.now();
      const net = new AddingNet(cell, o.hiddenSize, new Rng(o.seed * 1000 + lag), o.forgetBias);
      // every cell sees the same training batches (same data rng per lag), drawn in turn, one per
      // step: the order the loop always drew them in, so seeded runs keep their losses
      const dataRng = new Rng(o.seed * 99991 + lag);
      const batches: BatchSource<AddingBatch> = { numBatches: o.steps, get: () => addingBatch(dataRng, lag, o.batchSize) };
      const task: Task<AddingBatch> = {
        name: 'diagnose',
        model: net,
        higherIsBetter: false,
        step: (b) => ({ loss: net.loss(b), count: b.B }),
        evaluate: () => ({ mse: evalMse(net, evalData) }),
        describe: () => ({ config: { cell, hiddenSize: o.hiddenSize, forgetBias: o.forgetBias } }),
      };
      const probe = new HiddenGradProbe(net, gradData, evalData);
      const curve = new LossCurve(o.curveEvery, o.steps);
      // The Trainer's warnings stay off: clipping at every step (clip 1) and a plateau at chance
      // are what this experiment is there to show, not mistakes to warn about.
      new Trainer(task, { optimizer: 'adam', lr: o.lr, clipNorm: o.clip, maxSteps: o.steps, callbacks: [probe, curve], log: () => {} }).fitSync(batches);
      const { mse, mseInit, gradInit, gradFinal } = probe;
      const { points, solvedAt } = curve;
      const seconds = (performance.now() - t1) / 1000;
      runs.push({ cell, lag, mse, mseInit, gradInit, gradFinal, curve: points, solvedAt, seconds });
      log?.(`${cell.padEnd(4)} lag ${String(lag).padStart(4)}: MSE ${mse.toFixed(4)} (init ${mseInit.toFixed(3)})  ‖∂L/∂h_1‖/‖∂L/∂h_T‖ ${ratio(gradFinal).toExponential(1)}  ${seconds.toFixed(1)}s`);
    }
  }
  return { options: { ...o }, runs, seconds: (performance.now() - t0) / 1000 };
}

/** ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖: how much gradient survives the whole sequence. */
export function ratio(norms: readonly number[]): number {
  const last = norms[norms.length - 1];
  return last > 0 ? norms[0] / last : NaN;
}

function fmtExp(x: number): string {
  return Number.isFinite(x) ? x.toExponential(1) : String(x);
}

/** A plain-text table of the runs. */
export function formatDiagnoseTable(r: DiagnoseResult): string {
  const head = ['cell', 'lag', 'MSE', 'MSE@init', 'solved@step', '‖∂L/∂h_T‖', '‖∂L/∂h_1‖', 'h_1/h_T', 'h_1/h_T@init', 'seconds'];
  const rows = r.runs.map((x) => [
    x.cell, String(x.lag), x.mse.toFixed(4), x.mseInit.toFixed(3), x.solvedAt === null ? '-' : String(x.solvedAt),
    fmtExp(x.gradFinal[x.gradFinal.length - 1]), fmtExp(x.gradFinal[0]), fmtExp(ratio(x.gradFinal)), fmtExp(ratio(x.gradInit)), x.seconds.toFixed(1),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < 2 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  const o = r.options;
  return [
    `adding problem: chance MSE ${ADDING_CHANCE_MSE.toFixed(3)}; ${o.steps} steps × batch ${o.batchSize}, hidden ${o.hiddenSize}, Adam lr ${o.lr}, clip ${o.clip}, seed ${o.seed}; ${r.seconds.toFixed(0)}s total`,
    line(head),
    line(w.map((n) => '-'.repeat(n))),
    ...rows.map(line),
  ].join('\n') + '\n';
}

const COLORS: Record<DiagnoseCell, string> = { rnn: '#d62728', lstm: '#1f77b4', gru: '#2ca02c' };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** log10 with a floor, for plotting gradients that underflow to 0. */
function lg(x: number): number {
  return Math.log10(Math.max(x, 1e-30));
}

/**
 * An SVG with one column per lag: top, log₁₀‖∂L/∂h_t‖ against t (solid: after training, dashed:
 * at initialisation); bottom, the training MSE against the step (log scale, chance level dotted).
 */
export function renderDiagnoseSvg(r: DiagnoseResult): string {
  const lags = [...new Set(r.runs.map((x) => x.lag))];
  const cells = [...new Set(r.runs.map((x) => x.cell))];
  const pw = 260, ph = 170, ml = 54, mt = 66, gap = 64, mb = 40;
  const W = ml + lags.length * (pw + gap) - gap + 20;
  const H = mt + 2 * ph + gap + mb + 24;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${ml}" y="18" font-size="14" font-weight="bold">${esc(`Adding problem: gradient flow through time and training MSE (${r.options.steps} steps × ${r.options.batchSize}, hidden ${r.options.hiddenSize})`)}</text>`);
  // legend
  cells.forEach((c, i) => {
    const x = ml + i * 90;
    out.push(`<line x1="${x}" y1="32" x2="${x + 22}" y2="32" stroke="${COLORS[c]}" stroke-width="2"/><text x="${x + 26}" y="36">${c.toUpperCase()}</text>`);
  });
  out.push(`<text x="${ml + cells.length * 90}" y="36" fill="#555">solid: trained, dashed: at init</text>`);
  const axes = (x0: number, y0: number, xmin: number, xmax: number, ymin: number, ymax: number, xlabel: string, ylabel: string, title: string, logTicks: boolean): { px: (v: number) => number; py: (v: number) => number } => {
    const px = (v: number): number => x0 + ((v - xmin) / (xmax - xmin || 1)) * pw;
    const py = (v: number): number => y0 + ph - ((v - ymin) / (ymax - ymin || 1)) * ph;
    out.push(`<rect x="${x0}" y="${y0}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
    out.push(`<text x="${x0 + pw / 2}" y="${y0 - 6}" text-anchor="middle" font-weight="bold">${esc(title)}</text>`);
    out.push(`<text x="${x0 + pw / 2}" y="${y0 + ph + 28}" text-anchor="middle">${esc(xlabel)}</text>`);
    out.push(`<text transform="translate(${x0 - 40},${y0 + ph / 2}) rotate(-90)" text-anchor="middle">${esc(ylabel)}</text>`);
    for (let k = 0; k <= 4; k++) {
      const v = xmin + ((xmax - xmin) * k) / 4;
      out.push(`<text x="${px(v)}" y="${y0 + ph + 13}" text-anchor="middle" fill="#555">${Math.round(v)}</text>`);
    }
    const step = logTicks ? Math.max(1, Math.ceil((ymax - ymin) / 5)) : (ymax - ymin) / 4;
    for (let v = logTicks ? Math.ceil(ymin) : ymin; v <= ymax + 1e-9; v += step) {
      out.push(`<line x1="${x0}" y1="${py(v)}" x2="${x0 + pw}" y2="${py(v)}" stroke="#eee"/>`);
      out.push(`<text x="${x0 - 4}" y="${py(v) + 4}" text-anchor="end" fill="#555">${logTicks ? `1e${Math.round(v)}` : v.toFixed(2)}</text>`);
    }
    return { px, py };
  };
  const path = (pts: [number, number][], color: string, dash: boolean): string =>
    `<polyline fill="none" stroke="${color}" stroke-width="1.6"${dash ? ' stroke-dasharray="4 3" stroke-opacity="0.7"' : ''} points="${pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')}"/>`;
  lags.forEach((lag, li) => {
    const x0 = ml + li * (pw + gap);
    const runs = r.runs.filter((x) => x.lag === lag);
    // gradient norms
    const all = runs.flatMap((x) => [...x.gradInit, ...x.gradFinal]).map(lg);
    const ymin = Math.floor(Math.min(...all)), ymax = Math.ceil(Math.max(...all));
    const g = axes(x0, mt, 1, lag, ymin, ymax === ymin ? ymin + 1 : ymax, 'time step t', '‖∂L/∂h_t‖', `lag ${lag}`, true);
    for (const x of runs) {
      out.push(path(x.gradInit.map((v, t) => [g.px(t + 1), g.py(lg(v))]), COLORS[x.cell], true));
      out.push(path(x.gradFinal.map((v, t) => [g.px(t + 1), g.py(lg(v))]), COLORS[x.cell], false));
    }
    // training curves
    const y1 = mt + ph + gap;
    const vals = runs.flatMap((x) => x.curve.map(([, m]) => lg(m))).concat([lg(ADDING_CHANCE_MSE)]);
    const cmin = Math.floor(Math.min(...vals)), cmax = Math.ceil(Math.max(...vals));
    const c = axes(x0, y1, 0, r.options.steps, cmin, cmax === cmin ? cmin + 1 : cmax, 'training step', 'training MSE', `lag ${lag}: MSE`, true);
    out.push(`<line x1="${x0}" y1="${c.py(lg(ADDING_CHANCE_MSE))}" x2="${x0 + pw}" y2="${c.py(lg(ADDING_CHANCE_MSE))}" stroke="#777" stroke-dasharray="1 3"/>`);
    out.push(`<line x1="${x0}" y1="${c.py(-2)}" x2="${x0 + pw}" y2="${c.py(-2)}" stroke="#bbb" stroke-dasharray="6 3"/>`);
    for (const x of runs) out.push(path(x.curve.map(([s, m]) => [c.px(s), c.py(lg(m))]), COLORS[x.cell], false));
  });
  out.push(`<text x="${ml}" y="${H - 8}" fill="#555">${esc('dotted: chance MSE 0.167; dashed grey: MSE 0.01. Gradients: L = batch-mean MSE, norm over the batch.')}</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
