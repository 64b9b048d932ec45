/**
 * Training progress on stderr: a live one-line bar redrawn in place when stderr is a terminal,
 * plain lines at a fixed interval otherwise (logs, pipes, CI). Output meant for stdout goes
 * through `print`, which clears the bar first and redraws it after, so the two never interleave
 * on one line.
 */
import { formatDuration, formatInt } from './format.ts';
import type { ProgressStats } from '../train/callbacks.ts';

export type { ProgressStats } from '../train/callbacks.ts';

export interface ProgressOptions {
  stream?: NodeJS.WriteStream;
  /** Force the live bar on or off (default: when the stream is a TTY). */
  live?: boolean;
  /** Seconds between plain lines when not live (default 10). */
  lineEvery?: number;
  /** Seconds between redraws of the live bar (default 0.1). */
  redrawEvery?: number;
}

export class Progress {
  private readonly stream: NodeJS.WriteStream;
  readonly live: boolean;
  private readonly lineEvery: number;
  private readonly redrawEvery: number;
  private shown = false;
  private lastDraw = -Infinity;
  private lastLine = 0;
  private last: ProgressStats | null = null;
  private finished = false;

  constructor(opts: ProgressOptions = {}) {
    this.stream = opts.stream ?? process.stderr;
    this.live = opts.live ?? Boolean(this.stream.isTTY);
    this.lineEvery = opts.lineEvery ?? 10;
    this.redrawEvery = opts.redrawEvery ?? 0.1;
  }

  private text(s: ProgressStats, width: number): string {
    const pct = `${Math.floor(s.fraction * 100)}%`.padStart(4);
    const fields = `step ${formatInt(s.step)} | loss ${Number.isFinite(s.loss) ? s.loss.toFixed(3) : '-'} | ${formatInt(s.tokensPerSec)} tok/s | ${formatDuration(s.elapsed)} elapsed | ETA ${formatDuration(s.eta)}`;
    if (!this.live) return `${pct.trim()} ${fields}`;
    const barWidth = Math.max(10, Math.min(30, width - fields.length - 10));
    const filled = Math.round(s.fraction * barWidth);
    return `[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}] ${pct} ${fields}`;
  }

  update(s: ProgressStats, force = false): void {
    if (this.finished) return;
    this.last = s;
    if (this.live) {
      if (!force && s.elapsed - this.lastDraw < this.redrawEvery) return;
      this.lastDraw = s.elapsed;
      const width = this.stream.columns || 100;
      let line = this.text(s, width);
      if (line.length > width - 1) line = line.slice(0, width - 1);
      this.stream.write(`\r\x1b[K${line}`);
      this.shown = true;
    } else if (force || s.elapsed - this.lastLine >= this.lineEvery) {
      this.lastLine = s.elapsed;
      this.stream.write(`${this.text(s, 0)}\n`);
    }
  }

  /** Remove the live bar (before other output). */
  clear(): void {
    if (this.live && this.shown) {
      this.stream.write('\r\x1b[K');
      this.shown = false;
    }
  }

  /** Write text to `out` (default stdout) without garbling the bar. */
  print(text: string, out: NodeJS.WriteStream = process.stdout): void {
    this.clear();
    out.write(text.endsWith('\n') ? text : `${text}\n`);
    if (this.live && this.last) this.update(this.last, true);
  }

  /** Final state: leave the last bar on its own line; later output is no longer interleaved. */
  done(): void {
    if (this.live && this.last) {
      this.update(this.last, true);
      this.stream.write('\n');
      this.shown = false;
    }
    this.last = null;
    this.finished = true;
  }
}
