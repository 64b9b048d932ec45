/**
 * `recur plot RUN [-o FILE]`: draw a run's training curves from its metrics.jsonl as an SVG file
 * that any browser or image viewer opens. Hand-written SVG, no dependencies.
 *
 * Panels, stacked top to bottom:
 *   Loss            the training loss at each logged step (raw, faint; and smoothed when there are
 *                   many points) and the validation loss at each evaluation (markers)
 *   one per metric  every other validation metric (accuracy, perplexity, ...), with the training
 *                   value of the same name when the task logs one
 *   Learning rate   when it changes during the run
 * Each panel has axes with "nice" ticks, grid lines, axis labels and a legend. A y axis becomes
 * logarithmic when its positive values span more than two orders of magnitude (typical of early
 * loss curves).
 */
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '../io/atomic.ts';
import type { EvalLogEntry, MetricsEntry, TrainLogEntry } from '../train/metrics-log.ts';
import { readMetricsLog } from '../train/checkpoint.ts';
import { CliError, flagLines, flagSpec, HELP_FLAG, parseOrHelp, UsageError, type Flag } from './args.ts';
import { fileError } from './format.ts';

export interface Series {
  name: string;
  /** [x, y] points; non-finite y values break the line. */
  points: [number, number][];
  color: string;
  /** Draw a marker at every point (evaluations). */
  markers?: boolean;
  /** Drawn faint (raw values under a smoothed line). */
  faint?: boolean;
  dashed?: boolean;
}

export interface Panel {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Force a log-scale y axis (default: automatic). */
  logY?: boolean;
}

export interface RenderOptions {
  title?: string;
  /** Image width in pixels (default 900). */
  width?: number;
  /** Height of each panel (default 300). */
  panelHeight?: number;
  /** Give every panel the same x range, starting at 0 for non-negative x (default true). */
  sharedX?: boolean;
}

const COLORS = { train: '#1f77b4', val: '#d62728', lr: '#2ca02c', extra: ['#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'] };

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** Round a step to 1, 2 or 5 × 10^k. */
function niceStep(raw: number): number {
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

/** About `count` evenly spaced round ticks covering [lo, hi]; returns the widened range too. */
export function niceTicks(lo: number, hi: number, count = 5): { ticks: number[]; lo: number; hi: number } {
  if (!(hi > lo)) {
    const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
  const step = niceStep((hi - lo) / count);
  const a = Math.floor(lo / step + 1e-9) * step;
  const b = Math.ceil(hi / step - 1e-9) * step;
  const n = Math.round((b - a) / step);
  const ticks: number[] = [];
  for (let i = 0; i <= n; i++) {
    const v = Number((a + i * step).toPrecision(12));
    ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  }
  return { ticks, lo: a, hi: b };
}

/** Ticks at powers of ten (and 2×, 5× when the range is short) for a log axis. */
function logTicks(lo: number, hi: number): { ticks: number[]; lo: number; hi: number } {
  const a = Math.floor(Math.log10(lo));
  const b = Math.ceil(Math.log10(hi));
  const ticks: number[] = [];
  for (let k = a; k <= b; k++) {
    for (const m of b - a <= 2 ? [1, 2, 5] : [1]) {
      const v = m * Math.pow(10, k);
      if (v >= Math.pow(10, a) && v <= Math.pow(10, b)) ticks.push(v);
    }
  }
  return { ticks, lo: Math.pow(10, a), hi: Math.pow(10, b) };
}

export function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(0).replace('e+', 'e');
  return String(Number(v.toPrecision(4)));
}

function minMax(values: readonly number[]): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/** At most about `max` points: every k-th one, always keeping the last (long runs stay light). */
export function thin(points: [number, number][], max = 4000): [number, number][] {
  if (points.length <= max) return points;
  const k = Math.ceil(points.length / max);
  const out = points.filter((_, i) => i % k === 0);
  if (out[out.length - 1] !== points[points.length - 1]) out.push(points[points.length - 1]);
  return out;
}

function fmt(n: number): string {
  return String(Math.round(n * 100) / 100);
}

/**
 * A centred moving average over `2·half + 1` points (fewer at the ends). Centred, so the smoothed
 * curve does not lag behind the raw one as an exponential average would. Non-finite values are
 * left out of the averages.
 */
export function smooth(points: [number, number][], half = Math.floor(points.length / 50)): [number, number][] {
  if (half < 1) return points.map(([x, y]) => [x, y]);
  // Prefix sums of the finite values and of their count: O(n) for any window.
  const n = points.length;
  const sum = new Float64Array(n + 1);
  const cnt = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) {
    const y = points[i][1];
    const ok = Number.isFinite(y);
    sum[i + 1] = sum[i] + (ok ? y : 0);
    cnt[i + 1] = cnt[i] + (ok ? 1 : 0);
  }
  return points.map(([x], i) => {
    const lo = Math.max(0, i - half), hi = Math.min(n, i + half + 1);
    const c = cnt[hi] - cnt[lo];
    return [x, c ? (sum[hi] - sum[lo]) / c : NaN];
  });
}

