/**
 * Generic autoregressive decoding: greedy and beam search over any step function, batched over
 * independent samples and their hypotheses (one `step` call per output position for the whole
 * batch, so a neural decoder runs one batched forward per position).
 *
 * The model side is three things:
 *   - `initialState`: the decoder state for `batchSize` samples (row b = sample b);
 *   - `step(tokens, state, sampleOf)`: given the last token of each live row and the state, the
 *     next-token log-probabilities ([rows, V], row-major) and the new state. `sampleOf[i]` tells
 *     which sample row i belongs to (e.g. to pick its encoder memory);
 *   - `select(state, rows)`: the state of rows `rows` (a gather; rows may repeat) — called after
 *     each step to keep the surviving hypotheses (fairseq's reorder_incremental_state).
 *
 * Beam search (as Hugging Face's with early stopping, and fairseq's): each position, every live
 * beam of a sample proposes its best tokens; the candidates are ranked by total log-probability;
 * a candidate that ends in the stop token becomes a finished hypothesis if it ranks among the
 * sample's top `beamWidth` candidates; the best non-stop candidates become the next `beamWidth`
 * live beams. Finished hypotheses are ranked by the length-normalised score
 *     score = logProb / length^α        (length counts the stop token; α = lengthPenalty)
 * A sample is done when it has `beamWidth` finished hypotheses (earlyStopping, the default), or —
 * with earlyStopping false — when no live beam can still beat its best finished one (live
 * log-probabilities only fall, so logProb / maxLength^α bounds a live beam's final score for
 * α ≥ 0). With beamWidth 1 and early stopping this is exactly greedy decoding.
 */

export interface DecodeStep<S> {
  /** [rows, V] log-probabilities of the next token, row-major. */
  logProbs: ArrayLike<number>;
  state: S;
}

export interface DecoderSpec<S> {
  /** Independent samples decoded together. */
  batchSize: number;
  /** V: the width of each log-probability row. */
  vocabSize: number;
  /** The token fed at the first position. */
  startToken: number;
  /** The token that ends a hypothesis (not included in the returned tokens). */
  stopToken: number;
  /** At most this many positions (the stop token included) are generated. */
  maxLength: number;
  initialState: S;
  step(tokens: Int32Array, state: S, sampleOf: Int32Array): DecodeStep<S>;
  select(state: S, rows: Int32Array): S;
}

export interface BeamOptions {
  /** Live hypotheses kept per sample (≥ 1). */
  beamWidth: number;
  /** α in score = logProb / length^α (default 1: mean log-probability per token; 0: raw sum). */
  lengthPenalty?: number;
  /** Stop a sample once it has beamWidth finished hypotheses (default true). */
  earlyStopping?: boolean;
  /** Hypotheses returned per sample (default beamWidth). */
  numReturn?: number;
}

export interface Hypothesis {
  /** Generated tokens, without the start and stop tokens. */
  tokens: number[];
  /** Σ log p of the generated tokens (the stop token included when finished). */
  logProb: number;
  /** The length-normalised score used for ranking. */
  score: number;
  /** Whether it ended with the stop token (false: cut at maxLength). */
  finished: boolean;
}

