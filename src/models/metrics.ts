/**
 * Scores of the task models, as plain arithmetic on predictions and references (no tensors):
 * edit distance and the error rates built on it (WER and PER, for seq2seq), exact match and token
 * accuracy of generated sequences (captions), accuracy and F1 of classifiers. One module, so a
 * task that needs a score imports it from here rather than from another task.
 */

// ---- edit distance, word and token error rates -----------------------------------------------------

/** Levenshtein distance (unit insert, delete, substitute) between two token sequences. */
export function editDistance(a: ArrayLike<number | string>, b: ArrayLike<number | string>): number {
  const n = a.length, m = b.length;
  if (n === 0) return m;
  if (m === 0) return n;
  let prev = new Int32Array(m + 1);
  let cur = new Int32Array(m + 1);
  for (let j = 0; j <= m; j++) prev[j] = j;
  for (let i = 1; i <= n; i++) {
    cur[0] = i;
    for (let j = 1; j <= m; j++) {
      const sub = prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      cur[j] = Math.min(sub, prev[j] + 1, cur[j - 1] + 1);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[m];
}

/** Errors of one prediction against its references: the closest reference wins (ties: shorter). */
export function closestReference(pred: ArrayLike<number | string>, refs: readonly ArrayLike<number | string>[]): { distance: number; refLength: number } {
  if (refs.length === 0) throw new RangeError('closestReference: needs at least one reference');
  let best = { distance: Infinity, refLength: 0 };
  for (const r of refs) {
    const d = editDistance(pred, r);
    if (d < best.distance || (d === best.distance && r.length < best.refLength)) best = { distance: d, refLength: r.length };
  }
  return best;
}

/** Accumulates PER and WER over predictions. */
export class ErrorRates {
  words = 0;
  wrongWords = 0;
  edits = 0;
  refTokens = 0;

  add(pred: ArrayLike<number | string>, refs: readonly ArrayLike<number | string>[]): void {
    const { distance, refLength } = closestReference(pred, refs);
    this.words++;
    if (distance > 0) this.wrongWords++;
    this.edits += distance;
    this.refTokens += refLength;
  }

  /** Word error rate: the fraction of words with any error. */
  get wer(): number {
    return this.words ? this.wrongWords / this.words : NaN;
  }

  /** Phoneme (token) error rate: edits / reference tokens. */
  get per(): number {
    return this.refTokens ? this.edits / this.refTokens : NaN;
  }
}

// ---- generated sequences: exact match and token accuracy ------------------------------------------

/**
 * Exact match and position-wise token accuracy of generated sequences, each scored over its
 * reference and the end token `endToken` that must follow it.
 */
export class SequenceScores {
  samples = 0;
  exact = 0;
  tokens = 0;
  correctTokens = 0;

  constructor(readonly endToken: number) {}

  add(pred: readonly number[], ref: readonly number[]): void {
    this.samples++;
    if (pred.length === ref.length && pred.every((t, i) => t === ref[i])) this.exact++;
    const p = [...pred, this.endToken];
    for (let i = 0; i <= ref.length; i++) {
      const want = i < ref.length ? ref[i] : this.endToken;
      if (p[i] === want) this.correctTokens++;
    }
    this.tokens += ref.length + 1;
  }

  get exactMatch(): number {
    return this.samples ? this.exact / this.samples : NaN;
  }

  get tokenAccuracy(): number {
    return this.tokens ? this.correctTokens / this.tokens : NaN;
  }
}

// ---- classification: accuracy and F1 --------------------------------------------------------------

export interface ClassMetrics {
  accuracy: number;
  /** Binary: F1 of class 1 (the positive class: spam, male); more classes: macro F1. */
  f1: number;
  macroF1: number;
  /** Binary: precision tp / (tp + fp) of class 1; more classes: the mean over classes. 0 when nothing is predicted as the class. */
  precision: number;
  /** Binary: recall tp / (tp + fn) of class 1; more classes: the mean over classes. 0 when the class has no examples. */
  recall: number;
}

/** Accuracy and F1 from predictions and true labels over C classes. */
export function classificationMetrics(pred: ArrayLike<number>, gold: ArrayLike<number>, C: number): ClassMetrics {
  if (pred.length !== gold.length) throw new RangeError(`classificationMetrics: ${pred.length} predictions for ${gold.length} labels`);
  const n = gold.length;
  if (n === 0) throw new RangeError('classificationMetrics: no examples');
  const tp = new Float64Array(C), fp = new Float64Array(C), fn = new Float64Array(C);
  let correct = 0;
  for (let i = 0; i < n; i++) {
    if (pred[i] === gold[i]) {
      correct++;
      tp[gold[i]]++;
    } else {
      fp[pred[i]]++;
      fn[gold[i]]++;
    }
  }
  const f1s = Array.from({ length: C }, (_, c) => (tp[c] === 0 ? 0 : (2 * tp[c]) / (2 * tp[c] + fp[c] + fn[c])));
  const precisions = Array.from({ length: C }, (_, c) => (tp[c] === 0 ? 0 : tp[c] / (tp[c] + fp[c])));
  const recalls = Array.from({ length: C }, (_, c) => (tp[c] === 0 ? 0 : tp[c] / (tp[c] + fn[c])));
  const meanOf = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / C;
  const macroF1 = meanOf(f1s);
  const binary = C === 2;
  return { accuracy: correct / n, f1: binary ? f1s[1] : macroF1, macroF1, precision: binary ? precisions[1] : meanOf(precisions), recall: binary ? recalls[1] : meanOf(recalls) };
}

export function argmaxRows(logits: ArrayLike<number>, rows: number, C: number): Int32Array {
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < C; c++) if (logits[r * C + c] > logits[r * C + best]) best = c;
    out[r] = best;
  }
  return out;
}