function renderPanel(p: Panel, x0: number, y0: number, width: number, height: number, xDomain: [number, number] | null): string {
  const m = { left: 70, right: 20, top: 30, bottom: 45 };
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const all = p.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const out: string[] = [];
  out.push(`<g class="panel" transform="translate(${x0},${y0})">`);
  out.push(`<text class="panel-title" x="${m.left}" y="18" font-size="14" font-weight="bold">${escapeXml(p.title)}</text>`);
  if (all.length === 0) {
    out.push(`<text x="${m.left + pw / 2}" y="${m.top + ph / 2}" text-anchor="middle" fill="#888">no data</text></g>`);
    return out.join('\n');
  }
  const xs = all.map(([x]) => x);
  const ys = all.map(([, y]) => y);
  const [xmin, xmax] = minMax(xs);
  const xr = niceTicks(xDomain ? xDomain[0] : xmin, xDomain ? xDomain[1] : xmax, 6);
  const [ymin, ymax] = minMax(ys);
  const logY = p.logY ?? (ymin > 0 && ymax / ymin > 100);
  const yr = logY ? logTicks(ymin, ymax) : niceTicks(ymin, ymax, 5);
  const X = (x: number): number => m.left + ((x - xr.lo) / (xr.hi - xr.lo)) * pw;
  const Y = logY
    ? (y: number): number => m.top + ph - ((Math.log10(y) - Math.log10(yr.lo)) / (Math.log10(yr.hi) - Math.log10(yr.lo))) * ph
    : (y: number): number => m.top + ph - ((y - yr.lo) / (yr.hi - yr.lo)) * ph;
  // grid, ticks, labels
  out.push('<g class="grid" stroke="#e5e5e5" stroke-width="1">');
  for (const t of yr.ticks) out.push(`<line x1="${m.left}" y1="${fmt(Y(t))}" x2="${m.left + pw}" y2="${fmt(Y(t))}"/>`);
  for (const t of xr.ticks) out.push(`<line x1="${fmt(X(t))}" y1="${m.top}" x2="${fmt(X(t))}" y2="${m.top + ph}"/>`);
  out.push('</g>');
  out.push(`<rect class="frame" x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333" stroke-width="1"/>`);
  out.push('<g class="y-ticks" font-size="11" text-anchor="end" fill="#333">');
  for (const t of yr.ticks) out.push(`<line x1="${m.left - 5}" y1="${fmt(Y(t))}" x2="${m.left}" y2="${fmt(Y(t))}" stroke="#333"/><text x="${m.left - 8}" y="${fmt(Y(t) + 4)}">${escapeXml(formatTick(t))}</text>`);
  out.push('</g>');
  out.push('<g class="x-ticks" font-size="11" text-anchor="middle" fill="#333">');
  for (const t of xr.ticks) out.push(`<line x1="${fmt(X(t))}" y1="${m.top + ph}" x2="${fmt(X(t))}" y2="${m.top + ph + 5}" stroke="#333"/><text x="${fmt(X(t))}" y="${m.top + ph + 18}">${escapeXml(formatTick(t))}</text>`);
  out.push('</g>');
  out.push(`<text class="x-label" x="${m.left + pw / 2}" y="${height - 8}" text-anchor="middle" font-size="12">${escapeXml(p.xLabel)}</text>`);
  out.push(`<text class="y-label" transform="translate(16,${m.top + ph / 2}) rotate(-90)" text-anchor="middle" font-size="12">${escapeXml(p.yLabel + (logY ? ' (log scale)' : ''))}</text>`);
  // series, clipped to the plot area
  const clipId = `clip-${Math.round(x0)}-${Math.round(y0)}`;
  // (a little larger than the frame, so markers on the edge stay whole)
  out.push(`<clipPath id="${clipId}"><rect x="${m.left - 4}" y="${m.top - 4}" width="${pw + 8}" height="${ph + 8}"/></clipPath>`);
  out.push(`<g clip-path="url(#${clipId})">`);
  for (const s of p.series) {
    const ok = (y: number): boolean => Number.isFinite(y) && (!logY || y > 0);
    const segments: string[][] = [[]];
    for (const [x, y] of thin(s.points)) {
      if (ok(y) && Number.isFinite(x)) segments[segments.length - 1].push(`${fmt(X(x))},${fmt(Y(y))}`);
      else if (segments[segments.length - 1].length) segments.push([]);
    }
    const attrs = `fill="none" stroke="${s.color}" stroke-width="${s.faint ? 1 : 2}"${s.faint ? ' stroke-opacity="0.35"' : ''}${s.dashed ? ' stroke-dasharray="6,4"' : ''} stroke-linejoin="round"`;
    out.push(`<g class="series" data-series="${escapeXml(s.name)}">`);
    for (const seg of segments) if (seg.length > 1) out.push(`<polyline ${attrs} points="${seg.join(' ')}"/>`);
    if (s.markers || s.points.length === 1) {
      for (const [x, y] of s.points) if (ok(y) && Number.isFinite(x)) out.push(`<circle cx="${fmt(X(x))}" cy="${fmt(Y(y))}" r="3" fill="${s.color}"/>`);
    }
    out.push('</g>');
  }
  out.push('</g>');
  // legend: one row, right-aligned above the plot area, so it never hides data
  const named = p.series.filter((s) => !s.faint);
  if (named.length) {
    const widths = named.map((s) => 34 + s.name.length * 6.5);
    let lx = m.left + pw - widths.reduce((a, b) => a + b, 0);
    const ly = 18;
    out.push('<g class="legend" font-size="12">');
    named.forEach((s, i) => {
      out.push(`<line x1="${fmt(lx)}" y1="${ly - 4}" x2="${fmt(lx + 20)}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6,4"' : ''}/>`);
      if (s.markers) out.push(`<circle cx="${fmt(lx + 10)}" cy="${ly - 4}" r="3" fill="${s.color}"/>`);
      out.push(`<text x="${fmt(lx + 25)}" y="${ly}">${escapeXml(s.name)}</text>`);
      lx += widths[i];
    });
    out.push('</g>');
  }
  out.push('</g>');
  return out.join('\n');
}