function checkSpec<S>(where: string, spec: DecoderSpec<S>): void {
  for (const k of ['batchSize', 'vocabSize', 'maxLength'] as const) {
    const v = spec[k];
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${where}: '${k}' must be a positive integer, got ${String(v)}`);
  }
  for (const k of ['startToken', 'stopToken'] as const) {
    const v = spec[k];
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`${where}: '${k}' must be a non-negative integer, got ${String(v)}`);
  }
  if (spec.stopToken >= spec.vocabSize) throw new RangeError(`${where}: stopToken ${spec.stopToken} is outside the vocabulary [0, ${spec.vocabSize})`);
  if (typeof spec.step !== 'function' || typeof spec.select !== 'function') throw new TypeError(`${where}: 'step' and 'select' must be functions`);
}

/** The first position's rows: one per sample (sampleOf[r] = r), each fed the start token. */
function firstRows<S>(spec: DecoderSpec<S>): { sampleOf: Int32Array; tokens: Int32Array } {
  const B = spec.batchSize;
  return { sampleOf: Int32Array.from({ length: B }, (_, b) => b), tokens: new Int32Array(B).fill(spec.startToken) };
}

/** One decoder step over the live rows, its output checked: [rows, V] log-probabilities. */
function runStep<S>(where: string, spec: DecoderSpec<S>, tokens: Int32Array, state: S, sampleOf: Int32Array): DecodeStep<S> {
  const out = spec.step(tokens, state, sampleOf);
  const rows = sampleOf.length, V = spec.vocabSize;
  if (!out || !out.logProbs || out.logProbs.length !== rows * V) {
    throw new RangeError(`${where}: step must return logProbs of ${rows} rows × ${V} (${rows * V} values), got ${out?.logProbs?.length}`);
  }
  return out;
}

/** Greedy decoding: the most likely token at every position (ties: the lowest id). */
export function greedyDecode<S>(spec: DecoderSpec<S>): Hypothesis[] {
  checkSpec('greedyDecode', spec);
  const { batchSize: B, vocabSize: V, stopToken, maxLength } = spec;
  const hyps: Hypothesis[] = Array.from({ length: B }, () => ({ tokens: [], logProb: 0, score: 0, finished: false }));
  let { sampleOf: live, tokens } = firstRows(spec); // live: the sample of each live row
  let state = spec.initialState;
  for (let t = 0; t < maxLength && live.length > 0; t++) {
    const out = runStep('greedyDecode', spec, tokens, state, live);
    const lp = out.logProbs;
    const keep: number[] = [];
    const next: number[] = [];
    for (let i = 0; i < live.length; i++) {
      let best = 0;
      for (let v = 1; v < V; v++) if (lp[i * V + v] > lp[i * V + best]) best = v;
      const h = hyps[live[i]];
      h.logProb += lp[i * V + best];
      if (best === stopToken) h.finished = true;
      else {
        h.tokens.push(best);
        keep.push(i);
        next.push(best);
      }
    }
    const rows = Int32Array.from(keep);
    state = keep.length === live.length ? out.state : spec.select(out.state, rows);
    live = Int32Array.from(keep, (i) => live[i]);
    tokens = Int32Array.from(next);
  }
  for (const h of hyps) h.score = h.logProb;
  return hyps;
}

interface Beam {
  tokens: number[];
  logProb: number;
}

/** Length normalisation: logProb / length^α. */
export function normalizedScore(logProb: number, length: number, alpha: number): number {
  return alpha === 0 ? logProb : logProb / Math.pow(Math.max(length, 1), alpha);
}

/** The k largest entries of row r (indices, best first; ties: the lowest id). */
function topK(lp: ArrayLike<number>, r: number, V: number, k: number): number[] {
  const idx: number[] = [];
  for (let v = 0; v < V; v++) {
    const x = lp[r * V + v];
    if (x !== x || x === -Infinity) continue; // NaN / impossible tokens never propose
    if (idx.length === k && !(x > lp[r * V + idx[k - 1]])) continue;
    let p = idx.length === k ? k - 1 : idx.length;
    while (p > 0 && x > lp[r * V + idx[p - 1]]) p--;
    idx.splice(p, 0, v);
    if (idx.length > k) idx.pop();
  }
  return idx;
}

/**
 * Beam search; returns, per sample, up to `numReturn` hypotheses best first (finished ones
 * first, then — only if too few finished within maxLength — the best unfinished beams).
 */
export function beamSearch<S>(spec: DecoderSpec<S>, o: BeamOptions): Hypothesis[][] {
  checkSpec('beamSearch', spec);
  const K = o.beamWidth;
  if (!Number.isInteger(K) || K < 1) throw new RangeError(`beamSearch: beamWidth must be a positive integer, got ${String(K)}`);
  const alpha = o.lengthPenalty ?? 1;
  if (!(typeof alpha === 'number' && Number.isFinite(alpha) && alpha >= 0)) throw new RangeError(`beamSearch: lengthPenalty must be a finite number ≥ 0, got ${String(alpha)}`);
  const early = o.earlyStopping ?? true;
  const numReturn = o.numReturn ?? K;
  if (!Number.isInteger(numReturn) || numReturn < 1) throw new RangeError(`beamSearch: numReturn must be a positive integer, got ${String(numReturn)}`);
  const { batchSize: B, vocabSize: V, stopToken, maxLength } = spec;

  const finished: Hypothesis[][] = Array.from({ length: B }, () => []);
  const done = new Array<boolean>(B).fill(false);
  // live beams, grouped by sample, in row order of the current state
  let beams: Beam[][] = Array.from({ length: B }, () => [{ tokens: [], logProb: 0 }]);
  let { sampleOf, tokens } = firstRows(spec);
  let state = spec.initialState;

  for (let t = 0; t < maxLength && sampleOf.length > 0; t++) {
    const out = runStep('beamSearch', spec, tokens, state, sampleOf);
    const lp = out.logProbs;
    const nextBeams: Beam[][] = Array.from({ length: B }, () => []);
    const parentRows: number[] = [];
    const nextSample: number[] = [];
    const nextTokens: number[] = [];
    let row = 0;
    for (let b = 0; b < B; b++) {
      const bs = beams[b];
      if (bs.length === 0) continue;
      // candidates: each beam's K + 1 best tokens (enough for K non-stop survivors)
      const cands: { lp: number; k: number; tok: number }[] = [];
      for (let k = 0; k < bs.length; k++) {
        for (const tok of topK(lp, row + k, V, K + 1)) cands.push({ lp: bs[k].logProb + lp[(row + k) * V + tok], k, tok });
      }
      cands.sort((x, y) => y.lp - x.lp || x.k - y.k || x.tok - y.tok);
      for (let rank = 0; rank < cands.length && nextBeams[b].length < K; rank++) {
        const c = cands[rank];
        const parent = bs[c.k];
        if (c.tok === stopToken) {
          if (rank < K) finished[b].push({ tokens: parent.tokens.slice(), logProb: c.lp, score: normalizedScore(c.lp, parent.tokens.length + 1, alpha), finished: true });
          continue;
        }
        nextBeams[b].push({ tokens: [...parent.tokens, c.tok], logProb: c.lp });
        parentRows.push(row + c.k);
        nextSample.push(b);
        nextTokens.push(c.tok);
      }
      row += bs.length;
      // is this sample done?
      const fin = finished[b];
      if (fin.length >= K) {
        if (early) done[b] = true;
        else {
          const best = Math.max(...fin.map((h) => h.score));
          const bestLive = Math.max(...nextBeams[b].map((x) => normalizedScore(x.logProb, alpha > 0 ? maxLength : x.tokens.length, alpha)));
          if (nextBeams[b].length === 0 || best >= bestLive) done[b] = true;
        }
      }
    }
    // drop the rows of finished samples
    const keep: number[] = [];
    for (let i = 0; i < nextSample.length; i++) if (!done[nextSample[i]]) keep.push(i);
    for (let b = 0; b < B; b++) if (done[b]) nextBeams[b] = [];
    beams = nextBeams;
    const rows = Int32Array.from(keep, (i) => parentRows[i]);
    sampleOf = Int32Array.from(keep, (i) => nextSample[i]);
    tokens = Int32Array.from(keep, (i) => nextTokens[i]);
    state = spec.select(out.state, rows);
  }

  return finished.map((fin, b) => {
    const ranked = fin.slice().sort((x, y) => y.score - x.score);
    if (ranked.length < numReturn) {
      const rest = beams[b]
        .map((x) => ({ tokens: x.tokens, logProb: x.logProb, score: normalizedScore(x.logProb, x.tokens.length, alpha), finished: false }))
        .sort((x, y) => y.score - x.score);
      ranked.push(...rest);
    }
    return ranked.slice(0, numReturn);
  });
}
