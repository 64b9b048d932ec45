/**
 * Charts: uPlot line charts that follow their container's width, and canvas heatmaps.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface SeriesSpec {
  label: string;
  stroke: string;
  /** Draw across missing points (sparse series such as validation loss). */
  spanGaps?: boolean;
  dash?: number[];
}

/** A line chart over a shared x axis; `set` replaces the data (redrawn on the next frame). */
export class LineChart {
  readonly plot: uPlot;
  private pending: uPlot.AlignedData | null = null;

  constructor(host: HTMLElement, o: { title?: string; x: string; y: string; series: SeriesSpec[]; logY?: boolean; height?: number }) {
    const width = Math.max(280, host.clientWidth || 600);
    this.plot = new uPlot({
      title: o.title,
      width,
      height: o.height ?? 220,
      scales: { x: { time: false }, y: o.logY ? { distr: 3 } : {} },
      // log axes: powers of ten as 1e-6, not the default fixed-point '0'
      axes: [{ label: o.x }, { label: o.y, size: 60, ...(o.logY ? { values: (_u: uPlot, ticks: number[]) => ticks.map((v) => (v == null ? '' : v >= 0.01 && v < 1000 ? String(+v.toPrecision(2)) : v.toExponential(0))) } : {}) }],
      series: [{ label: o.x }, ...o.series.map((s) => ({ label: s.label, stroke: s.stroke, width: 1.5, spanGaps: s.spanGaps, dash: s.dash, points: { show: false } }))],
    }, [[], ...o.series.map(() => [])] as unknown as uPlot.AlignedData, host);
    new ResizeObserver(() => {
      const w = Math.max(280, host.clientWidth);
      if (Math.abs(w - this.plot.width) > 4) this.plot.setSize({ width: w, height: this.plot.height });
    }).observe(host);
  }

  set(data: (number | null)[][]): void {
    const first = this.pending === null;
    this.pending = data as unknown as uPlot.AlignedData;
    if (first) requestAnimationFrame(() => {
      const d = this.pending!;
      this.pending = null;
      this.plot.setData(d);
    });
  }
}

/**
 * A heatmap of rows × columns values in [-1, 1] (or [0, 1] with `unit`) on a canvas: blue
 * negative, white zero, red positive. `labels` are drawn under the columns.
 */
export function drawHeatmap(canvas: HTMLCanvasElement, rows: number[][], o: { labels?: string[]; unit?: boolean; cell?: number } = {}): void {
  const R = rows.length, C = R ? rows[0].length : 0;
  const cw = o.cell ?? 12, ch = o.cell ?? 12;
  const labelH = o.labels ? 16 : 0;
  canvas.width = C * cw;
  canvas.height = R * ch + labelH;
  const g = canvas.getContext('2d')!;
  g.clearRect(0, 0, canvas.width, canvas.height);
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < C; c++) {
      const v = rows[r][c];
      g.fillStyle = o.unit ? unitColor(v) : signedColor(v);
      g.fillRect(c * cw, r * ch, cw, ch);
    }
  }
  if (o.labels) {
    g.fillStyle = '#222';
    g.font = `${Math.min(12, cw)}px ui-monospace, monospace`;
    g.textAlign = 'center';
    o.labels.forEach((l, c) => g.fillText(l === '\n' ? '⏎' : l === ' ' ? '·' : l, c * cw + cw / 2, R * ch + 12));
  }
}

function signedColor(v: number): string {
  const a = Math.max(-1, Math.min(1, v));
  const k = Math.round(255 * (1 - Math.abs(a)));
  return a >= 0 ? `rgb(255,${k},${k})` : `rgb(${k},${k},255)`;
}

function unitColor(v: number): string {
  const k = Math.round(255 * (1 - Math.max(0, Math.min(1, v))));
  return `rgb(${k},${k},${Math.round(128 + k / 2)})`;
}
