/**
 * Gradient-norm monitoring for the Trainer: per-layer norms for the metrics log, and a warning —
 * printed once per kind and run — when the gradients misbehave:
 *
 *   - "clipping": gradient-norm clipping fired on most of the recent steps (by default more than
 *     half of the last 50), i.e. clipNorm is effectively rescaling every update — the learning rate
 *     is probably too high or clipNorm too low;
 *   - "explosion": one step's global norm is more than `explodeFactor` (default 1000) times the
 *     running median of the recent norms — the classic exploding-gradient spike of RNNs.
 *
 * The window of recent norms is part of the training state so a resumed run warns exactly as an
 * uninterrupted one would.
 */

/** Per-layer norms from per-parameter norms: parameters grouped by module path and, for recurrent
 * weights, by stacked layer and direction (`lstm.weight_ih_l1_reverse` → `lstm.l1_reverse`). The
 * group norm is the 2-norm of its parameters' norms. */
export function layerNorms(norms: Record<string, number>): Record<string, number> {
  const sq = new Map<string, number>();
  for (const [name, n] of Object.entries(norms)) {
    const dot = name.lastIndexOf('.');
    const path = dot >= 0 ? name.slice(0, dot) : '';
    const leaf = dot >= 0 ? name.slice(dot + 1) : name;
    const m = /_(l\d+(?:_reverse)?)$/.exec(leaf);
    let key = m ? (path ? `${path}.${m[1]}` : m[1]) : path;
    if (key === '') key = leaf;
    sq.set(key, (sq.get(key) ?? 0) + n * n);
  }
  const out: Record<string, number> = {};
  for (const [k, v] of sq) out[k] = Math.sqrt(v);
  return out;
}

export interface GradMonitorOptions {
  /** Recent steps considered (default 50). */
  window?: number;
  /** Warn when clipping fired on more than this fraction of a full window (default 0.5). */
  clipFraction?: number;
  /** Warn when a norm exceeds this multiple of the running median (default 1000). */
  explodeFactor?: number;
  /** Steps needed before the median is trusted (default 10). */
  minHistory?: number;
}

export interface GradMonitorState {
  norms: number[];
  clipped: boolean[];
  warned: string[];
}

export type GradWarningKind = 'clipping' | 'explosion';

export interface GradWarning {
  kind: GradWarningKind;
  message: string;
}

export class GradMonitor {
  private readonly window: number;
  private readonly clipFraction: number;
  private readonly explodeFactor: number;
  private readonly minHistory: number;
  private norms: number[] = [];
  private clipped: boolean[] = [];
  private warned = new Set<string>();

  constructor(opts: GradMonitorOptions = {}) {
    this.window = opts.window ?? 50;
    this.clipFraction = opts.clipFraction ?? 0.5;
    this.explodeFactor = opts.explodeFactor ?? 1000;
    this.minHistory = opts.minHistory ?? 10;
  }

  /** The running median of the recent norms (NaN before any step). */
  get median(): number {
    if (this.norms.length === 0) return NaN;
    const s = [...this.norms].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  }

  /**
   * Record one step's global norm (before clipping) and whether clipping scaled it. Returns the
   * warnings to print now (each kind at most once per monitor).
   */
  observe(step: number, total: number, clipNorm: number | null): GradWarning[] {
    const out: GradWarning[] = [];
    const med = this.median;
    if (!this.warned.has('explosion') && this.norms.length >= this.minHistory && med > 0 && total > this.explodeFactor * med) {
      this.warned.add('explosion');
      out.push({
        kind: 'explosion',
        message: `gradient norm ${total.toPrecision(3)} at step ${step} is over ${this.explodeFactor}× its running median (${med.toPrecision(3)}): exploding gradients — lower the learning rate or set/lower clipNorm`,
      });
    }
    const didClip = clipNorm !== null && total > clipNorm;
    this.norms.push(total);
    this.clipped.push(didClip);
    if (this.norms.length > this.window) {
      this.norms.shift();
      this.clipped.shift();
    }
    if (!this.warned.has('clipping') && clipNorm !== null && this.clipped.length >= this.window) {
      const n = this.clipped.filter(Boolean).length;
      if (n > this.clipFraction * this.window) {
        this.warned.add('clipping');
        out.push({
          kind: 'clipping',
          message: `gradient clipping (clipNorm ${clipNorm}) fired on ${n} of the last ${this.window} steps (median norm ${this.median.toPrecision(3)}): every update is being rescaled — the learning rate may be too high or clipNorm too low`,
        });
      }
    }
    return out;
  }

  getState(): GradMonitorState {
    return { norms: [...this.norms], clipped: [...this.clipped], warned: [...this.warned] };
  }

  setState(s: unknown): void {
    if (s === null || typeof s !== 'object') throw new TypeError('GradMonitor.setState: expected {norms, clipped, warned}');
    const o = s as Record<string, unknown>;
    if (!Array.isArray(o.norms) || !Array.isArray(o.clipped) || !Array.isArray(o.warned) || o.norms.length !== o.clipped.length) {
      throw new TypeError('GradMonitor.setState: expected {norms: number[], clipped: boolean[], warned: string[]} of matching lengths');
    }
    this.norms = o.norms.map(Number);
    this.clipped = o.clipped.map(Boolean);
    this.warned = new Set(o.warned.map(String));
  }
}