/** An SVG document with the panels stacked vertically. */
export function renderSvg(panels: Panel[], opts: RenderOptions = {}): string {
  const width = opts.width ?? 900;
  const ph = opts.panelHeight ?? 300;
  const top = opts.title ? 36 : 8;
  const height = top + panels.length * ph + 8;
  const parts = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
  ];
  if (opts.title) parts.push(`<text class="title" x="${width / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${escapeXml(opts.title)}</text>`);
  // One x range for all panels (from 0 when every x is ≥ 0, as steps are), so they line up.
  const xs = panels.flatMap((p) => p.series.flatMap((s) => s.points.map(([x]) => x))).filter(Number.isFinite);
  const [xmin, xmax] = minMax(xs);
  const xDomain: [number, number] | null = opts.sharedX === false || xs.length === 0 ? null : [Math.min(0, xmin), xmax];
  panels.forEach((p, i) => parts.push(renderPanel(p, 0, top + i * ph, width, ph, xDomain)));
  parts.push('</svg>', '');
  return parts.join('\n');
}

function isLossName(k: string): boolean {
  return k === 'loss' || k === 'nll' || /(^|_)loss$/i.test(k);
}

/** The panels for a run's metrics log (see the file comment). */
export function metricsPanels(entries: readonly MetricsEntry[]): Panel[] {
  const byStep = <E extends MetricsEntry>(t: E['type']): E[] => (entries.filter((e) => e.type === t) as E[]).slice().sort((a, b) => a.step - b.step);
  const train = byStep<TrainLogEntry>('train');
  const evals = byStep<EvalLogEntry>('eval');
  const panels: Panel[] = [];
  const trainLoss: [number, number][] = train.map((e) => [e.step, Number(e.loss)]);
  const loss: Series[] = [];
  if (trainLoss.length >= 100) {
    loss.push({ name: 'train (raw)', points: trainLoss, color: COLORS.train, faint: true });
    loss.push({ name: 'train', points: smooth(trainLoss), color: COLORS.train });
  } else if (trainLoss.length) {
    loss.push({ name: 'train', points: trainLoss, color: COLORS.train });
  }
  const evalKeys: string[] = [];
  for (const e of evals) for (const k of Object.keys(e.metrics ?? {})) if (!evalKeys.includes(k)) evalKeys.push(k);
  const valLossKey = evalKeys.find(isLossName);
  if (valLossKey) loss.push({ name: `validation ${valLossKey}`, points: evals.map((e) => [e.step, Number(e.metrics[valLossKey])]), color: COLORS.val, markers: true });
  panels.push({ title: 'Loss', xLabel: 'step', yLabel: 'loss', series: loss });
  for (const k of evalKeys) {
    if (k === valLossKey) continue;
    const series: Series[] = [];
    const trainPts: [number, number][] = train.filter((e) => e.metrics && k in e.metrics).map((e) => [e.step, Number(e.metrics![k])]);
    if (trainPts.length) series.push({ name: `train ${k}`, points: trainPts, color: COLORS.train });
    series.push({ name: `validation ${k}`, points: evals.filter((e) => k in (e.metrics ?? {})).map((e) => [e.step, Number(e.metrics[k])]), color: COLORS.val, markers: true });
    panels.push({ title: k, xLabel: 'step', yLabel: k, series });
  }
  const lrs = train.map((e) => [e.step, Number(e.lr)] as [number, number]).filter(([, v]) => Number.isFinite(v));
  if (lrs.length > 1 && lrs.some(([, v]) => v !== lrs[0][1])) {
    panels.push({ title: 'Learning rate', xLabel: 'step', yLabel: 'learning rate', series: [{ name: 'lr', points: lrs, color: COLORS.lr }], logY: false });
  }
  return panels;
}

export function renderMetricsSvg(entries: readonly MetricsEntry[], opts: RenderOptions = {}): string {
  return renderSvg(metricsPanels(entries), opts);
}

// ---- the command -------------------------------------------------------------------------------------

const PLOT_FLAGS: Record<string, Flag> = {
  output: { type: 'string', short: 'o', value: 'FILE', help: 'Where to write the SVG (default: plot.svg in the run directory)' },
  help: HELP_FLAG,
};

export const PLOT_HELP = `Usage:
  recur plot RUN [-o FILE]

Draws the training curves of a run from its metrics log as an SVG image, one panel under the
other: the loss (training, raw and smoothed, and validation), one panel per other validation
metric (with its training value when the task logs one), and the learning rate when it changes
during the run (a schedule or warm-up). RUN is a run directory (as given to 'recur train
--run-dir') or a metrics.jsonl file; a file that holds no metrics-log entries is refused.

Options:
${flagLines(PLOT_FLAGS, 23)}`;


export interface CommandIO {
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
}

/**
 * `recur plot RUN [-o FILE]`. Resolves to 0 on success; a wrong command line throws a UsageError
 * (exit code 2) and an unreadable run a CliError (exit code 1), which `main` prints.
 */
export async function plotCommand(argv: string[], io: CommandIO = {}): Promise<number> {
  const who = 'recur plot';
  const out = io.stdout ?? ((t: string) => void process.stdout.write(t));
  const command = parseOrHelp(who, argv, flagSpec(PLOT_FLAGS), 1, PLOT_HELP, out);
  if (!command) return 0;
  const { values, positionals } = command;
  if (positionals.length === 0) throw new UsageError(`missing the RUN argument (a run directory or a metrics.jsonl file)`);
  const run = positionals[0];
  let logPath = run;
  if (existsSync(run) && statSync(run).isDirectory()) logPath = join(run, 'metrics.jsonl');
  let parsed;
  try {
    parsed = readMetricsLog(logPath);
  } catch (e) {
    throw fileError(logPath, e);
  }
  // Train and eval entries without a numeric step are not a metrics log's (a JSON file of another
  // kind can carry a "type" key): they are left out and counted as unreadable.
  const entries = parsed.entries.filter((e) => (e.type !== 'train' && e.type !== 'eval') || Number.isFinite(e.step));
  const skipped = parsed.skipped + parsed.entries.length - entries.length;
  if (entries.length === 0) {
    throw new CliError(`${logPath}: not a metrics log: no entries of a metrics log found (expected JSON lines such as {"type":"train","step":1,"loss":2.3,...}, as 'recur train' writes to metrics.jsonl)`);
  }
  if (!entries.some((e) => e.type === 'train' || e.type === 'eval')) throw new CliError(`${logPath}: no training steps or evaluations logged yet`);
  const runDir = logPath === run ? dirname(resolve(run)) : resolve(run);
  const target = typeof values.output === 'string' ? values.output : join(runDir, 'plot.svg');
  const svg = renderMetricsSvg(entries, { title: `Training curves: ${basename(runDir)}` });
  try {
    writeFileAtomic(target, svg);
  } catch (e) {
    // writeFileAtomic names the target (not its temporary file) in its message.
    throw new CliError((e as Error).message);
  }
  if (skipped > 0) (io.stderr ?? ((t: string) => void process.stderr.write(t)))(`${who}: skipped ${skipped} unreadable line${skipped === 1 ? '' : 's'} in ${logPath}\n`);
  out(`${target}\n`);
  return 0;
}
